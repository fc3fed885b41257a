"""The fast paths give the results of the plain references: conv2d's five
paths ("1x1", "im2col" — the one CuPy arrays take, run here on NumPy arrays —
"bands", "taps" and "winograd", which tests/test_conv_winograd.py checks
further) against ``minirpn.nn.reference``, and the stride-1 col2im
that CuPy arrays' dx takes; the max-pool and ReLU numba
kernels against the ``xp`` code that CuPy arrays run. (box_iou and nms:
tests/test_ops_boxes.py and tests/test_ops_nms.py; RoI Pool and RoI Align:
tests/test_roi_pool.py and tests/test_roi_align.py.)"""
import numpy as np
import pytest

from minirpn.nn import conv, conv_bands, conv_taps, conv_winograd
from minirpn.nn.reference import conv2d_backward_reference, conv2d_forward_reference

CASES = [  # x shape, w shape, stride, padding
    ((2, 3, 11, 9), (4, 3, 3, 3), (1, 1), (1, 1)),    # C < F: dx by col2im
    ((1, 8, 10, 12), (4, 8, 3, 3), (1, 1), (1, 1)),   # C >= F: dx by adjoint conv
    ((2, 8, 10, 12), (16, 8, 3, 3), (1, 1), (2, 2)),
    ((1, 6, 9, 7), (3, 6, 3, 3), (1, 1), (3, 0)),     # padding > KH - 1: col2im
    ((2, 5, 11, 9), (4, 5, 3, 3), (2, 2), (1, 1)),
    ((1, 4, 9, 10), (6, 4, 5, 2), (2, 3), (2, 1)),
    ((1, 3, 4, 4), (2, 3, 4, 4), (1, 1), (0, 0)),     # kernel = whole input
    ((2, 6, 5, 7), (3, 6, 1, 1), (1, 1), (0, 0)),     # the "1x1" path
    ((1, 6, 5, 7), (9, 6, 1, 1), (2, 1), (0, 1)),     # 1x1 but strided: unrolled
    # stride 1 and OW = W (2*pad_w = KW - 1): "taps" can take these
    ((1, 4, 9, 10), (6, 4, 5, 3), (1, 1), (1, 1)),    # OH < H: rows fall off
    ((2, 3, 6, 5), (2, 3, 3, 5), (1, 1), (4, 2)),     # pad_h > KH - 1: bias-only rows
    ((1, 5, 7, 2), (3, 5, 3, 5), (1, 1), (1, 2)),     # W < KW: every column an edge
    ((1, 4, 6, 8), (5, 4, 3, 1), (1, 1), (1, 0)),     # KW = 1: no edge columns
    # 3x3, stride 1, padding 1: "winograd" can take these
    ((2, 4, 7, 5), (3, 4, 3, 3), (1, 1), (1, 1)),     # odd sides: half-empty tiles
    ((1, 3, 1, 1), (2, 3, 3, 3), (1, 1), (1, 1)),     # one pixel
]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-4), np.float64: dict(rtol=1e-11, atol=1e-11)}
#: (WHOLE_IM2COL_BYTES, TAPS_MIN_CHANNELS, WINOGRAD_MIN_MACS) that send
#: every NumPy conv (but 1x1) down one path ("winograd" takes only 3x3,
#: stride 1, padding 1, and "taps" only stride 1 with OW = W: the others
#: go "taps" or "bands")
PATH_LIMITS = {"im2col": (1 << 62, 1, 1 << 62), "bands": (0, 1 << 30, 1 << 62),
               "taps": (0, 1, 1 << 62), "winograd": (0, 1, 0)}


def conv_forward_backward(x, w, b, stride, padding, dy):
    y, cache = conv.conv2d_forward(x, w, b, stride, padding)
    return cache.path, (y,) + conv.conv2d_backward(dy, cache)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("band_bytes", [1, 1 << 20])  # one row a band; one band
@pytest.mark.parametrize("xs, ws, stride, padding", CASES)
def test_fast_paths_match_reference(xs, ws, stride, padding, band_bytes, dtype, rng,
                                    monkeypatch):
    monkeypatch.setattr(conv_bands, "_BAND_BYTES", band_bytes)
    monkeypatch.setattr(conv_taps, "_BAND_BYTES", band_bytes)
    monkeypatch.setattr(conv_winograd, "_BAND_BYTES", band_bytes)
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    y, cache = conv2d_forward_reference(x, w, b, stride, padding)
    dy = rng.standard_normal(y.shape).astype(dtype)
    expected = (y,) + conv2d_backward_reference(dy, cache)
    one_by_one = ws[2:] == (1, 1) and stride == (1, 1) and padding == (0, 0)
    for path, (limit, min_channels, min_macs) in PATH_LIMITS.items():
        monkeypatch.setattr(conv, "WHOLE_IM2COL_BYTES", limit)
        monkeypatch.setattr(conv, "TAPS_MIN_CHANNELS", min_channels)
        monkeypatch.setattr(conv, "WINOGRAD_MIN_MACS", min_macs)
        taken, got = conv_forward_backward(x, w, b, stride, padding, dy)
        if path == "winograd" and not (ws[2:] == (3, 3) and stride == padding == (1, 1)):
            path = "taps"
        if path == "taps" and not (stride == (1, 1) and conv_taps.same_width(ws, padding)):
            path = "bands"
        assert taken == ("1x1" if one_by_one else path)
        for name, e, g in zip(("y", "dx", "dw", "db"), expected, got):
            assert g.dtype == dtype and g.shape == e.shape, (taken, name)
            np.testing.assert_allclose(g, e, **TOL[dtype], err_msg=f"{taken}: {name}")


