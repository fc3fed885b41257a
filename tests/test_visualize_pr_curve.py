"""Tests of minirpn.visualize.pr_curve: VOC matching of one image, the PR picture."""
import matplotlib

matplotlib.use("Agg")

import numpy as np   # noqa: E402
import pytest        # noqa: E402

from minirpn import visualize as V   # noqa: E402
from minirpn.evaluation import pr_curve   # noqa: E402

TARGET = {"boxes": np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 0, 50, 10.0]]),
          "labels": np.array([1, 1, 2])}
DETECTIONS = {
    "boxes": np.array([[0, 0, 10, 10],      # TP on GT 0
                       [1, 0, 11, 10],      # duplicate of GT 0: FP
                       [20, 20, 30, 30],    # right place, wrong class (GT 1 is class 1): FP
                       [40, 0, 50, 10],     # TP on GT 2 (class 2)
                       [60, 60, 70, 70.0]]),  # nothing there: FP
    "scores": np.array([0.9, 0.8, 0.7, 0.6, 0.95]),
    "labels": np.array([1, 1, 3, 2, 1])}


def test_match_image_by_hand():
    np.testing.assert_array_equal(V.match_image(DETECTIONS, TARGET), [1, 0, 0, 1, 0])
    # a looser threshold does not rescue the duplicate: its GT is taken
    np.testing.assert_array_equal(V.match_image(DETECTIONS, TARGET, 0.1), [1, 0, 0, 1, 0])


def test_match_image_orders_by_score_not_by_position():
    swapped = dict(DETECTIONS, scores=np.array([0.8, 0.9, 0.7, 0.6, 0.95]))
    np.testing.assert_array_equal(V.match_image(swapped, TARGET), [0, 1, 0, 1, 0])


def test_difficult_ground_truth_is_ignored():
    target = dict(TARGET, difficult=np.array([False, False, True]))
    np.testing.assert_array_equal(V.match_image(DETECTIONS, target), [1, 0, 0, -1, 0])


def test_plot_matches_captions_rank_and_state():
    image = np.zeros((80, 80, 3), np.uint8)
    fig = V.plot_matches(image, DETECTIONS, TARGET, class_names=("a", "b", "c"))
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert texts == sorted(["#2 a 0.90 TP", "#5 b 0.60 TP", "#3 a 0.80 FP", "#4 c 0.70 FP",
                            "#1 a 0.95 FP"])
    assert "2 TP, 3 FP" in fig.axes[0].get_title()


def test_envelope_and_pr_picture():
    recall, precision = pr_curve(np.array([1, 0, 1, 1, 0, 1], np.int8), 5)
    np.testing.assert_allclose(V.precision_envelope(precision), [1, .75, .75, .75, 2 / 3, 2 / 3])
    fig = V.plot_pr_curve(recall, precision)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[0].endswith("0.633") and labels[2].endswith("0.667") \
        and labels[3].endswith("0.637")
    squares = fig.axes[0].lines[2]
    np.testing.assert_allclose(squares.get_ydata(), [1, 1, 1] + [.75] * 4 + [2 / 3] * 2 + [0, 0])


def test_bad_curve_shapes_are_named():
    with pytest.raises(ValueError, match="same shape"):
        V.plot_pr_curve([0.5, 1.0], [1.0])
