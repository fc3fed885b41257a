"""minirpn.ops.box_coder: regression deltas (Ren et al. 2015, eq. 2:
t_x, t_y, t_w, t_h)."""
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from minirpn.ops import BBOX_XFORM_CLIP, decode_boxes, encode_boxes


@st.composite
def positive_boxes(draw, n):
    coord = st.floats(-500, 500, allow_nan=False)
    size = st.floats(0.5, 400, allow_nan=False)
    rows = [(x, y, x + w, y + h) for x, y, w, h in
            draw(st.lists(st.tuples(coord, coord, size, size),
                          min_size=n, max_size=n))]
    return np.array(rows, np.float64).reshape(n, 4)


def test_encode_hand_worked():
    # reference: w=10, h=20, centre (5, 10); target: w=12, h=10, centre (8, 8)
    reference = np.array([[0, 0, 10, 20]], np.float64)
    target = np.array([[2, 3, 14, 13]], np.float64)
    expected = [[(8 - 5) / 10, (8 - 10) / 20, math.log(12 / 10),
                 math.log(10 / 20)]]
    np.testing.assert_allclose(encode_boxes(reference, target), expected,
                               rtol=1e-15)
    weighted = encode_boxes(reference, target, weights=(10, 10, 5, 5))
    np.testing.assert_allclose(weighted, np.array(expected) * [10, 10, 5, 5],
                               rtol=1e-15)


def test_identical_boxes_encode_to_zero():
    boxes = np.array([[1, 2, 30, 40], [0, 0, 0.5, 0.25]], np.float32)
    np.testing.assert_array_equal(encode_boxes(boxes, boxes), 0)


def test_decode_hand_worked():
    reference = np.array([[0, 0, 10, 20]], np.float64)
    deltas = np.array([[0.5, -0.25, math.log(2), 0.0]])
    # centre (5 + 5, 10 - 5), size (20, 20)
    np.testing.assert_allclose(decode_boxes(reference, deltas),
                               [[0, -5, 20, 15]], atol=1e-12)


def test_decode_clamps_growth_so_exp_never_overflows():
    reference = np.array([[0, 0, 16, 16]], np.float32)
    deltas = np.array([[0, 0, 1e4, 200.0]], np.float32)
    out = decode_boxes(reference, deltas)
    assert np.isfinite(out).all() and out.dtype == np.float32
    # width and height grow by at most 1000 / 16: to 1000 pixels
    np.testing.assert_allclose(out[0, 2] - out[0, 0], 1000, rtol=1e-5)
    np.testing.assert_allclose(out[0, 3] - out[0, 1], 1000, rtol=1e-5)
    assert BBOX_XFORM_CLIP == pytest.approx(math.log(62.5))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_follows_input(dtype):
    reference = np.array([[0, 0, 10, 20], [3, 3, 9, 5]], dtype)
    target = np.array([[1, 1, 12, 18], [2, 3, 9, 6]], dtype)
    deltas = encode_boxes(reference, target, weights=(10, 10, 5, 5))
    assert deltas.dtype == dtype and deltas.shape == (2, 4)
    assert decode_boxes(reference, deltas, (10, 10, 5, 5)).dtype == dtype


def test_empty_inputs():
    empty = np.zeros((0, 4), np.float32)
    assert encode_boxes(empty, empty).shape == (0, 4)
    assert decode_boxes(empty, empty).shape == (0, 4)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 8).flatmap(lambda n: st.tuples(positive_boxes(n),
                                                     positive_boxes(n))),
       st.sampled_from([(1, 1, 1, 1), (10, 10, 5, 5), (0.5, 2, 3, 0.25)]))
def test_decode_inverts_encode(pair, weights):
    reference, target = pair
    # Keep growth within the decode clamp (target at most 62.5x reference).
    ratio = (target[:, 2:] - target[:, :2]) / \
        (reference[:, 2:] - reference[:, :2])
    assume((ratio < 60).all())
    deltas = encode_boxes(reference, target, weights)
    np.testing.assert_allclose(decode_boxes(reference, deltas, weights),
                               target, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("reference, target, message", [
    ([[0, 0, 10, 10], [5, 5, 5, 9]], [[0, 0, 1, 1], [0, 0, 1, 1]],
     r"reference row 1 has zero width or height .*\[5, 5, 5, 9\]"),
    ([[0, 0, 10, 10], [0, 0, 1, 1]], [[0, 0, 1, 1], [0, 3, 1, 3]],
     r"target row 1 has zero width or height"),
    ([[0, 0, 10, 10], [4, 0, 1, 1]], [[0, 0, 1, 1], [0, 0, 1, 1]],
     r"reference row 1 has x2 < x1"),
    ([[0, 0, 10, 10]], [[0, 0, 1, 1], [0, 0, 1, 1]],
     r"target must have the shape of reference \(1, 4\), got \(2, 4\)"),
])
def test_encode_rejects_bad_boxes_naming_row(reference, target, message):
    with pytest.raises(ValueError, match=message):
        encode_boxes(np.array(reference, float), np.array(target, float))


def test_bad_weights_and_dtypes_are_named():
    boxes = np.array([[0, 0, 10, 10]], np.float64)
    with pytest.raises(ValueError, match="weights must be 4 finite"):
        encode_boxes(boxes, boxes, weights=(1, 1, 0, 1))
    with pytest.raises(ValueError, match="weights must be 4 finite"):
        decode_boxes(boxes, boxes, weights=(1, 1, 1))
    with pytest.raises(TypeError, match="target must have the dtype"):
        encode_boxes(boxes, boxes.astype(np.float32))
    with pytest.raises(TypeError, match="deltas must have the dtype"):
        decode_boxes(boxes, boxes.astype(np.float32))


def test_decode_rejects_non_finite_deltas_and_wrong_shape():
    reference = np.array([[0, 0, 10, 10], [0, 0, 5, 5]], np.float64)
    with pytest.raises(ValueError, match=r"deltas row 1 has a non-finite"):
        decode_boxes(reference, np.array([[0, 0, 0, 0], [0, np.nan, 0, 0]]))
    with pytest.raises(ValueError, match=r"deltas must have shape \(2, 4\)"):
        decode_boxes(reference, np.zeros((3, 4)))
