"""The plain reference versions of IoU and greedy NMS: read these first.

One pair of boxes at a time, in plain Python loops, each step a line of
maths, in the dtype of the boxes. They are the definitions that the fast
versions, :func:`minirpn.ops.box_iou` (a vectorised numba kernel) and
:func:`minirpn.ops.nms` (a numba kernel that compacts the suppressed boxes
away), are tested to match (``tests/test_ops_boxes.py``,
``tests/test_ops_nms.py``), in the spirit of CS231n's ``layers.py`` beside
``fast_layers.py``. They are slow: use them to read, step through or check.

Boxes are float (x1, y1, x2, y2) in continuous coordinates: width = x2 - x1,
with no +1 (torchvision's convention; py-faster-rcnn's pixel-inclusive boxes
add 1).
"""
import numpy

from ..checks import check_float_array, check_probability, check_same_dtype
from .boxes import check_boxes

__all__ = ["pair_iou_reference", "box_iou_reference", "nms_reference"]


def pair_iou_reference(a, b):
    """IoU of two boxes, as ``torchvision.ops.box_iou`` computes each entry.

    Parameters
    ----------
    a, b : ndarray, (4,) float32 or float64, one dtype
        Boxes (x1, y1, x2, y2) with x2 >= x1 and y2 >= y1.

    Returns
    -------
    numpy scalar of the boxes' dtype
        area(a ∩ b) / area(a ∪ b) in [0, 1]; 0 when the union is empty
        (two zero-area boxes), never 0/0 = NaN.
    """
    zero = a.dtype.type(0)  # a Python 0 would turn float32 maths into float64
    # 1. the intersection is the box between the larger top-left corner and
    #    the smaller bottom-right one; no overlap gives a width or height of 0
    width = max(min(a[2], b[2]) - max(a[0], b[0]), zero)
    height = max(min(a[3], b[3]) - max(a[1], b[1]), zero)
    inter = width * height
    # 2. union = area(a) + area(b) - intersection
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > zero else zero


def box_iou_reference(a, b):
    """Reference IoU of every pair of boxes (slow loops); the definition
    :func:`minirpn.ops.box_iou` matches.

    Shapes: N boxes in ``a``, M boxes in ``b``.

    Parameters
    ----------
    a : ndarray, (N, 4) float32 or float64
        Valid boxes (see :func:`minirpn.ops.check_boxes`); N may be 0.
    b : ndarray, (M, 4), dtype of ``a``
        Valid boxes; M may be 0.

    Returns
    -------
    ndarray, (N, M), dtype of ``a``
        ``iou[i, j] = pair_iou_reference(a[i], b[j])``.
    """
    check_boxes(a, "a")
    check_boxes(b, "b")
    check_same_dtype("a", a, b=b)
    iou = numpy.zeros((a.shape[0], b.shape[0]), a.dtype)
    for i in range(a.shape[0]):
        for j in range(b.shape[0]):
            iou[i, j] = pair_iou_reference(a[i], b[j])
    return iou


def nms_reference(boxes, scores, iou_threshold):
    """Reference greedy non-maximum suppression (slow loops); the definition
    :func:`minirpn.ops.nms` matches.

    The rule of ``torchvision.ops.nms`` and py-faster-rcnn's
    ``lib/nms/py_cpu_nms.py`` (Ren et al. 2015, section 3.3, run it on the
    proposals at IoU 0.7): visit the boxes from the highest score down and
    keep a box unless its IoU with a box already kept is strictly greater
    than the threshold. Equal scores are visited in index order (a stable
    sort; torchvision leaves their order unspecified). The IoU is computed in
    the boxes' dtype and compared with the threshold as a Python float
    (double), as torchvision does.

    Shapes: N boxes, K kept.

    Parameters
    ----------
    boxes : ndarray, (N, 4) float32 or float64
        Valid boxes; N may be 0.
    scores : ndarray, (N,) float
        Scores, higher is better.
    iou_threshold : float
        In [0, 1].

    Returns
    -------
    ndarray, (K,) int64
        Indices into ``boxes`` of the kept boxes, highest score first.
    """
    check_boxes(boxes, "boxes")
    check_float_array(scores, "scores", shape=(boxes.shape[0],))
    threshold = check_probability(iou_threshold, "iou_threshold")
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep = []
    for i in order:
        if all(float(pair_iou_reference(boxes[i], boxes[k])) <= threshold for k in keep):
            keep.append(i)
    return numpy.array(keep, numpy.int64)
