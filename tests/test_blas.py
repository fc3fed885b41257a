"""minirpn.nn.blas.gemm_add: ``c = a @ b + beta * c`` in one BLAS call on
strided and transposed views, against numpy's product, through NumPy's
bundled OpenBLAS (row-major cblas) and through SciPy's (Fortran) alike."""
import contextlib
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
