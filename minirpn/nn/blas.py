"""``c += a @ b`` in BLAS, on strided views, without copies.

``numpy.matmul`` writes into ``out`` but cannot add to it, and SciPy's
``scipy.linalg.blas.sgemm`` copies any operand that is not contiguous. The
shifted-tap convolution of :mod:`.conv_taps` needs both: nine products
summed into one band of the output, each reading a window of the input,
and both views' rows are longer than the view. BLAS's ``gemm`` does exactly that
(``C = alpha * op(A) @ op(B) + beta * C`` with leading dimensions lda,
ldb, ldc), so this module calls it directly, through ctypes.

Which BLAS: NumPy's own when it can be found, else SciPy's.

- NumPy's wheels bundle OpenBLAS built with 64-bit integers, its symbols
  renamed with a ``64_`` suffix (``scipy_cblas_sgemm64_`` in the
  scipy-openblas64 build of NumPy 2, ``cblas_sgemm64_`` in NumPy 1's
  ``openblas64_``). Its row-major ``cblas_?gemm`` takes NumPy's views as
  they are: a row-major (m, n) view with row stride ld is ``'N'`` with
  leading dimension ld, a transposed one (unit row stride) is ``'T'``.
- SciPy documents raw BLAS function pointers for Cython
  (``scipy.linalg.cython_blas``,
  https://docs.scipy.org/doc/scipy/reference/linalg.cython_blas.html),
  looked up with numba's ``get_cython_function_address``. That is
  Fortran, column-major: a row-major (m, n) matrix is the column-major
  (n, m) matrix ``m.T``, so ``c = a @ b`` is called as
  ``c.T = b.T @ a.T``, operands swapped.

NumPy's is preferred because NumPy and SciPy each bundle an OpenBLAS with
its own thread pool, and a pool's threads keep spinning for a while after
a call: a ``gemm_add`` between two ``numpy.matmul`` calls (Linear layers,
im2col convs) then shares its cores with the other pool's spinning threads.
On this project's 2-core machine a (64, 288) @ (288, 16384) product took
3.5 ms with ``numpy.matmul`` and NumPy's BLAS alternating, and 9-12 ms
with ``numpy.matmul`` and SciPy's alternating (benchmarks/README.md).
"""
from concurrent.futures import ThreadPoolExecutor
import contextlib
import ctypes
import functools
import glob
import os

import numpy as np

__all__ = ["gemm_add", "blas_name", "blas_threads", "limit_blas_threads", "on_cores"]

_TYPES = {np.dtype(np.float32): ("s", ctypes.c_float),
          np.dtype(np.float64): ("d", ctypes.c_double)}
_ROW_MAJOR, _FLAG = 101, {b"N": 111, b"T": 112}   # CBLAS enum values


@functools.cache
def _numpy_openblas():
    """ctypes handle of the OpenBLAS bundled in NumPy's wheel, or None."""
    here = os.path.dirname(np.__file__)
    for folder in (os.path.join(here, os.pardir, "numpy.libs"), os.path.join(here, ".dylibs")):
        for path in sorted(glob.glob(os.path.join(folder, "*openblas64*"))):
            try:
                return ctypes.CDLL(path)
            except OSError:
                continue
    return None


@functools.cache
def _numpy_cblas(dtype):
    """NumPy's ``cblas_?gemm`` (row-major, 64-bit ints) as a ctypes
    function, or None when NumPy's BLAS is not the bundled OpenBLAS."""
    lib = _numpy_openblas()
    letter, scalar = _TYPES[dtype]
    for name in (f"scipy_cblas_{letter}gemm64_", f"cblas_{letter}gemm64_"):
        gemm = getattr(lib, name, None) if lib is not None else None
        if gemm is not None:
            i64, ptr = ctypes.c_int64, ctypes.c_void_p
            gemm.restype = None
            gemm.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, i64, i64, i64,
                             scalar, ptr, i64, ptr, i64, scalar, ptr, i64]
            return gemm
    return None


@functools.cache
def _scipy_gemm(dtype):
    """SciPy's Fortran ``?gemm`` as a ctypes function (cython_blas takes
    32-bit ints, every argument a pointer)."""
    from numba.extending import get_cython_function_address
    letter, scalar = _TYPES[dtype]
    p = ctypes.POINTER
    signature = ctypes.CFUNCTYPE(
        None, ctypes.c_char_p, ctypes.c_char_p, p(ctypes.c_int), p(ctypes.c_int),
        p(ctypes.c_int), p(scalar), ctypes.c_void_p, p(ctypes.c_int), ctypes.c_void_p,
        p(ctypes.c_int), p(scalar), ctypes.c_void_p, p(ctypes.c_int))
    return signature(get_cython_function_address("scipy.linalg.cython_blas", f"{letter}gemm"))


