"""The fast NumPy path of 3x3, stride-1, padding-1 conv2d on large maps:
Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray 2016, "Fast
algorithms for convolutional neural networks", arXiv:1509.09308, section 4).

Cut the output of each channel into 2x2 tiles. Tile (i, j) reads the 4x4
patch d of the zero-padded input whose corner is input pixel
(2i - 1, 2j - 1), and for one filter g (3x3) and one input channel

    y_tile = A^T [ (G g G^T) * (B^T d B) ] A                            (1)

with * the element-wise product of two 4x4 matrices and

    B^T = [[1,  0, -1,  0],     G = [[1,    0,    0  ],     A^T = [[1, 1,  1,  0],
           [0,  1,  1,  0],          [1/2,  1/2,  1/2],            [0, 1, -1, -1]]
           [0, -1,  1,  0],          [1/2, -1/2,  1/2],
           [0,  1,  0, -1]]          [0,    0,    1  ]]

Four outputs take 16 multiplications instead of 36. Summed over input
channels, each of the 16 positions p of the 4x4 product is one matrix
product over all tiles t of a band:

    U[p] = (G g G^T)[p]     (F, C)    the filters, transformed once
    V[p] = (B^T d B)[p]     (C, T)    the input tiles
    M[p] = U[p] @ V[p]      (F, T)    16 BLAS products                  (2)
    y    = A^T M A + b                the output tiles

i.e. 2.25 times fewer multiply-adds than the 9 products of
:mod:`.conv_taps`. The backward pass is the adjoint of each step:

    dM   = A dy A^T                                   (16, F, T)
    dU  += dM[p] @ V[p].T,   dw = G^T dU G            (F, C) per p      (3)
    dV   = U[p].T @ dM[p],   dx += B dV B^T           (C, T) per p      (4)

(Lavin and Gray compute dw with a second algorithm, F(3x3, 2x2); the
adjoint of (1) needs no second set of matrices.) The transforms only add
and halve, so the results are the reference's up to rounding: about 1e-6
relative in float32, the trade that cuDNN's and oneDNN's Winograd
algorithms make too.

Bands of tile rows keep V and M in cache (``_BAND_BYTES``). Of k cores,
each takes every k-th band, with its own buffers, in a thread of its own,
and runs their products on a one-thread BLAS (:func:`.blas.on_cores`, for
the whole process while the conv runs). The transforms are serial numba
kernels that release the GIL: a numba (OpenMP) pool between BLAS calls
would spin against OpenBLAS's (benchmarks/README.md). In (4) neighbouring tiles
overlap by two rows of dx, so bands of one parity run at once, then the
other. Only x and U are cached for the backward pass, which rebuilds V
band by band. NumPy arrays only; :func:`minirpn.nn.conv._choose_path`
says when this path is taken.
"""
import numpy as np

from ..jit import njit
from .blas import blas_threads, gemm_add, on_cores

__all__ = ["conv2d_forward_winograd", "conv2d_backward_winograd", "winograd_filters"]

#: Bytes of one band's V and M (or dM): 8 MB ran fastest on 2 cores at
#: VGG16's sizes, against 1 to 32 MB.
_BAND_BYTES = 8 << 20

#: Most cores used: each keeps its own sum of dU, 16*F*C numbers.
_MAX_CORES = 8


# --- the transforms of (1)-(4) ---------------------------------------------
# Each works along rows first, then along columns, with the matrices above
# written out as sums: B^T d is (d0 - d2, d1 + d2, d2 - d1, d1 - d3) by rows.
@njit(nogil=True)
def _filter_transform(w, U, half):
    """U[4k + l, f, c] = (G w[f, c] G^T)[k, l]; ``half`` is 1/2 in w's
    dtype (a float64 literal would make numba compute in float64)."""
    F, C = w.shape[0], w.shape[1]
    t = np.empty((4, 3), w.dtype)
    u = np.empty((C, 16), w.dtype)  # one filter's, then copied out plane by plane
    for f in range(F):
        for c in range(C):
            g = w[f, c]
            for j in range(3):  # t = G g
                t[0, j] = g[0, j]
                t[1, j] = half * (g[0, j] + g[1, j] + g[2, j])
                t[2, j] = half * (g[0, j] - g[1, j] + g[2, j])
                t[3, j] = g[2, j]
            for k in range(4):  # U = t G^T
                u[c, 4 * k] = t[k, 0]
                u[c, 4 * k + 1] = half * (t[k, 0] + t[k, 1] + t[k, 2])
                u[c, 4 * k + 2] = half * (t[k, 0] - t[k, 1] + t[k, 2])
                u[c, 4 * k + 3] = t[k, 2]
        for p in range(16):
            U[p, f] = u[:, p]


