"""RoI max pooling on the GPU: one thread per output (forward) and per
feature element (backward).

The bin edges (two quantisations, :func:`minirpn.nn.roi_pool._bin_edges`)
are computed once per call with ``xp`` on the device, so the kernels only
take maxima and move gradients; the results equal the CPU kernels' exactly.

Forward: thread (r, c, ph, pw) scans its bin in row-major order with a
strict ``>`` (the first of equal values wins), starting from -FLT_MAX; an
empty bin outputs 0 with argmax -1.

Backward, a scatter with atomics, as torchvision's CUDA RoI pool
(``roi_pool_backward_kernel_impl``, ``atomicAdd`` at the argmax): thread
(r, c, ph, pw) adds its ``dy`` to the element its bin's maximum came from.
Each thread does one read and one add. Where bins or RoIs share a maximum
their terms meet in an order set by thread timing, so the sums may differ
from the CPU's in the last bit. An earlier gather without atomics (one
thread per feature element visiting every RoI) was bit-identical to the CPU
but 22x torchvision's time on an H200 (300 RoIs on 512x38x63).
"""
from .device import unravel4
from .launch import THREADS, blocks_for, launch, numba_cuda

__all__ = ["forward", "backward"]

cuda = numba_cuda()


@cuda.jit
def _forward_kernel(x, batch, h0, h1, w0, w1, lowest, zero, y, argmax):
    k = cuda.grid(1)
    if k >= y.size:
        return
    r, c, ph, pw = unravel4(k, y.shape)
    b, width = batch[r], x.shape[3]
    empty = h1[r, ph] <= h0[r, ph] or w1[r, pw] <= w0[r, pw]
    best = zero if empty else lowest  # empty bin: 0, and no gradient
    where = -1
    for hh in range(h0[r, ph], h1[r, ph]):
        for ww in range(w0[r, pw], w1[r, pw]):
            v = x[b, c, hh, ww]
            if v > best:  # strict: the first maximum in row-major order wins
                best, where = v, hh * width + ww
    y[r, c, ph, pw] = best
    argmax[r, c, ph, pw] = where


@cuda.jit
def _backward_kernel(dy, argmax, batch, dx):
    k = cuda.grid(1)
    if k >= dy.size:
        return
    r, c, ph, pw = unravel4(k, dy.shape)
    where = argmax[r, c, ph, pw]
    if where < 0:  # an empty bin passes no gradient
        return
    width = dx.shape[3]
    cuda.atomic.add(dx, (batch[r], c, where // width, where % width), dy[r, c, ph, pw])


def forward(features, batch, h0, h1, w0, w1, lowest, y, argmax):
    """Fill ``y`` and ``argmax`` (R, C, PH, PW) from (N, C, H, W) ``features``.

    ``batch`` (R,) int64; ``h0, h1`` (R, PH) and ``w0, w1`` (R, PW) int32 bin
    edges (end exclusive, clipped to the map); ``lowest`` the dtype's start
    value -FLT_MAX. All arrays on one device, C-contiguous.
    """
    launch(_forward_kernel, blocks_for(y.size), THREADS, features, batch,
           h0, h1, w0, w1, lowest, features.dtype.type(0), y, argmax)


def backward(dy, argmax, batch, dx):
    """Add the gradient of :func:`forward` into ``dx`` (N, C, H, W), which
    must start at zero: ``dy`` (R, C, PH, PW) at each bin's ``argmax``
    (flat ``h * W + w``, -1 for none) in image ``batch`` (R,) int64."""
    launch(_backward_kernel, blocks_for(dy.size), THREADS, dy, argmax, batch, dx)
