"""Anchor target layer (Ren et al. 2015, 3.1.2-3.1.3): hand-worked rules, sampling,
explanations, validation, and properties against a loop reference."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minirpn.anchor_targets import Reason, label_anchors
from minirpn.ops import decode_boxes

R = Reason
IMAGE = (40, 40)        # (H, W)


def boxes(rows, dtype=np.float64):
    return np.asarray(rows, dtype=dtype).reshape(-1, 4)


def iou_ref(a, b):
    """Plain broadcasting IoU, independent of minirpn.ops."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0)


# One GT and one GT-less region; every IoU is visible:
#   GT 0 = [0, 0, 20, 20] (area 400), GT 1 = [28, 0, 40, 20] (area 240)
HAND_ANCHORS = boxes([
    [0, 0, 20, 20],     # 0: IoU 1 with GT 0                  -> positive (threshold)
    [0, 0, 20, 10],     # 1: 200/400 = 0.5 with GT 0          -> ignored (between)
    [0, 24, 16, 40],    # 2: no overlap                       -> negative
    [-5, 0, 15, 20],    # 3: x1 = -5 < 0                      -> crosses border
    [0, 0, 20, 5],      # 4: 100/400 = 0.25 with GT 0         -> negative
    [10, 0, 30, 20],    # 5: 1/3 with GT 0; 40/600 with GT 1  -> best anchor of GT 1
    [30, 24, 42, 40],   # 6: x2 = 42 > 40                     -> crosses border
])
HAND_GT = boxes([[0, 0, 20, 20], [28, 0, 40, 20]])


@pytest.fixture
def hand():
    return label_anchors(HAND_ANCHORS, HAND_GT, IMAGE, batch_size=None)


def test_hand_labels_reasons_and_ious(hand):
    assert hand.labels.dtype == np.int8 and hand.reason.dtype == np.int8
    np.testing.assert_array_equal(hand.labels, [1, -1, 0, -1, 0, 1, -1])
    np.testing.assert_array_equal(hand.reason, [
        R.POSITIVE_BY_THRESHOLD, R.IGNORED_BETWEEN_THRESHOLDS, R.NEGATIVE,
        R.CROSSED_BORDER, R.NEGATIVE, R.POSITIVE_AS_BEST_ANCHOR,
        R.CROSSED_BORDER])
    np.testing.assert_array_equal(hand.reason_before_sampling, hand.reason)
    np.testing.assert_allclose(hand.max_iou, [1, 0.5, 0, 0, 0.25, 1 / 3, 0])
    # Anchor 5 is GT 1's best anchor but its target stays its argmax GT 0.
    np.testing.assert_array_equal(hand.matched_gt, [0, 0, 0, -1, 0, 0, -1])
    np.testing.assert_array_equal(hand.best_anchor_of, [0, -1, -1, -1, -1, 1, -1])


def test_hand_bbox_targets_formula(hand):
    t = hand.bbox_targets
    np.testing.assert_array_equal(t[[1, 2, 3, 4, 6]], 0)
    np.testing.assert_allclose(t[0], 0, atol=1e-12)       # anchor == GT 0
    # anchor 5: centre (20, 10), 20 x 20 -> GT 0 centre (10, 10), 20 x 20
    np.testing.assert_allclose(t[5], [(10 - 20) / 20, 0, 0, 0], atol=1e-12)


def test_hand_explanations(hand):
    e = [hand.explain(i) for i in range(7)]
    assert e[0].startswith("anchor 0 [0.0, 0.0, 20.0, 20.0] is positive (1)")
    assert "IoU is 1.00 with GT 0" in e[0] and "best anchor of GT 0" in e[0]
    assert "is ignored (-1)" in e[1] and "0.50 with GT 0" in e[1]
    assert "between the negative threshold 0.3 and the positive " \
           "threshold 0.7" in e[1]
    assert "is negative (0)" in e[2] and "overlaps no GT box" in e[2]
    assert "crosses the image border (x1 = -5.0 < 0.0)" in e[3]
    assert "0.25 with GT 0, below the negative threshold 0.3" in e[4]
    assert "positive (1)" in e[5] and "best anchor of GT 1 (IoU 0.07 < 0.7" \
           in e[5] and "no anchor overlaps GT 1 more" in e[5]
    assert "regression target stays GT 0" in e[5]
    assert "(x2 = 42.0 > 40.0)" in e[6]


def test_hand_counts_summary_config(hand):
    c = hand.counts()
    assert (c["positive"], c["negative"], c["ignored"]) == (2, 2, 3)
    assert c["crossed_border"] == 2 and c["positive_as_best_anchor"] == 1
    assert "7 anchors, 2 GT: 2 positive" in hand.summary()
    assert hand.config.positive_iou == 0.7 and hand.config.batch_size is None


