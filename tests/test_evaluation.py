"""Tests of minirpn.evaluation: hand-worked P/R/AP for every method, the
documented matching rules, validation, and pycocotools as a reference."""
import contextlib
import io

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from minirpn.evaluation import average_precision, coco_map

METHODS = ("voc07", "area", "coco101")
G1, G2 = [0, 0, 10, 10], [20, 0, 30, 10]
FAR = [50, 50, 60, 60]


def det(boxes, scores, labels, dtype=np.float64):
    return {"boxes": np.array(boxes, dtype).reshape(-1, 4),
            "scores": np.array(scores, dtype), "labels": np.array(labels)}


def gt(boxes, labels, difficult=None):
    out = {"boxes": np.array(boxes, np.float64).reshape(-1, 4),
           "labels": np.array(labels, dtype=np.int64)}
    if difficult is not None:
        out["difficult"] = np.array(difficult, dtype=bool)
    return out


def ap(dets, gts, method, **kw):
    return average_precision(dets, gts, method=method, **kw)


# 3 detections (TP on G1, FP, TP on G2) and 2 ground truths:
# recall .5 .5 1, precision 1 .5 2/3.
THREE = ([det([G1, FAR, G2], [.9, .8, .7], [1, 1, 1])], [gt([G1, G2], [1, 1])])


@pytest.mark.parametrize("method, expected", [
    ("area", 0.5 * 1 + 0.5 * 2 / 3),        # recall steps x envelope
    ("voc07", (6 * 1 + 5 * 2 / 3) / 11),    # t = 0..0.5 -> 1, 0.6..1 -> 2/3
    ("coco101", (51 * 1 + 50 * 2 / 3) / 101),  # r = 0..0.5 -> 1, rest 2/3
])
def test_three_detections_two_truths(method, expected):
    r = ap(*THREE, method)
    np.testing.assert_array_equal(r.recall[1], [0.5, 0.5, 1.0])
    np.testing.assert_allclose(r.precision[1], [1, 0.5, 2 / 3], rtol=1e-15)
    assert r.per_class[1] == pytest.approx(expected, abs=1e-15)
    assert r.map == r.per_class[1] and r.num_gt == {1: 2}


@pytest.mark.parametrize("method", METHODS)
def test_duplicate_is_false_positive(method):
    r = ap([det([G1, G1], [.9, .8], [1, 1])], [gt([G1, G2], [1, 1])], method)
    np.testing.assert_array_equal(r.precision[1], [1.0, 0.5])
    np.testing.assert_array_equal(r.recall[1], [0.5, 0.5])


def test_voc_looks_only_at_best_box_coco_at_best_free_box():
    # second detection: IoU 9/11 with the taken G1, 7/13 with the free box
    g2 = [4, 0, 14, 10]
    dets = [det([G1, [1, 0, 11, 10]], [.9, .8], [1, 1])]
    gts = [gt([G1, g2], [1, 1])]
    assert ap(dets, gts, "area").per_class[1] == 0.5          # TP, FP
    assert ap(dets, gts, "coco101").per_class[1] == 1.0       # TP, TP


@pytest.mark.parametrize("method", METHODS)
def test_unmatched_detection_ranked_first(method):
    r = ap([det([FAR, G1], [.9, .8], [1, 1])], [gt([G1], [1])], method)
    np.testing.assert_array_equal(r.precision[1], [0.0, 0.5])
    assert r.per_class[1] == pytest.approx(0.5, abs=1e-15)


@pytest.mark.parametrize("method", METHODS)
def test_class_without_ground_truth_left_out(method):
    dets = [det([G1, FAR], [.9, .8], [1, 2])]
    r = ap(dets, [gt([G1], [1])], method)
    assert r.per_class == {1: 1.0} and r.map == 1.0
    assert r.classes_without_gt == (2,) and r.num_gt == {1: 1, 2: 0}
    assert 2 not in r.precision and "no ground truth" in r.table()


@pytest.mark.parametrize("method", METHODS)
def test_class_without_detections_scores_zero(method):
    r = ap([det([G1], [.9], [1])], [gt([G1, G2], [1, 2])], method)
    assert r.per_class == {1: 1.0, 2: 0.0} and r.map == 0.5
    assert r.precision[2].shape == (0,)


@pytest.mark.parametrize("method", METHODS)
def test_difficult_neither_tp_nor_fp_nor_positive(method):
    # two detections on the difficult G2 (ignored), a TP, then an FP
    dets = [det([G2, G2, G1, FAR], [.95, .9, .8, .7], [1, 1, 1, 1])]
    r = ap(dets, [gt([G1, G2], [1, 1], difficult=[False, True])], method)
    assert r.num_gt == {1: 1}
    np.testing.assert_array_equal(r.precision[1], [1.0, 0.5])
    assert r.per_class[1] == 1.0


