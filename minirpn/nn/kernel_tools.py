"""Helpers of the numba RoI kernels: thread control and a tiled transpose.

They serve the fast paths of :mod:`minirpn.nn.roi_pool` and
:mod:`minirpn.nn.roi_align` (and the transpose also the im2col conv's dw,
:mod:`minirpn.nn.conv`); the reference loops of :mod:`minirpn.nn.reference`
need neither.
"""
import contextlib

import numba

from ..jit import njit

__all__ = ["kernel_threads", "transpose_into"]


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
