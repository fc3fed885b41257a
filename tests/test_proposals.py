"""Tests for the proposal layer (py-faster-rcnn's proposal_layer.py)."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minirpn.ops import clip_boxes, decode_boxes
from minirpn import Config
from minirpn.proposals import STEP_NAMES, propose


def layer(pre_nms_top_n, post_nms_top_n, **settings):
    """The settings of one proposal layer, as ``propose`` takes them."""
    return dict(pre_nms_top_n=pre_nms_top_n, post_nms_top_n=post_nms_top_n,
                **settings)


def run(settings, probs, anchors, deltas=None, image_size=(100, 100), scale=1.0,
        dtype=np.float32):
    anchors = np.asarray(anchors, dtype=dtype).reshape(-1, 4)
    deltas = np.zeros_like(anchors) if deltas is None \
        else np.asarray(deltas, dtype=dtype)
    return propose(np.asarray(probs, dtype=dtype), deltas, anchors, image_size,
                   scale=scale, **settings)


def check_bookkeeping(out, num_anchors):
    """in = out + removed at each step, steps chain, and the anchors are
    partitioned between the proposals and the removed lists."""
    assert [s.name for s in out.steps] == list(STEP_NAMES)
    n = num_anchors
    for s in out.steps:
        assert s.n_in == n
        assert s.n_in == s.n_out + len(s.removed)
        n = s.n_out
    assert n == len(out.boxes) == len(out.scores) == len(out.anchor_indices)
    every = np.concatenate([out.anchor_indices] +
                           [s.removed for s in out.steps])
    assert np.array_equal(np.sort(every), np.arange(num_anchors))


DUPLICATES = [[0, 0, 20, 20], [1, 0, 21, 20], [50, 50, 80, 80]]


def test_nms_removes_the_lower_scoring_duplicate():
    # IoU(a0, a1) = 19 * 20 / (21 * 20) = 0.905 > 0.7.
    out = run(layer(10, 10, min_size=0), [0.9, 0.8, 0.7], DUPLICATES)
    assert out.anchor_indices.tolist() == [0, 2]
    assert out.removed_by_nms.tolist() == [1]
    assert out.before_nms_anchor_indices.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(out.before_nms_boxes[1], [1, 0, 21, 20])
    np.testing.assert_array_equal(out.boxes, [[0, 0, 20, 20],
                                              [50, 50, 80, 80]])
    np.testing.assert_allclose(out.scores, [0.9, 0.7])
    check_bookkeeping(out, 3)


def test_nms_threshold_above_the_overlap_keeps_both():
    out = run(layer(10, 10, nms_threshold=0.95, min_size=0),
              [0.9, 0.8, 0.7], DUPLICATES)
    assert out.anchor_indices.tolist() == [0, 1, 2]
    assert out.removed_by_nms.size == 0


def test_min_size_is_scaled_by_the_preprocessing_scale():
    anchors = [[0, 0, 10, 10], [0, 50, 16, 66]]
    full = run(layer(10, 10, min_size=16), [0.5, 0.6], anchors)
    # 10 < 16: dropped; 16 >= 16: kept (width = x2 - x1, no +1).
    assert full.anchor_indices.tolist() == [1]
    assert full.step("min_size").removed.tolist() == [0]
    half = run(layer(10, 10, min_size=16), [0.5, 0.6], anchors,
               scale=0.5)                     # threshold 16 * 0.5 = 8
    assert half.anchor_indices.tolist() == [1, 0]
    assert half.step("min_size").removed.size == 0


def test_pre_nms_top_n_keeps_the_best_in_score_order():
    anchors = [[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10],
               [60, 0, 70, 10]]
    out = run(layer(2, 10, min_size=0), [0.1, 0.9, 0.5, 0.7], anchors)
    assert out.before_nms_anchor_indices.tolist() == [1, 3]
    assert out.step("pre_nms_top_n").removed.tolist() == [2, 0]
    assert out.anchor_indices.tolist() == [1, 3]
    check_bookkeeping(out, 4)


def test_equal_scores_keep_anchor_order():
    anchors = [[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]]
    out = run(layer(2, 10, min_size=0), [0.5, 0.5, 0.5], anchors)
    assert out.anchor_indices.tolist() == [0, 1]
    assert out.step("pre_nms_top_n").removed.tolist() == [2]


def test_post_nms_top_n_caps_the_survivors():
    anchors = [[20 * i, 0, 20 * i + 10, 10] for i in range(5)]
    probs = [0.3, 0.9, 0.1, 0.8, 0.5]
    out = run(layer(10, 3, min_size=0), probs, anchors)
    assert out.anchor_indices.tolist() == [1, 3, 4]
    assert out.step("post_nms_top_n").removed.tolist() == [0, 2]
    assert len(out.before_nms_boxes) == 5
    check_bookkeeping(out, 5)


def test_decode_then_clip_by_hand():
    # Centre x 5 + 0.1 * 10 = 6, width 10 * 2 = 20 -> [-4, 0, 16, 10];
    # then clipped to the 8 x 12 (H x W) image -> [0, 0, 12, 8].
    deltas = [[0.1, 0.0, math.log(2.0), 0.0]]
    out = run(layer(10, 10, min_size=0), [0.5], [[0, 0, 10, 10]],
              deltas=deltas, image_size=(8, 12), dtype=np.float64)
    np.testing.assert_allclose(out.boxes, [[0, 0, 12, 8]])
    out = run(layer(10, 10, min_size=0), [0.5], [[0, 0, 10, 10]],
              deltas=deltas, image_size=(100, 100), dtype=np.float64)
    # Only x1 = -4 lies outside the 100 x 100 image.
    np.testing.assert_allclose(out.boxes, [[0, 0, 16, 10]])  # x1 = -4 -> 0
    assert out.step("clip").removed.size == 0


def test_a_box_clipped_below_min_size_is_dropped():
    # Mostly outside the image: clipped to 4 pixels wide before step 3.
    out = run(layer(10, 10, min_size=5), [0.9, 0.5],
              [[-30, 0, 4, 20], [0, 0, 20, 20]], image_size=(50, 50))
    assert out.anchor_indices.tolist() == [1]
    assert out.step("min_size").removed.tolist() == [0]


def test_ranks_by_probability_not_by_the_raw_foreground_logit():
    # (z_bg, z_fg) = (5, 4) has the larger fg logit but p_fg = 0.27;
    # (0, 1) has p_fg = 0.73. The layer must rank the second first.
    logits = np.array([[5.0, 4.0], [0.0, 1.0]])
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    out = run(layer(1, 1, min_size=0), probs[:, 1],
              [[0, 0, 10, 10], [20, 0, 30, 10]], dtype=np.float64)
    assert out.anchor_indices.tolist() == [1]


def test_no_surviving_box_gives_an_empty_result():
    out = run(layer(10, 10, min_size=16), [0.9, 0.8],
              [[0, 0, 5, 5], [10, 10, 12, 30]])
    assert out.boxes.shape == (0, 4) and out.boxes.dtype == np.float32
    assert out.scores.shape == (0,) and out.anchor_indices.shape == (0,)
    assert out.before_nms_boxes.shape == (0, 4)
    check_bookkeeping(out, 2)


def test_zero_anchors_give_an_empty_result():
    out = run(layer(10, 10), [], np.zeros((0, 4)), dtype=np.float64)
    assert out.boxes.shape == (0, 4) and out.boxes.dtype == np.float64
    check_bookkeeping(out, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_dtype_follows_input(dtype):
    out = run(layer(10, 10, min_size=0), [0.9, 0.8, 0.7],
              DUPLICATES, dtype=dtype)
    assert out.boxes.dtype == dtype and out.scores.dtype == dtype
    assert out.anchor_indices.dtype == np.int64


def test_the_papers_training_and_testing_settings():
    """12000 -> 2000 in training, 6000 -> 300 at test (sections 3.3, 4.1)."""
    paper = Config.paper(20)
    train, test = paper.proposal_settings(True), paper.proposal_settings(False)
    assert (train["pre_nms_top_n"], train["post_nms_top_n"]) == (12000, 2000)
    assert (test["pre_nms_top_n"], test["post_nms_top_n"]) == (6000, 300)
    assert train["nms_threshold"] == test["nms_threshold"] == 0.7
    assert train["min_size"] == 16


@pytest.mark.parametrize("kwargs, word", [
    (dict(pre_nms_top_n=0, post_nms_top_n=1), "pre_nms_top_n"),
    (dict(pre_nms_top_n=1.5, post_nms_top_n=1), "pre_nms_top_n"),
    (dict(pre_nms_top_n=True, post_nms_top_n=1), "pre_nms_top_n"),
    (dict(pre_nms_top_n=1, post_nms_top_n=-3), "post_nms_top_n"),
    (dict(pre_nms_top_n=1, post_nms_top_n=1, nms_threshold=1.5),
     "nms_threshold"),
    (dict(pre_nms_top_n=1, post_nms_top_n=1, min_size=-1), "min_size"),
])
def test_bad_hyper_parameters(kwargs, word):
    with pytest.raises((TypeError, ValueError), match=word):
        propose(*_args(), (100, 100), **kwargs)


def _args(n=3, dtype=np.float32):
    anchors = np.array(DUPLICATES, dtype=dtype)[:n]
    return (np.full(n, 0.5, dtype=dtype), np.zeros((n, 4), dtype=dtype),
            anchors)


@pytest.mark.parametrize("bad", [1.5, -0.1, np.nan, np.inf])
def test_fg_probs_must_be_probabilities(bad):
    probs, deltas, anchors = _args()
    probs[1] = bad
    with pytest.raises(ValueError, match=r"fg_probs.*row 1"):
        propose(probs, deltas, anchors, (100, 100), **layer(10, 10))


def test_lengths_must_agree():
    probs, deltas, anchors = _args()
    with pytest.raises(ValueError, match=r"deltas.*A = 2.*\(3, 4\)"):
        propose(probs[:2], deltas, anchors[:2], (100, 100), **layer(10, 10))
    with pytest.raises(ValueError, match=r"anchors.*A = 3.*\(2, 4\)"):
        propose(probs, deltas, anchors[:2], (100, 100), **layer(10, 10))


def test_other_bad_calls():
    probs, deltas, anchors = _args()

    def call(*args, **kwargs):
        return propose(*args, **kwargs, **layer(10, 10))
    with pytest.raises(TypeError, match="deltas"):
        call(probs, deltas.astype(np.float64), anchors, (100, 100))
    with pytest.raises(TypeError, match="fg_probs"):
        call([0.5, 0.5, 0.5], deltas, anchors, (100, 100))
    deltas[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"deltas row 2"):
        call(probs, deltas, anchors, (100, 100))
    deltas[2, 1] = 0
    with pytest.raises(TypeError, match="image_size"):
        call(probs, deltas, anchors, (100,))
    with pytest.raises(ValueError, match="image_size"):
        call(probs, deltas, anchors, (0, 100))
    with pytest.raises(ValueError, match="scale"):
        call(probs, deltas, anchors, (100, 100), scale=0)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), num=st.integers(0, 60),
       pre=st.integers(1, 40), post=st.integers(1, 40),
       thr=st.floats(0.0, 1.0), min_size=st.floats(0.0, 20.0),
       scale=st.floats(0.25, 2.0))
def test_properties(seed, num, pre, post, thr, min_size, scale):
    r = np.random.default_rng(seed)
    xy = r.uniform(-20, 90, (num, 2))
    anchors = np.concatenate([xy, xy + r.uniform(1, 40, (num, 2))], axis=1)
    deltas = r.normal(0, 0.3, (num, 4))
    probs = r.choice([0.1, 0.5, 0.9], num) if seed % 2 else r.uniform(0, 1, num)
    out = propose(probs, deltas, anchors, (60, 80), scale=scale, pre_nms_top_n=pre,
                  post_nms_top_n=post, nms_threshold=thr, min_size=min_size)
    check_bookkeeping(out, num)
    assert len(out.boxes) <= min(pre, post)
    assert np.all(np.diff(out.scores) <= 0)
    np.testing.assert_array_equal(out.scores, probs[out.anchor_indices])
    expect = clip_boxes(decode_boxes(anchors, deltas), (60, 80))
    np.testing.assert_array_equal(out.boxes, expect[out.anchor_indices])
    sizes = out.boxes[:, 2:] - out.boxes[:, :2]
    assert np.all(sizes >= min_size * scale)