def test_only_difficult_truth_counts_as_no_truth():
    gts = [gt([G1, G2], [1, 2], [False, True])]
    r = ap([det([G1], [.9], [1])], gts, "area")
    assert r.classes_without_gt == (2,) and r.num_gt[2] == 0


def test_difficult_voc_best_box_vs_coco_regular_first():
    # the detection sits on the difficult box (IoU 1) and overlaps the
    # regular one at IoU 2/3: VOC ignores it, COCO takes the regular box
    dets = [det([[2, 0, 12, 10]], [.9], [1])]
    gts = [gt([G1, [2, 0, 12, 10]], [1, 1], [False, True])]
    assert ap(dets, gts, "area").per_class[1] == 0.0
    assert ap(dets, gts, "coco101").per_class[1] == 1.0


def test_difficult_is_a_crowd_region_under_coco():
    # a small box inside a big difficult box: IoU .01 (VOC: FP), but
    # intersection / detection area = 1 (COCO crowd: ignored)
    dets = [det([[10, 10, 20, 20], G2], [.9, .8], [1, 1])]
    gts = [gt([[0, 0, 100, 100], G2], [1, 1], [True, False])]
    assert ap(dets, gts, "area").per_class[1] == 0.5
    assert ap(dets, gts, "coco101").per_class[1] == 1.0


@pytest.mark.parametrize("method", METHODS)
def test_iou_exactly_at_threshold_matches(method):
    dets, gts = [det([[0, 0, 10, 5]], [.9], [1])], [gt([G1], [1])]  # IoU .5
    assert ap(dets, gts, method, iou_threshold=0.5).per_class[1] == 1.0
    assert ap(dets, gts, method, iou_threshold=0.5 + 1e-9).per_class[1] == 0.0


def test_threshold_one_is_capped_for_coco_only():
    # IoU = 1 - 1e-11: COCOeval caps t at 1 - 1e-10, VOC does not
    dets, gts = [det([[0, 0, 10, 10 + 1e-10]], [.9], [1])], [gt([G1], [1])]
    assert ap(dets, gts, "coco101", iou_threshold=1.0).per_class[1] == 1.0
    assert ap(dets, gts, "area", iou_threshold=1.0).per_class[1] == 0.0


def test_coco_keeps_100_detections_per_image_and_class():
    far = [[100 + i, 100, 101 + i, 101] for i in range(100)]
    scores = np.linspace(1.0, 0.9, 100)
    # class 1: 100 higher-scored FPs push the TP to rank 101 -> cut
    # class 2: its TP is ranked below 150 class-1/3 detections -> kept,
    # since the cap is per class, not per image
    dets = [det(far + [G1] + [G2] + far[:50],
                list(scores) + [.5, .1] + [.99] * 50,
                [1] * 101 + [2] + [3] * 50)]
    gts = [gt([G1, G2], [1, 2])]
    r = ap(dets, gts, "coco101")
    assert r.per_class == {1: 0.0, 2: 1.0}
    assert len(r.precision[1]) == 100
    assert ap(dets, gts, "area").per_class[1] == pytest.approx(1 / 101)


@pytest.mark.parametrize("method", METHODS)
def test_empty_detections_and_empty_images(method):
    empty = det(np.zeros((0, 4)), [], np.zeros(0, int))
    r = ap([empty, empty], [gt([G1], [1]), gt(np.zeros((0, 4)), [])], method)
    assert r.per_class == {1: 0.0} and r.map == 0.0
    # FPs in an image without objects still count
    r = ap([det([G1], [.9], [1]), det([G1], [.95], [1])],
           [gt([G1], [1]), gt(np.zeros((0, 4)), [])], method)
    np.testing.assert_array_equal(r.precision[1], [0.0, 0.5])


@pytest.mark.parametrize("method", METHODS)
def test_perfect_detections(method, rng):
    gts, dets = [], []
    for _ in range(5):
        xy = rng.uniform(0, 100, (4, 2))
        boxes = np.hstack([xy, xy + rng.uniform(5, 50, (4, 2))])
        labels = rng.integers(1, 4, 4)
        gts.append(gt(boxes, labels))
        dets.append(det(boxes, rng.uniform(size=4), labels, np.float32))
    assert ap(dets, gts, method).map == 1.0
    assert coco_map(dets, gts).map == 1.0


def test_voc07_recall_half():
    # recall tops out at 0.5: points t = 0, .1, ..., .5 see precision p
    gts = [gt([G1, G2], [1, 1])]
    assert ap([det([G1, FAR], [.9, .8], [1, 1])], gts, "voc07").map == \
        pytest.approx(6 / 11 * 1.0, abs=1e-15)
    assert ap([det([FAR, G1], [.9, .8], [1, 1])], gts, "voc07").map == \
        pytest.approx(6 / 11 * 0.5, abs=1e-15)


