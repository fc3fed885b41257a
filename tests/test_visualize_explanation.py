"""plot_explanation: one figure per anchor, showing what decided its label."""
import matplotlib

matplotlib.use("Agg")

import numpy as np   # noqa: E402
import pytest        # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from minirpn.anchor_targets import Reason, label_anchors  # noqa: E402
from minirpn.visualize import plot_explanation, rule_name  # noqa: E402

# Image 100 x 100; GT 0 and GT 1. Anchor 0 matches GT 0 exactly (rule 3),
# anchor 1 half-overlaps GT 1 (IoU 1/3: between the thresholds, and GT 1's
# best anchor: rule 4), anchor 2 is far from both (rule 2), anchor 3 crosses
# the border (rule 1).
ANCHORS = np.array([[10, 10, 30, 30], [60, 60, 80, 80], [0, 80, 10, 90],
                    [-5, 40, 15, 60]], np.float64)
GT = np.array([[10, 10, 30, 30], [70, 60, 90, 80]], np.float64)


@pytest.fixture
def labels():
    return label_anchors(ANCHORS, GT, (100, 100), batch_size=None,
                         rng=np.random.default_rng(0))


def anchor_patch(fig):
    return [p for p in fig.axes[0].patches if isinstance(p, Rectangle)
            and str(p.get_label()).startswith("anchor")][0]


@pytest.mark.parametrize("i, reason, label, words", [
    (0, Reason.POSITIVE_BY_THRESHOLD, 1, "rule 3"),
    (1, Reason.POSITIVE_AS_BEST_ANCHOR, 1, "rule 4"),
    (2, Reason.NEGATIVE, 0, "rule 2"),
    (3, Reason.CROSSED_BORDER, -1, "rule 1")])
def test_each_rule_is_named_and_the_anchor_drawn_where_it_is(labels, i, reason, label, words):
    assert int(labels.reason[i]) == reason and int(labels.labels[i]) == label
    assert rule_name(labels, i).startswith(words)
    fig = plot_explanation(labels, i)
    p = anchor_patch(fig)
    np.testing.assert_allclose([p.get_x(), p.get_y(), p.get_x() + p.get_width(),
                                p.get_y() + p.get_height()], ANCHORS[i])
    title = fig.axes[0].get_title()
    assert words in title and labels.explain(i).split(":")[0] in title.replace("\n", " ")


def test_iou_scale_marks_both_thresholds_and_the_anchors_iou(labels):
    fig = plot_explanation(labels, 1)
    scale = fig.axes[1]
    xs = sorted(line.get_xdata()[0] for line in scale.lines if len(line.get_xdata()) == 2)
    assert xs == [0.3, 0.7]
    marker = [line for line in scale.lines if line.get_marker() == "v"][0]
    assert marker.get_xdata()[0] == pytest.approx(1 / 3)


def test_image_mode_maps_boxes_to_original_pixels(labels):
    image = np.zeros((50, 200, 3), np.uint8)            # network 100x100 -> x2, y/2
    p = anchor_patch(plot_explanation(labels, 0, image=image))
    assert (p.get_x(), p.get_y(), p.get_width(), p.get_height()) == (20, 5, 40, 10)


def test_dropped_by_sampling_names_the_rule_before():
    anchors = np.array([[0, 0, 10, 10], [0, 0, 10, 11], [50, 50, 60, 60]], np.float64)
    lab = label_anchors(anchors, anchors[:1], (100, 100), batch_size=2,
                        positive_fraction=0.5, rng=np.random.default_rng(0))
    dropped = int(np.flatnonzero(lab.reason == Reason.DROPPED_BY_SAMPLING)[0])
    assert rule_name(lab, dropped).startswith("rule 5: dropped by sampling (was rule 3")


def test_bad_arguments(labels):
    with pytest.raises(TypeError, match="AnchorLabels"):
        plot_explanation({"labels": 1}, 0)
    with pytest.raises(IndexError, match=r"\[0, 4\)"):
        plot_explanation(labels, 4)
    with pytest.raises(IndexError, match=r"\[0, 4\), got -1"):
        plot_explanation(labels, -1)
    with pytest.raises(TypeError, match="index must be an int"):
        plot_explanation(labels, 1.0)
