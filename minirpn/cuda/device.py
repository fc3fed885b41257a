"""Device functions shared by the one-thread-per-element kernels of
:mod:`minirpn.cuda` (compiled into each kernel that calls them)."""
from .launch import float_floor, numba_cuda

__all__ = ["unravel4", "roi_row_ok"]

cuda = numba_cuda()


@cuda.jit(device=True)
def unravel4(k, shape):
    """Thread ``k``'s element ``(i0, i1, i2, i3)`` of a C-contiguous 4-d array
    of ``shape``: row-major, so consecutive threads read consecutive
    elements of the last axis."""
    d1, d2, d3 = shape[1], shape[2], shape[3]
    return k // (d3 * d2 * d1), (k // (d3 * d2)) % d1, (k // d3) % d2, k % d3


@cuda.jit(device=True)
def roi_row_ok(rois, r, n):
    """Whether RoI row ``r`` passes the CPU's checks (``check_roi_values``):
    finite, with an integral batch index in [0, n)."""
    for k in range(5):
        v = rois[r, k]
        if not (v - v == 0):  # inf - inf and NaN - NaN are NaN
            return False
    b = rois[r, 0]
    return b == float_floor(b) and b >= 0 and b < n
