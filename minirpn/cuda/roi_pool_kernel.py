"""RoI max pooling on the GPU: one thread per output (forward) and per
feature element (backward).

The bin edges (two quantisations, :func:`minirpn.nn.roi_pool._bin_edges`)
are computed once per call with ``xp`` on the device, so the kernels only
take maxima and move gradients; the results equal the CPU kernels' exactly.

Forward: thread (r, c, ph, pw) scans its bin in row-major order with a
strict ``>`` (the first of equal values wins), starting from -FLT_MAX; an
empty bin outputs 0 with argmax -1.

Backward, a gather without atomics (as Caffe's original RoI pooling layer):
thread (n, c, h, w) visits the RoIs of image n in order, skips those whose
bins do not cover (h, w), and sums ``dy`` over the bins whose argmax is its
own index h * W + w. It reads more than a scatter would, but it writes each
element once, so no two threads race, the result does not depend on thread
timing, and each element adds its terms in the CPU kernel's order (RoIs,
then bins, row-major): bit-identical gradients.
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
def _backward_kernel(dy, argmax, batch, h0, h1, w0, w1, zero, dx):
    k = cuda.grid(1)
    if k >= dx.size:
        return
    n, c, h, w = unravel4(k, dx.shape)
    n_rois, _, pooled_h, pooled_w = dy.shape
    flat = h * dx.shape[3] + w  # as the forward's argmax: h * W + w
    total = zero
    for r in range(n_rois):
        # bin edges grow with the bin index: the first and last bins bound the RoI
        if batch[r] != n or h < h0[r, 0] or h >= h1[r, pooled_h - 1] \
                or w < w0[r, 0] or w >= w1[r, pooled_w - 1]:
            continue
        for ph in range(pooled_h):
            if h0[r, ph] <= h < h1[r, ph]:
                for pw in range(pooled_w):
                    if w0[r, pw] <= w < w1[r, pw] and argmax[r, c, ph, pw] == flat:
                        total += dy[r, c, ph, pw]
    dx[n, c, h, w] = total


def forward(features, batch, h0, h1, w0, w1, lowest, y, argmax):
    """Fill ``y`` and ``argmax`` (R, C, PH, PW) from (N, C, H, W) ``features``.

    ``batch`` (R,) int64; ``h0, h1`` (R, PH) and ``w0, w1`` (R, PW) int32 bin
    edges (end exclusive, clipped to the map); ``lowest`` the dtype's start
    value -FLT_MAX. All arrays on one device, C-contiguous.
    """
    launch(_forward_kernel, blocks_for(y.size), THREADS, features, batch,
           h0, h1, w0, w1, lowest, features.dtype.type(0), y, argmax)


def backward(dy, argmax, batch, h0, h1, w0, w1, dx):
    """Fill ``dx`` (N, C, H, W) with the gradient of :func:`forward`; every
    element is written (no need to zero it first)."""
    launch(_backward_kernel, blocks_for(dx.size), THREADS, dy, argmax, batch,
           h0, h1, w0, w1, dy.dtype.type(0), dx)
