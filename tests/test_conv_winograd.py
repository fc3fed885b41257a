"""conv2d's "winograd" path (minirpn.nn.conv_winograd): Winograd's F(2x2, 3x3)
against the plain reference, by hand on one tile, against finite
differences, band by band, on one core and on two, and where conv2d takes it."""
import numpy as np
import pytest

from minirpn.nn import conv, conv_winograd
from minirpn.nn.conv_winograd import (conv2d_backward_winograd, conv2d_forward_winograd,
                                      winograd_filters)
from minirpn.nn.gradcheck import gradcheck
from minirpn.nn.reference import conv2d_backward_reference, conv2d_forward_reference

SHAPES = [  # (N, C, H, W), F: odd and even sides, one-pixel maps, thin maps
    ((2, 3, 7, 6), 4), ((1, 5, 8, 8), 6), ((2, 4, 9, 5), 3), ((1, 2, 1, 1), 2),
    ((1, 3, 2, 3), 2), ((3, 7, 13, 11), 5), ((1, 2, 1, 9), 3), ((1, 2, 10, 1), 2)]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


def reference(x, w, b, dy):
    y, cache = conv2d_forward_reference(x, w, b, 1, 1)
    return (y,) + conv2d_backward_reference(dy, cache)


def winograd(x, w, b, dy, need_dx=True):
    y, U = conv2d_forward_winograd(x, w, b)
    return (y,) + conv2d_backward_winograd(dy, x, w, U, need_dx)


def inputs(rng, shape, F, dtype=np.float64):
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((F, shape[1], 3, 3)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    dy = rng.standard_normal((shape[0], F) + shape[2:]).astype(dtype)
    return x, w, b, dy


def test_one_tile_by_hand():
    """A 2x2 input and a filter of ones: each output sums the 3x3
    neighbourhood inside the map, i.e. all four pixels (1+2+3+4 = 10)."""
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    y, U = conv2d_forward_winograd(x, np.ones((1, 1, 3, 3)), np.array([0.5]))
    np.testing.assert_allclose(y, np.full((1, 1, 2, 2), 10.5), atol=1e-15)
    # G g G^T of the ones filter: G's rows sum to (1, 3/2, 1/2, 1)
    np.testing.assert_allclose(U[:, 0, 0].reshape(4, 4),
                               np.outer([1, 1.5, 0.5, 1], [1, 1.5, 0.5, 1]), atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, F", SHAPES)
def test_matches_reference(shape, F, dtype, rng):
    x, w, b, dy = inputs(rng, shape, F, dtype)
    for name, e, g in zip(("y", "dx", "dw", "db"), reference(x, w, b, dy), winograd(x, w, b, dy)):
        assert g.dtype == dtype and g.shape == e.shape, name
        np.testing.assert_allclose(g, e, **TOL[dtype], err_msg=name)


@pytest.mark.parametrize("cores", [1, 2, 3])
@pytest.mark.parametrize("band_bytes", [1, 1 << 30])  # one tile row a band; fewest bands
def test_bands_and_cores_give_one_result(cores, band_bytes, rng, monkeypatch):
    """Bands of one parity run at once, dU summed per core: any split gives
    the reference's values, and the same split gives the same bits twice."""
    monkeypatch.setattr(conv_winograd, "_BAND_BYTES", band_bytes)
    monkeypatch.setattr(conv_winograd, "blas_threads", lambda: cores)
    x, w, b, dy = inputs(rng, (2, 3, 15, 9), 4)
    first = winograd(x, w, b, dy)
    for e, g in zip(reference(x, w, b, dy), first):
        np.testing.assert_allclose(g, e, **TOL[np.float64])
    for a, g in zip(first, winograd(x, w, b, dy)):
        np.testing.assert_array_equal(a, g)


def test_bands_split_tile_rows_evenly():
    bands = conv_winograd._bands(64, 64, 600, 1000, 4, cores=2)
    rows = [i1 - i0 for i0, i1 in bands]
    assert bands[0][0] == 0 and bands[-1][1] == 300  # 600 rows: 300 tile rows
    assert all(a[1] == b[0] for a, b in zip(bands, bands[1:]))
    assert max(rows) * 16 * 128 * 500 * 4 <= conv_winograd._BAND_BYTES
    assert len(conv_winograd._bands(8, 8, 6, 6, 4, cores=2)) >= 3  # >= 2 per core if it can


def test_gradcheck_float64(rng):
    x, w, b, _ = inputs(rng, (2, 3, 5, 4), 2)
    y, U = conv2d_forward_winograd(x, w, b)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = conv2d_backward_winograd(dy, x, w, U)
    report = gradcheck(lambda x, w, b: conv2d_forward_winograd(x, w, b)[0],
                       dict(x=x, w=w, b=b), dict(x=dx, w=dw, b=db), dy=dy)
    assert report.passed, f"\n{report}"


def test_need_dx_false_skips_dx_only(rng):
    x, w, b, dy = inputs(rng, (1, 3, 6, 7), 2)
    full = winograd(x, w, b, dy)
    y, dx, dw, db = winograd(x, w, b, dy, need_dx=False)
    assert dx is None
    np.testing.assert_array_equal(dw, full[2])
    np.testing.assert_array_equal(db, full[3])


def test_filters_are_transformed_once_and_cached(rng, monkeypatch):
    """conv2d takes this path for large 3x3, stride-1, padding-1 maps of
    NumPy arrays; it caches x itself and U, not a copy of x."""
    x, w, b, dy = inputs(rng, (1, 4, 16, 16), 8, np.float32)
    macs = 16 * 16 * 8 * 4 * 9
    monkeypatch.setattr(conv, "WINOGRAD_MIN_MACS", macs)
    monkeypatch.setattr(conv, "TAPS_MIN_CHANNELS", 4)
    y, cache = conv.conv2d_forward(x, w, b, 1, 1)
    assert cache.path == "winograd" and cache.x is x and cache.cols is None
    np.testing.assert_array_equal(cache.u, winograd_filters(w))
    np.testing.assert_allclose(conv.conv2d_backward(dy, cache)[1],
                               reference(x, w, b, dy)[2], **TOL[np.float32])
    for kw in (dict(stride=2, padding=1), dict(stride=1, padding=2)):
        assert conv.conv2d_forward(x, w, b, **kw)[1].path != "winograd"
    monkeypatch.setattr(conv, "WINOGRAD_MIN_MACS", macs + 1)  # too small a conv
    assert conv.conv2d_forward(x, w, b, 1, 1)[1].path != "winograd"
    monkeypatch.setattr(conv, "WINOGRAD_MIN_MACS", macs)
    monkeypatch.setattr(conv, "TAPS_MIN_CHANNELS", 5)  # 4 channels: too thin
    assert conv.conv2d_forward(x, w, b, 1, 1)[1].path != "winograd"