@njit(nogil=True)
def _filter_transform_adjoint(dU, dw, half):
    """dw[f, c] = G^T dU[:, f, c] G, dU read as 4x4."""
    F, C = dw.shape[0], dw.shape[1]
    t = np.empty((4, 3), dw.dtype)
    for f in range(F):
        for c in range(C):
            for k in range(4):  # t = dU G
                u = dU[4 * k:4 * k + 4, f, c]
                t[k, 0] = u[0] + half * (u[1] + u[2])
                t[k, 1] = half * (u[1] - u[2])
                t[k, 2] = half * (u[1] + u[2]) + u[3]
            g = dw[f, c]
            for j in range(3):  # dw = G^T t
                g[0, j] = t[0, j] + half * (t[1, j] + t[2, j])
                g[1, j] = half * (t[1, j] - t[2, j])
                g[2, j] = half * (t[1, j] + t[2, j]) + t[3, j]


# The band kernels work on whole rows: a tile row's 4 input rows (2 output
# rows) are combined row by row first, then split into even and odd
# columns, so that tile j's four columns are [j] and [j + 1] of two
# arrays. Every inner loop is then a unit-stride loop over one row, which
# LLVM vectorises (the per-tile form ran 1.5 to 5 times slower).

@njit(nogil=True, inline="always")
def _rows_bt(d, t):
    """t = B^T d for 4 rows d (4, n): (d0 - d2, d1 + d2, d2 - d1, d1 - d3)."""
    for s in range(d.shape[1]):
        t[0, s] = d[0, s] - d[2, s]
    for s in range(d.shape[1]):
        t[1, s] = d[1, s] + d[2, s]
    for s in range(d.shape[1]):
        t[2, s] = d[2, s] - d[1, s]
    for s in range(d.shape[1]):
        t[3, s] = d[1, s] - d[3, s]


@njit(nogil=True, inline="always")
def _split(row, even, odd):
    """even[j], odd[j] = row[2j], row[2j + 1]."""
    for j in range(even.shape[0]):
        even[j] = row[2 * j]
    for j in range(odd.shape[0]):
        odd[j] = row[2 * j + 1]


@njit(nogil=True)
def _input_transform(x, i0, i1, V):
    """V[4k + l, c, t] = (B^T d B)[k, l] for the tiles t of tile rows
    [i0, i1), d the 4x4 patch of zero-padded x (C, H, W)."""
    C, H, W = x.shape
    tw = (W + 1) // 2
    d = np.zeros((4, 2 * tw + 2), x.dtype)  # padded rows: x's column s is d's s + 1
    t = np.empty_like(d)
    te, to = np.empty((4, tw + 1), x.dtype), np.empty((4, tw + 1), x.dtype)
    for c in range(C):
        for i in range(i0, i1):
            for r in range(4):  # patch rows 2i - 1 .. 2i + 2
                if 0 <= 2 * i - 1 + r < H:
                    d[r, 1:W + 1] = x[c, 2 * i - 1 + r]
                else:
                    d[r, 1:W + 1] = 0
            _rows_bt(d, t)
            for k in range(4):
                _split(t[k], te[k], to[k])
            p = (i - i0) * tw
            for k in range(4):  # V = t B: columns te[j], to[j], te[j + 1], to[j + 1]
                v0, v1 = V[4 * k, c, p:p + tw], V[4 * k + 1, c, p:p + tw]
                v2, v3 = V[4 * k + 2, c, p:p + tw], V[4 * k + 3, c, p:p + tw]
                e, o = te[k], to[k]
                for j in range(tw):
                    v0[j] = e[j] - e[j + 1]
                for j in range(tw):
                    v1[j] = o[j] + e[j + 1]
                for j in range(tw):
                    v2[j] = e[j + 1] - o[j]
                for j in range(tw):
                    v3[j] = o[j] - o[j + 1]


