"""RoI max pooling on the GPU: one thread per output, forward and backward.

One launch each way and no other device work, as torchvision's CUDA RoI
pool (``roi_pool_forward_kernel_impl``): thread (r, c, ph, pw) reads RoI r's
row itself and computes its own bin, with the CPU's rules and rounding
(:func:`minirpn.nn.roi_pool._bin_edges`: products and roundings in the
input dtype T, :func:`~.launch.mul_rn` against fused multiply-adds, the
cell arithmetic in float64, then the clip). An earlier version computed the
bin edges with some 70 small CuPy operations per call, which on an H200
cost ten times the kernels themselves.

Forward: the thread scans its bin in row-major order with a strict ``>``
(the first of equal values wins), starting from -FLT_MAX; an empty bin
outputs 0 with argmax -1. A row that the CPU would refuse (a non-finite
coordinate, a batch index that is not an integer in [0, N)) is never read
from: its outputs are 0 with argmax -1, and the kernel sets ``bad[0] = 1``
so that the caller raises the CPU's error (at once, or at the end of a
training step: :func:`minirpn.checks.deferred_device_checks`).

Backward, a scatter with atomics, as torchvision's CUDA RoI pool
(``roi_pool_backward_kernel_impl``, ``atomicAdd`` at the argmax): thread
(r, c, ph, pw) adds its ``dy`` to the element its bin's maximum came from,
using the forward's argmax as it is. Where bins or RoIs share a maximum
their terms meet in an order set by thread timing, so the sums may differ
from the CPU's in the last bit.
"""
import numpy as np

from .device import roi_row_ok, unravel4
from .launch import (THREADS, blocks_for, float_floor, float_ceil, float_trunc, launch,
                     mul_rn, numba_cuda)

__all__ = ["forward", "backward"]

cuda = numba_cuda()


@cuda.jit(device=True)
def _cell(rois, r, k, scale):
    """C's round(rois[r, k] * scale), halves away from zero, in T (the CPU's
    ``_round_half_away``), returned as float64."""
    T = rois.dtype.type
    v = mul_rn(rois[r, k], scale)
    t = float_trunc(v)  # v - t is exact
    if abs(v - t) >= 0.5:
        t = t + T(1) if v > 0 else t - T(1)
    return np.float64(t)


@cuda.jit(device=True)
def _bin(rois, r, k_lo, k_hi, scale, p, pooled, size):
    """Bin p's first and end (exclusive) cell along one axis, clipped to
    [0, size]: the CPU's ``_bin_edges`` for RoI r, its coordinates in
    columns k_lo and k_hi of ``rois``."""
    T = rois.dtype.type
    start = _cell(rois, r, k_lo, scale)  # integers, in float64 to add exactly
    length = _cell(rois, r, k_hi, scale) - start + 1.0
    if length < 1.0:  # a malformed RoI becomes one cell
        length = 1.0
    bin_size = T(length) / T(pooled)  # in T, as torchvision
    first = np.float64(float_floor(mul_rn(T(p), bin_size))) + start
    last = np.float64(float_ceil(mul_rn(T(p + 1), bin_size))) + start
    return _clip(first, size), _clip(last, size)


@cuda.jit(device=True)
def _clip(v, size):
    if v < 0.0:
        return 0
    if v > size:
        return size
    return int(v)


@cuda.jit
def _forward_kernel(x, rois, scale, lowest, y, argmax, bad):
    k = cuda.grid(1)
    if k >= y.size:
        return
    r, c, ph, pw = unravel4(k, y.shape)
    n, height, width = x.shape[0], x.shape[2], x.shape[3]
    if not roi_row_ok(rois, r, n):  # never read with it; the caller raises
        bad[0] = 1
        y[r, c, ph, pw] = 0
        argmax[r, c, ph, pw] = -1
        return
    b = int(rois[r, 0])
    h0, h1 = _bin(rois, r, 2, 4, scale, ph, y.shape[2], height)
    w0, w1 = _bin(rois, r, 1, 3, scale, pw, y.shape[3], width)
    best = lowest
    if h1 <= h0 or w1 <= w0:
        best = x.dtype.type(0)  # empty bin: 0, and no gradient
    where = -1
    for hh in range(h0, h1):
        for ww in range(w0, w1):
            v = x[b, c, hh, ww]
            if v > best:  # strict: the first maximum in row-major order wins
                best, where = v, hh * width + ww
    y[r, c, ph, pw] = best
    argmax[r, c, ph, pw] = where


@cuda.jit
def _backward_kernel(dy, argmax, rois, dx):
    k = cuda.grid(1)
    if k >= dy.size:
        return
    r, c, ph, pw = unravel4(k, dy.shape)
    where = argmax[r, c, ph, pw]
    if where < 0:  # an empty bin (or a refused row) passes no gradient
        return
    width = dx.shape[3]
    cuda.atomic.add(dx, (int(rois[r, 0]), c, where // width, where % width), dy[r, c, ph, pw])


def forward(features, rois, scale, y, argmax, bad):
    """Fill ``y`` and ``argmax`` (R, C, PH, PW) from (N, C, H, W) ``features``.

    ``rois`` (R, 5) in the features' dtype T; ``scale`` the spatial scale as
    a T scalar; ``bad`` (1,) int32, set to 1 if a row of ``rois`` fails the
    CPU's checks (and left alone otherwise). All arrays on one device,
    ``features``, ``y`` and ``argmax`` C-contiguous.
    """
    lowest = features.dtype.type(-_FLT_MAX)  # torchvision's start, any dtype
    launch(_forward_kernel, blocks_for(y.size), THREADS, features, rois, scale, lowest,
           y, argmax, bad)


def backward(dy, argmax, rois, dx):
    """Add the gradient of :func:`forward` into ``dx`` (N, C, H, W), which
    must start at zero: ``dy`` (R, C, PH, PW) at each bin's ``argmax``
    (flat ``h * W + w``, -1 for none) in image ``rois[:, 0]``."""
    launch(_backward_kernel, blocks_for(dy.size), THREADS, dy, argmax, rois, dx)


_FLT_MAX = float(np.finfo(np.float32).max)
