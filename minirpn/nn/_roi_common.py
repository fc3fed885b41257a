"""Shared pieces of the RoI layers: argument checks and the reference loops.

The reference functions are the readable definition of RoI Pool and RoI
Align: plain Python loops over RoIs, bins and samples, each step a line of
maths, with the channel axis as a numpy vector. They reproduce torchvision's
CPU kernels (``torchvision/csrc/ops/cpu/roi_pool_kernel.cpp``,
``roi_align_kernel.cpp`` and ``roi_align_common.h``) rule for rule, in the
input's dtype, and they are the oracle that the tests hold the numba kernels
of :mod:`minirpn.nn.roi_pool` and :mod:`minirpn.nn.roi_align` to. They are
slow: use them to read, step through or check, not to train.
"""
import contextlib
import math
import numbers
from collections import namedtuple

import numba
import numpy as np

from ..backend import get_array_module, is_cupy_array
from ..checks import (check_array, check_float_array, check_same_dtype, deferrable,
                      first_bad_row, passes)
from ..jit import njit

__all__ = ["on_gpu", "kernel_threads", "transpose_into", "check_roi_inputs", "output_pair",
           "check_roi_shapes", "check_roi_values",
           "check_spatial_scale", "check_sampling_ratio", "check_aligned", "check_upstream",
           "check_forward_args", "check_backward_args",
           "round_half_away", "FLT_MAX",
           "roi_pool_reference_forward", "roi_pool_reference_backward",
           "roi_align_reference_forward", "roi_align_reference_backward"]

# torchvision starts every non-empty max at -FLT_MAX, for float64 input too.
FLT_MAX = float(np.finfo(np.float32).max)


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


@contextlib.contextmanager
def kernel_threads(work, min_parallel_work=1 << 16):
    """Run the numba kernels inside on one thread when ``work`` (output
    elements) is small: waking the thread pool then costs more than it saves,
    and far more on a busy machine (gradient checks call tiny layers 1000s of
    times)."""
    if work >= min_parallel_work:
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


_TILE = 16  # a compile-time tile size lets LLVM unroll and vectorise the copy


@njit(error_model="numpy", inline="always")
def transpose_into(src, dst):
    """dst (C, K) = src (K, C).T in 16 x 16 tiles: the kernels work
    channels-last and hand back channels-first (R, C, PH, PW) outputs, and a
    plain element loop made that copy cost more than the pooling itself."""
    k_n, c_n = src.shape
    c_full, k_full = c_n - c_n % _TILE, k_n - k_n % _TILE
    for c0 in range(0, c_full, _TILE):
        for k0 in range(0, k_full, _TILE):
            for a in range(_TILE):
                for b in range(_TILE):
                    dst[c0 + a, k0 + b] = src[k0 + b, c0 + a]
        for k in range(k_full, k_n):
            for a in range(_TILE):
                dst[c0 + a, k] = src[k, c0 + a]
    for c in range(c_full, c_n):
        for k in range(k_n):
            dst[c, k] = src[k, c]


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
    if features.dtype not in (np.float32, np.float64):
        raise TypeError(f"features must be float32 or float64, got {features.dtype}")
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


def output_pair(output_size):
    """Normalise ``output_size`` (int or pair of ints, each >= 1) to (PH, PW)."""
    def is_int(v):
        return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))
    if is_int(output_size):
        pair = (int(output_size), int(output_size))
    elif isinstance(output_size, (tuple, list)) and len(output_size) == 2 \
            and all(is_int(v) for v in output_size):
        pair = (int(output_size[0]), int(output_size[1]))
    else:
        raise TypeError(f"output_size must be an int or a pair of ints (PH, PW), "
                        f"got {output_size!r}")
    if min(pair) < 1:
        raise ValueError(f"output_size must be >= 1 in both dimensions, got {output_size!r}")
    return pair


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
    return gpu, shape, output_pair(output_size), check_spatial_scale(spatial_scale)


def check_backward_args(dy, cached, shape, dtype):
    """The checks that open both layers' backwards: ``dy`` on the device of
    ``cached`` (an array of the forward's cache), with the forward output's
    ``shape`` and ``dtype``. Returns the gpu flag."""
    gpu = on_gpu(("dy", dy), ("the forward's cache", cached))
    check_upstream(dy, shape, dtype)
    return gpu


