"""Argument checks of the layers, so that each layer file shows its maths first.

:func:`int_pair` and :func:`check_float_rank` serve conv and max-pool; the
others open RoI Pool and RoI Align (and their references in
:mod:`minirpn.nn.reference`): one device, features (N, C, H, W) and rois
(R, 5) with integral batch indices, output_size, spatial_scale,
sampling_ratio, aligned and the upstream gradient. Each raises a
TypeError or ValueError naming the argument, what was expected and what
was given.
"""
import math
import numbers

import numpy as np

from ..backend import get_array_module, is_cupy_array
from ..checks import (check_array, check_float_array, check_same_dtype, deferrable,
                      first_bad_row, passes)

__all__ = ["int_pair", "check_float_rank", "on_gpu", "check_roi_inputs",
           "check_roi_shapes", "check_roi_values", "check_spatial_scale",
           "check_sampling_ratio", "check_aligned", "check_upstream",
           "check_forward_args", "check_backward_args"]


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def int_pair(value, name, minimum):
    """An int or a pair of ints, each >= ``minimum``, as a (height, width) pair.

    The convention of ``torch.nn.Conv2d``'s ``stride``/``padding`` and
    ``torchvision.ops.roi_pool``'s ``output_size``: one int stands for both
    dimensions.

    Parameters
    ----------
    value : int or (int, int)
        E.g. a stride, a padding, a kernel size or an output size.
    name : str
        The argument's name, for the error message.
    minimum : int
        The smallest value allowed in either dimension.

    Returns
    -------
    (int, int)

    Raises
    ------
    TypeError
        Not an int or a pair of ints (bools and floats included).
    ValueError
        A value below ``minimum``.
    """
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(_is_int(v) for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def check_float_rank(x, name, symbols):
    """Require a float array whose rank is that of ``symbols``, e.g.
    ``"(N, C, H, W)"``, which the error message shows."""
    check_float_array(x, name)
    if x.ndim != symbols.count(",") + 1:
        raise ValueError(f"{name} must have shape {symbols}, got {tuple(x.shape)}")


def on_gpu(*named):
    """The backend dispatch over (name, array) pairs: False for numpy arrays
    (the numba kernels), True for CuPy ones (the GPU kernels of
    :mod:`minirpn.cuda`). A mix is a TypeError naming the host array."""
    flags = [(name, a, is_cupy_array(a)) for name, a in named]
    if any(f for *_, f in flags) and not all(f for *_, f in flags):
        name, a = next((name, a) for name, a, f in flags if not f)
        raise TypeError(f"{name} must be a cupy array like the other inputs "
                        f"(all on one device), got {type(a).__name__}")
    return any(f for *_, f in flags)


def check_roi_inputs(features, rois):
    """Check features (N, C, H, W) and rois (R, 5), values included;
    return (N, C, H, W)."""
    shape = check_roi_shapes(features, rois)
    check_roi_values(rois, shape[0])
    return shape


def check_roi_shapes(features, rois):
    """The host-side part of :func:`check_roi_inputs` (ranks, shapes and
    dtypes; no value of the arrays is read); return (N, C, H, W)."""
    check_float_array(features, "features", ndim=4)
    n, c, h, w = features.shape
    if h < 1 or w < 1:
        raise ValueError(f"features must have H >= 1 and W >= 1, got shape {features.shape}")
    check_array(rois, "rois", shape=(None, 5))
    check_same_dtype("features", features, rois=rois)
    return n, c, h, w


@deferrable
def check_roi_values(rois, n, flag=None):
    """Require finite rois whose column 0 is an integral batch index in [0, n).

    ``flag`` (1,) int32, on the GPU: set nonzero by a kernel that met a row
    failing these checks (and never read features with it); while it is 0
    nothing else is computed, and inside
    :func:`minirpn.checks.deferred_device_checks` it is only queued.
    """
    if flag is not None and passes(flag[0] == 0):
        return
    xp = get_array_module(rois)
    bad = first_bad_row(~xp.isfinite(rois).all(axis=1))
    if bad is not None:
        raise ValueError(f"rois must be finite; row {bad} is {rois[bad].tolist()}")
    b = rois[:, 0]
    bad = first_bad_row((b != xp.floor(b)) | (b < 0) | (b >= n))
    if bad is not None:
        raise ValueError(f"rois[:, 0] must be an integral batch index in [0, {n}); "
                         f"row {bad} has {float(b[bad])!r}")


def check_spatial_scale(spatial_scale):
    """Require a finite number > 0 (feature cells per input pixel)."""
    if not isinstance(spatial_scale, numbers.Real) \
            or isinstance(spatial_scale, (bool, np.bool_)):
        raise TypeError(f"spatial_scale must be a number > 0, got {spatial_scale!r}")
    if not (math.isfinite(spatial_scale) and spatial_scale > 0):
        raise ValueError(f"spatial_scale must be finite and > 0, got {spatial_scale!r}")
    return float(spatial_scale)


def check_sampling_ratio(sampling_ratio):
    """Require an int; <= 0 selects adaptive sampling."""
    if not isinstance(sampling_ratio, numbers.Integral) \
            or isinstance(sampling_ratio, (bool, np.bool_)):
        raise TypeError(f"sampling_ratio must be an int (<= 0 for adaptive), "
                        f"got {sampling_ratio!r}")
    return int(sampling_ratio)


def check_aligned(aligned):
    """Require a bool."""
    if not isinstance(aligned, (bool, np.bool_)):
        raise TypeError(f"aligned must be a bool, got {aligned!r}")
    return bool(aligned)


def check_upstream(dy, shape, dtype):
    """Require ``dy`` to have the forward output's shape and dtype."""
    check_float_array(dy, "dy", shape=shape)
    if dy.dtype != dtype:
        raise TypeError(f"dy must have the dtype of the forward output ({dtype}), "
                        f"got {dy.dtype}")


def check_forward_args(features, rois, output_size, spatial_scale):
    """The checks that open both layers' forwards, in order: one device
    (:func:`on_gpu`), features and rois, output_size, spatial_scale.
    Returns (gpu flag, (N, C, H, W), (PH, PW), scale as float).

    On the GPU the values of ``rois`` are not read here: the kernels check
    each row they use and the layer then calls :func:`check_roi_values`
    with their flag (one device read, or none inside a training step)."""
    gpu = on_gpu(("features", features), ("rois", rois))
    shape = check_roi_shapes(features, rois)
    if not gpu:
        check_roi_values(rois, shape[0])
    return gpu, shape, int_pair(output_size, "output_size", 1), check_spatial_scale(spatial_scale)


def check_backward_args(dy, cached, shape, dtype):
    """The checks that open both layers' backwards: ``dy`` on the device of
    ``cached`` (an array of the forward's cache), with the forward output's
    ``shape`` and ``dtype``. Returns the gpu flag."""
    gpu = on_gpu(("dy", dy), ("the forward's cache", cached))
    check_upstream(dy, shape, dtype)
    return gpu
