"""Box validation, area, IoU and clipping.

Boxes are float (x1, y1, x2, y2) in continuous coordinates: a box covers
the region x1 <= x <= x2, y1 <= y <= y2, so width = x2 - x1 and height =
y2 - y1 with no "+1" (torchvision's convention, ``torchvision.ops.box_area``;
py-faster-rcnn's boxes are pixel-inclusive and add 1).

``box_iou`` has two paths with the same results as the plain-loop
definition :func:`minirpn.ops.reference.box_iou_reference` (read that one
first): a numba kernel for numpy arrays (the CPU hot path of anchor
labelling) and a numba.cuda kernel for cupy arrays
(:mod:`minirpn.cuda.box_kernels`, which also checks CuPy boxes).
"""
import numpy

from ..backend import get_array_module, to_numpy
from ..checks import (check_float_array, check_image_size, check_same_dtype, deferrable,
                      first_bad_row, passes)
from ..jit import njit

__all__ = ["check_boxes", "check_positive_area", "box_area", "box_iou", "clip_boxes",
           "remove_small_boxes"]


def _format_row(row):
    return "[" + ", ".join(f"{float(v):g}" for v in to_numpy(row)) + "]"


@deferrable
def check_boxes(boxes, name):
    """Validate an array of boxes and return it unchanged.

    Shapes: N boxes.

    Parameters
    ----------
    boxes : ndarray, (N, 4) float32 or float64
        Boxes (x1, y1, x2, y2); N may be 0. Zero width or height is valid.
    name : str
        The argument's name, used in error messages.

    Returns
    -------
    ndarray, (N, 4)
        ``boxes`` itself (no copy).

    Raises
    ------
    TypeError
        If ``boxes`` is not a float32 or float64 ndarray.
    ValueError
        If the shape is not (N, 4), or a row has a NaN/inf coordinate,
        x2 < x1 or y2 < y1; the message names the first offending row,
        e.g. ``boxes row 3 has x2 < x1: [10, 0, 5, 4]``.
    """
    check_float_array(boxes, name, shape=(None, 4))
    xp = get_array_module(boxes)
    if xp is not numpy:  # one kernel and a flag that stays on the device
        from ..cuda import box_kernels  # imports numba.cuda: GPU path only
        if passes(box_kernels.rows_pass(boxes)):
            return boxes
        raise _bad_box_error(boxes, name, xp)
    # Fast path: two whole-array reductions (a per-row .all(axis=1)
    # costs more than box_iou itself: benchmarks/README.md), combined into
    # one flag; (x2, y2) >= (x1, y1) in one comparison of the column pairs.
    if passes(xp.isfinite(boxes).all() & (boxes[:, 2:] >= boxes[:, :2]).all()):
        return boxes
    raise _bad_box_error(boxes, name, xp)


def _bad_box_error(boxes, name, xp):
    """The ValueError of :func:`check_boxes`, naming the first bad row."""
    finite = xp.isfinite(boxes).all(axis=1)
    x_ok = boxes[:, 2] >= boxes[:, 0]          # False for NaN too
    y_ok = boxes[:, 3] >= boxes[:, 1]
    row = first_bad_row(~(finite & x_ok & y_ok))
    what = ("a non-finite coordinate" if not finite[row] else
            "x2 < x1" if not x_ok[row] else "y2 < y1")
    return ValueError(f"{name} row {row} has {what}: {_format_row(boxes[row])}")


@deferrable
def check_positive_area(boxes, name):
    """Refuse a (K, 4) box of zero width or height, naming the first such
    row: encoding it as a regression target (or against one) needs log(0).
    The boxes must already pass :func:`check_boxes`."""
    xp = get_array_module(boxes)
    if xp is not numpy:  # one kernel, a flag on the device
        from ..cuda import box_kernels
        if passes(box_kernels.rows_pass(boxes, box_kernels.POSITIVE)):
            return
    row = first_bad_row((boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1]))
    if row is not None:
        raise ValueError(f"{name} row {row} has zero width or height (cannot be "
                         f"encoded, log(0)): {_format_row(boxes[row])}")


def box_area(boxes):
    """Area of each box.

    Shapes: N boxes.

    Parameters
    ----------
    boxes : ndarray, (N, 4) float32 or float64
        Valid boxes (see :func:`check_boxes`).

    Returns
    -------
    ndarray, (N,) same dtype as ``boxes``
        (x2 - x1) * (y2 - y1).
    """
    check_boxes(boxes, "boxes")
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


