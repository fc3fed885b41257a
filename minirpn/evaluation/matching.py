"""Matching detections to ground truths within one image and one class.

Both matchers walk the detections in descending score order and label each
one TRUE_POSITIVE, FALSE_POSITIVE or IGNORED (neither: it found a
``difficult`` ground truth). They differ in which ground truth a detection
may take:

* VOC devkit (``VOCevaldet.m``), used by "voc07" and "area": the detection
  looks only at the ground truth of *highest* IoU among all of them
  (matched or not, difficult or not; ties go to the first). It is a TP if
  that IoU >= threshold and the ground truth is free; a duplicate (FP) if
  the ground truth was taken; ignored if it is difficult.
* COCOeval (``evaluateImg``), used by "coco101": the detection takes the
  *best free* regular ground truth with IoU >= threshold (ties go to the
  last, as COCOeval's ``>=`` comparison replaces the running best); only if
  there is none does it look at the ignored (``difficult``) ones, which
  play COCO's ``iscrowd`` role: they are never used up, and the detection
  matched to one is ignored.
"""
import numpy

from ..ops import box_iou

__all__ = ["TRUE_POSITIVE", "FALSE_POSITIVE", "IGNORED", "overlaps",
           "match_voc", "match_coco", "COCO_MAX_IOU"]

TRUE_POSITIVE, FALSE_POSITIVE, IGNORED = 1, 0, -1

#: COCOeval caps a threshold at 1 - 1e-10 (``iou = min([t, 1-1e-10])``) so
#: that t = 1 still matches boxes whose IoU rounds to just below 1.
COCO_MAX_IOU = 1.0 - 1e-10


def _intersection(a, b):
    """(N, M) intersection areas of boxes a (N, 4) and b (M, 4)."""
    lt = numpy.maximum(a[:, None, :2], b[None, :, :2])
    rb = numpy.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = numpy.maximum(rb - lt, 0.0)
    return wh[..., 0] * wh[..., 1]


def overlaps(det_boxes, gt_boxes, crowd):
    """Overlap of each detection with each ground truth.

    Shapes: K detections, G ground truths.

    Parameters
    ----------
    det_boxes : ndarray, (K, 4) float64
    gt_boxes : ndarray, (G, 4) float64
    crowd : ndarray, (G,) bool
        Ground truths whose overlap is measured COCO's crowd way.

    Returns
    -------
    ndarray, (K, G) float64
        IoU (continuous coordinates, no +1), except in the ``crowd``
        columns: intersection / detection area, as pycocotools' ``bbIou``
        does for ``iscrowd`` ground truths (a detection inside a crowd
        region overlaps it fully). 0 where the detection has zero area.
    """
    iou = box_iou(det_boxes, gt_boxes)
    if crowd.any():
        inter = _intersection(det_boxes, gt_boxes[crowd])
        area = (det_boxes[:, 2] - det_boxes[:, 0]) \
            * (det_boxes[:, 3] - det_boxes[:, 1])
        safe = numpy.where(area > 0, area, 1.0)[:, None]
        iou[:, crowd] = numpy.where(area[:, None] > 0, inter / safe, 0.0)
    return iou


def match_voc(iou, difficult, threshold):
    """Label detections the VOC devkit way.

    Shapes: K detections (rows, in descending score order), G ground truths.

    Parameters
    ----------
    iou : ndarray, (K, G) float64
    difficult : ndarray, (G,) bool
    threshold : float
        A match needs IoU >= threshold (``VOCevaldet.m``:
        ``ovmax>=VOCopts.minoverlap``; py-faster-rcnn's ``voc_eval.py``
        port writes ``ovmax > ovthresh``, which differs only at equality).

    Returns
    -------
    ndarray, (K,) int8
        TRUE_POSITIVE, FALSE_POSITIVE or IGNORED per detection.
    """
    num_dets, num_gts = iou.shape
    states = numpy.full(num_dets, FALSE_POSITIVE, dtype=numpy.int8)
    if num_gts == 0:
        return states
    taken = numpy.zeros(num_gts, dtype=bool)
    for d in range(num_dets):
        # 1. the ground truth of highest IoU, first on ties (argmax)
        j = int(numpy.argmax(iou[d]))
        if iou[d, j] < threshold:
            continue                      # FP: nothing overlaps enough
        # 2. difficult: neither TP nor FP, and never marked as taken
        if difficult[j]:
            states[d] = IGNORED
        # 3. a second detection of a taken object is a duplicate: FP
        elif not taken[j]:
            states[d] = TRUE_POSITIVE
            taken[j] = True
    return states


def _best_last(values, allowed):
    """Index of the largest allowed value, the last one on ties; or -1."""
    if not allowed.any():
        return -1
    masked = numpy.where(allowed, values, -numpy.inf)
    return len(masked) - 1 - int(numpy.argmax(masked[::-1]))


def match_coco(iou, ignore, threshold):
    """Label detections the COCOeval way (one IoU threshold).

    Shapes: K detections (rows, in descending score order, already cut to
    COCOeval's per-image, per-class maxDets), G ground truths.

    Parameters
    ----------
    iou : ndarray, (K, G) float64
        From :func:`overlaps` with ``crowd=ignore``.
    ignore : ndarray, (G,) bool
        Ignored (``difficult`` / crowd) ground truths.
    threshold : float
        A match needs IoU >= min(threshold, 1 - 1e-10) (COCOeval skips a
        ground truth when ``ious[d, g] < iou``).

    Returns
    -------
    ndarray, (K,) int8
        TRUE_POSITIVE, FALSE_POSITIVE or IGNORED per detection.
    """
    num_dets, num_gts = iou.shape
    threshold = min(threshold, COCO_MAX_IOU)
    states = numpy.full(num_dets, FALSE_POSITIVE, dtype=numpy.int8)
    taken = numpy.zeros(num_gts, dtype=bool)
    for d in range(num_dets):
        close = iou[d] >= threshold
        # 1. regular ground truths first (COCOeval sorts ignored ones last
        #    and stops at them once it holds a regular match)
        j = _best_last(iou[d], close & ~ignore & ~taken)
        if j >= 0:
            states[d] = TRUE_POSITIVE
            taken[j] = True
            continue
        # 2. else an ignored (crowd) one: reusable, detection ignored
        if _best_last(iou[d], close & ignore) >= 0:
            states[d] = IGNORED
    return states