def round_half_away(v):
    """C's ``round``: to the nearest integer, halves away from zero (exact)."""
    t = int(v)  # truncates; v - t is exact, unlike floor(v + 0.5)
    return t + (int(math.copysign(1, v)) if abs(v - t) >= 0.5 else 0)


# --------------------------------------------------------------- RoI Pool
def roi_pool_reference_forward(features, rois, output_size=(7, 7), spatial_scale=1 / 16):
    """Reference RoI max pooling (slow loops); same contract as
    :func:`minirpn.nn.roi_pool.roi_pool_forward`. Returns ``(y, cache)``."""
    n, c, h, w = check_roi_inputs(features, rois)
    ph_n, pw_n = output_pair(output_size)
    T = features.dtype.type  # every float step in the input dtype, as torchvision
    scale = T(check_spatial_scale(spatial_scale))
    y = np.zeros((len(rois), c, ph_n, pw_n), features.dtype)
    argmax = np.full(y.shape, -1, np.int32)  # -1: empty bin, no gradient
    for r, (b, x1, y1, x2, y2) in enumerate(rois):
        fmap = features[int(b)]
        # 1. first quantisation: corners snap to cells (Caffe's round), and the
        #    RoI spans cells start..end inclusive, so +1; malformed ones are 1x1
        start_w, start_h = round_half_away(x1 * scale), round_half_away(y1 * scale)
        end_w, end_h = round_half_away(x2 * scale), round_half_away(y2 * scale)
        bin_h = T(max(end_h - start_h + 1, 1)) / T(ph_n)
        bin_w = T(max(end_w - start_w + 1, 1)) / T(pw_n)
        for ph in range(ph_n):
            # 2. second quantisation: bin edges floor/ceil outward, then clip
            h0 = min(max(math.floor(T(ph) * bin_h) + start_h, 0), h)
            h1 = min(max(math.ceil(T(ph + 1) * bin_h) + start_h, 0), h)
            for pw in range(pw_n):
                w0 = min(max(math.floor(T(pw) * bin_w) + start_w, 0), w)
                w1 = min(max(math.ceil(T(pw + 1) * bin_w) + start_w, 0), w)
                if h1 <= h0 or w1 <= w0:
                    continue  # empty bin: output 0, argmax -1
                # 3. max over the bin in row-major order; strict > keeps the
                #    first of equal values (torchvision's tie rule)
                best = np.full(c, -FLT_MAX, features.dtype)
                where = np.full(c, -1, np.int32)
                for hh in range(h0, h1):
                    for ww in range(w0, w1):
                        v = fmap[:, hh, ww]
                        better = v > best
                        best[better], where[better] = v[better], hh * w + ww
                y[r, :, ph, pw], argmax[r, :, ph, pw] = best, where
    cache = {"argmax": argmax, "batch": rois[:, 0].astype(np.int64),
             "features_shape": features.shape, "dtype": features.dtype}
    return y, cache


def roi_pool_reference_backward(dy, cache):
    """Reference RoI pool backward: each output's gradient goes to its argmax.

    Returns dfeatures, (N, C, H, W) in dy's dtype."""
    argmax, batch = cache["argmax"], cache["batch"]
    check_upstream(dy, argmax.shape, cache["dtype"])
    n, c, h, w = cache["features_shape"]
    dx = np.zeros((n, c, h * w), dy.dtype)
    for r, ch, ph, pw in np.ndindex(*argmax.shape):
        k = argmax[r, ch, ph, pw]
        if k >= 0:
            dx[batch[r], ch, k] += dy[r, ch, ph, pw]
    return dx.reshape(n, c, h, w)


# -------------------------------------------------------------- RoI Align
Geometry = namedtuple("Geometry", "y1 x1 bin_h bin_w grid_h grid_w count")


