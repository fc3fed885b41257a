"""Winograd's F(2x2, 3x3) conv on the GPU: the transforms of
:mod:`minirpn.nn.conv_winograd` as one-thread-per-tile kernels, the 16
products as one batched cuBLAS call.

The maths, the matrices B, G, A and the equations (1)-(4) are those of
:mod:`minirpn.nn.conv_winograd` (Lavin and Gray 2016, arXiv:1509.09308,
section 4); read its docstring first. What differs is the schedule. The
CPU path keeps V and M in cache band by band; a GPU has the memory to hold
them whole, so here every tile of the image is one column of

    V (16, S, C, L),  M (16, S, F, L),   S * L >= N * ceil(H/2) * ceil(W/2)

(tile t = s * L + l in column (s, l): S chunks of at most ``CHUNK_TILES``),
and (2) is ONE batched matrix product, ``matmul(U, V)``, which CuPy hands
to cuBLAS (in TF32 where the user allows it with ``CUPY_TF32=1``). Why
not im2col here: its (9C, H*W) matrix is 9 times the input and its
product has 2.25 times the multiply-adds; V and M are 4 times the input
or output. (A cuDNN-style implicit GEMM would avoid both, at the price of
a kernel that is no longer a few readable lines; the figures against
im2col and cuDNN are in benchmarks/README.md.)

Kernels, one thread per (channel or filter, tile) unless said:
- ``_filter_kernel``: U[:, f, c] = G w[f, c] G^T, per (f, c);
- ``_input_kernel``: V[:, c, t] = B^T d B of tile t of channel c, per (c, t),
  zeros read outside the image (the padding);
- ``_output_kernel``: the 2x2 tile A^T M A + b, per (f, t);
- ``_output_adjoint_kernel``: dM = A dy A^T, per (f, t), the adjoint of the
  last one (zeros past the last row or column of dy);
- ``_input_adjoint_kernel``: dV <- B dV B^T in place, per (c, t);
- ``_gather_kernel``: each 2x2 block of dx sums its entries of the (at
  most) 2x2 tiles that read it: a gather, so no atomics, and the sum's
  order is fixed (deterministic results);
- ``_filter_adjoint_kernel``: dw[f, c] = G^T dU[:, f, c] G.

The forward caches V for the backward pass (the CPU rebuilds it band by
band): 4 times the input, about 1.7 GB over VGG16 at 600x1000, against a
second pass over x per layer.
"""
from ..backend import get_array_module
from .launch import THREADS, blocks_for, contiguous, launch, numba_cuda

__all__ = ["forward", "backward"]

cuda = numba_cuda()


# --- B^T, A^T, their transposes, and G applied to one column of 4 (or 3) --------
@cuda.jit(device=True)
def _bt(a0, a1, a2, a3):
    """B^T (a0, a1, a2, a3)."""
    return a0 - a2, a1 + a2, a2 - a1, a1 - a3


@cuda.jit(device=True)
def _b(a0, a1, a2, a3):
    """B (a0, a1, a2, a3), the adjoint of :func:`_bt`."""
    return a0, a1 - a2 + a3, a1 + a2 - a0, -a3


@cuda.jit(device=True)
def _at(a0, a1, a2, a3):
    """A^T (a0, a1, a2, a3)."""
    return a0 + a1 + a2, a1 - a2 - a3


@cuda.jit(device=True)
def _a(a0, a1):
    """A (a0, a1), the adjoint of :func:`_at`."""
    return a0, a0 + a1, a0 - a1, -a1


@cuda.jit(device=True)
def _g(a0, a1, a2, half):
    """G (a0, a1, a2)."""
    return a0, half * (a0 + a1 + a2), half * (a0 - a1 + a2), a2


@cuda.jit(device=True)
def _gt(a0, a1, a2, a3, half):
    """G^T (a0, a1, a2, a3), the adjoint of :func:`_g`."""
    return a0 + half * (a1 + a2), half * (a1 - a2), half * (a1 + a2) + a3


@cuda.jit(device=True)
def _column(k, L, rows):
    """Thread k's column of an array (16, S, rows, L): its chunk, row and
    place in the chunk, and the tile t = chunk * L + l."""
    chunk, r, l = k // (rows * L), (k // L) % rows, k % L
    return chunk, r, l, chunk * L + l


@cuda.jit(device=True)
def _tile(t, th, tw):
    """Image n and tile row and column (i, j) of tile t."""
    return t // (th * tw), (t // tw) % th, t % tw


