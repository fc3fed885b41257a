"""Anchor target layer: label anchors 1 / 0 / -1 and give positives targets.

Ren et al. 2015, sections 3.1.2, 3.1.3 and 3.3, as py-faster-rcnn's
``lib/rpn/anchor_target_layer.py``, applied in this order, with a
:class:`Reason` recorded for every anchor so that
``labels.explain(i)`` answers "why is anchor i ignored?":

1. anchors crossing the image border by more than ``allowed_border`` are
   ignored (-1): the RPN is trained only on anchors inside the image;
2. negative (0) where the anchor's max IoU over GT boxes < ``negative_iou``;
3. positive (1) where the max IoU >= ``positive_iou`` ("type B");
4. positive for each GT box, its best anchor(s) ("type A"): every inside
   anchor whose IoU with GT k equals GT k's maximum, ties included, only
   where that maximum is > 0. As in py-faster-rcnn, such an anchor's
   regression target stays its *argmax* GT, which may differ from k;
5. sampling: keep at most ``int(batch_size * positive_fraction)``
   positives, then at most ``batch_size - #positives`` negatives, chosen at
   random with ``rng``; the rest become -1 (``Reason.DROPPED_BY_SAMPLING``,
   the rule they fell under is kept in ``reason_before_sampling``).

Regression targets (Ren et al. 2015, eq. 2) are
``encode_boxes(anchor, matched GT)`` for
the anchors labelled 1 after sampling, zeros elsewhere. :class:`Reason` and
the text behind ``explain`` / ``summary`` / ``counts`` live in
:mod:`minirpn.anchor_explanations` (``Reason`` is re-exported here).
"""
import dataclasses
import math

import numpy

from .anchor_explanations import Reason, explain_anchor, label_counts, summarize
from .backend import get_array_module
from .checks import (check_image_size, check_iou_thresholds, check_non_negative_number,
                     check_positive_int, check_probability, check_rng)
from .ops import check_boxes, check_positive_area, encode_boxes
from .sampling import match_boxes, sample_balanced

__all__ = ["Reason", "AnchorTargetConfig", "SamplingStats", "AnchorLabels",
           "label_anchors"]


# Label implied by each reason code, indexed by the code.
_LABEL_OF_REASON = numpy.array([-1, 0, -1, 1, 1, -1], dtype=numpy.int8)


@dataclasses.dataclass(frozen=True)
class AnchorTargetConfig:
    """The settings a labelling was made with."""
    positive_iou: float
    negative_iou: float
    batch_size: int | None
    positive_fraction: float
    allowed_border: float

    @property
    def max_positives(self):
        """``int(batch_size * positive_fraction)``, None if no sampling."""
        if self.batch_size is None:
            return None
        return int(self.batch_size * self.positive_fraction)


@dataclasses.dataclass(frozen=True)
class SamplingStats:
    """Rule 5 bookkeeping: candidates before sampling, caps, kept."""
    positive_candidates: int
    positive_cap: int | None
    positives_kept: int
    negative_candidates: int
    negative_cap: int | None
    negatives_kept: int


