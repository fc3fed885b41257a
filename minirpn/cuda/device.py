"""Device functions shared by the one-thread-per-element kernels of
:mod:`minirpn.cuda` (compiled into each kernel that calls them)."""
from .launch import numba_cuda

__all__ = ["unravel4"]

cuda = numba_cuda()


@cuda.jit(device=True)
def unravel4(k, shape):
    """Thread ``k``'s element ``(i0, i1, i2, i3)`` of a C-contiguous 4-d array
    of ``shape``: row-major, so consecutive threads read consecutive
    elements of the last axis."""
    d1, d2, d3 = shape[1], shape[2], shape[3]
    return k // (d3 * d2 * d1), (k // (d3 * d2)) % d1, (k // d3) % d2, k % d3
