"""2-D convolution (cross-correlation, as in every framework) by im2col.

Shape symbols used below: N batch, C input channels, H x W input size,
F filters, KH x KW kernel size, OH x OW output size, K = C*KH*KW the length
of one receptive field, P = N*OH*OW the number of output pixels.

    OH = (H + 2*pad_h - KH) // stride_h + 1      (likewise OW)

The forward unrolls every receptive field of the zero-padded input into a
column of a (K + 1, P) matrix ``cols`` (im2col), whose last row is all ones
so that the bias is just one more weight (the "bias trick"). The whole
convolution is then ONE matrix product, ``y2 = [w2 | b] @ cols`` with
``w2 = w.reshape(F, K)`` and ``y2 = y`` as (F, P). The backward is two more:

    [dw2 | db].T = cols @ dy2.T      (K + 1, P) @ (P, F)
    dcols        = w2.T @ dy2        (K, F) @ (F, P)

and col2im adds ``dcols`` back onto the padded input. (The ones row saves
two passes over y and dy, a bias add and a sum, that cost more than the
one extra row of the products.) im2col and col2im loop over the KH*KW
kernel offsets only; each iteration moves one strided slice holding every
channel and pixel.

Layout: the first K rows of ``cols`` are (C, KH, KW, N, OH, OW), so its
rows match the columns of ``w2`` and its columns the pixels of ``dy`` in
(N, OH, OW) order. All
three products then read their operands in place (a transposed operand is
a flag to BLAS, not a copy), and for N = 1 ``y2`` already is ``y`` in
(1, F, OH, OW) layout. Stride-1 convs (all 3x3 ones in VGG and the RPN)
take a faster col2im, :func:`_dx_stride1`, and NumPy arrays of those whose
output is as wide as the input skip dcols altogether: nine products added
straight into dx (:func:`.conv_taps.conv2d_dx_taps`). 1x1 stride-1
unpadded convs (the RPN heads) need no unrolling at all.

The plain definition is :func:`minirpn.nn.reference.conv2d_forward_reference`
(one einsum per kernel offset; read it first). The five fast paths here
give its results up to rounding (``tests/test_fast_paths.py``, float32 and
float64), and :func:`_choose_path` picks one per call:

- ``"1x1"``: a 1x1, stride-1, unpadded conv (the RPN heads) is a per-pixel
  matrix product; nothing to unroll;
- ``"im2col"``: this module's whole-matrix im2col above, written against
  ``xp``: CuPy arrays (but for "winograd"), and NumPy arrays while the
  matrix is small (``WHOLE_IM2COL_BYTES``);
- ``"bands"``: :mod:`.conv_bands`, the NumPy path for large maps, the same
  products done one band of output rows at a time in a reused, cache-sized
  buffer. It caches only x (which the layer before holds anyway) and
  rebuilds the bands in the backward pass, so training memory grows like
  the activations instead of like the (K + 1, P) matrices (1.4 GB for
  VGG16's conv1_2 at 600x1000);
- ``"taps"``: :mod:`.conv_taps`, the NumPy path for large maps at stride 1
  whose output is as wide as the input (2*pad_w = KW - 1) and with at
  least ``TAPS_MIN_CHANNELS`` input channels, when "winograd" does not
  take them: one product per kernel tap added straight into y, no
  unrolling and no padded copy at all. It caches only x, as ``"bands"``
  does;
- ``"winograd"``: :mod:`.conv_winograd`, the NumPy path for large 3x3
  convs at stride 1 and padding 1 with at least ``TAPS_MIN_CHANNELS``
  input channels and ``WINOGRAD_MIN_MACS`` multiply-adds (every VGG16
  layer but conv1_1, and the RPN's 3x3 conv, at 600x1000): Winograd's
  F(2x2, 3x3), 2.25 times fewer multiply-adds than the others, for
  rounding differences of about 1e-6 in float32. It caches x and the
  transformed filters. CuPy arrays of every such conv, whatever its size,
  take it too (:mod:`minirpn.cuda.winograd_kernel`), caching the
  transformed input tiles (4 times x; im2col's matrix is 9 times x).
"""
from typing import Any, NamedTuple, Optional, Tuple

import numpy as np

from ..backend import get_array_module
from ..checks import check_float_array, check_same_dtype
from .conv_bands import conv2d_backward_bands, conv2d_forward_bands
from .conv_taps import conv2d_backward_taps, conv2d_dx_taps, conv2d_forward_taps, same_width
from .conv_winograd import conv2d_backward_winograd, conv2d_forward_winograd
from .kernel_tools import transpose_into
from .layer_checks import check_float_rank, int_pair