def test_voc07_recall_exactly_three_tenths_reaches_point_three():
    boxes = [[20 * i, 0, 20 * i + 10, 10] for i in range(10)]
    dets = [det(boxes[:3], [.9, .8, .7], [1, 1, 1])]
    # recall 3/10 >= 0.3 (np.arange(0, 1.1, .1) would give 3/11)
    assert ap(dets, [gt(boxes, [1] * 10)], "voc07").map == \
        pytest.approx(4 / 11, abs=1e-15)


def test_equal_scores_keep_input_order():
    gts = [gt([G1], [1])]
    assert ap([det([FAR, G1], [.5, .5], [1, 1])], gts, "area").map == 0.5
    assert ap([det([G1, FAR], [.5, .5], [1, 1])], gts, "area").map == 1.0


def test_coco_map_averages_thresholds():
    # IoU 0.8: matched at thresholds .50 ... .80 (7 of 10)
    r = coco_map([det([[0, 0, 10, 8]], [.9], [1])], [gt([G1], [1])])
    np.testing.assert_array_equal(r.per_threshold[1], [1] * 7 + [0] * 3)
    assert r.map == pytest.approx(0.7) and r.map50 == 1.0 and r.map75 == 1.0
    r = coco_map([det([G1], [.9], [1])], [gt([G1], [1])], iou_thresholds=[.6])
    assert r.map50 is None and r.map == 1.0


def test_table_names_and_inputs_from_lists():
    dets = [{"boxes": [G1], "scores": [.9], "labels": [1]}]
    r = average_precision(dets, [{"boxes": [G1, G2], "labels": [1, 2]}])
    text = r.table(("__background__", "cat", "dog"))
    assert "cat" in text and "dog" in text and "0.5000" in text
    assert "cat" in r.table({1: "cat", 2: "dog"})
    with pytest.raises(ValueError, match="label 2"):
        r.table(["__background__", "cat"])


@pytest.mark.parametrize("dets, gts, error, match", [
    ([], [gt([G1], [1])], ValueError, "0 detections and 1 ground_truths"),
    ([{"boxes": [G1], "labels": [1]}], [gt([G1], [1])], ValueError,
     r"detections\[0\] has no key 'scores'"),
    ([det([G1], [.9], [1])], [{"boxes": [G1]}], ValueError,
     r"ground_truths\[0\] has no key 'labels'"),
    ([det([G1], [np.nan], [1])], [gt([G1], [1])], ValueError, "finite"),
    ([det([G1], [.9, .8], [1])], [gt([G1], [1])], ValueError,
     r"scores'\] must have shape"),
    ([det([[5, 0, 1, 4]], [.9], [1])], [gt([G1], [1])], ValueError, "x2 < x1"),
    ([det([G1], [.9], [0])], [gt([G1], [1])], ValueError, "background"),
    ([det([G1], [.9], [1.0])], [gt([G1], [1])], TypeError, "integer"),
    ([det([G1], [.9], [1])], [{**gt([G1], [1]), "difficult": np.array([2])}],
     TypeError, r"ground_truths\[0\]\['difficult'\] must be a bool"),
    ([det([G1], [.9], [1])], gt([G1], [1]), TypeError, "one dict per image"),
    ([det([G1], [.9], [1])], [gt(np.zeros((0, 4)), [])], ValueError,
     "no ground-truth boxes"),
])
def test_bad_input(dets, gts, error, match):
    with pytest.raises(error, match=match):
        average_precision(dets, gts)


def test_bad_method_and_threshold():
    with pytest.raises(ValueError, match="method"):
        average_precision(*THREE, method="voc12")
    for t in (0.0, 1.5):
        with pytest.raises(ValueError, match="iou_threshold"):
            average_precision(*THREE, iou_threshold=t)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), method=st.sampled_from(METHODS))
def test_trailing_false_positive_costs_nothing(seed, method):
    # a last-ranked FP adds a point at the same recall with lower precision:
    # no recall step (area), no first-reach (coco101), no new max (voc07)
    dets, gts = _random_dataset(np.random.default_rng(seed), num_images=4)
    assume(any((~g["difficult"]).any() for g in gts))
    before = ap(dets, gts, method)
    last = dict(dets[-1])
    for key, extra in (("boxes", [[900, 900, 910, 910]]), ("scores", [-1.0]),
                       ("labels", [1])):
        last[key] = np.concatenate([last[key], np.array(extra,
                                                        last[key].dtype)])
    after = ap(dets[:-1] + [last], gts, method)
    assert after.per_class == before.per_class
    assert all(0.0 <= v <= 1.0 for v in after.per_class.values())
    if 1 in after.precision:
        assert len(after.precision[1]) == len(before.precision[1]) + 1


