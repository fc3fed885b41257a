"""RoI max pooling (Fast R-CNN, Girshick 2015, section 2.1), as torchvision.

Each RoI ``[batch_index, x1, y1, x2, y2]`` (input-image pixels) is cut into a
PH x PW grid of bins on the feature map and each bin is max-pooled, so RoIs of
any size give a fixed (C, PH, PW) block for the detection head (Fast R-CNN,
section 2.1). The numbers are those of ``torchvision.ops.roi_pool``:

1. First quantisation: each corner is scaled by ``spatial_scale`` and rounded
   to a cell with C's ``round`` (halves away from zero). The RoI covers cells
   start..end *inclusive*: width ``max(end - start + 1, 1)``. A worked
   example (800 x 800 image, stride 32, a 665-pixel box): 665/32 = 20.78,
   which a floor would quantise to 20; torchvision rounds it to 21, so the
   RoI spans cells 0..21, 22 cells. We follow torchvision.
2. Second quantisation: ``bin = width / PW`` as a float; bin ``pw`` spans
   cells ``floor(pw * bin)`` to ``ceil((pw + 1) * bin)`` (exclusive) offset by
   start, clipped to the map. Neighbouring bins may share a row or column.
3. Max over the bin in row-major order; the first of equal values wins (strict
   >). Its flat index ``h * W + w`` is kept for the backward pass, which sends
   each output's gradient to that one element. An empty bin (entirely off the
   map) outputs 0 with argmax -1 and passes no gradient.

The slow, readable definition is
:func:`minirpn.nn.reference.roi_pool_forward_reference` (and ``_backward``);
the functions here are numba kernels with the same results (tested in float32
and float64: the same maxima and argmax, the same gradients up to rounding). Every float step
of the bin geometry is done in the input's dtype, as torchvision does, so
float32 bin edges match it exactly.

CuPy arrays: one launch of :mod:`minirpn.cuda.roi_pool_kernel` each way, as
torchvision's CUDA kernels: each thread computes its own bin's edges with
``_bin_edges``'s rules and rounding and takes the maximum (identical to the
numba kernel), and the backward scatters the gradient with atomic adds at
the forward's argmax (equal to the numba kernel's up to the order of adds
where maxima are shared).
"""
import numba
import numpy as np

from ..backend import get_array_module
from ..jit import njit
from .kernel_tools import kernel_threads, transpose_into
from .layer_checks import check_backward_args, check_forward_args, check_roi_values
from .reference import FLT_MAX

__all__ = ["roi_pool_forward", "roi_pool_backward"]


def _round_half_away(xp, v):
    """C's round() on an array, exactly: trunc, then fix the halves."""
    t = xp.trunc(v)
    return t + xp.where(xp.abs(v - t) >= 0.5, xp.sign(v), 0)


def _bin_edges(xp, lo_coord, hi_coord, scale, pooled, size):
    """Start and end (exclusive) cell of every bin along one axis.

    lo_coord, hi_coord : (R,) T, RoI edges in input pixels.
    Returns two (R, pooled) int32 arrays, clipped to [0, size].
    """
    T = lo_coord.dtype.type
    # 1. first quantisation (integers, held as float64 to add them exactly)
    start = _round_half_away(xp, lo_coord * T(scale)).astype(np.float64)
    end = _round_half_away(xp, hi_coord * T(scale)).astype(np.float64)
    length = xp.maximum(end - start + 1, 1)  # malformed RoIs become 1 cell
    bin_size = length.astype(lo_coord.dtype) / T(pooled)  # in T, as torchvision
    # 2. second quantisation: bins round outward
    k = xp.arange(pooled, dtype=lo_coord.dtype)
    first = xp.floor(k * bin_size[:, None]).astype(np.float64) + start[:, None]
    last = xp.ceil((k + 1) * bin_size[:, None]).astype(np.float64) + start[:, None]
    return (xp.clip(first, 0, size).astype(np.int32),
            xp.clip(last, 0, size).astype(np.int32))


