"""The fast NumPy path of conv2d: im2col one band of output rows at a time.

:mod:`minirpn.nn.conv` unrolls the whole input into a (K, P) matrix and
multiplies once. At 600x1000 that matrix is 1.4 GB for VGG16's conv1_2:
every byte is written to fresh memory (page faults), read back by BLAS, and
kept for the backward pass. Here the output rows are cut into bands whose
unrolled columns take at most ``_BAND_BYTES``; one reused buffer holds the
band, and nothing but ``x`` (which the layer before keeps
anyway) is cached for the backward pass, which rebuilds the bands.
Chellapilla et al. 2006 unroll the whole input, as Caffe does per image;
bounding the unrolled buffer is the low-memory GEMM convolution of
Anderson et al. 2017 ("Low-memory GEMM-based convolution algorithms for
deep neural networks").

The unrolling (:func:`_unroll_kernel`) and its adjoint (:func:`_fold_kernel`)
are serial numba kernels that read the padding as zeros instead of building
a padded copy of x. BLAS uses the cores for the products; the kernels stay
serial on purpose: called between BLAS products, a numba (OpenMP) thread
pool spins against OpenBLAS's (figures in benchmarks/README.md).

Shape symbols as in :mod:`minirpn.nn.conv`. A band is output rows
[r0, r1) of one image n; it reads padded input rows
[r0*SH, (r1 - 1)*SH + KH). Every function here takes and returns numpy
arrays only; CuPy arrays take the whole-matrix path of :mod:`.conv`.

- forward:  y[n, :, band] = [w2 | b] @ cols(band)           (F, K+1) @ (K+1, B)
- dw, db:   [dw2 | db] += dy[n, :, band] @ cols(band).T      (F, B) @ (B, K+1)
- dx, stride 1: a forward conv of dy with the flipped, transposed filters
  ``w[f, c, KH-1-i, KW-1-j]`` and padding ``K-1-p`` (the adjoint of a
  stride-1 correlation is a full correlation with the flipped kernel), so
  it is banded the same way; when C < F, ``dcols = w2.T @ dy`` by bands and
  scattered back (col2im) is cheaper, its columns being only C*KH*KW long.
- dx, other strides: banded ``dcols`` and col2im.
"""
import numpy as np

from ..jit import njit


__all__ = ["conv2d_forward_bands", "conv2d_backward_bands"]

#: Bytes of one band's unrolled columns: large enough that BLAS threads,
#: which meet once per product, are not starved by small products, small
#: enough that the band is still in cache when BLAS reads it back (figures
#: in benchmarks/README.md); a hundredth of VGG16's conv1_2 im2col matrix
#: at 600x1000.
_BAND_BYTES = 16 << 20