@njit(error_model="numpy")
def _box_iou_kernel(a, bx1, by1, bx2, by2, zero, out):
    # One row of ``out`` per box of ``a``; the inner loop reads ``b`` as
    # contiguous columns and is branch-free, so LLVM vectorises it.
    # ``zero`` comes in the boxes' dtype: a literal 0 would promote float32
    # arithmetic to float64 (half the SIMD width).
    # Serial on purpose: a thread pool cost far more than it saved on these
    # small matrices (figures in benchmarks/README.md).
    barea = (bx2 - bx1) * (by2 - by1)
    for i in range(a.shape[0]):
        ax1, ay1, ax2, ay2 = a[i, 0], a[i, 1], a[i, 2], a[i, 3]
        aarea = (ax2 - ax1) * (ay2 - ay1)
        row = out[i]
        for j in range(bx1.shape[0]):
            w = max(min(ax2, bx2[j]) - max(ax1, bx1[j]), zero)
            h = max(min(ay2, by2[j]) - max(ay1, by1[j]), zero)
            inter = w * h
            union = aarea + barea[j] - inter
            # Two zero-area boxes have union 0: IoU 0, never 0/0 = NaN.
            row[j] = inter / union if union > zero else zero
    return out


def box_iou(a, b):
    """Intersection over union of every pair of boxes.

    Shapes: N boxes in ``a``, M boxes in ``b``.

    Parameters
    ----------
    a : ndarray, (N, 4) float32 or float64
        Boxes (x1, y1, x2, y2); N may be 0.
    b : ndarray, (M, 4), same dtype as ``a``
        Boxes; M may be 0.

    Returns
    -------
    ndarray, (N, M) same dtype as ``a``
        IoU in [0, 1], C-contiguous. A pair whose union is 0 (two
        zero-area boxes) has IoU 0, never NaN.

    Notes
    -----
    The same results as :func:`minirpn.ops.reference.box_iou_reference`
    (tested with float32 and float64 boxes). numpy arrays run a (serial,
    vectorised) numba kernel, cupy arrays a numba.cuda kernel with the
    same operations in the same order.
    """
    check_boxes(a, "a")
    check_boxes(b, "b")
    check_same_dtype("a", a, b=b)
    xp = get_array_module(a, b)
    if xp is not numpy:
        from ..cuda import box_kernels  # imports numba.cuda: GPU path only
        return box_kernels.box_iou(a, b)
    return _box_iou_numba(a, b)


def _box_iou_numba(a, b):
    """The numba path: (N, M) C-contiguous IoU of numpy boxes."""
    out = numpy.empty((a.shape[0], b.shape[0]), dtype=a.dtype)
    cols = [numpy.ascontiguousarray(b[:, k]) for k in range(4)]
    return _box_iou_kernel(numpy.ascontiguousarray(a), *cols,
                           a.dtype.type(0), out)


def clip_boxes(boxes, image_size):
    """Clip boxes to the image: x to [0, W], y to [0, H].

    A deliberate, documented op applied to *predicted* boxes (py-faster-rcnn,
    lib/rpn/proposal_layer.py: "clip predicted boxes to image"); inputs are never
    clipped silently elsewhere. Coordinates are continuous, so the right
    edge of the image is x = W, not W - 1.

    Shapes: N boxes.

    Parameters
    ----------
    boxes : ndarray, (N, 4) float32 or float64
        Valid boxes.
    image_size : tuple of 2 numbers
        (H, W), both > 0.

    Returns
    -------
    ndarray, (N, 4) same dtype as ``boxes``
        A new array; ``boxes`` is not modified.
    """
    check_boxes(boxes, "boxes")
    height, width = check_image_size(image_size)
    xp = get_array_module(boxes)
    out = xp.empty_like(boxes)
    out[:, 0::2] = xp.clip(boxes[:, 0::2], 0, width)
    out[:, 1::2] = xp.clip(boxes[:, 1::2], 0, height)
    return out


def remove_small_boxes(boxes, min_size):
    """Indices of boxes at least ``min_size`` wide and high.

    torchvision's rule: keep when width >= min_size and height >= min_size.

    Shapes: N boxes, K kept.

    Parameters
    ----------
    boxes : ndarray, (N, 4) float32 or float64
        Valid boxes.
    min_size : float
        Minimum width and height, >= 0.

    Returns
    -------
    ndarray, (K,) int64
        Indices into ``boxes``, ascending.
    """
    check_boxes(boxes, "boxes")
    if isinstance(min_size, bool) or not isinstance(
            min_size, (int, float, numpy.integer, numpy.floating)):
        raise TypeError(f"min_size must be a number, got {min_size!r}")
    if not (numpy.isfinite(min_size) and min_size >= 0):
        raise ValueError(f"min_size must be finite and >= 0, got {min_size!r}")
    xp = get_array_module(boxes)
    ws = boxes[:, 2] - boxes[:, 0]
    hs = boxes[:, 3] - boxes[:, 1]
    return xp.nonzero((ws >= min_size) & (hs >= min_size))[0].astype(xp.int64)
