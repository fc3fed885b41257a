"""Box regression coding: boxes <-> deltas relative to reference boxes.

Bounding-box regression coefficients (R-CNN, Girshick et al. 2014,
appendix C; Faster R-CNN eq. 2; py-faster-rcnn's ``bbox_transform.py``),
with optional per-coordinate
weights as in torchvision's ``BoxCoder``::

    t_x = wx * (x - x_a) / w_a        t_w = ww * log(w / w_a)
    t_y = wy * (y - y_a) / h_a        t_h = wh * log(h / h_a)

where (x, y) is a box's centre, x = x1 + 0.5 * w, and w = x2 - x1 (continuous
coordinates, no +1). Written once against ``xp`` for numpy; CuPy arrays
take one kernel each way (:mod:`minirpn.cuda.box_kernels`), with the same
operations in the same order.
"""
import math

import numpy

from ..backend import get_array_module
from ..checks import check_float_array, check_same_dtype, deferrable, first_bad_row, passes
from .boxes import _format_row, check_boxes, check_positive_area

__all__ = ["encode_boxes", "decode_boxes", "stds_to_weights", "BBOX_XFORM_CLIP"]

#: Upper bound on decoded dw, dh (torchvision's ``bbox_xform_clip``): a box
#: may grow at most 1000/16 = 62.5 times its reference, so exp never
#: overflows, even in float32.
BBOX_XFORM_CLIP = math.log(1000.0 / 16)


def _check_weights(weights):
    try:
        values = tuple(float(w) for w in weights)
    except (TypeError, ValueError):
        raise TypeError(
            f"weights must be 4 numbers (wx, wy, ww, wh), got {weights!r}"
        ) from None
    if len(values) != 4 or not all(math.isfinite(w) and w > 0
                                   for w in values):
        raise ValueError(
            f"weights must be 4 finite numbers > 0, got {weights!r}")
    return values


def _centres(boxes):
    """Width, height and centre of each box: four (N,) arrays."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return w, h, boxes[:, 0] + 0.5 * w, boxes[:, 1] + 0.5 * h


def encode_boxes(reference, target, weights=(1.0, 1.0, 1.0, 1.0)):
    """Regression deltas that turn ``reference`` boxes into ``target`` boxes.

    Shapes: N pairs of boxes.

    Parameters
    ----------
    reference : ndarray, (N, 4) float32 or float64
        Reference boxes (anchors or proposals), positive width and height.
    target : ndarray, (N, 4), same dtype as ``reference``
        Boxes to encode (matched ground truth), positive width and height.
    weights : tuple of 4 floats, optional
        (wx, wy, ww, wh), each > 0; (1, 1, 1, 1) for the RPN, (10, 10, 5, 5)
        for torchvision's box head.

    Returns
    -------
    ndarray, (N, 4) same dtype as ``reference``
        Deltas (t_x, t_y, t_w, t_h).

    Raises
    ------
    ValueError
        For invalid boxes, mismatched N, or a zero-width/height box in
        either argument (its log would be -inf); names the first bad row.
    """
    check_boxes(reference, "reference")
    check_boxes(target, "target")
    check_same_dtype("reference", reference, target=target)
    if target.shape != reference.shape:
        raise ValueError(
            f"target must have the shape of reference "
            f"{tuple(reference.shape)}, got {tuple(target.shape)}")
    wx, wy, ww, wh = _check_weights(weights)
    xp = get_array_module(reference, target)
    check_positive_area(reference, "reference")
    check_positive_area(target, "target")
    if xp is not numpy:  # one kernel instead of some 30 CuPy calls
        from ..cuda import box_kernels  # imports numba.cuda: GPU path only
        return box_kernels.encode_boxes(reference, target, (wx, wy, ww, wh))
    rw, rh, rx, ry = _centres(reference)
    tw, th, tx, ty = _centres(target)
    return xp.stack([wx * (tx - rx) / rw,
                     wy * (ty - ry) / rh,
                     ww * xp.log(tw / rw),
                     wh * xp.log(th / rh)], axis=1)


@deferrable  # pure: repeated only to report a non-finite delta
def decode_boxes(reference, deltas, weights=(1.0, 1.0, 1.0, 1.0)):
    """Apply regression deltas to reference boxes (inverse of encode).

    Shapes: N boxes.

    Parameters
    ----------
    reference : ndarray, (N, 4) float32 or float64
        Reference boxes (anchors or proposals). Zero-size references are
        allowed here: they decode to zero-size boxes.
    deltas : ndarray, (N, 4), same dtype as ``reference``
        Finite deltas (t_x, t_y, t_w, t_h), e.g. network output.
    weights : tuple of 4 floats, optional
        (wx, wy, ww, wh) used at encoding; the deltas are divided by them.

    Returns
    -------
    ndarray, (N, 4) same dtype as ``reference``
        Decoded boxes (x1, y1, x2, y2). Not clipped to the image: see
        :func:`minirpn.ops.clip_boxes`. dw and dh are clamped at
        ``BBOX_XFORM_CLIP`` = log(1000/16) so exp cannot overflow.
    """
    check_boxes(reference, "reference")
    check_float_array(deltas, "deltas", shape=(reference.shape[0], 4))
    check_same_dtype("reference", reference, deltas=deltas)
    xp = get_array_module(reference, deltas)
    wx, wy, ww, wh = _check_weights(weights)
    if xp is not numpy:  # one kernel for the check, one for the decoding
        from ..cuda import box_kernels  # imports numba.cuda: GPU path only
        if passes(box_kernels.rows_pass(deltas, box_kernels.FINITE)):
            return box_kernels.decode_boxes(reference, deltas, (wx, wy, ww, wh),
                                            BBOX_XFORM_CLIP)
    row = first_bad_row(~xp.isfinite(deltas).all(axis=1))
    if row is not None:
        raise ValueError(
            f"deltas row {row} has a non-finite value: "
            f"{_format_row(deltas[row])}")
    rw, rh, rx, ry = _centres(reference)
    cx = deltas[:, 0] / wx * rw + rx
    cy = deltas[:, 1] / wy * rh + ry
    w = xp.exp(xp.minimum(deltas[:, 2] / ww, BBOX_XFORM_CLIP)) * rw
    h = xp.exp(xp.minimum(deltas[:, 3] / wh, BBOX_XFORM_CLIP)) * rh
    return xp.stack([cx - 0.5 * w, cy - 0.5 * h,
                     cx + 0.5 * w, cy + 0.5 * h], axis=1)


def stds_to_weights(box_stds):
    """Coding weights equivalent to dividing the deltas by ``box_stds``.

    py-faster-rcnn normalises the head's regression targets by
    ``BBOX_NORMALIZE_STDS``; ``encode_boxes(..., weights=w)`` multiplies each
    delta by ``w``, so that is ``w = 1 / std``, and decoding the head's
    output with the same ``w`` undoes it (torchvision's ``BoxCoder`` takes
    these weights directly: (10, 10, 5, 5)).

    Parameters
    ----------
    box_stds : 4 positive floats

    Returns
    -------
    tuple of 4 floats
    """
    return tuple(1.0 / float(s) for s in box_stds)