@njit(parallel=True, error_model="numpy")
def _pool_forward_kernel(x_nhwc, batch, h0, h1, w0, w1, y, argmax):
    """Max over each bin; parallel over RoIs, innermost loop over contiguous C.

    x_nhwc (N, H, W, C) T; batch (R,) int64; h0, h1 (R, PH), w0, w1 (R, PW)
    int32 bin edges; fills y (R, C, PH, PW) T and argmax (R, C, PH, PW) int32.
    """
    n_rois, channels, pooled_h, pooled_w = y.shape
    width = x_nhwc.shape[2]
    lowest = x_nhwc.dtype.type(-FLT_MAX)  # torchvision's start value, any dtype
    for r in numba.prange(n_rois):
        # one RoI's result channels-last, (PH*PW, C), transposed at the end
        best = np.empty((pooled_h * pooled_w, channels), x_nhwc.dtype)
        where = np.full((pooled_h * pooled_w, channels), -1, np.int32)
        fmap = x_nhwc[batch[r]]
        for ph in range(pooled_h):
            for pw in range(pooled_w):
                b_max, b_arg = best[ph * pooled_w + pw], where[ph * pooled_w + pw]
                empty = h1[r, ph] <= h0[r, ph] or w1[r, pw] <= w0[r, pw]
                b_max[:] = 0 if empty else lowest  # empty bin: 0, no gradient
                for hh in range(h0[r, ph], h1[r, ph]):
                    for ww in range(w0[r, pw], w1[r, pw]):
                        row = fmap[hh, ww]
                        flat = np.int32(hh * width + ww)
                        for c in range(channels):  # strict >: first max wins
                            v, m = row[c], b_max[c]  # selects, no branch: SIMD
                            b_max[c] = v if v > m else m
                            b_arg[c] = flat if v > m else b_arg[c]
        transpose_into(best, y[r].reshape(channels, pooled_h * pooled_w))
        transpose_into(where, argmax[r].reshape(channels, pooled_h * pooled_w))


@njit(parallel=True, error_model="numpy")
def _pool_backward_kernel(dy, argmax, batch, dx):
    """Scatter dy to the argmax elements; dx (N, C, H*W) starts at zero.

    Parallel over channels, RoIs in order inside: threads own disjoint
    channels of dx, so no two write the same element (no atomics, and the
    sums come out in torchvision's order).
    """
    for c in numba.prange(dy.shape[1]):
        _scatter_channel(dy, argmax, batch, dx, c)


@njit(error_model="numpy")
def _scatter_channel(dy, argmax, batch, dx, c):
    # a separate function: inlined in the prange body this loop ran slower
    # (benchmarks/README.md)
    n_rois, _, pooled_h, pooled_w = dy.shape
    for r in range(n_rois):
        plane = dx[batch[r], c]
        for ph in range(pooled_h):
            for pw in range(pooled_w):
                k = argmax[r, c, ph, pw]
                if k >= 0:
                    plane[k] += dy[r, c, ph, pw]


