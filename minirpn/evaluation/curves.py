"""Precision/recall curves and the three ways of turning one into an AP.

Shapes: D detections of one class (ignored ones already removed), in
descending score order.
"""
import numpy

from .matching import FALSE_POSITIVE, IGNORED, TRUE_POSITIVE

__all__ = ["pr_curve", "ap_voc07", "ap_area", "ap_coco101",
           "VOC07_RECALL_POINTS", "COCO_RECALL_POINTS", "AP_FUNCTIONS"]

#: 0, 0.1, ..., 1 correctly rounded. py-faster-rcnn's np.arange(0, 1.1, 0.1)
#: holds 0.30000000000000004, 0.6000000000000001 and 0.7000000000000001, so
#: a recall of exactly 3/10 "misses" the 0.3 point there; with i / 10 the
#: test recall >= t agrees with exact rational arithmetic.
VOC07_RECALL_POINTS = numpy.arange(11) / 10.0

#: COCOeval's ``recThrs``: np.linspace(.0, 1.00, 101), values taken as is.
COCO_RECALL_POINTS = numpy.linspace(0.0, 1.0, 101)


def pr_curve(states, num_positives):
    """The raw (not yet interpolated) precision/recall curve.

    Parameters
    ----------
    states : ndarray, (N,) int8
        TRUE_POSITIVE / FALSE_POSITIVE / IGNORED per detection, in
        descending score order.
    num_positives : int
        Non-difficult ground truths of the class, > 0.

    Returns
    -------
    recall, precision : ndarray, (D,) float64 each
        After the k-th kept detection: TP_k / num_positives and
        TP_k / (TP_k + FP_k). Ignored detections are dropped: they change
        neither count, so keeping them would only repeat a point (or, as
        the first detections, give 0/0: py-faster-rcnn's voc07 AP turns
        that NaN into a NaN AP; MATLAB's ``max`` skips it, as we do).
    """
    kept = states[states != IGNORED]
    tp = numpy.cumsum(kept == TRUE_POSITIVE, dtype=numpy.float64)
    fp = numpy.cumsum(kept == FALSE_POSITIVE, dtype=numpy.float64)
    # tp + fp = k >= 1 for every kept detection: no 0/0. (COCOeval adds
    # np.spacing(1) to the denominator instead; that moves precision by
    # at most 2.2e-16 relative.)
    return tp / float(num_positives), tp / (tp + fp)


def _envelope(precision):
    """Precision made non-increasing: p(r) = max precision at recall >= r."""
    return numpy.maximum.accumulate(precision[::-1])[::-1]


def ap_voc07(recall, precision):
    """VOC2007 11-point interpolated AP.

    AP = sum over t in {0, 0.1, ..., 1} of max(precision[recall >= t]) / 11,
    a point that no recall reaches counting 0 (``VOCevaldet.m``).

    Parameters
    ----------
    recall, precision : ndarray, (D,) float64

    Returns
    -------
    float
    """
    points = [precision[recall >= t].max() if (recall >= t).any() else 0.0
              for t in VOC07_RECALL_POINTS]
    # sum, then divide once: the devkit's ap = ap + p/11 gives
    # 1.0000000000000002 for a perfect detector
    return float(numpy.sum(points)) / 11


def ap_area(recall, precision):
    """All-point interpolated AP (VOC2010+, voc_eval ``use_07_metric=False``).

    The area under the precision envelope: sentinels (0, 0) before and
    (1, 0) after the curve, the envelope, then the sum of
    (recall step) * (envelope after the step) over points where recall
    changes.

    Parameters
    ----------
    recall, precision : ndarray, (D,) float64

    Returns
    -------
    float
    """
    mrec = numpy.concatenate(([0.0], recall, [1.0]))
    mpre = _envelope(numpy.concatenate(([0.0], precision, [0.0])))
    steps = numpy.flatnonzero(mrec[1:] != mrec[:-1])
    return float(numpy.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def ap_coco101(recall, precision):
    """COCO's 101-point interpolated AP (``COCOeval.accumulate``).

    For each r in :data:`COCO_RECALL_POINTS` the envelope's value at the
    first detection with recall >= r (``np.searchsorted(rc, recThrs,
    side='left')``); points beyond the curve's last recall count 0. AP is
    the mean of the 101 values.

    Parameters
    ----------
    recall, precision : ndarray, (D,) float64

    Returns
    -------
    float
    """
    envelope = _envelope(precision)
    index = numpy.searchsorted(recall, COCO_RECALL_POINTS, side="left")
    reached = index < len(recall)
    values = numpy.zeros(len(COCO_RECALL_POINTS))
    values[reached] = envelope[index[reached]]
    return float(numpy.mean(values))


AP_FUNCTIONS = {"voc07": ap_voc07, "area": ap_area, "coco101": ap_coco101}