def blas_name(dtype=np.float32):
    """Which BLAS :func:`gemm_add` calls: ``"numpy"`` or ``"scipy"``."""
    return "numpy" if _numpy_cblas(np.dtype(dtype)) is not None else "scipy"


@functools.cache
def _thread_count_functions():
    """(get, set) of NumPy's bundled OpenBLAS's thread count, or None."""
    lib = _numpy_openblas()
    if lib is None:
        return None
    for prefix in ("scipy_openblas", "openblas"):
        get = getattr(lib, f"{prefix}_get_num_threads64_", None)
        put = getattr(lib, f"{prefix}_set_num_threads64_", None)
        if get is not None and put is not None:
            get.restype, get.argtypes = ctypes.c_int, []
            put.restype, put.argtypes = None, [ctypes.c_int]
            return get, put
    return None


def blas_threads():
    """Threads that NumPy's bundled OpenBLAS runs one product on; 1 when
    NumPy has none (then its count cannot be read, nor set)."""
    functions = _thread_count_functions()
    return functions[0]() if functions is not None else 1


@contextlib.contextmanager
def limit_blas_threads(n):
    """Within the block, NumPy's OpenBLAS runs each product on at most n
    threads, process-wide (OpenBLAS's count is global in its pthreads
    build); restored on exit. For callers that run their own threads, one
    product each. Does nothing when NumPy's BLAS is not the bundled one."""
    functions = _thread_count_functions()
    before = functions[0]() if functions is not None else n
    if before > n:
        functions[1](n)
    try:
        yield
    finally:
        if before > n:
            functions[1](before)


@functools.cache
def _pool(workers, pid):
    """The threads of :func:`on_cores`; one pool per process, as a child
    made by fork inherits the pool object but not its threads."""
    return ThreadPoolExecutor(workers, thread_name_prefix="minirpn-cores")


def on_cores(task, items, cores):
    """Run ``task(k, items[k::cores])`` for each core k at once, each in a
    thread of its own and every BLAS product on one thread; in the calling
    thread when there is one part only. ``task`` should release the GIL
    (BLAS and ``nogil`` numba kernels do) and its exceptions are raised here."""
    parts = [(k, items[k::cores]) for k in range(min(cores, len(items)))]
    if len(parts) < 2:
        for part in parts:
            task(*part)
        return
    with limit_blas_threads(1):
        for future in [_pool(len(parts), os.getpid()).submit(task, *part) for part in parts]:
            future.result()


def _as_blas(m):
    """(flag, leading dimension) of 2-D view ``m`` for row-major BLAS:
    'N' for unit column stride (row-major), 'T' for unit row stride (the
    transpose of a row-major matrix)."""
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
    if a.dtype not in _TYPES or not a.dtype.isnative:
        raise TypeError(f"gemm_add takes native float32 or float64 arrays, got {a.dtype}")
    if c.shape[1] > 1 and c.strides[1] != c.itemsize:
        raise ValueError(f"gemm_add writes into a row-major view, got strides {c.strides}")
    if min(m, n, k) == 0:
        if k == 0:  # an empty sum: c = beta * c
            c[...] = c * beta if beta else 0
        return c
    (flag_a, lda), (flag_b, ldb) = _as_blas(a), _as_blas(b)
    ldc = max(1, n, c.strides[0] // c.itemsize if m > 1 else n)
    cblas = _numpy_cblas(a.dtype)
    if cblas is not None:
        cblas(_ROW_MAJOR, _FLAG[flag_a], _FLAG[flag_b], m, n, k, 1.0,
              a.ctypes.data, lda, b.ctypes.data, ldb, beta, c.ctypes.data, ldc)
        return c
    scalar = _TYPES[a.dtype][1]
    ints = [ctypes.c_int(v) for v in (n, m, k, ldb, lda, ldc)]
    # c.T (N, M) = b.T (N, K) @ a.T (K, M): the swapped column-major call
    _scipy_gemm(a.dtype)(flag_b, flag_a, *map(ctypes.byref, ints[:3]),
                         ctypes.byref(scalar(1.0)), b.ctypes.data, ctypes.byref(ints[3]),
                         a.ctypes.data, ctypes.byref(ints[4]), ctypes.byref(scalar(beta)),
                         c.ctypes.data, ctypes.byref(ints[5]))
    return c
