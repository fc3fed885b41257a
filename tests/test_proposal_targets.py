"""Tests for the proposal target layer (Fast R-CNN section 2.3;
py-faster-rcnn's proposal_target_layer.py)."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minirpn.ops import box_iou, decode_boxes
from minirpn.ops import stds_to_weights
from minirpn.proposal_targets import sample_proposals

GT = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], dtype=np.float32)
GT_LABELS = np.array([2, 1])
# Max IoUs, worked by hand: 0.8 (g0), 0.5 (g1), 0.3 (g0), 1/3 (g0), 0, 0.05.
PROPOSALS = np.array([[0, 0, 10, 8], [20, 0, 30, 5], [0, 0, 10, 3],
                      [5, 0, 15, 10], [40, 40, 50, 50], [0, 0, 10, 0.5]],
                     dtype=np.float32)
C = 3


def sample(proposals=PROPOSALS, gt=GT, labels=GT_LABELS, seed=0, **kw):
    return sample_proposals(proposals, gt, labels, C,
                            rng=np.random.default_rng(seed), **kw)


def row_of(t, source):
    return int(np.flatnonzero(t.source == source)[0])


def test_hand_worked_labels_and_counts():
    t = sample(batch_size=8, positive_fraction=0.5)   # quota 4
    assert t.num_positive == 4 and t.num_negative == 4 and t.num_negative_unique == 2
    assert not t.fallback
    # Candidates 0..5 are proposals, 6 and 7 the appended GT boxes.
    assert sorted(t.source[:4].tolist()) == [0, 1, 6, 7]
    assert set(t.source[4:].tolist()) == {2, 3}    # 2 repeats drawn from them
    assert t.is_gt.tolist() == [s >= 6 for s in t.source]
    np.testing.assert_array_equal(t.rois, np.concatenate([PROPOSALS, GT])
                                  [t.source])
    expect_label = {0: 2, 1: 1, 6: 2, 7: 1, 2: 0, 3: 0}
    expect_iou = {0: 0.8, 1: 0.5, 6: 1.0, 7: 1.0, 2: 0.3, 3: 1 / 3}
    expect_gt = {0: 0, 1: 1, 6: 0, 7: 1, 2: 0, 3: 0}
    for r, s in enumerate(t.source.tolist()):
        assert t.labels[r] == expect_label[s]
        assert t.matched_gt[r] == expect_gt[s]
        assert t.max_iou[r] == pytest.approx(expect_iou[s], abs=1e-6)
    assert t.labels.dtype == np.int64 and t.matched_gt.dtype == np.int64


def test_hand_worked_class_specific_targets():
    t = sample(batch_size=8, positive_fraction=0.5)
    assert t.bbox_targets.shape == t.bbox_weights.shape == (8, 4 * (C + 1))
    # p0 = [0,0,10,8] -> g0 (class 2, columns 8..11): t_y = (5 - 4) / 8
    # = 0.125, t_h = log(10 / 8); divided by stds (0.1, 0.1, 0.2, 0.2).
    want = np.zeros(16)
    want[8:12] = [0, 1.25, 0, math.log(1.25) / 0.2]
    np.testing.assert_allclose(t.bbox_targets[row_of(t, 0)], want, rtol=1e-6)
    # p1 = [20,0,30,5] -> g1 (class 1, columns 4..7): t_y = 2.5 / 5.
    want = np.zeros(16)
    want[4:8] = [0, 5.0, 0, math.log(2) / 0.2]
    np.testing.assert_allclose(t.bbox_targets[row_of(t, 1)], want, rtol=1e-6)
    for source, cols in ((0, slice(8, 12)), (1, slice(4, 8)),
                         (6, slice(8, 12)), (7, slice(4, 8))):
        w = np.zeros(16)
        w[cols] = 1
        np.testing.assert_array_equal(t.bbox_weights[row_of(t, source)], w)
    # A GT box is its own target: zero deltas, but weighted.
    assert not t.bbox_targets[row_of(t, 6)].any()
    assert not t.bbox_targets[4:].any() and not t.bbox_weights[4:].any()


def test_stds_change_the_scale_of_the_targets():
    t = sample(batch_size=8, positive_fraction=0.5, box_stds=(1, 1, 1, 1))
    np.testing.assert_allclose(t.bbox_targets[row_of(t, 0), 8:12],
                               [0, 0.125, 0, math.log(1.25)], rtol=1e-6)


def test_decoding_with_the_same_stds_recovers_the_gt():
    stds = (0.1, 0.1, 0.2, 0.2)
    t = sample(batch_size=8, positive_fraction=0.5, box_stds=stds)
    for r in range(t.num_positive):
        cols = slice(4 * t.labels[r], 4 * t.labels[r] + 4)
        box = decode_boxes(t.rois[r:r + 1], t.bbox_targets[r:r + 1, cols],
                           weights=stds_to_weights(stds))
        np.testing.assert_allclose(box[0], GT[t.matched_gt[r]], atol=1e-4)


def test_foreground_quota_and_background_shortfall():
    t = sample(batch_size=4, positive_fraction=0.25)  # 1 fg, 3 bg
    assert t.num_positive == 1 and t.source[0] in (0, 1, 6, 7)
    assert t.num_negative == 3 and t.num_negative_unique == 2
    assert sorted(t.source[1:3].tolist()) == [2, 3]   # distinct ones first
    assert t.source[3] in (2, 3)                       # then a repeat


@pytest.mark.parametrize("batch, fraction, quota", [
    (10, 0.25, 2), (6, 0.25, 2), (128, 0.25, 32), (2, 0.25, 0)])
def test_quota_rounds_half_to_even_like_np_round(batch, fraction, quota):
    x = np.arange(20, dtype=np.float32)[:, None]
    near = np.concatenate([x * 0.01, x * 0, 10 + x * 0.01, 10 + x * 0],
                          axis=1)                     # 20 fg, IoU > 0.99
    far = near + 60                                   # 20 bg (fallback)
    t = sample(np.concatenate([near, far]), GT[:1], GT_LABELS[:1],
               batch_size=batch, positive_fraction=fraction)
    # 21 foreground candidates (20 + the GT): a larger quota takes all.
    assert t.num_positive == min(quota, 21) and len(t.labels) == batch


def test_no_gt_makes_every_proposal_background_via_fallback():
    t = sample(gt=np.zeros((0, 4), np.float32), labels=np.zeros(0, int),
               batch_size=10)
    assert t.fallback and t.num_positive == 0 and t.num_negative == 10
    assert t.num_negative_unique == 6 and set(t.source.tolist()) == set(range(6))
    assert (t.labels == 0).all() and (t.matched_gt == -1).all()
    assert (t.max_iou == 0).all() and not t.is_gt.any()
    assert not t.bbox_targets.any() and not t.bbox_weights.any()


def test_no_gt_with_lo_zero_needs_no_fallback():
    t = sample(gt=np.zeros((0, 4), np.float32), labels=np.zeros(0, int),
               batch_size=4, negative_iou_floor=0.0)
    assert not t.fallback and t.num_negative == 4


def test_fallback_with_gt_uses_the_easy_negatives():
    # Only IoU-0 proposals besides the GT: the [0.1, 0.5) window is empty.
    t = sample(PROPOSALS[[4]], batch_size=4, positive_fraction=0.5)
    assert t.fallback and t.num_positive == 2 and t.num_negative == 2
    assert t.source[2:].tolist() == [0, 0]


def test_no_proposals_and_no_gt_gives_an_empty_batch():
    t = sample(np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32),
               np.zeros(0, int))
    assert t.rois.shape == (0, 4) and t.bbox_targets.shape == (0, 16)
    assert t.labels.shape == (0,) and t.num_positive == 0


def test_no_foreground_when_the_fraction_is_zero():
    t = sample(batch_size=5, positive_fraction=0.0)
    assert t.num_positive == 0 and (t.labels == 0).all() and len(t.labels) == 5
    assert not t.bbox_weights.any()


def test_no_background_returns_a_short_batch_without_nan():
    # Every candidate overlaps g0 by >= 0.5: nothing for the background.
    props = np.array([[0, 0, 10, 9], [0, 0, 10, 8], [1, 0, 10, 10]],
                     np.float32)
    t = sample(props, GT[:1], GT_LABELS[:1], batch_size=8)   # quota 2
    assert t.num_positive == 2 and t.num_negative == 0 and len(t.rois) == 2
    assert np.isfinite(t.bbox_targets).all()
    assert t.bbox_weights.sum() == 8


def test_same_seed_same_batch_and_seeds_differ():
    a, b = sample(batch_size=6, seed=3), sample(batch_size=6, seed=3)
    for name in ("rois", "labels", "source", "bbox_targets"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    sources = {tuple(sample(batch_size=6, seed=s).source) for s in range(10)}
    assert len(sources) > 1
    assert len(sample_proposals(PROPOSALS, GT, GT_LABELS, C).labels) == 128


def test_float64_in_float64_out():
    t = sample(PROPOSALS.astype(np.float64), GT.astype(np.float64))
    assert t.rois.dtype == t.bbox_targets.dtype == t.max_iou.dtype \
        == np.float64


@pytest.mark.parametrize("kw, error, word", [
    (dict(labels=np.array([2, 0])), ValueError, r"gt_labels.*row 1"),
    (dict(labels=np.array([4, 1])), ValueError, r"1\.\.3.*row 0"),
    (dict(labels=np.array([2])), ValueError, "gt_labels.*2 rows"),
    (dict(labels=np.array([2.0, 1.0])), TypeError, "gt_labels"),
    (dict(gt=np.array([[0, 0, 10, 10], [5, 5, 5, 9]], np.float32)),
     ValueError, r"gt_boxes row 1 has zero width or height"),
    (dict(gt=GT.astype(np.float64)), TypeError, "gt_boxes"),
    (dict(positive_iou=1.5), ValueError, "positive_iou"),
    (dict(positive_fraction=-0.1), ValueError, "positive_fraction"),
    (dict(negative_iou_floor=0.5, negative_iou=0.1), ValueError, "negative_iou_floor"),
    (dict(negative_iou=0.6), ValueError, "negative_iou"),
    (dict(negative_iou=(0.1, 0.5)), TypeError, "negative_iou"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(box_stds=(0.1, 0.1, 0.2)), ValueError, "box_stds"),
    (dict(box_stds=(0.1, 0.1, 0.2, -1)), ValueError, "box_stds"),
])
def test_bad_arguments(kw, error, word):
    with pytest.raises(error, match=word):
        sample(**kw)


def test_bad_rng_and_num_classes():
    with pytest.raises(TypeError, match="rng"):
        sample_proposals(PROPOSALS, GT, GT_LABELS, C, rng=0)
    with pytest.raises(ValueError, match="num_classes"):
        sample_proposals(PROPOSALS, GT, GT_LABELS, 0)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 40),
       k=st.integers(0, 4), batch=st.integers(1, 40),
       fraction=st.floats(0.0, 1.0))
def test_properties(seed, n, k, batch, fraction):
    r = np.random.default_rng(seed)

    def boxes(m):
        xy = r.uniform(0, 40, (m, 2))
        return np.concatenate([xy, xy + r.uniform(1, 30, (m, 2))], axis=1)
    props, gt = boxes(n), boxes(k)
    labels = r.integers(1, C + 1, k)
    t = sample_proposals(props, gt, labels, C, batch_size=batch,
                         positive_fraction=fraction, rng=r)
    nfg, rows = t.num_positive, len(t.labels)
    assert nfg <= round(batch * fraction) and rows <= batch
    assert (t.labels[:nfg] > 0).all() and (t.labels[nfg:] == 0).all()
    if t.num_negative_unique > 0:
        assert rows == batch
    np.testing.assert_array_equal(t.labels[:nfg], labels[t.matched_gt[:nfg]])
    np.testing.assert_array_equal(t.bbox_weights.sum(axis=1),
                                  np.r_[np.full(nfg, 4.0), np.zeros(rows - nfg)])
    assert not t.bbox_targets[t.bbox_weights == 0].any()
    assert np.isfinite(t.bbox_targets).all()
    assert (t.max_iou[:nfg] >= 0.5).all() and (t.max_iou[nfg:] < 0.5).all()
    np.testing.assert_array_equal(t.rois, np.concatenate([props, gt])[t.source])
    np.testing.assert_array_equal(t.is_gt, t.source >= n)
    if k:
        iou = box_iou(t.rois, gt)
        np.testing.assert_allclose(t.max_iou, iou.max(axis=1))
