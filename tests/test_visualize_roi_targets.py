"""Tests of minirpn.visualize.roi_targets: RoI sampling, the weights mask, class boxes."""
import matplotlib

matplotlib.use("Agg")

import numpy as np   # noqa: E402
import pytest        # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from minirpn import visualize as V   # noqa: E402
from minirpn.ops import box_iou   # noqa: E402
from minirpn.proposal_targets import sample_proposals   # noqa: E402

NAMES = ("circle", "square", "triangle")
GT = np.array([[0, 0, 100, 100], [500, 0, 600, 100]], np.float64)
LABELS = np.array([1, 3])


def scene():
    """10 foreground proposals (IoU >= 0.5), 20 background ([0.1, 0.5)), 5 touching nothing."""
    shift = lambda box, s: box + np.array([s, 0, s, 0])
    props = np.array([shift(GT[k % 2], s) for k, s in enumerate(np.linspace(2, 30, 10))]
                     + [shift(GT[k % 2], s) for k, s in enumerate(np.linspace(36, 80, 20))]
                     + [[1000 + 3 * k, 0, 1050 + 3 * k, 50] for k in range(5)])
    sampled = sample_proposals(props, GT, LABELS, 3, batch_size=32,
                               rng=np.random.default_rng(0))
    iou = box_iou(np.concatenate([props, GT]), GT).max(axis=1)
    return props, sampled, iou


def test_roi_sampling_counts_each_window():
    _, sampled, iou = scene()
    fig = V.plot_roi_sampling(iou, sampled)
    left, right = fig.axes
    # 10 proposals + 2 GT boxes at IoU >= 0.5, 20 in the window, 5 at IoU 0
    assert left.get_title() == "37 candidates: 12 could be foreground, 20 background, 5 unused"
    assert sampled.num_positive == 8 and sampled.num_negative_unique == 20
    heights = sum(p.get_height() for p in right.patches if isinstance(p, Rectangle)
                  and p.get_width() < 0.1)
    assert heights == pytest.approx(8 + 20)       # each distinct sampled RoI counted once


def test_bbox_mask_colours_the_true_class_columns():
    _, sampled, _ = scene()
    fig = V.plot_bbox_mask(sampled, NAMES)
    ax = fig.axes[0]
    index = ax.images[0].get_array()
    assert index.shape == (32, 16)
    for row in range(32):
        label = sampled.labels[row]
        expected = [label + 1 if label and col // 4 == label else 0 for col in range(16)]
        assert list(index[row]) == expected
    assert [t.get_text() for t in ax.get_xticklabels()] == ["background", *NAMES]
    assert "32 ones = 4 x 8" in ax.get_title()


def test_class_boxes_draws_the_roi_and_one_box_per_class():
    image = np.zeros((120, 200, 3), np.uint8)
    roi = np.array([10.0, 10, 60, 60])
    boxes = np.array([[10, 10, 60, 60], [12, 8, 58, 62], [30, 30, 90, 100], [0, 0, 20, 20.0]])
    probs = np.array([0.1, 0.6, 0.2, 0.1])
    fig = V.plot_class_boxes(image, roi, boxes, probs, NAMES, target={"boxes": GT[:1] / 10})
    ax = fig.axes[0]
    rects = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(rects) == 1 + 3 + 1             # GT, the three classes, the RoI
    assert [t.get_text() for t in ax.texts] == ["circle p=0.60", "square p=0.20",
                                                "triangle p=0.10", "RoI"]
    assert (rects[2].get_x(), rects[2].get_width()) == (30, 60)
    # half the size in network pixels: drawn twice as large in the image
    fig = V.plot_class_boxes(image, roi / 2, boxes[1:] / 2, network_size=(60, 100))
    rects = [p for p in fig.axes[0].patches if isinstance(p, Rectangle)]
    assert rects[-1].get_width() == pytest.approx(50)


def test_class_boxes_checks_probs():
    with pytest.raises(ValueError, match="probs"):
        V.plot_class_boxes(np.zeros((10, 10, 3), np.uint8), [0, 0, 5, 5],
                           np.zeros((3, 4)), probs=[0.5, 0.5])
