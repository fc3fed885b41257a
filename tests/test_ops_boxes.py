"""minirpn.ops.boxes: validation, area, IoU (the same results as the
plain-loop ``box_iou_reference``), clipping, small-box removal."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minirpn.ops import (box_area, box_iou, box_iou_reference, check_boxes,
                         clip_boxes, remove_small_boxes)


@st.composite
def box_arrays(draw, min_n=0, max_n=12, dtype=np.float64):
    """(N, 4) boxes: on a coarse integer grid (many equal, touching and
    zero-size boxes) or with arbitrary float coordinates."""
    n = draw(st.integers(min_n, max_n))
    if draw(st.booleans()):
        coord = st.integers(0, 8).map(float)
        size = st.integers(0, 5).map(float)
    else:
        coord = st.floats(-100, 100, allow_nan=False)
        size = st.floats(0, 60, allow_nan=False)
    rows = [(x, y, x + w, y + h) for x, y, w, h in
            draw(st.lists(st.tuples(coord, coord, size, size),
                          min_size=n, max_size=n))]
    return np.array(rows, dtype=dtype).reshape(n, 4)


# ---------------------------------------------------------------- check_boxes
def test_check_boxes_returns_valid_boxes_unchanged():
    boxes = np.array([[0, 0, 10, 10], [5, 5, 5, 9]], np.float32)
    assert check_boxes(boxes, "boxes") is boxes
    assert check_boxes(np.zeros((0, 4)), "boxes").shape == (0, 4)


@pytest.mark.parametrize("row, message", [
    ([10, 0, 5, 4], r"boxes row 3 has x2 < x1: \[10, 0, 5, 4\]"),
    ([0, 4, 5, 1], r"boxes row 3 has y2 < y1: \[0, 4, 5, 1\]"),
    ([0, 0, np.nan, 4], r"boxes row 3 has a non-finite coordinate"),
    ([0, -np.inf, 1, 4], r"boxes row 3 has a non-finite coordinate"),
])
def test_check_boxes_names_argument_and_first_bad_row(row, message):
    boxes = np.array([[0, 0, 1, 1]] * 3 + [row] + [[9, 0, 1, 1]], float)
    with pytest.raises(ValueError, match=message):
        check_boxes(boxes, "boxes")


@pytest.mark.parametrize("bad, error, message", [
    (np.zeros((3, 5)), ValueError, r"gt_boxes must have shape \(\*, 4\)"),
    (np.zeros(4), ValueError, r"gt_boxes must have shape \(\*, 4\)"),
    (np.zeros((3, 4), np.int64), TypeError, "gt_boxes must be a floating"),
    (np.zeros((3, 4), np.float16), TypeError,
     r"gt_boxes must be a floating-point array \(float32 or float64\)"),
    (np.zeros((3, 4), ">f4"), TypeError, "gt_boxes must be in the machine's byte order"),
    ([[0.0, 0.0, 1.0, 1.0]], TypeError, "gt_boxes must be an ndarray"),
])
def test_check_boxes_rejects_wrong_type_and_shape(bad, error, message):
    with pytest.raises(error, match=message):
        check_boxes(bad, "gt_boxes")


# ---------------------------------------------------------------- box_area
def test_box_area_by_hand():
    boxes = np.array([[0, 0, 10, 10], [1, 2, 4, 7], [3, 3, 3, 8]], np.float32)
    area = box_area(boxes)
    np.testing.assert_array_equal(area, [100, 15, 0])
    assert area.dtype == np.float32


# ---------------------------------------------------------------- box_iou
def test_box_iou_hand_worked():
    a = np.array([[0, 0, 10, 10]], np.float64)
    b = np.array([[5, 5, 15, 15],     # 5x5 = 25 / (100 + 100 - 25)
                  [2, 2, 4, 4],       # contained: 4 / 100
                  [10, 0, 20, 10],    # touching edge: 0
                  [20, 20, 30, 30],   # disjoint: 0
                  [0, 0, 10, 10],     # identical: 1
                  [0, 0, 10, 5]], np.float64)     # half: 50 / 100
    np.testing.assert_allclose(box_iou(a, b),
                               [[25 / 175, 4 / 100, 0, 0, 1, 0.5]],
                               rtol=1e-15)


def test_box_iou_zero_area_boxes_give_zero_not_nan():
    a = np.array([[5, 5, 5, 5], [2, 2, 2, 8], [0, 0, 10, 10]], np.float32)
    iou = box_iou(a, a)
    assert not np.isnan(iou).any()
    np.testing.assert_array_equal(iou, [[0, 0, 0], [0, 0, 0], [0, 0, 1]])


@pytest.mark.parametrize("n, m", [(0, 3), (2, 0), (0, 0)])
def test_box_iou_empty_inputs(n, m):
    a = np.tile(np.array([[0, 0, 1, 1]], np.float32), (n, 1))
    b = np.tile(np.array([[0, 0, 2, 2]], np.float32), (m, 1))
    out = box_iou(a, b)
    assert out.shape == (n, m) and out.dtype == np.float32


def test_box_iou_dtype_follows_input_and_must_match():
    a = np.array([[0, 0, 10, 10]], np.float32)
    assert box_iou(a, a).dtype == np.float32
    assert box_iou(a.astype(np.float64), a.astype(np.float64)).dtype \
        == np.float64
    with pytest.raises(TypeError, match="b must have the dtype of a"):
        box_iou(a, a.astype(np.float64))


def test_box_iou_names_the_bad_argument():
    good = np.array([[0, 0, 1, 1]], np.float64)
    bad = np.array([[0, 0, 1, 1], [3, 0, 1, 1]], np.float64)
    with pytest.raises(ValueError, match=r"^b row 1 has x2 < x1"):
        box_iou(good, bad)
    with pytest.raises(ValueError, match=r"^a row 1 has x2 < x1"):
        box_iou(bad, good)


@settings(max_examples=60, deadline=None)
@given(box_arrays(), box_arrays())
def test_box_iou_symmetric_bounded_and_self_one(a, b):
    iou = box_iou(a, b)
    assert iou.shape == (len(a), len(b))
    assert ((iou >= 0) & (iou <= 1)).all()
    np.testing.assert_array_equal(iou, box_iou(b, a).T)
    positive = (a[:, 2] > a[:, 0]) & (a[:, 3] > a[:, 1])
    np.testing.assert_array_equal(np.diag(box_iou(a, a))[positive], 1.0)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([np.float32, np.float64]), st.data())
def test_box_iou_equals_reference(dtype, data):
    a = data.draw(box_arrays(dtype=dtype))
    b = data.draw(box_arrays(dtype=dtype))
    expected = box_iou_reference(a, b)
    fast = box_iou(a, b)  # the GPU kernel: tests/cuda_sim_checks.py
    assert fast.dtype == expected.dtype == dtype
    assert fast.flags.c_contiguous
    # the same operations in the same order and dtype: equal to the bit
    np.testing.assert_array_equal(fast, expected)


@pytest.mark.gpu
def test_box_iou_cupy_matches_numpy():
    cupy = pytest.importorskip("cupy")
    a = np.array([[0, 0, 10, 10], [5, 5, 5, 5]], np.float32)
    b = np.array([[5, 5, 15, 15], [0, 0, 10, 10]], np.float32)
    out = box_iou(cupy.asarray(a), cupy.asarray(b))
    assert out.dtype == np.float32
    np.testing.assert_allclose(cupy.asnumpy(out), box_iou(a, b), rtol=1e-6)


# ---------------------------------------------------------------- clip_boxes
def test_clip_boxes_to_continuous_image_edges():
    boxes = np.array([[-5, -3, 20, 30], [990, 590, 1200, 700],
                      [1100, 10, 1200, 20]], np.float32)
    before = boxes.copy()
    out = clip_boxes(boxes, (600, 1000))      # (H, W)
    np.testing.assert_array_equal(out, [[0, 0, 20, 30],
                                        [990, 590, 1000, 600],
                                        [1000, 10, 1000, 20]])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(boxes, before)    # input untouched


@pytest.mark.parametrize("size, error", [((0, 10), ValueError),
                                         ((10, np.nan), ValueError),
                                         ((10,), TypeError),
                                         ("ab", TypeError)])
def test_clip_boxes_rejects_bad_image_size(size, error):
    with pytest.raises(error, match="image_size"):
        clip_boxes(np.zeros((1, 4)), size)


# ---------------------------------------------------------------- remove_small
def test_remove_small_boxes_keeps_width_and_height_at_least_min_size():
    boxes = np.array([[0, 0, 16, 16],     # exactly min_size: kept
                      [0, 0, 15.9, 40],   # too narrow
                      [0, 0, 40, 15.9],   # too short
                      [5, 5, 30, 30]], np.float32)
    keep = remove_small_boxes(boxes, 16)
    np.testing.assert_array_equal(keep, [0, 3])
    assert keep.dtype == np.int64
    assert remove_small_boxes(np.zeros((0, 4)), 1.0).shape == (0,)


@pytest.mark.parametrize("min_size, error", [(-1, ValueError),
                                             (np.inf, ValueError),
                                             ("1", TypeError)])
def test_remove_small_boxes_rejects_bad_min_size(min_size, error):
    with pytest.raises(error, match="min_size"):
        remove_small_boxes(np.zeros((1, 4)), min_size)