@dataclasses.dataclass
class AnchorLabels:
    """Result of :func:`label_anchors`. Shapes: A anchors, K GT boxes.

    Attributes
    ----------
    labels : (A,) int8
        1 positive, 0 negative, -1 ignored.
    matched_gt : (A,) int64
        Argmax GT of each inside anchor (for an anchor overlapping no GT
        this is 0, the argmax of zeros); -1 for border-crossing anchors and
        for every anchor when K == 0.
    max_iou : (A,) anchors' dtype
        IoU with ``matched_gt``; 0 for border-crossing anchors or K == 0.
    bbox_targets : (A, 4) anchors' dtype
        ``encode_boxes(anchor, gt_boxes[matched_gt])`` where labels == 1,
        zeros elsewhere.
    reason, reason_before_sampling : (A,) int8
        :class:`Reason` codes; they differ only where sampling dropped an
        anchor (``reason`` is then ``DROPPED_BY_SAMPLING``).
    best_anchor_of : (A,) int64
        For an anchor satisfying rule 4, a GT k (the lowest index) it is a
        best anchor of; -1 otherwise. Set also for anchors that are
        positive by threshold anyway.
    anchors : (A, 4), gt_boxes : (K, 4)
        The inputs (gt_boxes cast to the anchors' dtype).
    image_size : (float, float)
        (H, W).
    config : AnchorTargetConfig
    sampling : SamplingStats
    """
    labels: object
    matched_gt: object
    max_iou: object
    bbox_targets: object
    reason: object
    reason_before_sampling: object
    best_anchor_of: object
    anchors: object
    gt_boxes: object
    image_size: tuple
    config: AnchorTargetConfig
    sampling: SamplingStats

    def counts(self):
        """Dict of label counts and of anchors per final :class:`Reason`."""
        return label_counts(self)

    def summary(self):
        """One line: label counts and where the ignored anchors came from."""
        return summarize(self)

    def explain(self, index):
        """A sentence saying why anchor ``index`` has its label (str)."""
        return explain_anchor(self, index)


def label_anchors(anchors, gt_boxes, image_size, *, positive_iou=0.7,
                  negative_iou=0.3, batch_size=256, positive_fraction=0.5,
                  allowed_border=0.0, rng=None):
    """Label anchors for RPN training and compute their regression targets.

    Shapes: A anchors, K GT boxes (K may be 0: then every inside anchor is
    negative, whatever ``negative_iou``, and nothing is positive).

    Parameters
    ----------
    anchors : (A, 4) float32 or float64
        Anchors (x1, y1, x2, y2), e.g. from :func:`minirpn.anchors.grid_anchors`.
    gt_boxes : (K, 4) float32 or float64
        GT boxes with positive width and height; cast to ``anchors.dtype``.
    image_size : (float, float)
        (H, W) of the (rescaled) input image.
    positive_iou, negative_iou : float
        Thresholds in [0, 1], ``negative_iou <= positive_iou``
        (py-faster-rcnn RPN_POSITIVE_OVERLAP, RPN_NEGATIVE_OVERLAP).
    batch_size : int or None
        Anchors sampled per image (RPN_BATCHSIZE); None: no sampling.
    positive_fraction : float
        At most ``int(batch_size * positive_fraction)`` positives.
    allowed_border : float
        An anchor is inside iff x1 >= -b, y1 >= -b, x2 <= W + b, y2 <= H + b;
        ``math.inf`` keeps every anchor.
    rng : numpy.random.Generator, optional
        Drives the sampling; ``None``: ``numpy.random.default_rng()``.

    Returns
    -------
    AnchorLabels
        Per-anchor ``labels`` (A,) int8, ``matched_gt`` (A,) int64,
        ``max_iou`` (A,), ``bbox_targets`` (A, 4), ``reason`` codes; with
        ``explain(i)``, ``counts()``, ``summary()``.

    Raises
    ------
    TypeError, ValueError
        Bad boxes (first bad row named), a zero-area GT box, thresholds
        outside [0, 1] or inverted, a bad batch size, fraction, border,
        image size or ``rng``.
    """
    config, (height, width) = _settings(
        positive_iou, negative_iou, batch_size, positive_fraction,
        allowed_border, image_size)
    check_boxes(anchors, "anchors")
    check_boxes(gt_boxes, "gt_boxes")
    check_positive_area(gt_boxes, "gt_boxes")
    rng = check_rng(rng)
    xp = get_array_module(anchors)
    gt_boxes = xp.asarray(gt_boxes, dtype=anchors.dtype)
    n, b = anchors.shape[0], config.allowed_border

    # 1. Only anchors inside the image (up to allowed_border) are labelled.
    inside = xp.flatnonzero((anchors[:, 0] >= -b) & (anchors[:, 1] >= -b)
                            & (anchors[:, 2] <= width + b)
                            & (anchors[:, 3] <= height + b))
    reason = xp.full(n, int(Reason.CROSSED_BORDER), dtype=xp.int8)
    matched_gt = xp.full(n, -1, dtype=xp.int64)
    max_iou = xp.zeros(n, dtype=anchors.dtype)
    best_anchor_of = xp.full(n, -1, dtype=xp.int64)
    if gt_boxes.shape[0] == 0:
        reason[inside] = int(Reason.NEGATIVE)   # nothing to find: background
    elif inside.size > 0:
        iou, argmax, best = match_boxes(anchors[inside], gt_boxes)   # (n_in, K)
        matched_gt[inside], max_iou[inside] = argmax, best
        # 2.-3. Thresholds on each anchor's best IoU.
        code = xp.where(best < config.negative_iou, int(Reason.NEGATIVE),
                        int(Reason.IGNORED_BETWEEN_THRESHOLDS))
        code = xp.where(best >= config.positive_iou,
                        int(Reason.POSITIVE_BY_THRESHOLD), code).astype(xp.int8)
        # 4. Each GT's best anchors, all ties, where that IoU is > 0.
        gt_max = iou.max(axis=0)                          # (K,)
        is_best = (iou == gt_max[None, :]) & (gt_max[None, :] > 0)
        rule_a = xp.flatnonzero(is_best.any(axis=1))
        best_anchor_of[inside[rule_a]] = is_best[rule_a].argmax(axis=1)
        code[rule_a] = xp.where(code[rule_a] == int(Reason.POSITIVE_BY_THRESHOLD),
                                code[rule_a], int(Reason.POSITIVE_AS_BEST_ANCHOR))
        reason[inside] = code
    labels = xp.asarray(_LABEL_OF_REASON)[reason]
    reason_before_sampling = reason.copy()

    # 5. Subsample positives, then negatives.
    sampling = _sample(labels, reason, config, rng)

    bbox_targets = xp.zeros((n, 4), dtype=anchors.dtype)
    pos = xp.flatnonzero(labels == 1)
    if pos.size > 0:
        bbox_targets[pos] = encode_boxes(anchors[pos], gt_boxes[matched_gt[pos]])
    return AnchorLabels(labels, matched_gt, max_iou, bbox_targets, reason,
                        reason_before_sampling, best_anchor_of, anchors,
                        gt_boxes, (height, width), config, sampling)