def test_thresholds_are_inclusive_for_positive_exclusive_for_negative():
    a = boxes([[0, 0, 20, 10], [0, 0, 20, 20]])     # IoU 0.5 and 1 with GT
    gt = boxes([[0, 0, 20, 20]])
    lab = label_anchors(a, gt, IMAGE, positive_iou=0.5, negative_iou=0.5,
                        batch_size=None)
    np.testing.assert_array_equal(lab.reason, [R.POSITIVE_BY_THRESHOLD] * 2)
    lab = label_anchors(a, gt, IMAGE, positive_iou=0.9, negative_iou=0.5,
                        batch_size=None)
    assert lab.reason[0] == R.IGNORED_BETWEEN_THRESHOLDS


def test_rule_a_ties_all_positive():
    # Both halves of the GT have IoU 0.5, the quarter 0.25: both halves win.
    a = boxes([[0, 0, 20, 10], [0, 10, 20, 20], [0, 0, 10, 10]])
    lab = label_anchors(a, boxes([[0, 0, 20, 20]]), IMAGE, batch_size=None)
    np.testing.assert_array_equal(lab.reason, [
        R.POSITIVE_AS_BEST_ANCHOR, R.POSITIVE_AS_BEST_ANCHOR, R.NEGATIVE])
    np.testing.assert_array_equal(lab.best_anchor_of, [0, 0, -1])


def test_rule_a_needs_positive_iou_and_an_inside_anchor():
    # GT 0 overlaps nothing; GT 1 is overlapped only by a border-crossing
    # anchor: neither gets a positive, everything inside is negative.
    a = boxes([[0, 0, 10, 10], [-4, 30, 8, 40]])
    gt = boxes([[20, 20, 30, 30], [0, 30, 8, 40]])
    lab = label_anchors(a, gt, IMAGE, batch_size=None)
    np.testing.assert_array_equal(lab.reason, [R.NEGATIVE, R.CROSSED_BORDER])
    np.testing.assert_array_equal(lab.best_anchor_of, [-1, -1])


@pytest.mark.parametrize("border, inside", [
    (0.0, [False, False, True]), (4.9, [False, False, True]),
    (5.0, [True, False, True]), (7.0, [True, True, True]),
    (math.inf, [True, True, True])])
def test_allowed_border(border, inside):
    a = boxes([[-5, 0, 10, 10], [0, 30, 10, 47], [0, 0, 40, 40]])
    lab = label_anchors(a, boxes([[0, 0, 10, 10]]), IMAGE,
                        allowed_border=border, batch_size=None)
    np.testing.assert_array_equal(lab.reason != R.CROSSED_BORDER, inside)
    np.testing.assert_array_equal(lab.matched_gt >= 0, inside)
    if not inside[1]:
        assert f"(y2 = 47.0 > {40 + border:.1f})" in lab.explain(1)


@pytest.mark.parametrize("negative_iou", [0.3, 0.0])
def test_no_gt_boxes_every_inside_anchor_negative(negative_iou):
    a = boxes([[0, 0, 10, 10], [5, 5, 30, 30], [-1, 0, 10, 10]])
    lab = label_anchors(a, np.zeros((0, 4)), IMAGE, negative_iou=negative_iou,
                        batch_size=None)
    np.testing.assert_array_equal(lab.labels, [0, 0, -1])
    np.testing.assert_array_equal(lab.matched_gt, -1)
    np.testing.assert_array_equal(lab.max_iou, 0)
    np.testing.assert_array_equal(lab.bbox_targets, 0)
    assert "no GT boxes" in lab.explain(0)


def test_no_gt_boxes_negatives_are_subsampled(rng):
    a = boxes([[0, 0, 10, 10]] * 30)
    lab = label_anchors(a, np.zeros((0, 4)), IMAGE, batch_size=8, rng=rng)
    assert lab.counts()["negative"] == 8 and lab.counts()["ignored"] == 22


def _sampling_case(n_pos, n_neg):
    a = boxes([[0, 0, 20, 20]] * n_pos + [[20, 20, 40, 40]] * n_neg)
    return a, boxes([[0, 0, 20, 20]])