@cuda.jit(device=True)
def _pixel(x, n, c, h, w, zero):
    """x[n, c, h, w], or zero outside the image (the conv's padding)."""
    if 0 <= h < x.shape[2] and 0 <= w < x.shape[3]:
        return x[n, c, h, w]
    return zero


@cuda.jit(device=True)
def _row_b(x, n, c, h, left, zero):
    """(d B) of one row of a patch: B^T applied to x[n, c, h, left:left + 4]."""
    return _bt(_pixel(x, n, c, h, left, zero), _pixel(x, n, c, h, left + 1, zero),
               _pixel(x, n, c, h, left + 2, zero), _pixel(x, n, c, h, left + 3, zero))


# --- the forward pass: (1) and (2) ---------------------------------------------
@cuda.jit
def _filter_kernel(w, half, U):
    k = cuda.grid(1)
    F, C = w.shape[0], w.shape[1]
    if k >= F * C:
        return
    f, c = k // C, k % C
    t0 = _g(w[f, c, 0, 0], w[f, c, 1, 0], w[f, c, 2, 0], half)  # G g, column by column
    t1 = _g(w[f, c, 0, 1], w[f, c, 1, 1], w[f, c, 2, 1], half)
    t2 = _g(w[f, c, 0, 2], w[f, c, 1, 2], w[f, c, 2, 2], half)
    for r in range(4):  # (G g) G^T, row by row
        u = _g(t0[r], t1[r], t2[r], half)
        for s in range(4):
            U[4 * r + s, f, c] = u[s]


@cuda.jit
def _input_kernel(x, zero, V):
    k = cuda.grid(1)
    C, L = V.shape[2], V.shape[3]
    if k >= V.shape[1] * C * L:
        return
    chunk, c, l, t = _column(k, L, C)
    th, tw = (x.shape[2] + 1) // 2, (x.shape[3] + 1) // 2
    if t >= x.shape[0] * th * tw:  # past the last tile: zeros, which add nothing to (3)
        for p in range(16):
            V[p, chunk, c, l] = zero
        return
    n, i, j = _tile(t, th, tw)
    top, left = 2 * i - 1, 2 * j - 1  # the patch's corner in the unpadded image
    d0 = _row_b(x, n, c, top, left, zero)  # d B, row by row
    d1 = _row_b(x, n, c, top + 1, left, zero)
    d2 = _row_b(x, n, c, top + 2, left, zero)
    d3 = _row_b(x, n, c, top + 3, left, zero)
    for s in range(4):  # B^T (d B), column by column
        v = _bt(d0[s], d1[s], d2[s], d3[s])
        for r in range(4):
            V[4 * r + s, chunk, c, l] = v[r]


@cuda.jit
def _output_kernel(M, b, y):
    k = cuda.grid(1)
    F, L = M.shape[2], M.shape[3]
    if k >= M.shape[1] * F * L:
        return
    chunk, f, l, t = _column(k, L, F)
    H, W = y.shape[2], y.shape[3]
    th, tw = (H + 1) // 2, (W + 1) // 2
    if t >= y.shape[0] * th * tw:
        return
    n, i, j = _tile(t, th, tw)
    m0 = _at(M[0, chunk, f, l], M[1, chunk, f, l], M[2, chunk, f, l], M[3, chunk, f, l])
    m1 = _at(M[4, chunk, f, l], M[5, chunk, f, l], M[6, chunk, f, l], M[7, chunk, f, l])
    m2 = _at(M[8, chunk, f, l], M[9, chunk, f, l], M[10, chunk, f, l], M[11, chunk, f, l])
    m3 = _at(M[12, chunk, f, l], M[13, chunk, f, l], M[14, chunk, f, l],
             M[15, chunk, f, l])  # M A, row by row
    for s in range(2):  # A^T (M A), column by column; the last tile may overhang
        o = _at(m0[s], m1[s], m2[s], m3[s])
        for r in range(2):
            if 2 * i + r < H and 2 * j + s < W:
                y[n, f, 2 * i + r, 2 * j + s] = o[r] + b[f]


# --- the backward pass: (3) and (4) ---------------------------------------------
@cuda.jit
def _output_adjoint_kernel(dy, zero, dM):
    k = cuda.grid(1)
    F, L = dM.shape[2], dM.shape[3]
    if k >= dM.shape[1] * F * L:
        return
    chunk, f, l, t = _column(k, L, F)
    th, tw = (dy.shape[2] + 1) // 2, (dy.shape[3] + 1) // 2
    if t >= dy.shape[0] * th * tw:  # past the last tile: zeros (V is zero there too)
        for p in range(16):
            dM[p, chunk, f, l] = zero
        return
    n, i, j = _tile(t, th, tw)
    g0 = _a(_pixel(dy, n, f, 2 * i, 2 * j, zero), _pixel(dy, n, f, 2 * i, 2 * j + 1, zero))
    g1 = _a(_pixel(dy, n, f, 2 * i + 1, 2 * j, zero),
            _pixel(dy, n, f, 2 * i + 1, 2 * j + 1, zero))  # g A^T, row by row
    for s in range(4):  # A (g A^T), column by column
        m = _a(g0[s], g1[s])
        for r in range(4):
            dM[4 * r + s, chunk, f, l] = m[r]


