"""The fast NumPy path of "same-width" stride-1 conv2d on large maps: one
matrix product per kernel tap, summed in place, with no im2col matrix and
no padded copy of anything.

See each image's channels as flat rows, x2 (C, H*W) and y2 (F, OH*W). When
the output is as wide as the input (OW = W, i.e. 2*pad_w = KW - 1, as in
every 3x3 conv of VGG16 and the RPN), output pixel p = r*W + c reads, for
kernel tap (i, j), the input at flat position

    p + d_ij,     d_ij = (i - pad_h)*W + (j - pad_w).

So every tap reads ONE contiguous window of x2, shifted by d_ij, for a
contiguous range of output pixels, and

    y2[:, p] = b + sum_ij  w[:, :, i, j] @ x2[:, p + d_ij]            (1)

is KH*KW products (F, C) @ (C, P) added straight into y by
:func:`.blas.gemm_add`. The backward pass is the same two ways round:

    dw[:, :, i, j]     += dy2[:, p] @ x2[:, p + d_ij].T               (2)
    dx2[:, p + d_ij]   += w[:, :, i, j].T @ dy2[:, p]                 (3)

(3) is the adjoint of (1): each tap adds its product back at the shift it
read from. This is the accumulating "kn2row" convolution of Vasudevan,
Anderson and Gregg 2017 ("Parallel multi channel convolution using general
matrix multiplication") and Anderson et al. 2017 ("Low-memory GEMM-based
convolution algorithms for deep neural networks").

The zero padding is never built; two rules stand in for it:

- rows: tap (i, j) is summed only over the output rows whose input row
  r + i - pad_h exists, and its window is clipped to x2's ends;
- columns: in the first and last ``pad_w`` columns some taps read
  across a row's end, i.e. the last pixels of the row above or the first
  of the row below, instead of the padding. The products of (1) and (3)
  run across them anyway (one contiguous window is what makes them fast),
  and those few edge columns of y and dx are then computed again exactly
  (:func:`_edges`, one small product per tap) and overwritten. In (2) the
  wrapped pixels' terms are taken back out of dw (:func:`_wrapped`).

Against the "bands" path (:mod:`.conv_bands`) this skips the unrolling, a
serial copy of KH*KW times the input that BLAS reads back; against a
padded, "wide" layout it skips the padded copy of x (and dy), the copy of
the result out of a scratch buffer, and the padded dx. Figures in
benchmarks/README.md. The products have only C (or F) as their inner size,
so thin inputs (an RGB image) and small maps stay on the other paths
(:func:`minirpn.nn.conv._choose_path`).

Everything runs one band of output rows at a time, so that the band of y
(or dy) stays in cache across the KH*KW products. Only x is cached for the
backward pass, as in :mod:`.conv_bands`. NumPy arrays only.
"""
import numpy as np

from .blas import gemm_add
from .conv_bands import _bands

__all__ = ["conv2d_forward_taps", "conv2d_backward_taps", "conv2d_dx_taps", "same_width"]

#: Bytes of one band: its rows of the input window and of the output.
#: 4 to 64 MB run alike on 2 cores at VGG16's sizes; 8 MB stays in L2/L3.
_BAND_BYTES = 8 << 20


def same_width(w_shape, padding):
    """True when a stride-1 conv keeps the width (OW = W): 2*pad_w = KW - 1."""
    return 2 * padding[1] == w_shape[3] - 1