def test_sampling_caps_positives_then_fills_with_negatives(rng):
    a, gt = _sampling_case(10, 10)
    lab = label_anchors(a, gt, IMAGE, batch_size=8, rng=rng)
    assert (lab.labels[:10] == 1).sum() == 4 and (lab.labels[10:] == 0).sum() == 4
    dropped = lab.reason == R.DROPPED_BY_SAMPLING
    assert dropped.sum() == 12 and (lab.labels[dropped] == -1).all()
    np.testing.assert_array_equal(lab.reason_before_sampling[:10],
                                  R.POSITIVE_BY_THRESHOLD)
    np.testing.assert_array_equal(lab.reason_before_sampling[10:], R.NEGATIVE)
    # Dropped positives lose their regression targets (labels == 1 only).
    assert (lab.bbox_targets[lab.labels != 1] == 0).all()
    i_pos = int(np.flatnonzero(dropped[:10])[0])
    i_neg = 10 + int(np.flatnonzero(dropped[10:])[0])
    assert "was a positive (its best IoU is 1.00 with GT 0" in lab.explain(i_pos)
    assert "the image's 10 positives exceeded the cap int(8 * 0.5) = 4" \
        in lab.explain(i_pos)
    assert "was a negative (it overlaps no GT box (IoU 0)" in lab.explain(i_neg)
    assert "the 8-anchor batch already had 4 positives, leaving room for 4 " \
           "of the 10 negatives" in lab.explain(i_neg)
    s = lab.sampling
    assert (s.positive_candidates, s.positive_cap, s.positives_kept) == (10, 4, 4)
    assert (s.negative_candidates, s.negative_cap, s.negatives_kept) == (10, 4, 4)


def test_sampling_few_positives_more_negatives(rng):
    a, gt = _sampling_case(2, 10)
    lab = label_anchors(a, gt, IMAGE, batch_size=8, rng=rng)
    assert lab.counts()["positive"] == 2 and lab.counts()["negative"] == 6


def test_positive_fraction_zero_keeps_no_positive(rng):
    a, gt = _sampling_case(3, 3)
    lab = label_anchors(a, gt, IMAGE, batch_size=4, positive_fraction=0.0,
                        rng=rng)
    assert lab.counts()["positive"] == 0 and lab.counts()["negative"] == 3


def test_float32_in_float32_out_and_gt_cast():
    a = HAND_ANCHORS.astype(np.float32)
    lab = label_anchors(a, HAND_GT, IMAGE, batch_size=None)  # GT float64
    assert lab.max_iou.dtype == np.float32
    assert lab.bbox_targets.dtype == np.float32
    assert lab.gt_boxes.dtype == np.float32
    assert lab.matched_gt.dtype == np.int64


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(anchors=boxes([[0, 0, 5, 5], [5, 0, 1, 5]])), ValueError,
     "anchors row 1"),
    (dict(gt_boxes=boxes([[0, 0, 5, np.nan]])), ValueError, "gt_boxes row 0"),
    (dict(gt_boxes=boxes([[0, 0, 5, 5], [3, 3, 3, 9]])), ValueError,
     "gt_boxes row 1 has zero width or height"),
    (dict(gt_boxes=np.zeros((2, 4), np.int64)), TypeError, "gt_boxes"),
    (dict(positive_iou=1.5), ValueError, "positive_iou"),
    (dict(negative_iou=-0.1), ValueError, "negative_iou"),
    (dict(negative_iou=0.8), ValueError, "negative_iou must be <= positive"),
    (dict(positive_fraction=2), ValueError, "positive_fraction"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(batch_size=2.5), TypeError, "batch_size"),
    (dict(batch_size=True), TypeError, "batch_size"),
    (dict(image_size=(0, 40)), ValueError, "image_size"),
    (dict(image_size=(40,)), TypeError, "image_size"),
    (dict(allowed_border=-1), ValueError, "allowed_border"),
    (dict(rng=np.random.RandomState(0)), TypeError, "rng"),
])
def test_validation_errors(kwargs, exc, match):
    args = dict(anchors=HAND_ANCHORS, gt_boxes=HAND_GT, image_size=IMAGE)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        label_anchors(args.pop("anchors"), args.pop("gt_boxes"),
                      args.pop("image_size"), **args)


def test_explain_index_errors(hand):
    with pytest.raises(IndexError, match="index"):
        hand.explain(7)
    with pytest.raises(IndexError, match=r"index must lie in \[0, 7\), got -1"):
        hand.explain(-1)             # documented range [0, A): no wrap-around
    with pytest.raises(TypeError, match="index"):
        hand.explain(1.0)


# ---- properties -----------------------------------------------------------

