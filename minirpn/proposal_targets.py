"""The proposal target layer: sample RoIs and build the detection head's targets.

Fast R-CNN section 2.3; py-faster-rcnn's ``lib/rpn/proposal_target_layer.py``.
From the proposals (and the ground truth appended to them) a fixed-size batch
of RoIs is drawn, with the matcher and the balanced sampler that the anchor
targets use too (:mod:`minirpn.sampling`): positive (foreground, labelled
with its GT box's class) where the best IoU with a GT box is at least
``positive_iou`` (at most ``round(batch_size * positive_fraction)`` of them),
negative (background, label 0) where it lies in
``[negative_iou_floor, negative_iou)``. Each positive RoI gets the
regression target towards its GT box, written into the four columns of its
class (py-faster-rcnn's ``_get_bbox_regression_labels``),
and an inside-weight mask that is 1 only there (``bbox_inside_weights``).

Choices (documented here because several implementations differ):

- Positive quota: ``int(np.round(batch_size * positive_fraction))`` as in
  py-faster-rcnn, so halves round to even (10 * 0.25 = 2.5 -> 2). (The
  anchor targets round down, as py-faster-rcnn's anchor layer does.)
- Negative shortfall (too few negative RoIs to fill the batch): every
  distinct negative is used once, and only the shortfall is drawn WITH
  replacement. tf-faster-rcnn redraws the whole set with replacement, which
  can leave some negatives out while repeating others.
- Empty window: the floor (0.1) is a heuristic for hard-negative mining (Fast
  R-CNN, section 2.3), not a rule that easy negatives are wrong. When no
  candidate lies in ``[floor, negative_iou)`` -- always the case for an
  image without GT, where every IoU is 0 -- the window widens to
  ``[0, negative_iou)`` (torchvision's rule) and ``fallback`` is set, so a
  step-through shows it happened.
- No negative even then (every candidate overlaps GT by >= negative_iou):
  the batch is NOT padded with repeated positives, which would break the
  positive quota; it is returned short (R = number of positives < batch_size).
  Losses must normalise by R, never by ``batch_size``. With no proposals and
  no GT, R = 0.
- Targets: ``encode_boxes(roi, gt, weights=1/box_stds)``, which equals
  py-faster-rcnn's division by ``BBOX_NORMALIZE_STDS`` (means are zero). The
  head's output is decoded with the same weights, see
  :func:`minirpn.ops.stds_to_weights`. Columns ``4c:4c+4`` belong to class c; class 0
  (background) columns are always zero.
- Sampling is done on the host with the caller's numpy Generator, so a seed
  gives the same batch on either backend.
"""
from dataclasses import dataclass

import numpy as np

from .backend import get_array_module
from .checks import (check_class_labels, check_iou_thresholds, check_positive_int,
                     check_positive_number, check_probability, check_rng,
                     check_same_dtype)
from .ops import check_boxes, check_positive_area, encode_boxes, stds_to_weights
from .sampling import match_boxes, sample_balanced

__all__ = ["sample_proposals", "ProposalTargets"]


@dataclass
class ProposalTargets:
    """A sampled RoI batch and its targets.

    Shape symbols: R sampled RoIs (``batch_size`` unless the candidates ran
    out, see the module notes), C classes without background, N proposals.
    Rows are positives first, then distinct negatives, then repeats.

    Attributes
    ----------
    rois : (R, 4) float, dtype of the proposals
    labels : (R,) int64
        Class in 1..C for a positive RoI, 0 (background) for a negative.
    matched_gt : (R,) int64
        Index of the GT box with the highest IoU (for negative rows: the
        nearest GT, for display only); -1 when the image has no GT.
    max_iou : (R,) float
        That highest IoU (0 when there is no GT).
    source : (R,) int64
        Row of each RoI in the candidate list ``proposals`` followed by
        ``gt_boxes``; rows >= N are GT boxes.
    is_gt : (R,) bool
        ``source >= N``: the RoI is an appended GT box.
    bbox_targets : (R, 4 * (C + 1)) float
        Normalised deltas in the true class's four columns of positive
        rows, zero elsewhere.
    bbox_weights : (R, 4 * (C + 1)) float
        1 exactly where ``bbox_targets`` holds a target, else 0.
    num_positive : int
        Positive rows (the first ``num_positive``).
    num_negative_unique : int
        Distinct negative rows; the remaining ``R - num_positive -
        num_negative_unique`` rows repeat them.
    fallback : bool
        True when the ``[negative_iou_floor, negative_iou)`` window was
        empty and widened to ``[0, negative_iou)``.
    """
    rois: object
    labels: object
    matched_gt: object
    max_iou: object
    source: object
    is_gt: object
    bbox_targets: object
    bbox_weights: object
    num_positive: int
    num_negative_unique: int
    fallback: bool

    @property
    def num_negative(self):
        """Negative rows, repeats included."""
        return int(self.labels.shape[0]) - self.num_positive