def _band_rows(K, OW, itemsize):
    """Output rows per band so that (K + 1, rows*OW) fits _BAND_BYTES."""
    return max(1, _BAND_BYTES // ((K + 1) * OW * itemsize))


def _bands(OH, rows):
    return [(r0, min(OH, r0 + rows)) for r0 in range(0, OH, rows)]


@njit(error_model="numpy")
def _unroll_kernel(x, r0, r1, KH, KW, sh, sw, ph, pw, cols):
    """cols[(c*KH + i)*KW + j, (r - r0)*OW + ow] = xpad[c, r*sh + i, ow*sw + j]
    for output rows r in [r0, r1) of one image x (C, H, W); zero where the
    tap reads padding."""
    C, H, W = x.shape
    OW = cols.shape[1] // (r1 - r0)
    for k in range(C * KH * KW):
        c, i, j = k // (KH * KW), (k // KW) % KH, k % KW
        lo = max(0, (pw - j + sw - 1) // sw)
        hi = max(lo, min(OW, (W - 1 - j + pw) // sw + 1))
        for r in range(r0, r1):
            h, base = r * sh + i - ph, (r - r0) * OW
            if h < 0 or h >= H:
                cols[k, base:base + OW] = 0
                continue
            cols[k, base:base + lo] = 0
            if sw == 1:  # a contiguous run: copied as one block
                cols[k, base + lo:base + hi] = x[c, h, lo + j - pw:hi + j - pw]
            else:
                for ow in range(lo, hi):
                    cols[k, base + ow] = x[c, h, ow * sw + j - pw]
            cols[k, base + hi:base + OW] = 0


@njit(error_model="numpy")
def _fold_kernel(dcols, r0, r1, KH, KW, sh, sw, ph, pw, dx):
    """Adjoint of :func:`_unroll_kernel`: add dcols (C*KH*KW, B) back onto
    one image's dx (C, H, W), skipping the padding."""
    C, H, W = dx.shape
    OW = dcols.shape[1] // (r1 - r0)
    for c in range(C):
        for i in range(KH):
            for j in range(KW):
                k = (c * KH + i) * KW + j
                lo = max(0, (pw - j + sw - 1) // sw)
                hi = max(lo, min(OW, (W - 1 - j + pw) // sw + 1))
                for r in range(r0, r1):
                    h, base = r * sh + i - ph, (r - r0) * OW
                    if 0 <= h < H and sw == 1:
                        dx[c, h, lo + j - pw:hi + j - pw] += dcols[k, base + lo:base + hi]
                    elif 0 <= h < H:
                        for ow in range(lo, hi):
                            dx[c, h, ow * sw + j - pw] += dcols[k, base + ow]


class _Unroller:
    """Builds cols(band) (K + 1, B) of one image into one reused buffer,
    its last row all ones (the bias row)."""

    def __init__(self, x, kernel, stride, padding, out_size, rows):
        self.x, self.kernel, self.stride, self.padding = x, kernel, stride, padding
        self.OW = out_size[1]
        K = x.shape[1] * kernel[0] * kernel[1]
        self.cols = np.empty((K + 1, rows * self.OW), dtype=x.dtype)
        self.cols[-1] = 1

    def __call__(self, n, r0, r1):
        """cols of output rows [r0, r1) of image n: a view (K + 1, B)."""
        cols = self.cols[:, :(r1 - r0) * self.OW]
        _unroll_kernel(self.x[n], r0, r1, *self.kernel, *self.stride,
                       *self.padding, cols[:-1])
        return cols


def conv2d_forward_bands(x, w, b, stride, padding, out_size):
    """y (N, F, OH, OW) = conv(x, w) + b, band by band; no cache is made."""
    x = np.ascontiguousarray(x)
    N, C = x.shape[:2]
    F, _, KH, KW = w.shape
    OH, OW = out_size
    K = C * KH * KW
    wb = np.concatenate([w.reshape(F, K), b[:, None]], axis=1)
    y = np.empty((N, F, OH * OW), dtype=x.dtype)
    rows = _band_rows(K, OW, x.itemsize)
    unroll = _Unroller(x, (KH, KW), stride, padding, out_size, rows)
    for n in range(N):
        for r0, r1 in _bands(OH, rows):
            np.matmul(wb, unroll(n, r0, r1), out=y[n, :, r0 * OW:r1 * OW])
    return y.reshape(N, F, OH, OW)


def _flipped(w):
    """(C, F, KH, KW) filters of the adjoint correlation, contiguous."""
    return np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))


def _dx_by_adjoint(dy, w, x_shape, padding):
    """dx of a stride-1 conv as a banded conv of dy with flipped filters."""
    KH, KW = w.shape[2:]
    zero = np.zeros(w.shape[1], dtype=dy.dtype)
    # Output size: OH + 2*(KH - 1 - ph) - KH + 1 = H, since OH = H + 2*ph - KH + 1.
    pad = (KH - 1 - padding[0], KW - 1 - padding[1])
    return conv2d_forward_bands(dy, _flipped(w), zero, (1, 1), pad, x_shape[2:])


def _dx_by_col2im(dy, w, x_shape, stride, padding):
    """dx by banded ``dcols = w2.T @ dy`` folded back onto x (col2im)."""
    N, C, H, W = x_shape
    F, _, KH, KW = w.shape
    OH, OW = dy.shape[2:]
    K = C * KH * KW
    w2t = w.reshape(F, K).T
    dx = np.zeros(x_shape, dtype=dy.dtype)
    rows = _band_rows(K, OW, dy.itemsize)
    dcols = np.empty((K, rows * OW), dtype=dy.dtype)
    dy3 = dy.reshape(N, F, OH * OW)
    for n in range(N):
        for r0, r1 in _bands(OH, rows):
            band = dcols[:, :(r1 - r0) * OW]
            np.matmul(w2t, dy3[n, :, r0 * OW:r1 * OW], out=band)
            _fold_kernel(band, r0, r1, KH, KW, *stride, *padding, dx[n])
    return dx


def conv2d_backward_bands(dy, x, w, stride, padding, need_dx=True):
    """(dx, dw, db) of :func:`conv2d_forward_bands`, rebuilding the bands
    of x instead of reading a cached im2col matrix; dx is None when
    ``need_dx`` is False."""
    x = np.ascontiguousarray(x)
    N, C = x.shape[:2]
    F, _, KH, KW = w.shape
    OH, OW = dy.shape[2:]
    K = C * KH * KW
    dy3 = np.ascontiguousarray(dy).reshape(N, F, OH * OW)
    rows = _band_rows(K, OW, x.itemsize)
    unroll = _Unroller(x, (KH, KW), stride, padding, (OH, OW), rows)
    dwb = np.zeros((F, K + 1), dtype=x.dtype)
    part = np.empty_like(dwb)
    for n in range(N):
        for r0, r1 in _bands(OH, rows):
            np.matmul(dy3[n, :, r0 * OW:r1 * OW], unroll(n, r0, r1).T, out=part)
            dwb += part
    if not need_dx:
        dx = None
    elif stride == (1, 1) and C >= F and KH > padding[0] and KW > padding[1]:
        dx = _dx_by_adjoint(dy, w, x.shape, padding)
    else:
        dx = _dx_by_col2im(dy, w, x.shape, stride, padding)
    return dx, dwb[:, :K].reshape(w.shape), dwb[:, K].copy()