@pytest.mark.gpu
def test_cupy_detections_accepted():
    cp = pytest.importorskip("cupy")
    if not cp.cuda.is_available():
        pytest.skip("no CUDA device")
    dets, gts = THREE
    on_gpu = [{k: cp.asarray(v) for k, v in d.items()} for d in dets]
    expected = average_precision(dets, gts).map
    assert average_precision(on_gpu, gts).map == expected


# ---- cross-check against pycocotools ---------------------------------------

def _random_dataset(rng, num_images=12):
    """Classes 1, 2 with ground truth (some difficult), class 3 only as
    false positives; jittered hits (some with a wrong label) and misses.
    Odd images round scores to one decimal (equal scores within and across
    images). Image 0 has ~130 misses per class that outrank its hits, so
    COCO's 100-per-image-and-class cap decides whether those count."""
    dets, gts = [], []
    for i in range(num_images):
        n = rng.integers(0, 6)
        xy = rng.uniform(0, 200, (n, 2))
        boxes = np.hstack([xy, xy + rng.uniform(20, 80, (n, 2))])
        labels = rng.integers(1, 3, n)
        gts.append(gt(boxes, labels, rng.uniform(size=n) < .15))
        reps = rng.integers(0, 3, n)
        hits = np.repeat(boxes, reps, axis=0)
        hits += rng.normal(0, 3, hits.shape)
        hits[:, 2:] = np.maximum(hits[:, 2:], hits[:, :2] + 1)
        hit_labels = np.repeat(labels, reps)
        wrong = rng.uniform(size=len(hit_labels)) < .2
        hit_labels[wrong] = rng.integers(1, 4, wrong.sum())
        m = 400 if i == 0 else rng.integers(0, 8)
        xy = rng.uniform(0, 200, (m, 2))
        misses = np.hstack([xy, xy + rng.uniform(5, 60, (m, 2))])
        low, high = ((0, .2), (.2, .6)) if i == 0 else ((.5, 1), (0, .7))
        scores = np.concatenate([rng.uniform(*low, len(hits)),
                                 rng.uniform(*high, m)])
        scores = np.round(scores, 1 if i % 2 else 6)
        dets.append(det(np.vstack([hits, misses]), scores,
                        np.concatenate([hit_labels, rng.integers(1, 4, m)])))
    return dets, gts


def _xywh(b):
    return [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]


def _pycocotools(dets, gts):
    """COCOeval on the same data, difficult written as iscrowd (as
    mmdetection's VOC-to-COCO converter does). Returns precision
    (T, R, K) at area "all", maxDets 100, and stats."""
    coco_mod = pytest.importorskip("pycocotools.coco")
    cocoeval = pytest.importorskip("pycocotools.cocoeval")
    anns = []
    for i, g in enumerate(gts):
        for b, c, d in zip(g["boxes"], g["labels"], g["difficult"]):
            anns.append({"id": len(anns) + 1, "image_id": i + 1,
                         "category_id": int(c), "bbox": _xywh(b),
                         "area": _xywh(b)[2] * _xywh(b)[3], "iscrowd": int(d)})
    results = [{"image_id": i + 1, "category_id": int(c), "bbox": _xywh(b),
                "score": float(s)} for i, d in enumerate(dets)
               for b, s, c in zip(d["boxes"], d["scores"], d["labels"])]
    with contextlib.redirect_stdout(io.StringIO()):
        truth = coco_mod.COCO()
        truth.dataset = {"images": [{"id": i + 1} for i in range(len(gts))],
                         "categories": [{"id": c} for c in (1, 2, 3)],
                         "annotations": anns}
        truth.createIndex()
        ev = cocoeval.COCOeval(truth, truth.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.eval["precision"][:, :, :, 0, -1], ev.stats


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coco101_matches_pycocotools(seed):
    dets, gts = _random_dataset(np.random.default_rng(seed))
    precision, stats = _pycocotools(dets, gts)
    ours = average_precision(dets, gts, 0.5, method="coco101")
    assert ours.classes_without_gt == (3,) and (precision[:, :, 2] == -1).all()
    for k, c in enumerate((1, 2)):
        assert ours.per_class[c] == pytest.approx(precision[0, :, k].mean(),
                                                  abs=1e-9)
    full = coco_map(dets, gts)
    for k, c in enumerate((1, 2)):
        np.testing.assert_allclose(full.per_threshold[c],
                                   precision[:, :, k].mean(axis=1), atol=1e-9)
    assert ours.map == pytest.approx(stats[1], abs=1e-9)
    assert full.map50 == pytest.approx(stats[1], abs=1e-9)
    assert full.map == pytest.approx(stats[0], abs=1e-9)
    assert full.map75 == pytest.approx(stats[2], abs=1e-9)