def reference_reasons(anchors, gt, size, pos, neg, border):
    """py-faster-rcnn's rules, one anchor at a time (rules 1-4)."""
    h, w = size
    out = np.full(len(anchors), int(R.CROSSED_BORDER))
    inside = [i for i, (x1, y1, x2, y2) in enumerate(anchors)
              if x1 >= -border and y1 >= -border and x2 <= w + border
              and y2 <= h + border]
    if len(gt) == 0 or not inside:
        out[inside] = R.NEGATIVE
        return out
    iou = iou_ref(anchors[inside], gt)
    for row, i in enumerate(inside):
        m = iou[row].max()
        out[i] = R.NEGATIVE if m < neg else (
            R.POSITIVE_BY_THRESHOLD if m >= pos else R.IGNORED_BETWEEN_THRESHOLDS)
    for k in range(len(gt)):
        top = iou[:, k].max()
        for row, i in enumerate(inside):
            if top > 0 and iou[row, k] == top and out[i] != R.POSITIVE_BY_THRESHOLD:
                out[i] = R.POSITIVE_AS_BEST_ANCHOR
    return out


# Integer coordinates make IoU ties common, which exercises rule 4's ties.
_box = st.tuples(st.integers(-8, 56), st.integers(-8, 56),
                 st.integers(1, 24), st.integers(1, 24)).map(
    lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]])
_case = st.fixed_dictionaries(dict(
    anchors=st.lists(_box, min_size=1, max_size=40),
    gt=st.lists(_box, min_size=0, max_size=4),
    thresholds=st.tuples(st.sampled_from([0.1, 0.3, 0.5]),
                         st.sampled_from([0.5, 0.7, 1.0])),
    border=st.sampled_from([0.0, 3.0]),
    batch_size=st.one_of(st.none(), st.integers(1, 20)),
    fraction=st.sampled_from([0.0, 0.25, 0.5, 1.0]),
    seed=st.integers(0, 2 ** 16)))


def _run(case):
    a, gt = boxes(case["anchors"]), boxes(case["gt"])
    neg, pos = case["thresholds"]
    return a, gt, label_anchors(
        a, gt, (48, 48), positive_iou=pos, negative_iou=neg,
        batch_size=case["batch_size"], positive_fraction=case["fraction"],
        allowed_border=case["border"], rng=np.random.default_rng(case["seed"]))


@settings(max_examples=150, deadline=None)
@given(case=_case)
def test_properties(case):
    a, gt, lab = _run(case)
    neg, pos = case["thresholds"]
    # Rules 1-4 agree with the loop reference.
    want = reference_reasons(a, gt, (48, 48), pos, neg, case["border"])
    np.testing.assert_array_equal(lab.reason_before_sampling, want)
    # Sampling only drops; labels follow the reasons.
    dropped = lab.reason == R.DROPPED_BY_SAMPLING
    np.testing.assert_array_equal(lab.reason[~dropped],
                                  lab.reason_before_sampling[~dropped])
    label_of = np.array([-1, 0, -1, 1, 1, -1])
    np.testing.assert_array_equal(lab.labels, label_of[lab.reason])
    n_pos, n_neg = (lab.labels == 1).sum(), (lab.labels == 0).sum()
    bs = case["batch_size"]
    if bs is None:
        assert not dropped.any()
        # Every GT overlapped by some inside anchor has a positive anchor.
        inside = lab.reason != R.CROSSED_BORDER
        if len(gt) and inside.any():
            iou = iou_ref(a[inside], gt)
            for k in np.flatnonzero(iou.max(axis=0) > 0):
                assert (lab.labels[inside][iou[:, k] == iou[:, k].max()] == 1).all()
    else:
        assert n_pos <= int(bs * case["fraction"]) and n_pos + n_neg <= bs
        before = lab.reason_before_sampling
        assert n_pos == min((label_of[before] == 1).sum(),
                            int(bs * case["fraction"]))
        assert n_neg == min((label_of[before] == 0).sum(), bs - n_pos)
    # Regression targets decode back to the matched GT box.
    p = np.flatnonzero(lab.labels == 1)
    np.testing.assert_allclose(decode_boxes(a[p], lab.bbox_targets[p]),
                               gt[lab.matched_gt[p]], atol=1e-9)
    assert (lab.bbox_targets[lab.labels != 1] == 0).all()
    # Every anchor can be explained.
    for i in range(len(a)):
        assert lab.explain(i).startswith(f"anchor {i} [")


@settings(max_examples=30, deadline=None)
@given(case=_case)
def test_same_seed_same_labels(case):
    first, second = _run(case)[2], _run(case)[2]
    np.testing.assert_array_equal(first.labels, second.labels)
    np.testing.assert_array_equal(first.reason, second.reason)
    np.testing.assert_array_equal(first.bbox_targets, second.bbox_targets)


def test_different_seeds_sample_differently():
    a, gt = _sampling_case(20, 20)
    runs = {tuple(label_anchors(a, gt, IMAGE, batch_size=8,
                                rng=np.random.default_rng(s)).labels)
            for s in range(5)}
    assert len(runs) > 1
