"""minirpn.nn.blas.gemm_add: ``c = a @ b + beta * c`` in one BLAS call on
strided and transposed views, against numpy's product, through NumPy's
bundled OpenBLAS (row-major cblas) and through SciPy's (Fortran) alike."""
import contextlib
import os
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minirpn.nn import blas
from minirpn.nn.blas import gemm_add


def _through(which):
    """Run gemm_add through SciPy's BLAS (``"scipy"``), or as found."""
    if which == "scipy":
        return mock.patch.object(blas, "_numpy_cblas", lambda dtype: None)
    return contextlib.nullcontext()

TOL = {np.float32: 1e-5, np.float64: 1e-12}


def _view(buffer, rows, cols, r0, c0, transposed):
    """A (rows, cols) view of ``buffer`` at (r0, c0), or the transpose of a
    (cols, rows) view: row strides longer than the view, as conv_taps'
    windows have."""
    if transposed:
        return buffer[r0:r0 + cols, c0:c0 + rows].T
    return buffer[r0:r0 + rows, c0:c0 + cols]


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 7), n=st.integers(1, 7), k=st.integers(1, 7),
       ta=st.booleans(), tb=st.booleans(), beta=st.sampled_from([0.0, 1.0, 0.5]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16),
       which=st.sampled_from(["found", "scipy"]))
def test_matches_numpy_on_strided_and_transposed_views(m, n, k, ta, tb, beta, dtype, seed,
                                                      which):
    rng = np.random.default_rng(seed)
    buffer = rng.standard_normal((40, 40)).astype(dtype)
    a = _view(buffer, m, k, 1, 2, ta)
    b = _view(buffer, k, n, 10, 3, tb)
    c = _view(buffer, m, n, 20, 5, False)  # its own rows, apart from a's and b's
    expected = a @ b + beta * c
    with _through(which):
        gemm_add(a, b, c, beta=beta)
    np.testing.assert_allclose(c, expected, rtol=TOL[dtype], atol=TOL[dtype])
    assert c.dtype == dtype


@pytest.mark.parametrize("which", ["found", "scipy"])
def test_beta_zero_does_not_read_c(which):
    a, b = np.ones((2, 3)), np.ones((3, 2))
    c = np.full((2, 2), np.nan)
    with _through(which):
        gemm_add(a, b, c, beta=0.0)
    assert np.array_equal(c, np.full((2, 2), 3.0))


def test_an_empty_inner_size_scales_c_by_beta():
    c = np.full((2, 3), 2.0)
    gemm_add(np.zeros((2, 0)), np.zeros((0, 3)), c, beta=0.5)
    assert np.array_equal(c, np.ones((2, 3)))


def test_refuses_mismatched_shapes_dtypes_and_strides():
    a, b, c = np.ones((2, 3)), np.ones((3, 4)), np.zeros((2, 4))
    with pytest.raises(ValueError, match=r"\(M, K\) @ \(K, N\)"):
        gemm_add(a, np.ones((4, 3)), c)
    with pytest.raises(ValueError, match="one dtype"):
        gemm_add(a.astype(np.float32), b, c)
    with pytest.raises(ValueError, match="unit stride"):
        gemm_add(np.ones((4, 6))[::2, ::2], b, c)
    with pytest.raises(ValueError, match="row-major"):
        gemm_add(a, b, np.zeros((4, 8))[::2, ::2])
    with pytest.raises(TypeError, match="native float32 or float64"):
        gemm_add(a.astype(">f8"), b.astype(">f8"), c.astype(">f8"))
    with pytest.raises(TypeError, match="native float32 or float64"):
        gemm_add(a.astype(np.float16), b.astype(np.float16), c.astype(np.float16))


def test_uses_numpys_bundled_openblas_when_numpy_ships_one():
    """NumPy's wheels bundle OpenBLAS; sharing its thread pool is the point
    (minirpn/nn/blas.py). Other NumPy builds fall back to SciPy's."""
    bundled = blas._numpy_openblas() is not None
    assert blas.blas_name(np.float32) == blas.blas_name(np.float64) == (
        "numpy" if bundled else "scipy")
    with _through("scipy"):
        assert blas.blas_name() == "scipy"


def test_limit_blas_threads_sets_and_restores_numpys_count():
    """conv_winograd runs one product per core on a one-thread BLAS: the
    count drops inside the block, is restored after it (even on an error),
    and a build without a bundled OpenBLAS reports one thread."""
    before = blas.blas_threads()
    assert before >= 1
    with pytest.raises(RuntimeError, match="inside"):
        with blas.limit_blas_threads(1):
            assert blas.blas_threads() == 1
            raise RuntimeError("inside")
    assert blas.blas_threads() == before
    with mock.patch.object(blas, "_thread_count_functions", lambda: None):
        assert blas.blas_threads() == 1
        with blas.limit_blas_threads(1):
            pass


def test_on_cores_splits_items_and_raises_what_a_core_raised():
    seen = {}

    def task(core, part):
        seen[core] = (part, blas.blas_threads())
    blas.on_cores(task, list(range(7)), 3)
    assert {k: v[0] for k, v in seen.items()} == {0: [0, 3, 6], 1: [1, 4], 2: [2, 5]}
    assert all(threads == 1 for _, threads in seen.values())  # one-thread BLAS inside
    seen.clear()
    blas.on_cores(task, [5], 4)  # one part: run here, BLAS untouched
    assert seen == {0: ([5], blas.blas_threads())}

    def fails(core, part):
        if core == 1:
            raise ValueError("core 1")
    with pytest.raises(ValueError, match="core 1"):
        blas.on_cores(fails, [0, 1], 2)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_on_cores_runs_in_a_forked_child():
    """A child made by fork inherits the parent's pool object but not its
    threads: on_cores must start new ones there instead of waiting forever."""
    import multiprocessing
    import time
    # the parent's pool: both threads started, both idle
    blas.on_cores(lambda core, part: time.sleep(0.05), [0, 1], 2)

    def child(queue):
        seen = []
        blas.on_cores(lambda core, part: seen.append(part), [0, 1], 2)
        queue.put(sorted(seen))
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=child, args=(queue,))
    process.start()
    process.join(timeout=60)
    assert process.exitcode == 0
    assert queue.get(timeout=5) == [[0], [1]]
