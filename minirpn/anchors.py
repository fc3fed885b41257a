"""Anchor generation: the reference boxes the RPN classifies and refines.

Ren et al. 2015, section 3.1.1: every position of the feature map carries
``A`` anchors (3 sizes x 3 shapes = 9 by default) in image coordinates, one
feature cell standing for ``stride`` x ``stride`` image pixels; a 38 x 57
feature map therefore yields 38 * 57 * 9 = 19494 anchors.

Conventions (which differ from the two reference implementations):

* Continuous coordinates, no ``+1``: width = x2 - x1 (as torchvision).
* The base anchors are centred on the centre of the first stride cell,
  ``(base_size / 2, base_size / 2)``. py-faster-rcnn centres them at
  ``(base_size - 1) / 2 = 7.5`` with ``+1`` widths and rounds the sizes;
  torchvision's ``AnchorGenerator`` centres them at 0 and rounds to
  integers. We round nothing: each anchor's area is exactly
  ``(base_size * scale) ** 2`` whatever its ratio.
* ``ratio`` is height / width (as in both references).
* Order within a cell: ratios outer, scales inner (py-faster-rcnn), so
  anchor ``a = i_ratio * len(scales) + i_scale``.
* Grid order is (H, W, A): row ``(y * W + x) * A + a``. This matches the
  RPN head's (N, A*4, H, W) output transposed to (N, H, W, A, 4).
"""
import math

import numpy

from .backend import array_module, get_array_module
from .checks import check_float_array, check_positive_int, check_positive_number

__all__ = ["base_anchors", "grid_anchors", "num_anchors"]


def _check_positive_sequence(values, name):
    try:
        values = list(values)
    except TypeError:
        raise TypeError(
            f"{name} must be a non-empty sequence of positive numbers, "
            f"got {values!r}") from None
    if not values:
        raise ValueError(
            f"{name} must be a non-empty sequence of positive numbers, got []")
    return [check_positive_number(v, f"{name}[{i}]")
            for i, v in enumerate(values)]


def num_anchors(scales=(8, 16, 32), ratios=(0.5, 1, 2)):
    """Number of anchors per feature-map cell, ``A = len(ratios) * len(scales)``."""
    return len(list(ratios)) * len(list(scales))


def base_anchors(base_size=16, scales=(8, 16, 32), ratios=(0.5, 1, 2),
                 dtype="float32"):
    """The ``A`` anchors of the first feature-map cell.

    Shapes: ``A = len(ratios) * len(scales)``.

    Anchor ``a = i * len(scales) + j`` (ratios outer, scales inner, as in
    py-faster-rcnn) has side ``size = base_size * scales[j]`` and ratio
    ``r = ratios[i] = height / width``::

        w = size / sqrt(r),  h = size * sqrt(r)     (so w * h = size ** 2)

    centred on the first stride cell's centre ``(base_size / 2,
    base_size / 2)`` in continuous coordinates (no ``+1``, no rounding;
    see the module docstring for how this differs from py-faster-rcnn and
    torchvision).

    Parameters
    ----------
    base_size : float
        Stride of the feature map in image pixels (16 for VGG16 conv5_3).
    scales : sequence of float
        Anchor sides in units of ``base_size``; non-empty, positive.
    ratios : sequence of float
        Aspect ratios height / width; non-empty, positive.
    dtype : str or numpy dtype, optional
        Floating dtype of the result, float32 by default.

    Returns
    -------
    anchors : (A, 4) ``dtype`` array of the active backend
        ``(x1, y1, x2, y2)`` per anchor.

    Raises
    ------
    TypeError, ValueError
        If ``base_size`` is not a positive number, or ``scales`` /
        ``ratios`` are empty or hold a non-positive entry (named).
    """
    base_size = check_positive_number(base_size, "base_size")
    scales = _check_positive_sequence(scales, "scales")
    ratios = _check_positive_sequence(ratios, "ratios")
    xp = array_module()
    if numpy.dtype(dtype).kind != "f":
        raise TypeError(f"dtype must be a floating dtype, got {dtype!r}")
    # Computed in float64 on the host (A is tiny), then cast once.
    centre = base_size / 2.0
    rows = []
    for r in ratios:
        for s in scales:
            size = base_size * s
            half_w = 0.5 * size / math.sqrt(r)
            half_h = 0.5 * size * math.sqrt(r)
            rows.append((centre - half_w, centre - half_h,
                         centre + half_w, centre + half_h))
    return xp.asarray(rows, dtype=dtype).reshape(len(rows), 4)


def grid_anchors(feature_height, feature_width, stride, base):
    """Shift the base anchors to every cell of an H x W feature map.

    Shapes: ``H = feature_height``, ``W = feature_width``, ``A`` base
    anchors; ``N = H * W * A``.

    Row ``(y * W + x) * A + a`` is ``base[a] + (x*stride, y*stride,
    x*stride, y*stride)``: order (H, W, A), the order of the RPN head's
    (N, A*4, H, W) output transposed to (N, H, W, A, 4) and flattened.

    Parameters
    ----------
    feature_height, feature_width : int
        Size of the feature map, positive.
    stride : float
        Image pixels per feature cell, positive (16 for VGG16).
    base : (A, 4) float32 or float64
        Anchors of cell (0, 0), e.g. from :func:`base_anchors`.

    Returns
    -------
    anchors : (N, 4) array, dtype and array module of ``base``
        All anchors in image coordinates.

    Raises
    ------
    TypeError, ValueError
        If a size or the stride is not positive, or ``base`` is not an
        (A, 4) float array with A >= 1.

    Examples
    --------
    >>> grid_anchors(38, 57, 16, base_anchors()).shape   # 38 * 57 * 9
    (19494, 4)
    """
    H = check_positive_int(feature_height, "feature_height")
    W = check_positive_int(feature_width, "feature_width")
    stride = check_positive_number(stride, "stride")
    check_float_array(base, "base", shape=(None, 4))
    if base.shape[0] == 0:
        raise ValueError("base must hold at least one anchor, got shape (0, 4)")
    xp = get_array_module(base)
    shift_x = xp.arange(W, dtype=base.dtype) * base.dtype.type(stride)
    shift_y = xp.arange(H, dtype=base.dtype) * base.dtype.type(stride)
    sx, sy = xp.meshgrid(shift_x, shift_y)            # (H, W) each, y-major
    shifts = xp.stack([sx, sy, sx, sy], axis=-1)       # (H, W, 4)
    anchors = shifts[:, :, None, :] + base[None, None, :, :]   # (H, W, A, 4)
    return anchors.reshape(-1, 4)