@njit(nogil=True)
def _input_transform_adjoint(dV, i0, i1, dx):
    """dx += B dV B^T, each tile's 4x4 added where its patch came from
    (padding dropped). Tile rows [i0, i1) write dx rows [2*i0 - 1, 2*i1 + 1)."""
    C, H, W = dx.shape
    tw = (W + 1) // 2
    e, o = np.zeros((4, tw + 1), dx.dtype), np.zeros((4, tw + 1), dx.dtype)
    t = np.zeros((4, 2 * tw + 2), dx.dtype)
    d = np.empty_like(t)
    for c in range(C):
        for i in range(i0, i1):
            p = (i - i0) * tw
            for k in range(4):  # t = dV B^T: tile j adds to columns 2j .. 2j + 3
                v0, v1 = dV[4 * k, c, p:p + tw], dV[4 * k + 1, c, p:p + tw]
                v2, v3 = dV[4 * k + 2, c, p:p + tw], dV[4 * k + 3, c, p:p + tw]
                ek, ok = e[k], o[k]
                ek[tw] = 0
                ok[tw] = 0
                for j in range(tw):
                    ek[j] = v0[j]
                for j in range(tw):
                    ok[j] = v1[j] - v2[j] + v3[j]
                for j in range(tw):
                    ek[j + 1] += v1[j] + v2[j] - v0[j]
                for j in range(tw):
                    ok[j + 1] -= v3[j]
                for j in range(tw + 1):  # interleave the columns back
                    t[k, 2 * j] = ek[j]
                    t[k, 2 * j + 1] = ok[j]
            for s in range(t.shape[1]):  # d = B t, by rows (B^T's transpose)
                d[0, s] = t[0, s]
                d[1, s] = t[1, s] - t[2, s] + t[3, s]
                d[2, s] = t[1, s] + t[2, s] - t[0, s]
                d[3, s] = -t[3, s]
            for r in range(4):  # add the patch rows that lie in x
                row = 2 * i - 1 + r
                if 0 <= row < H:
                    out, dr = dx[c, row], d[r]
                    for s in range(W):
                        out[s] += dr[s + 1]


@njit(nogil=True)
def _output_transform(M, b, i0, i1, y):
    """y rows of tile rows [i0, i1) = A^T M A + b, per filter (F, H, W)."""
    F, H, W = y.shape
    tw = (W + 1) // 2
    r = np.empty((2, 4, tw), y.dtype)
    o = np.empty((2, 2 * tw), y.dtype)
    for f in range(F):
        for i in range(i0, i1):
            p = (i - i0) * tw
            for l in range(4):  # r = A^T M, by rows
                m0, m1 = M[l, f, p:p + tw], M[4 + l, f, p:p + tw]
                m2, m3 = M[8 + l, f, p:p + tw], M[12 + l, f, p:p + tw]
                r0, r1 = r[0, l], r[1, l]
                for j in range(tw):
                    r0[j] = m0[j] + m1[j] + m2[j]
                for j in range(tw):
                    r1[j] = m1[j] - m2[j] - m3[j]
            for a in range(2):  # o = r A + b, even and odd columns interleaved
                ra, oa = r[a], o[a]
                for j in range(tw):
                    oa[2 * j] = ra[0, j] + ra[1, j] + ra[2, j] + b[f]
                    oa[2 * j + 1] = ra[1, j] - ra[2, j] - ra[3, j] + b[f]
            for a in range(2):
                if 2 * i + a < H:
                    y[f, 2 * i + a] = o[a, :W]


@njit(nogil=True)
def _output_transform_adjoint(dy, i0, i1, dM):
    """dM[4k + l, f, t] = (A g A^T)[k, l], g the 2x2 tile of dy (F, H, W)
    (zero past its last row or column)."""
    F, H, W = dy.shape
    tw = (W + 1) // 2
    g = np.zeros((2, 2 * tw), dy.dtype)
    ge, go = np.empty((2, tw), dy.dtype), np.empty((2, tw), dy.dtype)
    h = np.empty((4, 2, tw), dy.dtype)
    for f in range(F):
        for i in range(i0, i1):
            for a in range(2):  # the tile row's two rows of dy, split
                if 2 * i + a < H:
                    g[a, :W] = dy[f, 2 * i + a]
                else:
                    g[a, :W] = 0
                _split(g[a], ge[a], go[a])
            for j in range(tw):  # h = A g, by rows: (g0, g0 + g1, g0 - g1, -g1)
                h[0, 0, j], h[0, 1, j] = ge[0, j], go[0, j]
                h[1, 0, j], h[1, 1, j] = ge[0, j] + ge[1, j], go[0, j] + go[1, j]
                h[2, 0, j], h[2, 1, j] = ge[0, j] - ge[1, j], go[0, j] - go[1, j]
                h[3, 0, j], h[3, 1, j] = -ge[1, j], -go[1, j]
            p = (i - i0) * tw
            for k in range(4):  # dM = h A^T
                h0, h1 = h[k, 0], h[k, 1]
                m0, m1 = dM[4 * k, f, p:p + tw], dM[4 * k + 1, f, p:p + tw]
                m2, m3 = dM[4 * k + 2, f, p:p + tw], dM[4 * k + 3, f, p:p + tw]
                for j in range(tw):
                    m0[j] = h0[j]
                for j in range(tw):
                    m1[j] = h0[j] + h1[j]
                for j in range(tw):
                    m2[j] = h0[j] - h1[j]
                for j in range(tw):
                    m3[j] = -h1[j]


# --- bands and cores --------------------------------------------------------