def _sample(labels, reason, config, rng):
    """Rule 5 in place: the balanced mini-batch; the others become -1."""
    xp = get_array_module(labels)
    positive = xp.flatnonzero(labels == 1)
    negative = xp.flatnonzero(labels == 0)
    if config.batch_size is None:
        return SamplingStats(positive.size, None, positive.size,
                             negative.size, None, negative.size)
    kept_pos, kept_neg, _ = sample_balanced(
        positive, negative, config.batch_size, config.max_positives, rng)
    candidates = labels >= 0
    labels[positive], labels[negative] = -1, -1
    labels[kept_pos], labels[kept_neg] = 1, 0
    reason[candidates & (labels == -1)] = int(Reason.DROPPED_BY_SAMPLING)
    return SamplingStats(int(positive.size), config.max_positives,
                         int(kept_pos.size), int(negative.size),
                         config.batch_size - int(kept_pos.size), int(kept_neg.size))


def _settings(positive_iou, negative_iou, batch_size, positive_fraction,
              allowed_border, image_size):
    """Checked settings (an :class:`AnchorTargetConfig`) and image size."""
    positive_iou, negative_iou = check_iou_thresholds(positive_iou, negative_iou)
    if batch_size is not None:
        batch_size = check_positive_int(batch_size, "batch_size")
    if allowed_border != math.inf:   # inf keeps every anchor
        allowed_border = check_non_negative_number(
            allowed_border, "allowed_border (or inf, to keep every anchor)")
    config = AnchorTargetConfig(
        positive_iou, negative_iou, batch_size,
        check_probability(positive_fraction, "positive_fraction"), float(allowed_border))
    return config, check_image_size(image_size)
