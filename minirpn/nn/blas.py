"""``c += a @ b`` in BLAS, on strided views, without copies.

``numpy.matmul`` writes into ``out`` but cannot add to it, and SciPy's
``scipy.linalg.blas.sgemm`` copies any operand that is not contiguous. The
shifted-tap convolution of :mod:`.conv_taps` needs both: nine products
summed into one band of the output, each reading a window of the input,
and both views' rows are longer than the view. BLAS's ``gemm`` does exactly that
(``C = alpha * op(A) @ op(B) + beta * C`` with leading dimensions lda,
ldb, ldc), so this module calls it through SciPy's documented raw BLAS
function pointers (``scipy.linalg.cython_blas``, the interface Cython code
uses; https://docs.scipy.org/doc/scipy/reference/linalg.cython_blas.html),
looked up with numba's ``get_cython_function_address``.

BLAS is column-major and NumPy's views here are row-major: a row-major
(m, n) matrix with row stride ld is the column-major (n, m) matrix with
leading dimension ld, i.e. its transpose. So ``c = a @ b`` becomes
``c.T = b.T @ a.T``: gemm is called with the operands swapped, and an
operand that is itself a transposed view (column stride ld, unit row
stride) passes as 'T'.
"""
import ctypes
import functools

import numpy as np

__all__ = ["gemm_add"]

_CALL = {np.dtype(np.float32): ("sgemm", ctypes.c_float),
         np.dtype(np.float64): ("dgemm", ctypes.c_double)}


@functools.cache
def _gemm(dtype):
    """SciPy's Fortran ``sgemm``/``dgemm`` as a ctypes function, and its
    scalar type (cython_blas takes 32-bit ints, every argument a pointer)."""
    from numba.extending import get_cython_function_address
    name, scalar = _CALL[dtype]
    p = ctypes.POINTER
    signature = ctypes.CFUNCTYPE(
        None, ctypes.c_char_p, ctypes.c_char_p, p(ctypes.c_int), p(ctypes.c_int),
        p(ctypes.c_int), p(scalar), ctypes.c_void_p, p(ctypes.c_int), ctypes.c_void_p,
        p(ctypes.c_int), p(scalar), ctypes.c_void_p, p(ctypes.c_int))
    return signature(get_cython_function_address("scipy.linalg.cython_blas", name)), scalar


def _as_blas(m):
    """(flag, leading dimension) of 2-D view ``m`` as the column-major
    matrix ``m.T``: 'N' for unit column stride (row-major), 'T' for unit
    row stride (a transposed row-major matrix)."""
    size = m.itemsize
    # the stride of an axis of length 1 is never used: take it as contiguous
    rows = m.strides[0] if m.shape[0] > 1 else m.shape[1] * size
    cols = m.strides[1] if m.shape[1] > 1 else size
    if cols == size and rows % size == 0 and rows >= m.shape[1] * size:
        return b"N", max(1, rows // size)
    rows = m.strides[0] if m.shape[0] > 1 else size
    cols = m.strides[1] if m.shape[1] > 1 else m.shape[0] * size
    if rows == size and cols % size == 0 and cols >= m.shape[0] * size:
        return b"T", max(1, cols // size)
    raise ValueError(f"gemm_add needs a unit stride along one axis, got strides {m.strides} "
                     f"for shape {m.shape}")


def gemm_add(a, b, c, beta=1.0):
    """``c = a @ b + beta * c`` in place, in one BLAS call.

    Parameters
    ----------
    a : ndarray, (M, K) float32 or float64, native byte order
    b : ndarray, (K, N), dtype of a
    c : ndarray, (M, N), dtype of a, written in place
        Each a 2-D view with a unit stride along one axis and any stride
        along the other (``c``: unit column stride); views may overlap
        other views of the same buffer, not each other.
    beta : float
        1 adds the product to ``c``; 0 overwrites it (then ``c``'s old
        values, even NaN, are not read).
    """
    m, k = a.shape
    n = c.shape[1]
    if b.shape != (k, n) or c.shape[0] != m or not a.dtype == b.dtype == c.dtype:
        raise ValueError(f"gemm_add needs (M, K) @ (K, N) -> (M, N) of one dtype, got "
                         f"{a.shape} {a.dtype}, {b.shape} {b.dtype}, {c.shape} {c.dtype}")
    if a.dtype not in _CALL or not a.dtype.isnative:
        raise TypeError(f"gemm_add takes native float32 or float64 arrays, got {a.dtype}")
    if c.shape[1] > 1 and c.strides[1] != c.itemsize:
        raise ValueError(f"gemm_add writes into a row-major view, got strides {c.strides}")
    if min(m, n, k) == 0:
        if k == 0:  # an empty sum: c = beta * c
            c[...] = c * beta if beta else 0
        return c
    gemm, scalar = _gemm(a.dtype)
    flag_b, ldb = _as_blas(b)
    flag_a, lda = _as_blas(a)
    ldc = max(1, n, c.strides[0] // c.itemsize if m > 1 else n)
    ints = [ctypes.c_int(v) for v in (n, m, k, ldb, lda, ldc)]
    # c.T (N, M) = b.T (N, K) @ a.T (K, M): the swapped column-major call
    gemm(flag_b, flag_a, *map(ctypes.byref, ints[:3]), ctypes.byref(scalar(1.0)),
         b.ctypes.data, ctypes.byref(ints[3]), a.ctypes.data, ctypes.byref(ints[4]),
         ctypes.byref(scalar(beta)), c.ctypes.data, ctypes.byref(ints[5]))
    return c