def roi_pool_forward(features, rois, output_size=(7, 7), spatial_scale=1 / 16):
    """RoI max pooling, identical to ``torchvision.ops.roi_pool`` and to
    :func:`minirpn.nn.reference.roi_pool_forward_reference`.

    Shapes: N images, C channels, H x W feature map, R RoIs, PH x PW output.

    Parameters
    ----------
    features : ndarray, (N, C, H, W) float32 or float64
        Feature maps.
    rois : ndarray, (R, 5), features' dtype
        Rows ``[batch_index, x1, y1, x2, y2]`` in input-image pixels; the
        batch index must be integral in [0, N). R may be 0.
    output_size : int or (int, int)
        (PH, PW), each >= 1.
    spatial_scale : float
        Feature cells per input pixel (1/16 for a stride-16 backbone), > 0.

    Returns
    -------
    y : ndarray, (R, C, PH, PW), features' dtype
        Max of each bin; 0 for bins that lie off the map.
    cache : dict
        For :func:`roi_pool_backward`: ``argmax`` (R, C, PH, PW) int32 (flat
        index ``h * W + w`` of each maximum, -1 for empty bins),
        ``features_shape`` and ``dtype``; on numpy also ``batch`` (R,) int64
        and the bin edges ``h0, h1`` (R, PH) and ``w0, w1`` (R, PW) int32, on
        CuPy ``rois`` (the input, for the batch indices).

    Raises
    ------
    TypeError, ValueError
        On bad arguments (see :mod:`minirpn.nn.layer_checks`), or numpy and
        CuPy arrays mixed.
    """
    gpu, (n, c, h, w), (pooled_h, pooled_w), scale = check_forward_args(
        features, rois, output_size, spatial_scale)
    if gpu:
        return _forward_gpu(features, rois, (pooled_h, pooled_w), scale)
    h0, h1 = _bin_edges(np, rois[:, 2], rois[:, 4], scale, pooled_h, h)
    w0, w1 = _bin_edges(np, rois[:, 1], rois[:, 3], scale, pooled_w, w)
    batch = rois[:, 0].astype(np.int64)
    y = np.empty((len(rois), c, pooled_h, pooled_w), features.dtype)  # kernel sets all
    argmax = np.empty(y.shape, np.int32)
    if y.size:
        # channels-last once per call, so the kernel's inner loop is contiguous
        x_nhwc = np.ascontiguousarray(features.transpose(0, 2, 3, 1))
        with kernel_threads(y.size):
            _pool_forward_kernel(x_nhwc, batch, h0, h1, w0, w1, y, argmax)
    cache = {"argmax": argmax, "batch": batch, "h0": h0, "h1": h1, "w0": w0, "w1": w1,
             "features_shape": features.shape, "dtype": features.dtype}
    return y, cache


def _forward_gpu(features, rois, pooled, scale):
    """roi_pool_forward on CuPy arrays: one kernel, which computes each
    bin's edges itself (the CPU's ``_bin_edges``, bit for bit) and flags
    rows the CPU would refuse; no other device work but three allocations
    and the flag's check."""
    from ..cuda import roi_pool_kernel  # imports numba.cuda: GPU path only
    from ..cuda.launch import contiguous
    xp = get_array_module(features)
    y = xp.empty((rois.shape[0], features.shape[1]) + pooled, features.dtype)
    argmax = xp.empty(y.shape, np.int32)
    if y.size:
        bad = xp.zeros(1, np.int32)
        roi_pool_kernel.forward(contiguous(xp, features), rois,
                                features.dtype.type(scale), y, argmax, bad)
        check_roi_values(rois, features.shape[0], flag=bad)
    else:
        check_roi_values(rois, features.shape[0])
    cache = {"argmax": argmax, "rois": rois, "features_shape": features.shape,
             "dtype": features.dtype}
    return y, cache


def roi_pool_backward(dy, cache):
    """Gradient of :func:`roi_pool_forward` with respect to the features.

    Parameters
    ----------
    dy : ndarray, (R, C, PH, PW) float32 or float64
        Upstream gradient, the forward output's dtype.
    cache : dict
        From :func:`roi_pool_forward`.

    Returns
    -------
    dfeatures : ndarray, (N, C, H, W), dy's dtype
        Each ``dy`` entry added to the element its bin's maximum came from
        (summed where bins or RoIs share a maximum); zero elsewhere.
    """
    argmax = cache["argmax"]
    gpu = check_backward_args(dy, argmax, argmax.shape, cache["dtype"])
    n, c, h, w = cache["features_shape"]
    if gpu:
        from ..cuda import roi_pool_kernel
        from ..cuda.launch import contiguous
        xp = get_array_module(dy)
        dx = xp.zeros((n, c, h, w), dy.dtype)  # the kernel adds into it
        if dy.size:
            roi_pool_kernel.backward(contiguous(xp, dy), argmax, cache["rois"], dx)
        return dx
    dx = np.zeros((n, c, h * w), dy.dtype)
    if dy.size:
        with kernel_threads(dy.size):
            _pool_backward_kernel(np.ascontiguousarray(dy), argmax, cache["batch"], dx)
    return dx.reshape(n, c, h, w)
