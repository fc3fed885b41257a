"""The proposal target layer: sample RoIs and build the detection head's targets.

Fast R-CNN section 2.3; py-faster-rcnn's ``lib/rpn/proposal_target_layer.py``.
From the proposals (and the ground truth appended to them) a fixed-size batch
of RoIs is drawn: foreground where the best IoU with a GT box is at least
``fg_iou`` (at most ``round(batch_size * positive_fraction)`` of them),
background where it lies in ``[lo, hi)``. Each foreground RoI gets the
regression target towards its GT box, written into the four columns of its
class (py-faster-rcnn's ``_get_bbox_regression_labels``),
and an inside-weight mask that is 1 only there (``bbox_inside_weights``).

Choices (documented here because several implementations differ):

- Foreground quota: ``int(np.round(batch_size * positive_fraction))`` as in
  py-faster-rcnn, so halves round to even (10 * 0.25 = 2.5 -> 2).
- Background shortfall (too few background RoIs to fill the batch):
  every distinct background RoI is used once, and only the shortfall is drawn
  WITH replacement. tf-faster-rcnn redraws the whole set with replacement,
  which can leave some backgrounds out while repeating others.
- Empty window: ``lo`` (0.1) is a heuristic for hard-negative mining (Fast
  R-CNN, section 2.3), not a rule that easy negatives are wrong. When no
  candidate lies in ``[lo, hi)`` -- always the case for an image without GT,
  where every IoU is 0 -- the window widens to ``[0, hi)`` (torchvision's
  rule) and ``fallback`` is set, so a step-through shows it happened.
- No background even then (every candidate overlaps GT by >= hi): the batch
  is NOT padded with repeated foregrounds, which would break the foreground
  quota; it is returned short (R = number of foregrounds < batch_size).
  Losses must normalise by R, never by ``batch_size``. With no proposals and
  no GT, R = 0.
- Targets: ``encode_boxes(roi, gt, weights=1/box_stds)``, which equals
  py-faster-rcnn's division by ``BBOX_NORMALIZE_STDS`` (means are zero). The
  head's output is decoded with the same weights, see
  :func:`stds_to_weights`. Columns ``4c:4c+4`` belong to class c; class 0
  (background) columns are always zero.
- Sampling is done on the host with the caller's numpy Generator, so a seed
  gives the same batch on either backend.
"""
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from .backend import get_array_module
from .checks import (check_array, check_float_array, check_probability,
                     check_same_dtype, deferrable, first_bad_row)
from .ops import box_iou, check_boxes, encode_boxes

__all__ = ["sample_proposals", "ProposalTargets", "stds_to_weights"]


@dataclass
class ProposalTargets:
    """A sampled RoI batch and its targets.

    Shape symbols: R sampled RoIs (``batch_size`` unless the candidates ran
    out, see the module notes), C classes without background, N proposals.
    Rows are foregrounds first, then distinct backgrounds, then repeats.

    Attributes
    ----------
    rois : (R, 4) float, dtype of the proposals
    labels : (R,) int64
        Class in 1..C for foreground, 0 for background.
    matched_gt : (R,) int64
        Index of the GT box with the highest IoU (for background rows: the
        nearest GT, for display only); -1 when the image has no GT.
    max_iou : (R,) float
        That highest IoU (0 when there is no GT).
    source : (R,) int64
        Row of each RoI in the candidate list ``proposals`` followed by
        ``gt_boxes``; rows >= N are GT boxes.
    is_gt : (R,) bool
        ``source >= N``: the RoI is an appended GT box.
    bbox_targets : (R, 4 * (C + 1)) float
        Normalised deltas in the true class's four columns of foreground
        rows, zero elsewhere.
    bbox_weights : (R, 4 * (C + 1)) float
        1 exactly where ``bbox_targets`` holds a target, else 0.
    num_fg : int
        Foreground rows (the first ``num_fg``).
    num_bg_unique : int
        Distinct background rows; the remaining ``R - num_fg -
        num_bg_unique`` rows repeat them.
    fallback : bool
        True when the ``[lo, hi)`` background window was empty and widened
        to ``[0, hi)``.
    """
    rois: object
    labels: object
    matched_gt: object
    max_iou: object
    source: object
    is_gt: object
    bbox_targets: object
    bbox_weights: object
    num_fg: int
    num_bg_unique: int
    fallback: bool

    @property
    def num_bg(self):
        """Background rows, repeats included."""
        return int(self.labels.shape[0]) - self.num_fg