def sample_proposals(proposals, gt_boxes, gt_labels, num_classes, *,
                     batch_size=128, positive_fraction=0.25, positive_iou=0.5,
                     negative_iou=0.5, negative_iou_floor=0.1,
                     box_stds=(0.1, 0.1, 0.2, 0.2), rng=None):
    """Sample RoIs from the proposals and build their class-specific targets.

    Shape symbols: N proposals, K GT boxes, C classes (background excluded),
    R sampled RoIs.

    Parameters
    ----------
    proposals : (N, 4) float32 or float64
        Proposal boxes (x1, y1, x2, y2), e.g. ``Proposals.boxes``.
    gt_boxes : (K, 4) float, same dtype
        Ground-truth boxes, each of positive area. K may be 0.
    gt_labels : (K,) integer
        Their classes, in 1..C; a numpy array is accepted with cupy boxes.
    num_classes : int
        C, the number of object classes (background not counted).
    batch_size : int
        RoIs per image (py-faster-rcnn ``TRAIN.BATCH_SIZE``).
    positive_fraction : float in [0, 1]
        Most positives: ``round(batch_size * positive_fraction)``
        (``TRAIN.FG_FRACTION``).
    positive_iou : float in [0, 1]
        Positive when max IoU >= positive_iou (``TRAIN.FG_THRESH``).
    negative_iou, negative_iou_floor : float in [0, 1]
        Negative when negative_iou_floor <= max IoU < negative_iou
        (``TRAIN.BG_THRESH_LO``, ``TRAIN.BG_THRESH_HI``); floor <=
        negative_iou <= positive_iou.
    box_stds : 4 positive floats
        Standard deviations the deltas are divided by.
    rng : numpy.random.Generator, optional
        The only source of randomness; a fresh one when None.

    Returns
    -------
    ProposalTargets
    """
    xp = get_array_module(proposals, gt_boxes)
    positive_iou, negative_iou, floor = check_iou_thresholds(
        positive_iou, negative_iou, negative_iou_floor)
    weights = _check(proposals, gt_boxes, gt_labels, num_classes, batch_size,
                     positive_fraction, box_stds)
    rng = check_rng(rng)
    # Labels often stay host-side (dataset targets) while boxes are on the
    # device: move them to the boxes' module so they can be indexed there.
    gt_labels = xp.asarray(gt_labels)

    # 1. Append the GT boxes to the candidates (py-faster-rcnn):
    # early in training the proposals are poor, and this guarantees
    # positive RoIs with exact targets.
    candidates = xp.concatenate([proposals, gt_boxes], axis=0)

    # 2. Match each candidate to the GT box it overlaps most.
    _, matched, max_iou = match_boxes(candidates, gt_boxes)

    # 3. Label by IoU (Fast R-CNN section 2.3: foreground at 0.5 and above,
    # background in [0.1, 0.5)); widen an empty negative window (module notes).
    positive = xp.flatnonzero(max_iou >= positive_iou)
    negative = xp.flatnonzero((max_iou >= floor) & (max_iou < negative_iou))
    fallback = floor > 0 and negative.shape[0] == 0
    if fallback:
        negative = xp.flatnonzero(max_iou < negative_iou)

    # 4.-5. At most round(batch_size * positive_fraction) positives, then
    # negatives up to batch_size, repeating some when they are short.
    quota = int(np.round(batch_size * positive_fraction))
    positive, negative, num_negative_unique = sample_balanced(
        positive, negative, batch_size, quota, rng, repeat_negatives=True)

    # 6. Gather the batch; a positive's label is its matched GT's class.
    keep = xp.concatenate([positive, negative]).astype(np.int64)
    num_positive = int(positive.shape[0])
    labels = xp.zeros(keep.shape[0], dtype=np.int64)
    labels[:num_positive] = gt_labels[matched[positive]].astype(np.int64)
    rois = candidates[keep]

    # 7. Class-specific targets and the inside-weight mask.
    targets, mask = _class_targets(rois, gt_boxes, matched[keep], labels,
                                   num_positive, num_classes, weights, xp)
    return ProposalTargets(
        rois=rois, labels=labels, matched_gt=matched[keep],
        max_iou=max_iou[keep], source=keep, is_gt=keep >= proposals.shape[0],
        bbox_targets=targets, bbox_weights=mask, num_positive=num_positive,
        num_negative_unique=num_negative_unique, fallback=fallback)


def _class_targets(rois, gt_boxes, matched, labels, num_positive, num_classes,
                   weights, xp):
    """(R, 4(C+1)) targets and weights; only positive rows are filled,
    in columns 4 * label .. 4 * label + 3."""
    num = rois.shape[0]
    targets = xp.zeros((num, 4 * (num_classes + 1)), dtype=rois.dtype)
    mask = xp.zeros_like(targets)
    if num_positive == 0:
        return targets, mask
    deltas = encode_boxes(rois[:num_positive], gt_boxes[matched[:num_positive]],
                          weights=weights)
    rows = xp.arange(num_positive)[:, None]
    cols = 4 * labels[:num_positive, None] + xp.arange(4)[None, :]
    targets[rows, cols] = deltas
    mask[rows, cols] = 1
    return targets, mask


def _check(proposals, gt_boxes, gt_labels, num_classes, batch_size,
           positive_fraction, box_stds):
    """Validate the arguments; return the encoding weights (1 / box_stds)."""
    check_boxes(proposals, "proposals")
    check_boxes(gt_boxes, "gt_boxes")
    check_same_dtype("proposals", proposals, gt_boxes=gt_boxes)
    check_positive_area(gt_boxes, "gt_boxes")
    num_classes = check_positive_int(num_classes, "num_classes")
    check_class_labels(gt_labels, "gt_labels", num_classes, gt_boxes.shape[0])
    check_positive_int(batch_size, "batch_size")
    check_probability(positive_fraction, "positive_fraction")
    if not hasattr(box_stds, "__len__") or len(box_stds) != 4:
        raise ValueError(f"box_stds must be 4 positive finite numbers, got {box_stds!r}")
    for i, std in enumerate(box_stds):
        check_positive_number(std, f"box_stds[{i}]")
    return stds_to_weights(box_stds)
