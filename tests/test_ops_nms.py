"""minirpn.ops.nms: greedy NMS with torchvision's semantics, the same
results as the plain-loop ``nms_reference``."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minirpn.ops import batched_nms, box_iou, nms, nms_reference
from minirpn.ops.nms import _threshold_as


def boxes_of(*rows, dtype=np.float64):
    return np.array(rows, dtype=dtype).reshape(-1, 4)


@st.composite
def nms_inputs(draw, max_n=14, dtype=np.float64):
    """Boxes on a small integer grid (many exact IoU values such as 0.5,
    equal and zero-area boxes) with scores from a short list (ties)."""
    n = draw(st.integers(0, max_n))
    cell = st.tuples(st.integers(0, 6), st.integers(0, 6),
                     st.integers(0, 4), st.integers(0, 4))
    rows = [(x, y, x + w, y + h) for x, y, w, h in
            draw(st.lists(cell, min_size=n, max_size=n))]
    scores = draw(st.lists(st.sampled_from([0.1, 0.5, 0.5, 0.9, 1.0]),
                           min_size=n, max_size=n))
    threshold = draw(st.sampled_from([0.0, 0.25, 0.5, 0.7, 1.0]))
    return (np.array(rows, dtype).reshape(n, 4), np.array(scores, dtype),
            threshold)


# ---------------------------------------------------------------- hand cases
def test_iou_equal_to_threshold_is_not_suppressed():
    boxes = boxes_of([0, 0, 10, 10], [0, 0, 10, 5])   # IoU exactly 0.5
    scores = np.array([0.9, 0.8])
    np.testing.assert_array_equal(nms(boxes, scores, 0.5), [0, 1])
    np.testing.assert_array_equal(nms(boxes, scores, 0.49), [0])


def test_suppressed_box_does_not_suppress_others():
    # IoU(A, B) = IoU(B, C) = 80/120, IoU(A, C) = 60/140: B goes, C stays.
    boxes = boxes_of([0, 0, 10, 10], [2, 0, 12, 10], [4, 0, 14, 10])
    keep = nms(boxes, np.array([0.9, 0.8, 0.7]), 0.5)
    np.testing.assert_array_equal(keep, [0, 2])


def test_keep_is_sorted_by_score_descending():
    boxes = boxes_of([0, 0, 1, 1], [10, 10, 11, 11], [20, 20, 21, 21])
    keep = nms(boxes, np.array([0.2, 0.9, 0.5]), 0.5)
    np.testing.assert_array_equal(keep, [1, 2, 0])
    assert keep.dtype == np.int64


def test_equal_scores_earlier_index_wins():
    boxes = boxes_of([0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60])
    keep = nms(boxes, np.array([0.5, 0.5, 0.5]), 0.5)
    np.testing.assert_array_equal(keep, [0, 2])
    keep = nms(boxes[::-1].copy(), np.array([0.5, 0.5, 0.5]), 0.5)
    np.testing.assert_array_equal(keep, [0, 1])


def test_zero_area_boxes_never_suppress():
    boxes = boxes_of([3, 3, 3, 3], [3, 3, 3, 3], [0, 0, 10, 10])
    np.testing.assert_array_equal(nms(boxes, np.array([3., 2., 1.]), 0.0),
                                  [0, 1, 2])


def test_threshold_extremes():
    boxes = boxes_of([0, 0, 10, 10], [0, 0, 10, 10], [9, 9, 20, 20])
    scores = np.array([0.9, 0.8, 0.7])
    # IoU > 1 never holds: even identical boxes survive.
    np.testing.assert_array_equal(nms(boxes, scores, 1.0), [0, 1, 2])
    # Any positive overlap suppresses at threshold 0.
    np.testing.assert_array_equal(nms(boxes, scores, 0.0), [0])


def test_empty_input_gives_empty_int64():
    keep = nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.7)
    assert keep.shape == (0,) and keep.dtype == np.int64
    keep = batched_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), 0.7)
    assert keep.shape == (0,) and keep.dtype == np.int64


def test_float32_iou_compares_like_torchvision_in_double():
    # float32 IoU of these boxes is float32(1/7) = 0.142857149..., which
    # is > 1/7 in double precision (torchvision's comparison): suppressed.
    boxes = boxes_of([0, 0, 10, 10], [5, 5, 15, 15], dtype=np.float32)
    scores = np.array([0.9, 0.8], np.float32)
    assert box_iou(boxes, boxes)[0, 1] == np.float32(1 / 7)
    np.testing.assert_array_equal(nms(boxes, scores, 1 / 7), [0])
    # In float64 the IoU is exactly the double 1/7: not suppressed.
    np.testing.assert_array_equal(
        nms(boxes.astype(np.float64), scores.astype(np.float64), 1 / 7),
        [0, 1])


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 1), st.floats(0, 1, width=32))
def test_threshold_as_float32_preserves_double_comparison(t, v):
    v = np.float32(v)
    assert (float(v) > t) == bool(v > _threshold_as(np.dtype(np.float32), t))


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("scores, threshold, error, message", [
    (np.ones(2), 0.5, ValueError, r"scores must have shape \(3,?\), got"),
    (np.array([1.0, np.nan, 1.0]), 0.5, ValueError, "scores row 1"),
    (np.ones(3, int), 0.5, TypeError, "scores must be a floating"),
    (np.ones(3), 1.5, ValueError, "iou_threshold must lie in"),
    (np.ones(3), -0.1, ValueError, "iou_threshold must lie in"),
    (np.ones(3), None, TypeError, "iou_threshold"),
])
def test_nms_rejects_bad_scores_and_threshold(scores, threshold, error,
                                              message):
    boxes = boxes_of([0, 0, 1, 1], [0, 0, 2, 2], [5, 5, 6, 6])
    with pytest.raises(error, match=message):
        nms(boxes, scores, threshold)


def test_nms_names_first_bad_box():
    boxes = boxes_of([0, 0, 1, 1], [0, 0, 2, 2], [5, 5, 4, 6])
    with pytest.raises(ValueError, match=r"boxes row 2 has x2 < x1"):
        nms(boxes, np.ones(3), 0.5)


def test_batched_nms_rejects_bad_labels():
    boxes = boxes_of([0, 0, 1, 1], [0, 0, 2, 2])
    with pytest.raises(TypeError, match="labels must be an integer"):
        batched_nms(boxes, np.ones(2), np.ones(2), 0.5)
    with pytest.raises(ValueError, match=r"labels must have shape \(2,?\)"):
        batched_nms(boxes, np.ones(2), np.ones(3, int), 0.5)


# ---------------------------------------------------------------- properties
@settings(max_examples=150, deadline=None)
@given(st.sampled_from([np.float32, np.float64]), st.data())
def test_nms_equals_reference(dtype, data):
    boxes, scores, threshold = data.draw(nms_inputs(dtype=dtype))
    keep = nms(boxes, scores, threshold)
    assert keep.dtype == np.int64
    np.testing.assert_array_equal(keep, nms_reference(boxes, scores, threshold))


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([np.float32, np.float64]), st.data())
def test_nms_kept_boxes_are_separated_and_dropped_ones_covered(dtype, data):
    boxes, scores, threshold = data.draw(nms_inputs(dtype=dtype))
    keep = nms(boxes, scores, threshold)
    iou = box_iou(boxes, boxes).astype(np.float64)
    # 1. no kept pair overlaps above the threshold
    kept_iou = iou[np.ix_(keep, keep)]
    assert not (np.triu(kept_iou, 1) > threshold).any()
    # 2. every dropped box overlaps a kept box ranked before it
    rank = np.lexsort((np.arange(len(scores)), -scores))
    position = np.empty(len(scores), int)
    position[rank] = np.arange(len(scores))
    for d in np.setdiff1d(np.arange(len(boxes)), keep):
        assert any(iou[d, k] > threshold and position[k] < position[d]
                   for k in keep)


@settings(max_examples=100, deadline=None)
@given(nms_inputs(max_n=20), st.lists(st.integers(0, 3), min_size=20,
                                      max_size=20))
def test_batched_nms_equals_per_class_nms_merged(case, label_list):
    boxes, scores, threshold = case
    labels = np.array(label_list[:len(boxes)], np.int64)
    merged = [np.flatnonzero(labels == c)[
        nms(boxes[labels == c], scores[labels == c], threshold)]
        for c in np.unique(labels)]
    merged = np.concatenate(merged + [np.zeros(0, np.int64)])
    merged = merged[np.lexsort((merged, -scores[merged]))]
    np.testing.assert_array_equal(
        batched_nms(boxes, scores, labels, threshold), merged)


def rpn_like(rng, n, objects=5):
    """Jittered copies of a few boxes: most get suppressed, which drives
    the kernel's compaction step many times."""
    centre = rng.uniform(50, 150, (objects, 2))[rng.integers(0, objects, n)]
    size = rng.uniform(10, 40, (n, 2))
    centre = centre + rng.normal(0, 3, (n, 2))
    return np.concatenate([centre - size / 2, centre + size / 2], 1)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("threshold", [0.3, 0.7])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nms_matches_reference_on_many_overlapping_boxes(seed, threshold, dtype):
    rng = np.random.default_rng(seed)
    boxes, scores = rpn_like(rng, 400).astype(dtype), rng.random(400).astype(dtype)
    scores[::7] = 0.5                                   # some ties
    keep = nms(boxes, scores, threshold)
    np.testing.assert_array_equal(keep, nms_reference(boxes, scores, threshold))
    labels = rng.integers(0, 3, 400)
    merged = [np.flatnonzero(labels == c)[nms_reference(
        boxes[labels == c], scores[labels == c], threshold)]
        for c in range(3)]
    merged = np.concatenate(merged)
    merged = merged[np.lexsort((merged, -scores[merged]))]
    np.testing.assert_array_equal(
        batched_nms(boxes, scores, labels, threshold), merged)


def test_batched_nms_boxes_of_different_classes_never_suppress():
    boxes = boxes_of([0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10])
    keep = batched_nms(boxes, np.array([0.7, 0.9, 0.8]),
                       np.array([2, 1, 2]), 0.5)
    np.testing.assert_array_equal(keep, [1, 2])


@pytest.mark.gpu
def test_nms_on_cupy_arrays_runs_on_host_and_returns_cupy():
    cupy = pytest.importorskip("cupy")
    boxes = boxes_of([0, 0, 10, 10], [0, 0, 10, 5], dtype=np.float32)
    keep = nms(cupy.asarray(boxes), cupy.asarray([0.9, 0.8], np.float32), 0.4)
    assert isinstance(keep, cupy.ndarray)
    np.testing.assert_array_equal(cupy.asnumpy(keep), [0])
