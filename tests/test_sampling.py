"""The matcher and the balanced sampler that both target layers share."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minirpn.sampling import choose, match_boxes, sample_balanced


def test_match_boxes_by_hand():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [40, 40, 50, 50]], np.float64)
    gt = np.array([[0, 0, 10, 10], [10, 0, 20, 10]], np.float64)
    iou, matched, max_iou = match_boxes(boxes, gt)
    assert iou.shape == (3, 2)
    # box 1 overlaps both GT boxes by 50 / 150 = 1/3: a tie goes to the first
    np.testing.assert_allclose(iou[1], [1 / 3, 1 / 3])
    assert matched.tolist() == [0, 0, 0] and matched.dtype == np.int64
    np.testing.assert_allclose(max_iou, [1.0, 1 / 3, 0.0])


def test_match_boxes_without_gt():
    iou, matched, max_iou = match_boxes(np.zeros((4, 4), np.float32), np.zeros((0, 4), np.float32))
    assert iou.shape == (4, 0) and matched.tolist() == [-1] * 4
    assert max_iou.dtype == np.float32 and not max_iou.any()


def test_choose_keeps_everything_without_drawing_when_there_is_room():
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    indices = np.array([7, 3, 9])
    np.testing.assert_array_equal(choose(indices, 3, rng), indices)
    np.testing.assert_array_equal(choose(indices, 10, rng), indices)
    assert rng.bit_generator.state == state       # no draw consumed


def test_sample_balanced_by_hand():
    rng = np.random.default_rng(0)
    positive, negative = np.arange(10), np.arange(10, 13)
    pos, neg, unique = sample_balanced(positive, negative, 8, 4, rng)
    assert len(pos) == 4 and set(pos) <= set(positive) and len(set(pos)) == 4
    assert sorted(neg) == [10, 11, 12] and unique == 3   # short: returned short
    pos, neg, unique = sample_balanced(positive[:2], negative, 8, 4,
                                       np.random.default_rng(0), repeat_negatives=True)
    assert sorted(pos) == [0, 1] and unique == 3 and len(neg) == 6
    assert sorted(neg[:3]) == [10, 11, 12] and set(neg[3:]) <= {10, 11, 12}


def test_sample_balanced_with_no_negatives_cannot_repeat_any():
    pos, neg, unique = sample_balanced(np.arange(3), np.arange(0), 8, 4,
                                       np.random.default_rng(0), repeat_negatives=True)
    assert len(pos) == 3 and len(neg) == 0 and unique == 0


@settings(max_examples=80, deadline=None)
@given(n_pos=st.integers(0, 40), n_neg=st.integers(0, 40), batch=st.integers(1, 50),
       fraction=st.floats(0, 1), repeat=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_sample_balanced_properties(n_pos, n_neg, batch, fraction, repeat, seed):
    positive, negative = np.arange(n_pos), np.arange(100, 100 + n_neg)
    quota = int(batch * fraction)
    pos, neg, unique = sample_balanced(positive, negative, batch, quota,
                                       np.random.default_rng(seed), repeat_negatives=repeat)
    assert len(pos) == min(n_pos, quota) and len(set(pos.tolist())) == len(pos)
    assert set(pos.tolist()) <= set(positive.tolist())
    assert unique == min(n_neg, batch - len(pos))
    assert len(set(neg[:unique].tolist())) == unique          # distinct ones first
    assert set(neg.tolist()) <= set(negative.tolist())
    if repeat and n_neg > 0:
        assert len(pos) + len(neg) == batch                   # filled by repeats
    else:
        assert len(neg) == unique
    again = sample_balanced(positive, negative, batch, quota,
                            np.random.default_rng(seed), repeat_negatives=repeat)
    np.testing.assert_array_equal(again[0], pos)               # a seed reproduces it
    np.testing.assert_array_equal(again[1], neg)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_match_boxes_keeps_the_dtype(dtype):
    boxes = np.array([[0, 0, 4, 4]], dtype)
    iou, _, max_iou = match_boxes(boxes, boxes)
    assert iou.dtype == max_iou.dtype == dtype and max_iou[0] == 1
