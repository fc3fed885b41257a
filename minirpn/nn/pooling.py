"""2-D max pooling, as PyTorch's ``max_pool2d`` with ``ceil_mode=False``.

Shape symbols: N batch, C channels, H x W input, k = (KH, KW) window,
s = (SH, SW) stride, no padding, and the floor output size

    OH = (H - KH) // SH + 1,    OW = (W - KW) // SW + 1

so trailing rows/columns that do not fill a window are ignored (and get a
zero gradient). Each window passes its gradient to ONE input: its first
arg-max in row-major order within the window, as PyTorch, TensorFlow and
Caffe do. Splitting it among tied maxima would make the layer's gradient
differ from theirs on the flat (ReLU-zero) regions where ties are common.

Both passes loop over the KH*KW window offsets only; offset (i, j) is one
strided view of x holding that element of every window (no copy). The
forward keeps a running maximum, then scans the offsets for the first one
equal to it. For non-overlapping windows (KH == SH, KW == SW) these views
are exactly what ``x.reshape(N, C, OH, KH, OW, KW)`` exposes, so that case
needs no code of its own; gathering the windows into a contiguous
(..., KH*KW) copy for ``argmax`` was slower (benchmarks/README.md).
That is the path of CuPy arrays (and the readable statement of the layer).

NumPy arrays take two numba kernels instead, :func:`_pool_forward_kernel`
and :func:`_pool_backward_kernel` (serial, like the conv kernels): the max
and its first arg-max together, one output row at a time (the offset loop
above reads x KH*KW times twice), and one scatter of dy; windows that tile
x (VGG16's 2x2 pools) write dx once instead, :func:`_unpool_tiled_kernel`.
The offset loop stays as the reference they are tested against.
"""
import numpy as np

from ..jit import njit
from ..backend import get_array_module, is_cupy_array
from ..checks import check_float_array
from .layer_checks import check_float_rank, int_pair

__all__ = ["max_pool2d_forward", "max_pool2d_backward"]


def _window_views(x, kernel, stride, out_size):
    """The KH*KW strided views of x, one per window offset (i, j) in
    row-major order: view (i, j)[n, c, oh, ow] = x[n, c, oh*SH + i, ow*SW + j].

    No copy is made. When KH == SH and KW == SW the views tile the cropped
    input exactly (they are what ``reshape(N, C, OH, KH, OW, KW)`` gives);
    with overlapping windows they share elements.
    """
    (KH, KW), (SH, SW), (OH, OW) = kernel, stride, out_size
    return [x[:, :, i:i + SH * OH:SH, j:j + SW * OW:SW]
            for i in range(KH) for j in range(KW)]


@njit(error_model="numpy", inline="always")
def _update_row(row, best, at, j, offset, SW, OW):
    """Fold window offset (i, j) (``row`` is input row ``oh*SH + i``) into
    one output row's running maximum ``best`` and its offset ``at``: strict
    ``>`` keeps the first maximum, and the first NaN wins over numbers."""
    for ow in range(OW):
        v, b = row[ow * SW + j], best[ow]
        take = v > b or (v != v and b == b)
        best[ow] = v if take else b
        at[ow] = offset if take else at[ow]


@njit(error_model="numpy")
def _pool_forward_kernel(x, KH, KW, SH, SW, y, arg):
    """y, arg (P, OH, OW) of x (P, H, W): the max of each window and the
    row-major offset of its first maximum (of its first NaN, if any).

    One output row at a time, offset by offset, so that the inner loop runs
    along a row. With the stride a constant (2, as in VGG16) LLVM
    vectorises that loop: 8x faster on VGG16's pool1 at 600x1000 than a
    loop over windows (benchmarks/README.md)."""
    OH, OW = y.shape[1:]
    for p in range(x.shape[0]):
        for oh in range(OH):
            best, at, first = y[p, oh], arg[p, oh], x[p, oh * SH]
            for ow in range(OW):
                best[ow], at[ow] = first[ow * SW], 0
            for i in range(KH):
                row = x[p, oh * SH + i]
                for j in range(KW):
                    if i == 0 and j == 0:
                        continue
                    if SW == 2:  # the same loop, with a stride LLVM can see
                        _update_row(row, best, at, j, i * KW + j, 2, OW)
                    else:
                        _update_row(row, best, at, j, i * KW + j, SW, OW)