def _align_geometry(roi, T, scale, pooled, sampling_ratio, aligned):
    """One RoI's start, bin size, samples per bin side and count, in T."""
    offset = T(0.5) if aligned else T(0)  # aligned: cell centres at integer + 0.5
    x1, y1, x2, y2 = (v * scale - offset for v in roi[1:])  # no rounding here
    roi_h, roi_w = y2 - y1, x2 - x1
    if not aligned:
        roi_h, roi_w = max(roi_h, T(1)), max(roi_w, T(1))  # malformed -> 1x1
    bin_h, bin_w = roi_h / T(pooled[0]), roi_w / T(pooled[1])
    # sampling_ratio <= 0: adaptive, about one sample per feature cell
    grid_h = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_h / T(pooled[0])))
    grid_w = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_w / T(pooled[1])))
    return Geometry(y1, x1, bin_h, bin_w, grid_h, grid_w, T(max(grid_h * grid_w, 1)))


def _bilinear_taps(yy, xx, h, w, T):
    """The 4 (row, col, weight) taps of one sample, [] if it lies outside."""
    if not (-1.0 <= yy <= h and -1.0 <= xx <= w):
        return []  # more than a cell outside the map: contributes 0
    yy, xx = max(yy, T(0)), max(xx, T(0))
    y_lo, x_lo = int(yy), int(xx)
    if y_lo >= h - 1:  # on/after the last row: clamp, no interpolation
        y_lo = y_hi = h - 1
        yy = T(y_lo)
    else:
        y_hi = y_lo + 1
    if x_lo >= w - 1:
        x_lo = x_hi = w - 1
        xx = T(x_lo)
    else:
        x_hi = x_lo + 1
    ly, lx = yy - T(y_lo), xx - T(x_lo)
    hy, hx = T(1) - ly, T(1) - lx
    return [(y_lo, x_lo, hy * hx), (y_lo, x_hi, hy * lx),
            (y_hi, x_lo, ly * hx), (y_hi, x_hi, ly * lx)]


def _align_samples(g, T, pooled, h, w):
    """Yield (ph, pw, taps) for every sample point of one RoI's geometry g."""
    for ph in range(pooled[0]):
        for pw in range(pooled[1]):
            for iy in range(g.grid_h):  # centres of a grid_h x grid_w split of the bin
                yy = g.y1 + T(ph) * g.bin_h + T(iy + 0.5) * g.bin_h / T(g.grid_h)
                for ix in range(g.grid_w):
                    xx = g.x1 + T(pw) * g.bin_w + T(ix + 0.5) * g.bin_w / T(g.grid_w)
                    yield ph, pw, _bilinear_taps(yy, xx, h, w, T)


def roi_align_reference_forward(features, rois, output_size=(7, 7), spatial_scale=1 / 16,
                                sampling_ratio=2, aligned=True):
    """Reference RoI Align (slow loops); same contract as
    :func:`minirpn.nn.roi_align.roi_align_forward`. Returns ``(y, cache)``."""
    n, c, h, w = check_roi_inputs(features, rois)
    pooled = output_pair(output_size)
    T = features.dtype.type  # every float step in the input dtype, as torchvision
    params = (T, T(check_spatial_scale(spatial_scale)), pooled,
              check_sampling_ratio(sampling_ratio), check_aligned(aligned))
    y = np.zeros((len(rois), c) + pooled, features.dtype)
    for r, roi in enumerate(rois):
        fmap, g = features[int(roi[0])], _align_geometry(roi, *params)
        for ph, pw, taps in _align_samples(g, T, pooled, h, w):
            # add the sample's 4 weighted taps (torchvision's order of sums)
            y[r, :, ph, pw] += sum(weight * fmap[:, row, col] for row, col, weight in taps)
        y[r] /= g.count  # the bin's value is the mean of its samples
    cache = {"rois": rois, "params": params, "features_shape": features.shape,
             "dtype": features.dtype}
    return y, cache


def roi_align_reference_backward(dy, cache):
    """Reference RoI Align backward: each sample hands dy * weight / count
    back to its 4 taps. Returns dfeatures (N, C, H, W) in dy's dtype."""
    rois, params = cache["rois"], cache["params"]
    n, c, h, w = cache["features_shape"]
    T, pooled = params[0], params[2]
    check_upstream(dy, (len(rois), c) + pooled, cache["dtype"])
    dx = np.zeros((n, c, h, w), dy.dtype)
    for r, roi in enumerate(rois):
        g = _align_geometry(roi, *params)
        for ph, pw, taps in _align_samples(g, T, pooled, h, w):
            for row, col, weight in taps:
                dx[int(roi[0]), :, row, col] += dy[r, :, ph, pw] * weight / g.count
    return dx