__all__ = ["conv2d_forward", "conv2d_backward", "ConvCache", "WHOLE_IM2COL_BYTES",
           "TAPS_MIN_CHANNELS", "WINOGRAD_MIN_MACS"]


class ConvCache(NamedTuple):
    """What :func:`conv2d_backward` needs from :func:`conv2d_forward`."""
    path: str                      # "1x1", "im2col", "bands", "taps" or "winograd"
    w: Any                         # (F, C, KH, KW) filters
    x_shape: Tuple[int, ...]       # (N, C, H, W)
    stride: Tuple[int, int]        # (SH, SW)
    padding: Tuple[int, int]       # (PH, PW)
    out_size: Tuple[int, int]      # (OH, OW)
    x: Optional[Any] = None        # "1x1", "bands", "taps", "winograd": the input (no copy)
    cols: Optional[Any] = None     # "im2col": (K + 1, P) matrix, ones in its last row
    u: Optional[Any] = None        # "winograd": (16, F, C) transformed filters
    v: Optional[Any] = None        # "winograd" on the GPU: (16, S, C, L) transformed input tiles


def _check_inputs(x, w, b, stride, padding):
    """Validate the arguments of :func:`conv2d_forward`; return geometry."""
    check_float_rank(x, "x", "(N, C, H, W)")
    C = x.shape[1]
    check_float_rank(w, "w", "(F, C, KH, KW)")
    if w.shape[1] != C:
        raise ValueError(f"w must have shape (F, {C}, KH, KW) to match the "
                         f"{C} channels of x {tuple(x.shape)}, got {tuple(w.shape)}")
    F = w.shape[0]
    check_float_array(b, "b", shape=(F,))
    check_same_dtype("x", x, w=w, b=b)
    sh, sw = int_pair(stride, "stride", 1)
    ph, pw = int_pair(padding, "padding", 0)
    KH, KW = w.shape[2:]
    Hp, Wp = x.shape[2] + 2 * ph, x.shape[3] + 2 * pw
    if KH > Hp or KW > Wp or min(KH, KW) < 1:
        raise ValueError(f"kernel size ({KH}, {KW}) of w must fit the padded "
                         f"input ({Hp}, {Wp}) of x {tuple(x.shape)} with "
                         f"padding {(ph, pw)}")
    return (sh, sw), (ph, pw), ((Hp - KH) // sh + 1, (Wp - KW) // sw + 1)


def _im2col(x, kernel, stride, padding, out_size):
    """Unroll the receptive fields of x (N, C, H, W) into (K, P) columns,
    plus a last row of ones: (K + 1, P)."""
    xp = get_array_module(x)
    N, C, H, W = x.shape
    (KH, KW), (sh, sw), (ph, pw), (OH, OW) = kernel, stride, padding, out_size
    # 1. Zero-pad, channels first: (C, N, Hp, Wp). A free view when N = 1
    #    and there is no padding.
    xt = x.transpose(1, 0, 2, 3)
    if ph or pw:
        xpad = xp.zeros((C, N, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
        xpad[:, :, ph:ph + H, pw:pw + W] = xt
    else:
        xpad = xt
    # 2. One strided copy per kernel offset (i, j): every channel and pixel.
    cols = xp.empty((C * KH * KW + 1, N * OH * OW), dtype=x.dtype)
    cols[-1] = 1
    fields = cols[:-1].reshape(C, KH, KW, N, OH, OW)  # a view: rows are contiguous
    for i in range(KH):
        for j in range(KW):
            fields[:, i, j] = xpad[:, :, i:i + sh * OH:sh, j:j + sw * OW:sw]
    return cols


def _col2im(dcols, x_shape, kernel, stride, padding, out_size):
    """Adjoint of :func:`_im2col`: sum (K, P) columns back onto (N, C, H, W)."""
    xp = get_array_module(dcols)
    N, C, H, W = x_shape
    (KH, KW), (sh, sw), (ph, pw), (OH, OW) = kernel, stride, padding, out_size
    dcols = dcols.reshape(C, KH, KW, N, OH, OW)
    dxpad = xp.zeros((C, N, H + 2 * ph, W + 2 * pw), dtype=dcols.dtype)
    # Overlapping receptive fields add up: one strided += per kernel offset.
    for i in range(KH):
        for j in range(KW):
            dxpad[:, :, i:i + sh * OH:sh, j:j + sw * OW:sw] += dcols[:, i, j]
    dx = dxpad[:, :, ph:ph + H, pw:pw + W].transpose(1, 0, 2, 3)
    return xp.ascontiguousarray(dx)


def _dx_stride1(dy, w, x_shape, padding):
    """dx of a stride-1 conv: ``w2.T @ dy`` and col2im by long row adds
    (CuPy arrays, and NumPy arrays of convs whose output is narrower than
    the input; the others take :func:`.conv_taps.conv2d_dx_taps`).

    Seen flat, the padded input of one channel is a row of length
    N*Hp*Wp, and kernel offset (i, j) is a shift by ``i*Wp + j`` along it.
    Lay dy out on the padded grid too (zeros where no output is) and the
    column block of ``dcols`` for offset (i, j) is one contiguous run to
    add at that shift: C long adds per offset instead of C*N*OH short ones.
    The zero columns cost a few % more in the product and add nothing.
    ``dcols`` is made one kernel row i at a time, (KW*C, L), in one reused
    buffer: a third of the memory, and it is still in cache when added.
    """
    xp = get_array_module(dy)
    N, C, H, W = x_shape
    F, _, KH, KW = w.shape
    (ph, pw), (OH, OW) = padding, dy.shape[2:]
    Hp, Wp = H + 2 * ph, W + 2 * pw
    # 1. dy on the padded grid, flat (F, N*Hp*Wp); outputs lie in the
    #    first L columns.
    dy_grid = xp.zeros((F, N, Hp, Wp), dtype=dy.dtype)
    dy_grid[:, :, :OH, :OW] = dy.transpose(1, 0, 2, 3)
    L = (N - 1) * Hp * Wp + OH * Wp
    dy_grid = dy_grid.reshape(F, -1)[:, :L]
    # 2. Per kernel row i: dcols_i = w_i.T @ dy, w_i (F, KW*C) taken from
    #    w in (F, KH, KW, C) order, so the C rows of each offset j form one
    #    block; then shifted adds (the last one reads KW - 1 past the grid).
    w_t = xp.ascontiguousarray(w.transpose(0, 2, 3, 1))
    dcols_i = xp.empty((KW * C, L), dtype=dy.dtype)
    dx_flat = xp.zeros((C, N * Hp * Wp + KW - 1), dtype=dy.dtype)
    for i in range(KH):
        xp.matmul(w_t[:, i].reshape(F, KW * C).T, dy_grid, out=dcols_i)
        for j in range(KW):
            dx_flat[:, i * Wp + j:i * Wp + j + L] += dcols_i[j * C:(j + 1) * C]
    dx = dx_flat[:, :N * Hp * Wp].reshape(C, N, Hp, Wp)
    return xp.ascontiguousarray(dx[:, :, ph:ph + H, pw:pw + W].transpose(1, 0, 2, 3))


def _transposed(a):
    """``a.T`` (n, m) as a contiguous array, for a C-contiguous 2-D (m, n) a.

    NumPy arrays go through the RoI kernels' tiled transpose
    (:func:`.kernel_tools.transpose_into`): copying the whole transpose at
    once strides through a with a power-of-two stride (F floats) that
    thrashes the cache, e.g. 11.7 ms instead of 3.1 ms for (4608, 512)
    float32 (benchmarks/README.md).
    """
    xp = get_array_module(a)
    if xp is not np:
        return xp.ascontiguousarray(a.T)
    out = np.empty(a.shape[::-1], dtype=a.dtype)
    transpose_into(a, out)
    return out


def _to_nchw(y2, N, F, OH, OW):
    """(F, N*OH*OW) -> contiguous (N, F, OH, OW); free when N = 1."""
    xp = get_array_module(y2)
    return xp.ascontiguousarray(y2.reshape(F, N, OH, OW).transpose(1, 0, 2, 3))


def _from_nchw(dy):
    """(N, F, OH, OW) -> (F, N*OH*OW); free when N = 1."""
    xp = get_array_module(dy)
    N, F = dy.shape[:2]
    return xp.ascontiguousarray(dy.transpose(1, 0, 2, 3)).reshape(F, -1)


#: Largest im2col matrix (bytes) that NumPy arrays unroll whole and cache for
#: the backward pass: one BLAS product each way, the fastest route for small
#: maps (the toy network's layers need 15-20 MB). Larger ones go band by
#: band through :mod:`.conv_bands`, caching only x, so training memory stays
#: near the activations (VGG16's conv1_2 at 600x1000 would need 1.4 GB).
WHOLE_IM2COL_BYTES = 32 << 20

#: Fewest input channels for the "taps" path: its products have C as their
#: inner size, which BLAS runs slowly when small (conv1_1's C = 3 takes the
#: "bands" path).
TAPS_MIN_CHANNELS = 16

#: Fewest multiply-adds (N*OH*OW * F*C*KH*KW, the direct conv's) for the
#: "winograd" path. Its saving grows like F*C per pixel, its transforms like
#: F + C, and each call costs a thread hand-off and scratch buffers: every
#: 3x3 conv of VGG16 at 600x1000 (2.2e9 to 2.2e10) gains, the small maps of
#: bench_layers.py (3e8 to 1.1e9) and the toy config's do not
#: (benchmarks/README.md).
WINOGRAD_MIN_MACS = 1 << 31


def _im2col_bytes(x, w, OH, OW):
    """Size of the (C*KH*KW + 1, N*OH*OW) im2col matrix of x."""
    F, C, KH, KW = w.shape
    return (C * KH * KW + 1) * x.shape[0] * OH * OW * x.itemsize


def _choose_path(x, w, stride, padding, out_size):
    """Which of the five fast paths computes this conv (all give the
    reference's results up to rounding; they differ in speed and memory)."""
    if w.shape[2:] == (1, 1) and stride == (1, 1) and padding == (0, 0):
        return "1x1"     # a per-pixel linear map: nothing to unroll
    if (w.shape[2:] == (3, 3) and stride == (1, 1) and padding == (1, 1)
            and x.shape[1] >= TAPS_MIN_CHANNELS and (not isinstance(x, np.ndarray) or
            x.shape[0] * out_size[0] * out_size[1] * w.size >= WINOGRAD_MIN_MACS)):
        return "winograd"  # 2.25x fewer multiply-adds; CuPy: 4/9 of im2col's bytes
    if isinstance(x, np.ndarray) and _im2col_bytes(x, w, *out_size) > WHOLE_IM2COL_BYTES:
        if (stride == (1, 1) and same_width(w.shape, padding)
                and x.shape[1] >= TAPS_MIN_CHANNELS):
            return "taps"  # large, stride 1, OW = W, not thin: no copies, cache x only
        return "bands"   # too big to unroll whole: band by band, cache x only
    return "im2col"      # small maps (one BLAS product each way), other CuPy convs


def conv2d_forward(x, w, b, stride=1, padding=0):
    """2-D convolution forward: ``y = w * x + b`` (cross-correlation).

    The results of :func:`minirpn.nn.reference.conv2d_forward_reference`
    (up to rounding), by the fastest of five paths (:func:`_choose_path`).

    Shapes: N batch, C input channels, H x W input, F filters, KH x KW
    kernel, OH = (H + 2*pad_h - KH) // stride_h + 1, OW likewise.

    Parameters
    ----------
    x : ndarray, (N, C, H, W) float32 or float64
        Input feature maps.
    w : ndarray, (F, C, KH, KW), dtype of x
        Filters.
    b : ndarray, (F,), dtype of x
        Biases.
    stride : int or (int, int)
        Step between receptive fields, >= 1.
    padding : int or (int, int)
        Zeros added on each side of H and W, >= 0.

    Returns
    -------
    y : ndarray, (N, F, OH, OW), dtype of x
    cache : ConvCache
        What :func:`conv2d_backward` needs: the path taken, w and the
        geometry, and for 1x1 stride-1 unpadded convs and NumPy arrays on
        the "bands", "taps" or "winograd" paths x itself (not a copy; for
        "winograd" also the (16, F, C) transformed filters; CuPy arrays on
        "winograd" keep those and the (16, S, C, L) transformed input
        tiles instead of x), otherwise the (C*KH*KW + 1, N*OH*OW) im2col
        matrix of x, ones in its last row.

    Raises
    ------
    TypeError
        Non-array or non-float inputs, w or b not of x's dtype, non-int
        stride or padding.
    ValueError
        Wrong ranks or shapes, stride < 1, padding < 0, or a kernel larger
        than the padded input.
    """
    stride, padding, (OH, OW) = _check_inputs(x, w, b, stride, padding)
    xp = get_array_module(x, w, b)
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    path = _choose_path(x, w, stride, padding, (OH, OW))
    geometry = dict(w=w, x_shape=x.shape, stride=stride, padding=padding, out_size=(OH, OW))
    if path == "1x1":
        y = xp.matmul(w.reshape(F, C), x.reshape(N, C, H * W))
        y += b[:, None]
        return y.reshape(N, F, H, W), ConvCache(path, x=x, **geometry)
    if path == "bands":
        y = conv2d_forward_bands(x, w, b, stride, padding, (OH, OW))
        return y, ConvCache(path, x=x, **geometry)
    if path == "taps":
        y = conv2d_forward_taps(x, w, b, padding, (OH, OW))
        return y, ConvCache(path, x=x, **geometry)
    if path == "winograd" and xp is np:
        y, u = conv2d_forward_winograd(x, w, b)
        return y, ConvCache(path, x=x, u=u, **geometry)
    if path == "winograd":
        from ..cuda import winograd_kernel  # imports numba.cuda: GPU path only
        y, u, v = winograd_kernel.forward(x, w, b)
        return y, ConvCache(path, u=u, v=v, **geometry)
    cols = _im2col(x, (KH, KW), stride, padding, (OH, OW))
    y2 = xp.concatenate([w.reshape(F, -1), b[:, None]], axis=1) @ cols
    return _to_nchw(y2, N, F, OH, OW), ConvCache(path, cols=cols, **geometry)


def conv2d_backward(dy, cache, need_dx=True):
    """2-D convolution backward.

    Parameters
    ----------
    dy : ndarray, (N, F, OH, OW), dtype of x
        Upstream gradient of the output.
    cache : ConvCache
        From :func:`conv2d_forward`.
    need_dx : bool
        False skips dx (returned as None): a network's first layer, whose
        input is the image, needs no input gradient, as in autograd for an
        input that does not require one.

    Returns
    -------
    dx : ndarray, (N, C, H, W), dtype of x, or None when ``need_dx`` is False
    dw : ndarray, (F, C, KH, KW), dtype of x
    db : ndarray, (F,), dtype of x
    """
    w, (N, C, H, W), (OH, OW) = cache.w, cache.x_shape, cache.out_size
    F = w.shape[0]
    check_float_array(dy, "dy", shape=(N, F, OH, OW))
    check_same_dtype("w", w, dy=dy)
    xp = get_array_module(dy)
    if cache.path == "1x1":
        x = cache.x
        dy3 = dy.reshape(N, F, H * W)
        dx = xp.matmul(w.reshape(F, C).T, dy3).reshape(x.shape) if need_dx else None
        x3 = x.reshape(N, C, H * W)
        dw = (dy3[0] @ x3[0].T if N == 1
              else xp.matmul(dy3, x3.transpose(0, 2, 1)).sum(axis=0))
        return dx, dw.reshape(w.shape), dy3.sum(axis=(0, 2))
    if cache.path == "bands":
        return conv2d_backward_bands(dy, cache.x, w, cache.stride, cache.padding, need_dx)
    if cache.path == "taps":
        return conv2d_backward_taps(dy, cache.x, w, cache.padding, need_dx)
    if cache.path == "winograd" and cache.v is not None:
        from ..cuda import winograd_kernel
        return winograd_kernel.backward(dy, cache.u, cache.v, cache.x_shape, need_dx)
    if cache.path == "winograd":
        return conv2d_backward_winograd(dy, cache.x, w, cache.u, need_dx)
    cols, x_shape, stride, padding = cache.cols, cache.x_shape, cache.stride, cache.padding
    dy2 = _from_nchw(dy)
    # (K+1, P) @ (P, F) runs faster in BLAS than (F, P) @ (P, K+1) for small F.
    dwb = cols @ dy2.T
    dw = _transposed(dwb[:-1]).reshape(w.shape)
    if not need_dx:
        dx = None
    elif stride == (1, 1) and same_width(w.shape, padding) and isinstance(dy, np.ndarray):
        dx = conv2d_dx_taps(dy, w, x_shape, padding)  # nine products added in place
    elif stride == (1, 1):
        dx = _dx_stride1(dy, w, x_shape, padding)
    else:
        dcols = w.reshape(F, -1).T @ dy2
        dx = _col2im(dcols, x_shape, w.shape[2:], stride, padding, (OH, OW))
    return dx, dw, dwb[-1]
