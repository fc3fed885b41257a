"""Tests of minirpn.visualize.iou and .nms: the pictures show the numbers they claim."""
import matplotlib

matplotlib.use("Agg")

import numpy as np   # noqa: E402
import pytest        # noqa: E402
from matplotlib.figure import Figure     # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from minirpn import visualize as V       # noqa: E402
from minirpn.anchor_targets import label_anchors  # noqa: E402
from minirpn.anchors import base_anchors, grid_anchors  # noqa: E402
from minirpn.ops import nms  # noqa: E402


def rects(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def test_iou_pairs_titles_the_iou_and_fills_the_intersection():
    pairs = [((0, 0, 10, 10), (5, 0, 15, 10)), ((0, 0, 10, 10), (20, 20, 30, 30))]
    fig = V.plot_iou_pairs(pairs)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == ["IoU 0.33", "IoU 0.00"]
    filled = [r for r in rects(fig.axes[0]) if r.get_fill()]
    assert len(filled) == 1                                   # the intersection
    assert (filled[0].get_x(), filled[0].get_width(), filled[0].get_height()) == (5, 5, 10)
    assert not any(r.get_fill() for r in rects(fig.axes[1]))  # disjoint: nothing filled


@pytest.mark.parametrize("pairs, words", [([], "at least one"),
                                          ([((0, 0, 1, 1),)], "pairs (a, b)"),
                                          ([((0, 0, 1, 1), (5, 0, 1, 1))], "row 1")])
def test_iou_pairs_rejects_bad_pairs(pairs, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        V.plot_iou_pairs(pairs)


def test_max_iou_histogram_counts_every_inside_anchor_and_marks_the_thresholds():
    anchors = grid_anchors(8, 8, 8, base_anchors(8, (2, 4), (1.0,), dtype="float64"))
    gt = np.array([[20, 20, 36, 36], [40, 6, 62, 30]], np.float64)
    labels = label_anchors(anchors, gt, (64, 64), rng=np.random.default_rng(0))
    fig = V.plot_max_iou_histogram(labels, bins=20)
    ax = fig.axes[0]
    inside = int(np.count_nonzero(labels.matched_gt >= 0))
    assert sum(p.get_height() for p in ax.patches) == inside == 52
    assert sorted(line.get_xdata()[0] for line in ax.lines if len(line.get_xdata())) \
        == [0.3, 0.7]
    assert "inside the image" in ax.get_title()


def test_nms_picture_shows_each_suppression_with_its_suppressor():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 0, 30, 10], [0, 1, 10, 11]],
                     np.float64)
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    by = V.nms_suppressors(boxes, scores, 0.5)
    np.testing.assert_array_equal(by, [3, 3, -1, -1])
    assert set(np.flatnonzero(by < 0)) == set(nms(boxes, scores, 0.5).tolist())
    fig = V.plot_nms(boxes, scores, 0.5)
    after = fig.axes[1]
    solid = [r for r in rects(after) if r.get_linestyle() == "-"]
    dashed = [r for r in rects(after) if r.get_linestyle() == "--"]
    assert (len(solid), len(dashed)) == (2, 2)
    texts = [t.get_text() for t in after.get_legend().get_texts()]
    assert texts == ["#0 <- #3 (IoU 0.82)", "#1 <- #3 (IoU 0.68)", "#2 kept", "#3 kept"]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()][3] == "#3 0.95"
    assert rects(after)[0].get_edgecolor() == rects(fig.axes[0])[0].get_edgecolor()
