"""The fast NumPy path of stride-1 conv2d on large maps: one matrix product
per kernel tap, summed in place, and no im2col matrix at all.

Pad each image once into ``xpad`` (C, Hp + 1, Wp) and see every channel as
one flat row. Output pixel (r, c) reads the padded input at (r + i, c + j)
for kernel tap (i, j), i.e. at flat position ``p + i*Wp + j`` with
``p = r*Wp + c``. So if the output is laid out "wide", (F, OH*Wp), with
Wp - OW junk columns at the end of each row (they read across the row's
end and are dropped), every tap reads ONE contiguous window of the flat
rows, a strided view (C, OH*Wp) of ``xpad``, and

    y_wide = b + sum_ij  w[:, :, i, j] @ window_ij(xpad)          (1)

is KH*KW products (F, C) @ (C, P) summed into one buffer by
:func:`.blas.gemm_add`. The backward pass is the same two ways round,
with dy laid out wide and zero in the junk columns:

    dw[:, :, i, j]        = dy_wide @ window_ij(xpad).T           (2)
    window_ij(dxpad)     += w[:, :, i, j].T @ dy_wide              (3)

(3) is the adjoint of (1): each tap adds its product back at the shift it
read from. This is the accumulating "kn2row" convolution of Vasudevan,
Anderson and Gregg 2017 ("Parallel multi channel convolution using general
matrix multiplication") and Anderson et al. 2017 ("Low-memory GEMM-based
convolution algorithms for deep neural networks"). Against
:mod:`.conv_bands` it skips the unrolling, a serial copy of KH*KW times the
input that BLAS then reads back; on 2 cores the paper network's
training step takes about 6% less time (figures in benchmarks/README.md). The products have only C (or
F) as their inner size, so thin inputs (an RGB image) and small maps stay
on the other paths (:func:`minirpn.nn.conv._choose_path`).

Everything runs one band of output rows at a time, so that the band of
y_wide (or dy_wide) stays in cache across the KH*KW products. Only x is
cached for the backward pass, as in :mod:`.conv_bands`. NumPy arrays only.
"""
import numpy as np

from .blas import gemm_add
from .conv_bands import _bands

__all__ = ["conv2d_forward_taps", "conv2d_backward_taps"]

#: Bytes of one band: its rows of the input window and of the wide output.
#: 4 to 64 MB run alike on 2 cores at VGG16's sizes; 8 MB stays in L2/L3.
_BAND_BYTES = 8 << 20


def _band_rows(channels, Wp, itemsize):
    """Output rows per band: (C + F) * rows * Wp elements in _BAND_BYTES."""
    return max(1, _BAND_BYTES // (channels * Wp * itemsize))


def _padded_rows(image, padding):
    """(C, H, W) -> (C, (Hp + 1)*Wp): zero-padded, one spare zero row (the
    last tap's window runs KW - 1 past the last padded row), then each
    channel flat."""
    C, H, W = image.shape
    ph, pw = padding
    xpad = np.zeros((C, H + 2 * ph + 1, W + 2 * pw), dtype=image.dtype)
    xpad[:, ph:ph + H, pw:pw + W] = image
    return xpad.reshape(C, -1)


def _window(rows, r0, r1, i, j, Wp):
    """Tap (i, j)'s window for output rows [r0, r1): (C, (r1 - r0)*Wp)."""
    start = (r0 + i) * Wp + j
    return rows[:, start:start + (r1 - r0) * Wp]


def _taps(w):
    """(F, C, KH, KW) -> (KH, KW, F, C): tap (i, j) is one (F, C) matrix."""
    return np.ascontiguousarray(w.transpose(2, 3, 0, 1))


def conv2d_forward_taps(x, w, b, padding, out_size):
    """y (N, F, OH, OW) = conv(x, w) + b at stride 1, by (1); no cache."""
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    OH, OW = out_size
    Wp = W + 2 * padding[1]
    taps = _taps(w)
    y = np.empty((N, F, OH, OW), dtype=x.dtype)
    rows = _band_rows(C + F, Wp, x.itemsize)
    wide = np.empty((F, rows * Wp), dtype=x.dtype)
    for n in range(N):
        xrows = _padded_rows(x[n], padding)
        for r0, r1 in _bands(OH, rows):
            out = wide[:, :(r1 - r0) * Wp]
            for i in range(KH):
                for j in range(KW):  # the first product overwrites: beta = 0
                    gemm_add(taps[i, j], _window(xrows, r0, r1, i, j, Wp), out,
                             beta=0.0 if i == j == 0 else 1.0)
            # drop the junk columns and add the bias in one pass
            np.add(out.reshape(F, r1 - r0, Wp)[:, :, :OW], b[:, None, None],
                   out=y[n, :, r0:r1])
    return y


def conv2d_backward_taps(dy, x, w, padding, need_dx=True):
    """(dx, dw, db) of :func:`conv2d_forward_taps` by (2) and (3); dx is
    None when ``need_dx`` is False."""
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    OH, OW = dy.shape[2:]
    ph, pw = padding
    Wp = W + 2 * pw
    taps = _taps(w)
    dtaps = np.zeros((KH, KW, F, C), dtype=x.dtype)
    dx = np.empty(x.shape, dtype=x.dtype) if need_dx else None
    rows = _band_rows(C + F, Wp, x.itemsize)
    for n in range(N):
        xrows = _padded_rows(x[n], padding)
        dy_wide = np.zeros((F, OH, Wp), dtype=dy.dtype)
        dy_wide[:, :, :OW] = dy[n]
        dy_wide = dy_wide.reshape(F, -1)
        dxrows = np.zeros_like(xrows) if need_dx else None
        for r0, r1 in _bands(OH, rows):
            g = dy_wide[:, r0 * Wp:r1 * Wp]
            for i in range(KH):
                for j in range(KW):
                    gemm_add(g, _window(xrows, r0, r1, i, j, Wp).T, dtaps[i, j])
                    if need_dx:
                        gemm_add(taps[i, j].T, g, _window(dxrows, r0, r1, i, j, Wp))
        if need_dx:
            dx[n] = dxrows.reshape(C, -1, Wp)[:, ph:ph + H, pw:pw + W]
    dw = np.ascontiguousarray(dtaps.transpose(2, 3, 0, 1))
    return dx, dw, dy.sum(axis=(0, 2, 3))