@njit(error_model="numpy")
def _pool_backward_kernel(dy, arg, KW, SH, SW, dx):
    """Add dy (P, OH, OW) onto dx (P, H, W) at each window's arg-max."""
    OH, OW = dy.shape[1:]
    for p in range(dy.shape[0]):
        for oh in range(OH):
            for ow in range(OW):
                at = arg[p, oh, ow]
                dx[p, oh * SH + at // KW, ow * SW + at % KW] += dy[p, oh, ow]


def _max_pool_numpy(x, kernel, stride, out_size, index_dtype):
    """Forward on a NumPy array by :func:`_pool_forward_kernel`."""
    N, C, H, W = x.shape
    y = np.empty((N * C,) + out_size, dtype=x.dtype)
    arg = np.empty(y.shape, dtype=index_dtype)
    _pool_forward_kernel(np.ascontiguousarray(x).reshape(N * C, H, W),
                         *kernel, *stride, y, arg)
    return y.reshape((N, C) + out_size), arg.reshape((N, C) + out_size)


def max_pool2d_forward(x, kernel_size=2, stride=2):
    """Max pooling forward.

    Parameters
    ----------
    x : ndarray, (N, C, H, W) float32 or float64
    kernel_size : int or (int, int)
        Window size (KH, KW), >= 1 and at most (H, W).
    stride : int or (int, int)
        Step between windows (SH, SW), >= 1.

    Returns
    -------
    y : ndarray, (N, C, OH, OW), dtype of x
        NaN where a window holds a NaN, as in PyTorch.
    cache : tuple
        The (N, C, OH, OW) int8 (int32 for windows over 127 elements)
        arg-max of each window, as a flat row-major index into it, and the
        geometry.
    """
    if is_cupy_array(x):
        return _max_pool2d_forward_gpu(x, kernel_size, stride)
    check_float_rank(x, "x", "(N, C, H, W)")
    kernel = int_pair(kernel_size, "kernel_size", 1)
    stride = int_pair(stride, "stride", 1)
    H, W = x.shape[2:]
    if kernel[0] > H or kernel[1] > W:
        raise ValueError(f"kernel_size {kernel} must fit the input (H, W) = "
                         f"{(H, W)} of x {tuple(x.shape)}")
    out_size = ((H - kernel[0]) // stride[0] + 1, (W - kernel[1]) // stride[1] + 1)
    xp = get_array_module(x)
    index_dtype = xp.int8 if kernel[0] * kernel[1] <= 127 else xp.int32
    pool = _max_pool_numpy if isinstance(x, np.ndarray) else _max_pool_offsets
    y, arg = pool(x, kernel, stride, out_size, index_dtype)
    return y, (arg, x.shape, kernel, stride)


def _max_pool_offsets(x, kernel, stride, out_size, index_dtype):
    """Forward by one strided view per window offset (any ``xp``)."""
    xp = get_array_module(x)
    views = _window_views(x, kernel, stride, out_size)
    # 1. The max, one offset at a time (np.maximum propagates NaN).
    y = views[0].copy()
    for v in views[1:]:
        xp.maximum(y, v, out=y)
    # 2. The FIRST offset holding it: scan the offsets backwards so that
    #    earlier ones overwrite later ones. A NaN max is matched by isnan.
    has_nan = bool(xp.isnan(y).any())
    arg = xp.full(y.shape, len(views) - 1, dtype=index_dtype)
    for o in range(len(views) - 2, -1, -1):
        hit = views[o] == y
        if has_nan:
            hit |= xp.isnan(views[o])
        arg = xp.where(hit, index_dtype(o), arg)
    return y, arg


def max_pool2d_backward(dy, cache):
    """Max pooling backward.

    Parameters
    ----------
    dy : ndarray, (N, C, OH, OW), dtype of x
        Upstream gradient.
    cache : tuple
        From :func:`max_pool2d_forward`.

    Returns
    -------
    dx : ndarray, (N, C, H, W), dtype of dy
        ``dy`` of each window routed to its arg-max, summed where
        overlapping windows share one; 0 elsewhere, including the rows and
        columns that no window covers.
    """
    if is_cupy_array(dy):
        return _max_pool2d_backward_gpu(dy, cache)
    arg, x_shape, kernel, stride = cache
    check_float_array(dy, "dy", shape=arg.shape)
    unpool = _unpool_numpy if isinstance(dy, np.ndarray) else _unpool_offsets
    return unpool(dy, arg, x_shape, kernel, stride)


@njit(error_model="numpy", inline="always")
def _unpool_row(row, g, at, offset, j, SW, OW):
    """One row of dx at window offset (i, j) (``row`` is input row
    ``oh*SH + i``): g where its window's arg-max is that offset, else 0."""
    for ow in range(OW):
        row[ow * SW + j] = g[ow] if at[ow] == offset else 0


@njit(error_model="numpy")
def _unpool_tiled_kernel(dy, arg, KH, KW, dx):
    """dx (P, H, W) of windows that tile x (stride = kernel, as VGG16's 2x2
    pools): each element lies in one window at most, so it is written once,
    in order, with no zero pass and no scatter (1.5x faster on pool1 at
    600x1000, benchmarks/README.md); rows and columns past the last window
    get 0."""
    OH, OW = dy.shape[1:]
    for p in range(dy.shape[0]):
        for oh in range(OH):
            for i in range(KH):
                row = dx[p, oh * KH + i]
                for j in range(KW):
                    if KW == 2:  # the same loop, with a stride LLVM can see
                        _unpool_row(row, dy[p, oh], arg[p, oh], i * KW + j, j, 2, OW)
                    else:
                        _unpool_row(row, dy[p, oh], arg[p, oh], i * KW + j, j, KW, OW)
                row[OW * KW:] = 0
        dx[p, OH * KH:] = 0


def _unpool_numpy(dy, arg, x_shape, kernel, stride):
    """Backward on NumPy arrays: :func:`_unpool_tiled_kernel` when the
    windows tile x, else :func:`_pool_backward_kernel`'s scatter."""
    N, C, H, W = x_shape
    dy3 = np.ascontiguousarray(dy).reshape((N * C,) + dy.shape[2:])
    arg3 = arg.reshape((N * C,) + arg.shape[2:])
    if kernel == stride:
        dx = np.empty(x_shape, dtype=dy.dtype)
        _unpool_tiled_kernel(dy3, arg3, *kernel, dx.reshape(N * C, H, W))
        return dx
    dx = np.zeros(x_shape, dtype=dy.dtype)
    _pool_backward_kernel(dy3, arg3, kernel[1], *stride, dx.reshape(N * C, H, W))
    return dx


def _unpool_offsets(dy, arg, x_shape, kernel, stride):
    """Backward by one strided view per window offset (any ``xp``)."""
    xp = get_array_module(dy)
    dx = xp.zeros(x_shape, dtype=dy.dtype)
    for o, view in enumerate(_window_views(dx, kernel, stride, dy.shape[2:])):
        view += xp.where(arg == o, dy, 0)
    return dx


# ---- CuPy arrays: one kernel per pass (minirpn.cuda.max_pool_kernel) ----------
def _max_pool2d_forward_gpu(x, kernel_size, stride):
    """:func:`max_pool2d_forward` for CuPy arrays: the same checks, then one
    kernel launch with the same results and no wait for the device."""
    from ..cuda import max_pool_kernel  # imports numba.cuda: GPU path only
    check_float_rank(x, "x", "(N, C, H, W)")
    kernel = int_pair(kernel_size, "kernel_size", 1)
    stride = int_pair(stride, "stride", 1)
    N, C, H, W = x.shape
    if kernel[0] > H or kernel[1] > W:
        raise ValueError(f"kernel_size {kernel} must fit the input (H, W) = "
                         f"{(H, W)} of x {tuple(x.shape)}")
    out_size = ((H - kernel[0]) // stride[0] + 1, (W - kernel[1]) // stride[1] + 1)
    xp = get_array_module(x)
    y = xp.empty((N, C) + out_size, dtype=x.dtype)
    arg = xp.empty(y.shape, dtype=xp.int8 if kernel[0] * kernel[1] <= 127 else xp.int32)
    if y.size:
        max_pool_kernel.forward(xp.ascontiguousarray(x), kernel, stride, y, arg)
    return y, (arg, x.shape, kernel, stride)


def _max_pool2d_backward_gpu(dy, cache):
    """:func:`max_pool2d_backward` for CuPy arrays (a gather kernel that adds
    in the CPU's order: the same gradient, bit for bit)."""
    from ..cuda import max_pool_kernel
    arg, x_shape, kernel, stride = cache
    check_float_array(dy, "dy", shape=arg.shape)
    xp = get_array_module(dy)
    dx = xp.empty(x_shape, dtype=dy.dtype)  # the gather writes every element
    if dx.size:
        max_pool_kernel.backward(xp.ascontiguousarray(dy), arg, kernel, stride, dx)
    return dx
