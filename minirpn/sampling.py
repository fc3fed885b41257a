"""Matching to ground truth and balanced sampling, shared by both target layers.

The RPN's anchor targets (Ren et al. 2015, section 3.1.2) and the head's
proposal targets (Fast R-CNN, section 2.3) are the same two steps on
different boxes, as in torchvision's ``detection/_utils.py`` (one
``Matcher`` and one ``BalancedPositiveNegativeSampler`` for both heads):

1. **match**: each box (anchor or proposal) takes the GT box it overlaps
   most; its IoU with it decides positive / negative / ignored;
2. **sample**: a mini-batch of ``batch_size`` boxes per image, at most a
   ``positive_fraction`` of them positive, the rest negative, drawn at
   random ("we randomly sample 256 anchors in an image ... where the
   sampled positive and negative anchors have a ratio of up to 1:1",
   section 3.1.3).

Where the two layers differ, the caller decides: :mod:`~minirpn.anchor_targets`
adds the best-anchor rule and rounds the positive quota down;
:mod:`~minirpn.proposal_targets` keeps a floor under the negative window,
rounds the quota to nearest and repeats negatives when they are short
(py-faster-rcnn's two layers do exactly this).

The draws run on the host with the caller's ``numpy.random.Generator`` and
pick POSITIONS, which need only a count: the indices stay on their device
(numpy or cupy) and a seed gives the same batch on either backend.
"""
import numpy as np

from .backend import get_array_module
from .ops import box_iou

__all__ = ["match_boxes", "choose", "sample_balanced"]


def match_boxes(boxes, gt_boxes):
    """Match each box to the GT box it overlaps most.

    Shapes: N boxes, K GT boxes (K may be 0).

    Parameters
    ----------
    boxes : (N, 4) float32 or float64
    gt_boxes : (K, 4) float, same dtype

    Returns
    -------
    iou : (N, K) float
        Every pairwise IoU.
    matched : (N,) int64
        Index of each box's highest-IoU GT box (the first one on ties; 0 for
        a box that overlaps no GT); -1 for every box when K == 0.
    max_iou : (N,) float
        That IoU; 0 when K == 0.
    """
    xp = get_array_module(boxes, gt_boxes)
    n, k = boxes.shape[0], gt_boxes.shape[0]
    if k == 0:
        return (xp.zeros((n, 0), dtype=boxes.dtype),
                xp.full(n, -1, dtype=np.int64), xp.zeros(n, dtype=boxes.dtype))
    iou = box_iou(boxes, gt_boxes)
    matched = iou.argmax(axis=1).astype(np.int64)
    return iou, matched, iou[xp.arange(n), matched]


def choose(indices, n, rng):
    """``n`` of ``indices`` drawn at random without replacement.

    All of them, in their order and without touching ``rng``, when
    ``n >= len(indices)``.

    Parameters
    ----------
    indices : (M,) int64, numpy or cupy
    n : int
    rng : numpy.random.Generator

    Returns
    -------
    (min(n, M),) int64, on the device of ``indices``
    """
    if n >= indices.shape[0]:
        return indices
    xp = get_array_module(indices)
    picked = rng.choice(indices.shape[0], size=n, replace=False)
    return indices[xp.asarray(picked)]


def sample_balanced(positive, negative, batch_size, max_positive, rng,
                    repeat_negatives=False):
    """The balanced positive/negative mini-batch of one image.

    At most ``max_positive`` positives, then negatives up to ``batch_size``
    in all. With ``repeat_negatives`` a shortfall of negatives is filled by
    drawing the distinct ones again, WITH replacement (every distinct
    negative is used once first); otherwise the batch is returned short.

    Parameters
    ----------
    positive, negative : (P,) and (M,) int64
        Indices of the positive and negative candidates.
    batch_size : int
    max_positive : int
        The positive quota (how it is rounded is the caller's rule).
    rng : numpy.random.Generator
    repeat_negatives : bool

    Returns
    -------
    positive : (P',) int64
        The positives kept, P' = min(P, max_positive).
    negative : (M',) int64
        The negatives kept: the distinct ones first, then the repeats.
    num_negative_unique : int
        Distinct negatives among them.
    """
    positive = choose(positive, max_positive, rng)
    want = batch_size - positive.shape[0]
    distinct = choose(negative, want, rng)
    short = want - distinct.shape[0]
    if not repeat_negatives or short == 0 or distinct.shape[0] == 0:
        return positive, distinct, int(distinct.shape[0])
    xp = get_array_module(negative)
    repeats = rng.choice(distinct.shape[0], size=short, replace=True)
    return (positive, xp.concatenate([distinct, distinct[xp.asarray(repeats)]]),
            int(distinct.shape[0]))
