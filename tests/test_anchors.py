"""Anchor generation (Ren et al. 2015, section 3.1.1): base anchors, grid order,
validation."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minirpn.anchors import base_anchors, grid_anchors, num_anchors


def _wh(boxes):
    return boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]


def test_base_anchors_default_shape_dtype_and_square_values():
    b = base_anchors()
    assert b.shape == (9, 4) and b.dtype == np.float32
    # ratio 1 (middle ratio block), scales 8, 16, 32: squares of side
    # 128, 256, 512 centred at (8, 8), the centre of the first 16-px cell.
    np.testing.assert_array_equal(b[3:6], [[-56, -56, 72, 72],
                                           [-120, -120, 136, 136],
                                           [-248, -248, 264, 264]])


def test_base_anchors_hand_worked_ratio_half():
    # size 4 * 2 = 8, ratio 0.5: w = 8 / sqrt(.5) = 8 sqrt 2, h = 8 sqrt .5
    b = base_anchors(base_size=4, scales=(2,), ratios=(0.5,), dtype=np.float64)
    hw, hh = 4 * math.sqrt(2), 2 * math.sqrt(2)
    np.testing.assert_allclose(b, [[2 - hw, 2 - hh, 2 + hw, 2 + hh]])


def test_base_anchors_order_ratios_outer_scales_inner():
    scales, ratios = (1, 2, 5), (0.25, 1.0, 3.0, 0.5)
    b = base_anchors(10, scales, ratios, dtype=np.float64)
    assert b.shape == (12, 4) and num_anchors(scales, ratios) == 12
    w, h = _wh(b)
    for i, r in enumerate(ratios):
        for j, s in enumerate(scales):
            a = i * len(scales) + j
            assert math.isclose(w[a] * h[a], (10 * s) ** 2, rel_tol=1e-12)
            assert math.isclose(h[a] / w[a], r, rel_tol=1e-12)


def test_base_anchors_centred_on_first_cell_and_dtype_kwarg():
    b = base_anchors(base_size=16, dtype="float64")
    assert b.dtype == np.float64
    np.testing.assert_allclose((b[:, 0] + b[:, 2]) / 2, 8.0)
    np.testing.assert_allclose((b[:, 1] + b[:, 3]) / 2, 8.0)


@settings(max_examples=40, deadline=None)
@given(base=st.floats(1, 64),
       scales=st.lists(st.floats(0.1, 64), min_size=1, max_size=4),
       ratios=st.lists(st.floats(0.1, 10), min_size=1, max_size=4))
def test_base_anchors_areas_and_ratios_property(base, scales, ratios):
    b = base_anchors(base, scales, ratios, dtype=np.float64)
    w, h = _wh(b)
    want_area = np.tile((base * np.asarray(scales)) ** 2, len(ratios))
    want_ratio = np.repeat(ratios, len(scales))
    np.testing.assert_allclose(w * h, want_area, rtol=1e-9)
    np.testing.assert_allclose(h / w, want_ratio, rtol=1e-9)
    np.testing.assert_allclose(b[:, 0] + b[:, 2], base, rtol=1e-9, atol=1e-9)


def test_grid_anchors_38x57_count():
    # A 38 x 57 feature map with 9 anchors gives 19494 anchors.
    assert 38 * 57 * 9 == 19494
    g = grid_anchors(38, 57, 16, base_anchors())
    assert g.shape == (19494, 4) and g.dtype == np.float32


def test_grid_anchors_row_index_is_y_w_a():
    H, W, stride = 3, 5, 16
    base = base_anchors(dtype=np.float64)
    A = base.shape[0]
    g = grid_anchors(H, W, stride, base)
    for y in range(H):
        for x in range(W):
            for a in range(A):
                shift = np.array([x, y, x, y]) * stride
                np.testing.assert_array_equal(g[(y * W + x) * A + a],
                                              base[a] + shift)


def test_grid_anchors_line_up_with_rpn_head_reshape():
    # The RPN head predicts (N, A*4, H, W); transposed to (N, H, W, A, 4)
    # and flattened, row r must belong to anchor r. Make a "prediction"
    # whose value encodes (y, x, a) and compare with the anchor's cell.
    H, W, A = 4, 6, 9
    pred = np.zeros((1, A * 4, H, W))
    for a in range(A):
        for c in range(4):
            pred[0, a * 4 + c] = (np.arange(H)[:, None] * 1000
                                  + np.arange(W)[None, :] * 10 + a)
    rows = pred.transpose(0, 2, 3, 1).reshape(1, H, W, A, 4).reshape(-1, 4)
    g = grid_anchors(H, W, 16, base_anchors(dtype=np.float64))
    base = base_anchors(dtype=np.float64)
    y, rem = np.divmod(rows[:, 0], 1000)
    x, a = np.divmod(rem, 10)
    a = a.astype(int)
    np.testing.assert_array_equal(g, base[a] + 16 * np.stack([x, y, x, y], 1))


def test_grid_anchors_dtype_follows_base_and_float_stride():
    g = grid_anchors(2, 2, 8.5, base_anchors(dtype=np.float64))
    assert g.dtype == np.float64
    np.testing.assert_allclose(g[-9:] - g[:9], 8.5)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(base_size=0), ValueError, "base_size"),
    (dict(base_size=-16), ValueError, "base_size"),
    (dict(base_size=True), TypeError, "base_size"),
    (dict(base_size=float("nan")), ValueError, "base_size"),
    (dict(scales=()), ValueError, "scales"),
    (dict(scales=(8, 0)), ValueError, r"scales\[1\]"),
    (dict(ratios=(1, -2)), ValueError, r"ratios\[1\]"),
    (dict(ratios=3), TypeError, "ratios"),
    (dict(ratios=("a",)), TypeError, r"ratios\[0\]"),
    (dict(dtype=np.int32), TypeError, "dtype"),
])
def test_base_anchors_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        base_anchors(**kwargs)


@pytest.mark.parametrize("args, exc, match", [
    ((0, 5, 16), ValueError, "feature_height"),
    ((5, -1, 16), ValueError, "feature_width"),
    ((2.0, 5, 16), TypeError, "feature_height"),
    ((5, 5, 0), ValueError, "stride"),
])
def test_grid_anchors_errors(args, exc, match):
    with pytest.raises(exc, match=match):
        grid_anchors(*args, base_anchors())


def test_grid_anchors_bad_base():
    with pytest.raises(ValueError, match="base"):
        grid_anchors(2, 2, 16, np.zeros((9, 3), np.float32))
    with pytest.raises(TypeError, match="base"):
        grid_anchors(2, 2, 16, np.zeros((9, 4), np.int64))
    with pytest.raises(ValueError, match="base"):
        grid_anchors(2, 2, 16, np.zeros((0, 4), np.float32))