def test_numpy_path_caches_x_not_im2col_past_the_limit(rng, monkeypatch):
    x = rng.standard_normal((1, 4, 16, 16), dtype=np.float32)
    w = rng.standard_normal((8, 4, 3, 3), dtype=np.float32)
    b = np.zeros(8, np.float32)
    im2col_bytes = (4 * 9 + 1) * 16 * 16 * 4
    monkeypatch.setattr(conv, "WHOLE_IM2COL_BYTES", im2col_bytes)
    _, cache = conv.conv2d_forward(x, w, b, 1, 1)
    assert cache.path == "im2col" and cache.cols.shape == (37, 256)  # small: whole
    assert cache.x is None
    monkeypatch.setattr(conv, "WHOLE_IM2COL_BYTES", im2col_bytes - 1)
    _, cache = conv.conv2d_forward(x, w, b, 1, 1)
    assert cache.path == "bands" and cache.x is x and cache.cols is None  # large: x only
    monkeypatch.setattr(conv, "TAPS_MIN_CHANNELS", 4)
    _, cache = conv.conv2d_forward(x, w, b, 1, 1)
    assert cache.path == "taps" and cache.x is x and cache.cols is None  # 4 channels: taps
    monkeypatch.setattr(conv, "WHOLE_IM2COL_BYTES", 0)
    _, cache = conv.conv2d_forward(x, w, b, 2, 1)
    assert cache.path == "bands"  # taps needs stride 1


@pytest.mark.parametrize("xs, ws, stride, padding", [c for c in CASES if c[2] == (1, 1)])
def test_stride1_col2im_matches_reference(xs, ws, stride, padding, rng):
    """NumPy's "im2col" path takes dx from conv_taps when OW = W; CuPy
    arrays always take _dx_stride1, checked here on NumPy arrays."""
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    y, cache = conv2d_forward_reference(x, w, np.zeros(ws[0]), stride, padding)
    dy = rng.standard_normal(y.shape)
    dx = conv._dx_stride1(dy, w, xs, padding)
    np.testing.assert_allclose(dx, conv2d_backward_reference(dy, cache)[0], **TOL[np.float64])


# ---------------------------------------------------------------- max-pool
@pytest.mark.parametrize("shape, kernel, stride", [
    ((2, 3, 8, 9), (2, 2), (2, 2)), ((1, 2, 9, 7), (3, 3), (2, 2)),
    ((1, 2, 7, 9), (3, 2), (1, 3)), ((1, 1, 13, 13), (12, 12), (1, 1)),
    ((1, 2, 11, 8), (3, 2), (3, 2)), ((2, 1, 7, 10), (3, 3), (3, 3))])  # tiling windows
def test_max_pool_numba_kernels_match_the_offset_loop(shape, kernel, stride, rng):
    from minirpn.nn import pooling
    x = rng.standard_normal(shape)
    x[0, 0, 1:3, 1:3] = 0.5       # ties: the first arg-max wins
    x[-1, -1, 0, 1] = np.nan      # a NaN window
    H, W = shape[2:]
    out = ((H - kernel[0]) // stride[0] + 1, (W - kernel[1]) // stride[1] + 1)
    index = np.int8 if kernel[0] * kernel[1] <= 127 else np.int32
    y1, a1 = pooling._max_pool_numpy(x, kernel, stride, out, index)
    y2, a2 = pooling._max_pool_offsets(x, kernel, stride, out, index)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(a1, a2)
    assert a1.dtype == a2.dtype == index
    dy = rng.standard_normal(y1.shape)
    np.testing.assert_allclose(pooling._unpool_numpy(dy, a1, shape, kernel, stride),
                               pooling._unpool_offsets(dy, a2, shape, kernel, stride),
                               rtol=1e-15, atol=1e-15)


# ---------------------------------------------------------------- ReLU
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_kernels_match_the_xp_expressions(dtype, rng):
    from minirpn.nn.activations import relu_backward, relu_forward
    x = rng.standard_normal((2, 3, 5, 7)).astype(dtype)
    x[0, 0, 0, :3] = [0.0, np.nan, -np.inf]
    y, cache = relu_forward(x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))  # NaN stays NaN
    assert y.dtype == dtype and cache is y
    dy = rng.standard_normal(x.shape).astype(dtype)
    np.testing.assert_array_equal(relu_backward(dy, cache), np.where(y > 0, dy, 0))
    # the in-place kernels (one array written) give the same values
    x_copy, dy_copy = x.copy(), dy.copy()
    np.testing.assert_array_equal(relu_forward(x_copy, inplace=True)[0], y)
    np.testing.assert_array_equal(relu_backward(dy_copy, y, inplace=True),
                                  np.where(y > 0, dy, 0))


def test_conv_backward_can_skip_dx(rng):
    x = rng.standard_normal((1, 3, 9, 8))
    w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    y, cache = conv.conv2d_forward(x, w, b, 1, 1)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = conv.conv2d_backward(dy, cache)
    none, dw2, db2 = conv.conv2d_backward(dy, cache, need_dx=False)
    assert none is None and dx.shape == x.shape
    np.testing.assert_array_equal(dw2, dw)
    np.testing.assert_array_equal(db2, db)