@cuda.jit
def _input_adjoint_kernel(dV):
    k = cuda.grid(1)
    C, L = dV.shape[2], dV.shape[3]
    if k >= dV.shape[1] * C * L:
        return
    chunk, c, l, _ = _column(k, L, C)
    e0 = _b(dV[0, chunk, c, l], dV[1, chunk, c, l], dV[2, chunk, c, l], dV[3, chunk, c, l])
    e1 = _b(dV[4, chunk, c, l], dV[5, chunk, c, l], dV[6, chunk, c, l], dV[7, chunk, c, l])
    e2 = _b(dV[8, chunk, c, l], dV[9, chunk, c, l], dV[10, chunk, c, l],
            dV[11, chunk, c, l])
    e3 = _b(dV[12, chunk, c, l], dV[13, chunk, c, l], dV[14, chunk, c, l],
            dV[15, chunk, c, l])  # dV B^T, row by row
    for s in range(4):  # B (dV B^T), column by column, over dV itself
        e = _b(e0[s], e1[s], e2[s], e3[s])
        for r in range(4):
            dV[4 * r + s, chunk, c, l] = e[r]


@cuda.jit
def _gather_kernel(E, zero, dx):
    # Thread (n, c, m, q) owns the 2x2 block of rows 2m - 1, 2m and columns
    # 2q - 1, 2q of dx: rows 2m, 2m + 1 of the padded image, which tiles
    # m - 1 (their rows 2, 3) and m (their rows 0, 1) read; likewise columns.
    k = cuda.grid(1)
    N, C, H, W = dx.shape
    bh, bw = H // 2 + 1, W // 2 + 1
    if k >= N * C * bh * bw:
        return
    q, m = k % bw, (k // bw) % bh
    c, n = (k // (bw * bh)) % C, k // (bw * bh * C)
    th, tw, L = (H + 1) // 2, (W + 1) // 2, E.shape[3]
    d00, d01, d10, d11 = zero, zero, zero, zero
    for a in range(2):  # tile rows m - 1, m, in this order: a fixed order of the sums
        i = m - 1 + a
        for e in range(2):
            j = q - 1 + e
            if 0 <= i < th and 0 <= j < tw:
                t = (n * th + i) * tw + j
                chunk, l, p = t // L, t % L, 4 * (2 - 2 * a) + 2 - 2 * e
                d00 += E[p, chunk, c, l]
                d01 += E[p + 1, chunk, c, l]
                d10 += E[p + 4, chunk, c, l]
                d11 += E[p + 5, chunk, c, l]
    h, w = 2 * m - 1, 2 * q - 1
    if h >= 0 and w >= 0:
        dx[n, c, h, w] = d00
    if h >= 0 and w + 1 < W:
        dx[n, c, h, w + 1] = d01
    if h + 1 < H and w >= 0:
        dx[n, c, h + 1, w] = d10
    if h + 1 < H and w + 1 < W:
        dx[n, c, h + 1, w + 1] = d11


@cuda.jit
def _filter_adjoint_kernel(dU, half, dw):
    k = cuda.grid(1)
    F, C = dw.shape[0], dw.shape[1]
    if k >= F * C:
        return
    f, c = k // C, k % C
    t0 = _gt(dU[0, f, c], dU[1, f, c], dU[2, f, c], dU[3, f, c], half)  # dU G, row by row
    t1 = _gt(dU[4, f, c], dU[5, f, c], dU[6, f, c], dU[7, f, c], half)
    t2 = _gt(dU[8, f, c], dU[9, f, c], dU[10, f, c], dU[11, f, c], half)
    t3 = _gt(dU[12, f, c], dU[13, f, c], dU[14, f, c], dU[15, f, c], half)
    for s in range(3):  # G^T (dU G), column by column
        g = _gt(t0[s], t1[s], t2[s], t3[s], half)
        for r in range(3):
            dw[f, c, r, s] = g[r]


# --- the layer's two passes -------------------------------------------------------

#: Most tiles in one chunk of V, M and their gradients. The product (3) sums
#: over the tiles; as one product per p, its long inner size and small
#: (F, C) result gave cuBLAS too few blocks: 6.7 ms of 9.7 for the backward
#: pass of VGG16's conv1_2 on an H200. Chunks of at most this many tiles
#: make the sum 16 * S products, added up after (benchmarks/README.md).
CHUNK_TILES = 4096


def _chunks(T):
    """(S, L): S chunks of L tiles, S * L >= T, the chunks as even as can be."""
    S = -(-T // CHUNK_TILES)
    return S, -(-T // S)


def _per_chunk(xp, A, S):
    """A (16, m, k) as (16, S, m, k), C-contiguous: CuPy's matmul copies an
    operand that is not, and multiplies a broadcast one through arrays of
    pointers built by extra kernels; A is small (filters), so a copy is cheap."""
    return A[:, None] if S == 1 else xp.ascontiguousarray(
        xp.broadcast_to(A[:, None], (16, S) + A.shape[1:]))


def forward(x, w, b):
    """y = conv(x, w) + b for 3x3 filters, stride 1, padding 1, by (1)-(2).

    Parameters
    ----------
    x : ndarray, (N, C, H, W) float32 or float64
    w : ndarray, (F, C, 3, 3), dtype of x
    b : ndarray, (F,), dtype of x

    Returns
    -------
    y : ndarray, (N, F, H, W), dtype of x
    U : ndarray, (16, F, C), dtype of x
        The transformed filters.
    V : ndarray, (16, S, C, L), dtype of x
        The transformed input tiles, tile t = s * L + l in column (s, l),
        zeros past the last of the T = N * ceil(H/2) * ceil(W/2) tiles
        (:func:`_chunks`). U and V are for :func:`backward`.
    """
    xp = get_array_module(x)
    x, w = contiguous(xp, x), contiguous(xp, w)
    N, C, H, W = x.shape
    F = w.shape[0]
    S, L = _chunks(N * ((H + 1) // 2) * ((W + 1) // 2))
    zero, half = x.dtype.type(0), x.dtype.type(0.5)
    U = xp.empty((16, F, C), x.dtype)
    launch(_filter_kernel, blocks_for(F * C), THREADS, w, half, U)
    V = xp.empty((16, S, C, L), x.dtype)
    launch(_input_kernel, blocks_for(V.size // 16), THREADS, x, zero, V)
    M = xp.matmul(_per_chunk(xp, U, S), V)                               # (2)
    y = xp.empty((N, F, H, W), x.dtype)
    launch(_output_kernel, blocks_for(M.size // 16), THREADS, M, b, y)
    return y, U, V


def backward(dy, U, V, x_shape, need_dx=True):
    """(dx, dw, db) of :func:`forward` by (3) and (4).

    Parameters
    ----------
    dy : ndarray, (N, F, H, W), dtype of V
    U, V : ndarray, (16, F, C) and (16, S, C, L)
        As :func:`forward` returned them.
    x_shape : tuple of int
        (N, C, H, W), the shape of x.
    need_dx : bool
        False skips (4); dx is then None.

    Returns
    -------
    dx : ndarray, (N, C, H, W), or None
    dw : ndarray, (F, C, 3, 3)
    db : ndarray, (F,)
    """
    xp = get_array_module(dy)
    dy = contiguous(xp, dy)
    (F, C), (S, L) = U.shape[1:], (V.shape[1], V.shape[3])
    zero, half = dy.dtype.type(0), dy.dtype.type(0.5)
    dM = xp.empty((16, S, F, L), dy.dtype)
    launch(_output_adjoint_kernel, blocks_for(dM.size // 16), THREADS, dy, zero, dM)
    # (CuPy copies the transposed V: cuBLAS could read it as it is, but
    # cupy.matmul takes C-contiguous operands only)
    dU = xp.matmul(dM, V.transpose(0, 1, 3, 2)).sum(axis=1)              # (3)
    dw = xp.empty((F, C, 3, 3), dy.dtype)
    launch(_filter_adjoint_kernel, blocks_for(F * C), THREADS, dU, half, dw)
    dx = None
    if need_dx:
        dV = xp.matmul(_per_chunk(xp, U.transpose(0, 2, 1), S), dM)      # (4)
        launch(_input_adjoint_kernel, blocks_for(dV.size // 16), THREADS, dV)
        dx = xp.empty(x_shape, dy.dtype)
        N, _, H, W = x_shape
        launch(_gather_kernel, blocks_for(N * C * (H // 2 + 1) * (W // 2 + 1)), THREADS,
               dV, zero, dx)
    return dx, dw, dy.sum(axis=(0, 2, 3))