def stds_to_weights(box_stds):
    """Encoding weights equivalent to dividing deltas by ``box_stds``.

    ``encode_boxes(..., weights=w)`` multiplies each delta by ``w``, so
    normalising by the stds is ``w = 1 / std``; decoding the head's output
    with the same ``w`` inverts it.
    """
    return tuple(1.0 / float(s) for s in box_stds)


def sample_proposals(proposals, gt_boxes, gt_labels, num_classes, *,
                     batch_size=128, positive_fraction=0.25, fg_iou=0.5,
                     bg_iou=(0.1, 0.5), box_stds=(0.1, 0.1, 0.2, 0.2),
                     rng=None):
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
        Most foreground is ``round(batch_size * positive_fraction)``.
    fg_iou : float in [0, 1]
        Foreground when max IoU >= fg_iou.
    bg_iou : (float, float)
        (lo, hi): background when lo <= max IoU < hi; lo <= hi <= fg_iou.
    box_stds : 4 positive floats
        Standard deviations the deltas are divided by.
    rng : numpy.random.Generator, optional
        The only source of randomness; a fresh one when None.

    Returns
    -------
    ProposalTargets
    """
    xp = get_array_module(proposals, gt_boxes)
    lo, hi, weights = _check(proposals, gt_boxes, gt_labels, num_classes,
                             batch_size, positive_fraction, fg_iou, bg_iou,
                             box_stds, rng)
    rng = np.random.default_rng() if rng is None else rng
    # Labels often stay host-side (dataset targets) while boxes are on the
    # device: move them to the boxes' module so they can be indexed there.
    gt_labels = xp.asarray(gt_labels)
    num_gt = gt_boxes.shape[0]

    # 1. Append the GT boxes to the candidates (py-faster-rcnn):
    # early in training the proposals are poor, and this guarantees
    # foreground RoIs with exact targets.
    candidates = xp.concatenate([proposals, gt_boxes], axis=0)

    # 2. Match each candidate to the GT box it overlaps most.
    if num_gt > 0:
        iou = box_iou(candidates, gt_boxes)
        matched = xp.argmax(iou, axis=1).astype(np.int64)
        max_iou = xp.max(iou, axis=1)
    else:
        matched = xp.full(candidates.shape[0], -1, dtype=np.int64)
        max_iou = xp.zeros(candidates.shape[0], dtype=proposals.dtype)

    # 3. Label by IoU (Fast R-CNN section 2.3: foreground at 0.5 and above,
    # background in [0.1, 0.5)); widen an empty background window (module notes).
    fg = xp.flatnonzero(max_iou >= fg_iou)
    in_window = (max_iou >= lo) & (max_iou < hi)
    fallback = lo > 0 and not bool(in_window.any())
    bg = xp.flatnonzero(max_iou < hi if fallback else in_window)

    # 4. At most round(batch_size * positive_fraction) foregrounds.
    quota = int(np.round(batch_size * positive_fraction))
    fg = _choose(fg, min(quota, fg.shape[0]), rng, xp)

    # 5. Fill the rest with background, repeating some when short.
    bg, num_bg_unique = _fill(bg, batch_size - fg.shape[0], rng, xp)

    # 6. Gather the batch; labels come from the matched GT box.
    keep = xp.concatenate([fg, bg])
    num_fg = int(fg.shape[0])
    labels = xp.zeros(keep.shape[0], dtype=np.int64)
    if num_fg:
        labels[:num_fg] = gt_labels[matched[fg]].astype(np.int64)
    rois = candidates[keep]

    # 7. Class-specific targets and the inside-weight mask.
    targets, mask = _class_targets(rois, gt_boxes, matched[keep], labels,
                                   num_fg, num_classes, weights, xp)
    return ProposalTargets(
        rois=rois, labels=labels, matched_gt=matched[keep],
        max_iou=max_iou[keep], source=keep.astype(np.int64),
        is_gt=keep >= proposals.shape[0], bbox_targets=targets,
        bbox_weights=mask, num_fg=num_fg, num_bg_unique=num_bg_unique,
        fallback=fallback)


def _choose(indices, n, rng, xp):
    """n of ``indices`` at random without replacement (host-side rng).

    The rng draws positions into ``indices`` (it needs only their count), so
    the indices stay on their device and only the positions travel there;
    the same draws as ``rng.choice(indices, ...)``, which takes positions
    too."""
    picked = rng.choice(indices.shape[0], size=n, replace=False)
    return indices[xp.asarray(picked)].astype(np.int64)


def _fill(bg, n, rng, xp):
    """n background indices: distinct ones first, then the shortfall drawn
    with replacement. Returns (indices, number of distinct ones)."""
    available = bg.shape[0]
    if available == 0 or n == 0:
        return xp.zeros(0, dtype=np.int64), 0
    if available >= n:
        return _choose(bg, n, rng, xp), n
    # positions again: rng.permutation(k) and rng.choice(k, ...) draw what
    # permutation/choice of the k indices themselves would
    picked = np.concatenate([rng.permutation(available),
                             rng.choice(available, size=n - available,
                                        replace=True)])
    return bg[xp.asarray(picked)].astype(np.int64), int(available)


def _class_targets(rois, gt_boxes, matched, labels, num_fg, num_classes,
                   weights, xp):
    """(R, 4(C+1)) targets and weights; only foreground rows are filled,
    in columns 4 * label .. 4 * label + 3."""
    num = rois.shape[0]
    targets = xp.zeros((num, 4 * (num_classes + 1)), dtype=rois.dtype)
    mask = xp.zeros_like(targets)
    if num_fg == 0:
        return targets, mask
    deltas = encode_boxes(rois[:num_fg], gt_boxes[matched[:num_fg]],
                          weights=weights)
    rows = xp.arange(num_fg)[:, None]
    cols = 4 * labels[:num_fg, None] + xp.arange(4)[None, :]
    targets[rows, cols] = deltas
    mask[rows, cols] = 1
    return targets, mask


@deferrable
def _check(proposals, gt_boxes, gt_labels, num_classes, batch_size,
           positive_fraction, fg_iou, bg_iou, box_stds, rng):
    """Validate the arguments; return (lo, hi, encoding weights)."""
    check_float_array(proposals, "proposals", shape=(None, 4))
    check_float_array(gt_boxes, "gt_boxes", shape=(None, 4))
    check_same_dtype("proposals", proposals, gt_boxes=gt_boxes)
    check_array(gt_labels, "gt_labels", ndim=1)
    if gt_labels.shape[0] != gt_boxes.shape[0]:
        raise ValueError(
            f"gt_labels must have one entry per GT box: gt_boxes has "
            f"{gt_boxes.shape[0]} rows, gt_labels has {gt_labels.shape[0]}")
    if gt_labels.dtype.kind not in "iu":
        raise TypeError(f"gt_labels must be an integer array, "
                        f"got dtype {gt_labels.dtype}")
    for name, value in (("num_classes", num_classes),
                        ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, Integral) \
                or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    check_boxes(proposals, "proposals")
    check_boxes(gt_boxes, "gt_boxes")
    flat = (gt_boxes[:, 2] <= gt_boxes[:, 0]) | (gt_boxes[:, 3] <= gt_boxes[:, 1])
    bad = first_bad_row(flat)
    if bad is not None:
        raise ValueError(f"gt_boxes must have positive area, got row {bad} "
                         f"= {gt_boxes[bad].tolist()}")
    bad = first_bad_row((gt_labels < 1) | (gt_labels > num_classes))
    if bad is not None:
        raise ValueError(
            f"gt_labels must lie in 1..{num_classes} (0 is background), "
            f"got {int(gt_labels[bad])} at row {bad}")
    check_probability(positive_fraction, "positive_fraction")
    fg_iou = check_probability(fg_iou, "fg_iou")
    if not isinstance(bg_iou, (tuple, list)) or len(bg_iou) != 2:
        raise ValueError(f"bg_iou must be a pair (lo, hi), got {bg_iou!r}")
    lo = check_probability(bg_iou[0], "bg_iou[0] (lo)")
    hi = check_probability(bg_iou[1], "bg_iou[1] (hi)")
    if not lo <= hi <= fg_iou:
        # hi > fg_iou would make a RoI both foreground and background.
        raise ValueError(f"bg_iou must satisfy lo <= hi <= fg_iou "
                         f"= {fg_iou}, got {tuple(bg_iou)!r}")
    if len(box_stds) != 4 or not all(
            isinstance(s, Real) and not isinstance(s, bool)
            and np.isfinite(s) and s > 0 for s in box_stds):
        raise ValueError(f"box_stds must be 4 positive finite numbers, "
                         f"got {box_stds!r}")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator or None, "
                        f"got {type(rng).__name__}")
    return lo, hi, stds_to_weights(box_stds)