def _band_rows(channels, W, itemsize):
    """Output rows per band: (C + F) * rows * W elements in _BAND_BYTES."""
    return max(1, _BAND_BYTES // (channels * W * itemsize))


def _taps(w, filters=32):
    """(F, C, KH, KW) -> (KH, KW, F, C): tap (i, j) is one (F, C) matrix.

    Copied ``filters`` filters at a time, so that what is read stays in
    cache: 3.6 -> 1.5 ms for VGG16's 512 x 512 x 3 x 3 (benchmarks/README.md).
    """
    taps = np.empty(w.shape[2:] + w.shape[:2], dtype=w.dtype)
    for f0 in range(0, w.shape[0], filters):
        taps[:, :, f0:f0 + filters] = w[f0:f0 + filters].transpose(2, 3, 0, 1)
    return taps


def _tap_ranges(kernel, shape, padding):
    """{(i, j): (d, p0, p1)}: each tap's shift and the output pixels
    [p0, p1) it is summed over (flat, one image), i.e. the rows whose input
    row exists, clipped so that p + d stays inside x2."""
    (KH, KW), (H, W, OH), (ph, pw) = kernel, shape, padding
    ranges = {}
    for i in range(KH):
        lo, hi = max(0, ph - i), min(OH, H + ph - i)   # rows r with 0 <= r + i - ph < H
        for j in range(KW):
            d = (i - ph) * W + (j - pw)
            p0 = max(lo * W, -d)
            ranges[i, j] = d, p0, max(p0, min(hi * W, H * W - d))
    return ranges


def _band_windows(ranges, r0, r1, W):
    """(i, j, d, q0, q1) of each tap with pixels in output rows [r0, r1):
    the part [q0, q1) of its range that lies in the band."""
    for (i, j), (d, p0, p1) in ranges.items():
        q0, q1 = max(p0, r0 * W), min(p1, r1 * W)
        if q0 < q1:
            yield i, j, d, q0, q1


def _edge_columns(W, pw):
    """The columns where some tap reads across a row's end."""
    return sorted(set(range(min(pw, W))) | set(range(max(0, W - pw), W)))


def _edges(src, taps, ph, pw, out_rows, transpose):
    """Exact values of (1), or of (3) when ``transpose``, at the edge
    columns: ``out (F or C, out_rows, E)`` without the bias.

    src is one image's x (C, H, W), or dy (F, OH, W) for (3). Output
    row r, column c takes tap (i, j) from src row r + i - ph (r - i + ph
    for (3)) and column c + j - pw (c - j + pw), where those exist.
    """
    KH, KW = taps.shape[:2]
    rows_in, W = src.shape[1:]
    cols = _edge_columns(W, pw)
    out = np.zeros((taps.shape[3] if transpose else taps.shape[2], len(cols), out_rows),
                   dtype=src.dtype)
    for e, c in enumerate(cols):
        for j in range(KW):
            cc = c - j + pw if transpose else c + j - pw
            if not 0 <= cc < W:
                continue
            column = np.ascontiguousarray(src[:, :, cc])
            for i in range(KH):
                s = ph - i if transpose else i - ph   # src row = r + s
                lo, hi = max(0, -s), min(out_rows, rows_in - s)
                if lo < hi:
                    t = taps[i, j].T if transpose else taps[i, j]
                    gemm_add(t, column[:, lo + s:hi + s], out[:, e, lo:hi])
    return cols, out.transpose(0, 2, 1)


def conv2d_forward_taps(x, w, b, padding, out_size):
    """y (N, F, OH, OW) = conv(x, w) + b at stride 1, OW = W, by (1); no cache."""
    x = np.ascontiguousarray(x)
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    OH = out_size[0]
    taps = _taps(w)
    y = np.empty((N, F, OH, W), dtype=x.dtype)
    rows = _band_rows(C + F, W, x.itemsize)
    ranges = _tap_ranges((KH, KW), (H, W, OH), padding)
    for n in range(N):
        x2, y2 = x[n].reshape(C, H * W), y[n].reshape(F, OH * W)
        for r0, r1 in _bands(OH, rows):
            y2[:, r0 * W:r1 * W] = b[:, None]
            for i, j, d, q0, q1 in _band_windows(ranges, r0, r1, W):
                gemm_add(taps[i, j], x2[:, q0 + d:q1 + d], y2[:, q0:q1])
        cols, exact = _edges(x[n], taps, *padding, OH, transpose=False)
        y[n][:, :, cols] = exact + b[:, None, None]
    return y


def _wrapped(ranges, shape, pw):
    """Per tap: the flat output pixels in its range whose column read
    across a row's end (their terms in (2) are taken back out)."""
    H, W, OH = shape
    cols = np.arange(W)
    out = {}
    for (i, j), (d, p0, p1) in ranges.items():
        bad = cols[(cols + j - pw < 0) | (cols + j - pw >= W)]
        if bad.size and p0 < p1:
            idx = (np.arange(p0 // W, (p1 - 1) // W + 1)[:, None] * W + bad).ravel()
            out[i, j] = idx[(idx >= p0) & (idx < p1)]
    return out


def conv2d_dx_taps(dy, w, x_shape, padding):
    """dx (N, C, H, W) of a stride-1, OW = W conv by (3) alone, from dy
    (N, F, OH, W) and w (F, C, KH, KW): also the dx of the small-map
    "im2col" path (:func:`minirpn.nn.conv.conv2d_backward`)."""
    dy = np.ascontiguousarray(dy)
    N, C, H, W = x_shape
    F, _, KH, KW = w.shape
    OH = dy.shape[2]
    taps = _taps(w)
    dx = np.zeros(x_shape, dtype=dy.dtype)
    rows = _band_rows(C + F, W, dy.itemsize)
    ranges = _tap_ranges((KH, KW), (H, W, OH), padding)
    for n in range(N):
        g2, dx2 = dy[n].reshape(F, OH * W), dx[n].reshape(C, H * W)
        for r0, r1 in _bands(OH, rows):
            for i, j, d, q0, q1 in _band_windows(ranges, r0, r1, W):
                gemm_add(taps[i, j].T, g2[:, q0:q1], dx2[:, q0 + d:q1 + d])
        cols, exact = _edges(dy[n], taps, *padding, H, transpose=True)
        dx[n][:, :, cols] = exact
    return dx


def conv2d_backward_taps(dy, x, w, padding, need_dx=True):
    """(dx, dw, db) of :func:`conv2d_forward_taps`: dw by (2), dx by (3)
    (:func:`conv2d_dx_taps`); dx is None when ``need_dx`` is False."""
    x, dy = np.ascontiguousarray(x), np.ascontiguousarray(dy)
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    OH = dy.shape[2]
    dtaps = np.zeros((KH, KW, F, C), dtype=x.dtype)
    rows = _band_rows(C + F, W, x.itemsize)
    ranges = _tap_ranges((KH, KW), (H, W, OH), padding)
    wrapped = _wrapped(ranges, (H, W, OH), padding[1])
    for n in range(N):
        x2, g2 = x[n].reshape(C, H * W), dy[n].reshape(F, OH * W)
        for r0, r1 in _bands(OH, rows):
            for i, j, d, q0, q1 in _band_windows(ranges, r0, r1, W):
                gemm_add(g2[:, q0:q1], x2[:, q0 + d:q1 + d].T, dtaps[i, j])
        for (i, j), idx in wrapped.items():
            d = ranges[i, j][0]
            gemm_add(-g2[:, idx], x2[:, idx + d].T, dtaps[i, j])
    dx = conv2d_dx_taps(dy, w, x.shape, padding) if need_dx else None
    dw = np.ascontiguousarray(dtaps.transpose(2, 3, 0, 1))
    return dx, dw, dy.sum(axis=(0, 2, 3))
