"""The plain reference conv2d: one kernel offset at a time, nothing clever.

This is the definition that the fast paths (:mod:`.conv_bands` on NumPy,
the whole-matrix im2col of :mod:`.conv` on CuPy) are tested against, in
the spirit of CS231n's ``layers.py`` beside ``fast_layers.py``. Read it to
see the maths; it is too slow for training (it makes KH*KW passes over x
and builds a padded copy).

For each kernel offset (i, j), the (N, C, OH, OW) slice of the padded
input that this tap sees is

    xs(i, j)[n, c, oh, ow] = xpad[n, c, oh*SH + i, ow*SW + j]

and the convolution is a sum of KH*KW per-pixel linear maps:

    y[n, f]   = b[f] + sum_{i,j,c} w[f, c, i, j] * xs(i, j)[n, c]
    dw[f, c, i, j] = sum_{n,oh,ow} dy[n, f, oh, ow] * xs(i, j)[n, c, oh, ow]
    dxs(i, j)[n, c] = sum_f w[f, c, i, j] * dy[n, f]   (added onto dxpad)
    db[f]     = sum_{n,oh,ow} dy[n, f, oh, ow]
"""
import numpy as np

__all__ = ["conv2d_forward_naive", "conv2d_backward_naive"]


def _tap(a, i, j, stride, out_size):
    """The strided (N, C, OH, OW) view of a padded array seen by tap (i, j)."""
    (sh, sw), (OH, OW) = stride, out_size
    return a[:, :, i:i + sh * OH:sh, j:j + sw * OW:sw]


def conv2d_forward_naive(x, w, b, stride=(1, 1), padding=(0, 0)):
    """Reference forward.

    Parameters
    ----------
    x : numpy.ndarray, (N, C, H, W) float
    w : numpy.ndarray, (F, C, KH, KW), dtype of x
    b : numpy.ndarray, (F,), dtype of x
    stride, padding : (int, int)

    Returns
    -------
    y : numpy.ndarray, (N, F, OH, OW), dtype of x
    cache : tuple
        ``(x, w, stride, padding)`` for :func:`conv2d_backward_naive`.
    """
    (sh, sw), (ph, pw) = stride, padding
    F, _, KH, KW = w.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out_size = ((xpad.shape[2] - KH) // sh + 1, (xpad.shape[3] - KW) // sw + 1)
    y = np.zeros((x.shape[0], F) + out_size, dtype=x.dtype)
    for i in range(KH):
        for j in range(KW):
            y += np.einsum("fc,nchw->nfhw", w[:, :, i, j],
                           _tap(xpad, i, j, stride, out_size))
    y += b[:, None, None]
    return y, (x, w, stride, padding)


def conv2d_backward_naive(dy, cache):
    """Reference backward: returns (dx, dw, db) shaped like x, w and b."""
    x, w, stride, padding = cache
    (ph, pw), (H, W) = padding, x.shape[2:]
    KH, KW = w.shape[2:]
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxpad = np.zeros_like(xpad)
    dw = np.zeros_like(w)
    out_size = dy.shape[2:]
    for i in range(KH):
        for j in range(KW):
            dw[:, :, i, j] = np.einsum("nfhw,nchw->fc", dy,
                                       _tap(xpad, i, j, stride, out_size))
            _tap(dxpad, i, j, stride, out_size)[...] += np.einsum(
                "fc,nfhw->nchw", w[:, :, i, j], dy)
    dx = dxpad[:, :, ph:ph + H, pw:pw + W]
    return np.ascontiguousarray(dx), dw, dy.sum(axis=(0, 2, 3))
