"""2-D max pooling on the GPU: one thread per output (forward), one thread
per input element (backward).

The xp version in :mod:`minirpn.nn.pooling` takes the maximum one window
offset at a time and then asks the host whether any window holds a NaN:
about a dozen CuPy kernels and one device-to-host wait per call. These two
kernels do the same maths in one launch each and never wait for the device.

Forward: thread (n, c, oh, ow) scans its window in row-major order; a
strict ``>`` keeps the first maximum, and the first NaN ends the scan (the
output is NaN, as in PyTorch). Its flat offset in the window is the argmax
(int8, or int32 for windows over 127 elements), as on the CPU.

Backward, a gather without atomics: thread (n, c, h, w) visits the windows
that cover it in the CPU's order of offsets and adds ``dy`` of those whose
argmax is itself, so overlapping windows add up in the CPU's order and the
gradient is the CPU's bit for bit.
"""
from .device import unravel4
from .launch import THREADS, blocks_for, launch, numba_cuda

__all__ = ["forward", "backward"]

cuda = numba_cuda()


@cuda.jit
def _max_forward_kernel(x, kh, kw, sh, sw, y, arg):
    k = cuda.grid(1)
    if k >= y.size:
        return
    n, c, oh, ow = unravel4(k, y.shape)
    top, left = oh * sh, ow * sw
    best = x[n, c, top, left]
    where = 0
    if best == best:  # not NaN: scan the rest of the window
        for o in range(1, kh * kw):
            v = x[n, c, top + o // kw, left + o % kw]
            if v != v:  # the first NaN is the maximum
                best, where = v, o
                break
            if v > best:  # strict: the first maximum in row-major order wins
                best, where = v, o
    y[n, c, oh, ow] = best
    arg[n, c, oh, ow] = where


@cuda.jit
def _max_backward_kernel(dy, arg, kh, kw, sh, sw, zero, dx):
    k = cuda.grid(1)
    if k >= dx.size:
        return
    n, c, h, w = unravel4(k, dx.shape)
    out_h, out_w = dy.shape[2], dy.shape[3]
    total = zero
    for i in range(kh):
        if h - i < 0 or (h - i) % sh != 0 or (h - i) // sh >= out_h:
            continue
        oh = (h - i) // sh
        for j in range(kw):
            if w - j < 0 or (w - j) % sw != 0 or (w - j) // sw >= out_w:
                continue
            ow = (w - j) // sw
            if arg[n, c, oh, ow] == i * kw + j:
                total += dy[n, c, oh, ow]
    dx[n, c, h, w] = total


def forward(x, kernel, stride, y, arg):
    """Fill ``y`` (N, C, OH, OW) and ``arg`` (same shape, int8 or int32)
    from ``x`` (N, C, H, W); ``kernel`` and ``stride`` are (int, int).
    All arrays on one device, C-contiguous."""
    launch(_max_forward_kernel, blocks_for(y.size), THREADS, x, kernel[0], kernel[1],
           stride[0], stride[1], y, arg)


def backward(dy, arg, kernel, stride, dx):
    """Fill ``dx`` (N, C, H, W) with the gradient of :func:`forward`; every
    element is written (no need to zero it first)."""
    launch(_max_backward_kernel, blocks_for(dx.size), THREADS, dy, arg, kernel[0], kernel[1],
           stride[0], stride[1], dy.dtype.type(0), dx)