def _bands(C, F, H, W, itemsize, cores):
    """(i0, i1) tile rows of each band: V and M take about ``_BAND_BYTES``,
    and there are at least two bands per core."""
    th, tw = (H + 1) // 2, (W + 1) // 2
    rows = max(1, _BAND_BYTES // (16 * (C + F) * tw * itemsize))
    rows = max(1, min(rows, -(-th // (2 * cores))))
    return [(i0, min(th, i0 + rows)) for i0 in range(0, th, rows)]


def _plan(x, F):
    """(tw, cores, bands, tiles) of a conv of x (N, C, H, W) with F
    filters: tiles per tile row, cores used, the bands (i0, i1) of
    :func:`_bands`, and the most tiles of one band (its buffers' size)."""
    C, H, W = x.shape[1:]
    tw, cores = (W + 1) // 2, min(blas_threads(), _MAX_CORES)
    bands = _bands(C, F, H, W, x.itemsize, cores)
    return tw, cores, bands, (bands[0][1] - bands[0][0]) * tw


def _buffer(tiles, channels, dtype):
    """A scratch buffer and its (16, channels, T) view for a band of T <=
    ``tiles`` tiles (contiguous for every T)."""
    flat = np.empty(16 * channels * tiles, dtype)
    return lambda T: flat[:16 * channels * T].reshape(16, channels, T)


def winograd_filters(w):
    """U (16, F, C) = G w G^T of every filter of w (F, C, 3, 3), as in (2)."""
    U = np.empty((16,) + w.shape[:2], w.dtype)
    _filter_transform(w, U, w.dtype.type(0.5))
    return U


def conv2d_forward_winograd(x, w, b):
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
        The transformed filters, for :func:`conv2d_backward_winograd`.
    """
    x = np.ascontiguousarray(x)
    N, C, H, W = x.shape
    F = w.shape[0]
    tw, cores, bands, tiles = _plan(x, F)
    U = winograd_filters(w)
    y = np.empty((N, F, H, W), x.dtype)

    def task(core, part):
        V, M = _buffer(tiles, C, x.dtype), _buffer(tiles, F, x.dtype)
        for n, (i0, i1) in part:
            Vb, Mb = V((i1 - i0) * tw), M((i1 - i0) * tw)
            _input_transform(x[n], i0, i1, Vb)
            np.matmul(U, Vb, out=Mb)                                    # (2)
            _output_transform(Mb, b, i0, i1, y[n])

    on_cores(task, [(n, band) for n in range(N) for band in bands], cores)
    return y, U


def conv2d_backward_winograd(dy, x, w, U, need_dx=True):
    """(dx, dw, db) of :func:`conv2d_forward_winograd` by (3) and (4).

    Parameters
    ----------
    dy : ndarray, (N, F, H, W), dtype of x
    x : ndarray, (N, C, H, W) float32 or float64
    w : ndarray, (F, C, 3, 3), dtype of x
    U : ndarray, (16, F, C), dtype of x
        ``winograd_filters(w)``, as the forward pass returned it.
    need_dx : bool
        False skips (4); dx is then None.

    Returns
    -------
    dx : ndarray, (N, C, H, W), or None
    dw : ndarray, (F, C, 3, 3)
    db : ndarray, (F,)
    """
    x, dy = np.ascontiguousarray(x), np.ascontiguousarray(dy)
    N, C = x.shape[:2]
    F = w.shape[0]
    tw, cores, bands, tiles = _plan(x, F)
    dx = np.zeros_like(x) if need_dx else None
    dU = np.zeros((cores,) + U.shape, U.dtype)  # one sum per core

    def task(core, part):
        V, dM = _buffer(tiles, C, x.dtype), _buffer(tiles, F, x.dtype)
        dV = _buffer(tiles, C, x.dtype) if need_dx else None
        for n, (i0, i1) in part:
            T = (i1 - i0) * tw
            Vb, dMb = V(T), dM(T)
            _output_transform_adjoint(dy[n], i0, i1, dMb)
            _input_transform(x[n], i0, i1, Vb)
            for p in range(16):
                gemm_add(dMb[p], Vb[p].T, dU[core, p])                  # (3)
            if need_dx:
                np.matmul(U.transpose(0, 2, 1), dMb, out=dV(T))       # (4)
                _input_transform_adjoint(dV(T), i0, i1, dx[n])

    for parity in (0, 1):  # bands of one parity never write the same row of dx
        on_cores(task, [(n, band) for n in range(N) for band in bands[parity::2]], cores)
    dw = np.empty_like(w)
    _filter_transform_adjoint(dU.sum(axis=0), dw, w.dtype.type(0.5))
    return dx, dw, dy.sum(axis=(0, 2, 3))
