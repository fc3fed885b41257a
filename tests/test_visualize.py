"""Tests of minirpn.visualize: each picture draws what it says, in original pixels."""
import json

import matplotlib

matplotlib.use("Agg")

import numpy as np   # noqa: E402
import pytest        # noqa: E402
from matplotlib.figure import Figure     # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from PIL import Image                    # noqa: E402

import minirpn       # noqa: E402
from minirpn import visualize as V       # noqa: E402
from minirpn.data import ShapesDataset   # noqa: E402

NAMES = ("circle", "square", "triangle")


def rects(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def xyxy(patches):
    return np.array([[r.get_x(), r.get_y(), r.get_x() + r.get_width(),
                      r.get_y() + r.get_height()] for r in patches]).reshape(-1, 4)


@pytest.fixture(scope="module")
def scene():
    """A small shapes image, upsampled by the toy model (scale != 1)."""
    ds = ShapesDataset(3, seed=1, image_size=(96, 128), object_size=(16, 48))
    model = minirpn.FasterRCNN(minirpn.Config.toy(3))
    image, target = ds[0]
    return model, image, target, model.step_through(image, target)


def test_draw_boxes_draws_one_captioned_rectangle_per_box():
    fig = Figure()
    ax = fig.add_subplot()
    image = np.zeros((40, 60, 3), np.uint8)
    boxes = np.array([[1, 2, 11, 22], [30, 5, 50, 35.5], [0, 0, 60, 40]], np.float32)
    patches = V.draw_boxes(ax, image, boxes, labels=[1, 3, 2], scores=[0.93, 0.5, 0.25],
                           class_names=NAMES)
    assert len(patches) == len(rects(ax)) == 3
    np.testing.assert_allclose(xyxy(patches), boxes)
    assert [t.get_text() for t in ax.texts] == ["circle 0.93", "triangle 0.50", "square 0.25"]
    assert patches[1].get_edgecolor() == V.class_color(3)
    # The image spans continuous coordinates [0, W] x [0, H] (no half-pixel shift).
    assert ax.images[0].get_extent() == [0, 60, 40, 0]


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(boxes=np.zeros((2, 3))), ValueError, "boxes must have shape"),
    (dict(boxes=np.array([[5, 0, 1, 4.0]])), ValueError, "row 0"),
    (dict(boxes=np.array([[0, 0, 1, 1], [0, 0, np.nan, 1]])), ValueError, "row 1"),
    (dict(labels=[1, 2]), ValueError, "labels must have shape (1,)"),
    (dict(labels=[4], class_names=NAMES), ValueError, "label 4 has no name"),
    (dict(image=np.zeros((4, 4, 3), np.float32)), TypeError, "uint8"),
    (dict(image=np.zeros((4, 4), np.uint8)), ValueError, "image must have shape"),
])
def test_draw_boxes_rejects_bad_input(kwargs, error, words):
    args = dict(image=np.zeros((8, 8, 3), np.uint8), boxes=np.array([[0, 0, 4, 4.0]]))
    args.update(kwargs)
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        V.draw_boxes(Figure().add_subplot(), **args)


def test_network_to_original_inverts_the_preprocess_scaling(scene):
    model, image, target, trace = scene
    batch = model.preprocess([image])
    net = batch.to_network(0, target["boxes"])
    assert not np.allclose(net, target["boxes"])          # really rescaled
    back = V.network_to_original(net, batch.image_sizes[0], image.shape[:2])
    np.testing.assert_allclose(back, target["boxes"], rtol=1e-5)
    # Hand case: a network image twice as tall and three times as wide.
    np.testing.assert_allclose(V.network_to_original([[30, 20, 60, 40]], (200, 300), (100, 100)),
                               [[10, 10, 20, 20]])
    with pytest.raises(ValueError, match="network_size"):
        V.network_to_original(net, (0, 5), image.shape[:2])


def test_cell_anchor_indices_follow_the_h_w_a_order(scene):
    model, _, _, trace = scene
    anchors = trace["anchors"]["anchors"]
    _, _, hf, wf = trace["features"]["features"].shape
    a = model.config.num_anchors
    idx = V.cell_anchor_indices(3, 5, wf, a)
    np.testing.assert_array_equal(anchors[idx], anchors.reshape(hf, wf, a, 4)[3, 5])
    centres = (anchors[idx, :2] + anchors[idx, 2:]) / 2
    np.testing.assert_allclose(centres, [[(5 + 0.5) * model.stride, (3 + 0.5) * model.stride]] * a)
    with pytest.raises(ValueError, match="col"):
        V.cell_anchor_indices(0, wf, wf, a)


def test_plot_detections_draws_gt_dashed_and_scored_detections(scene):
    _, image, target, trace = scene
    det = trace["detections"].outputs
    fig = V.plot_detections(image, det, NAMES, target=target, min_score=0.3)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    shown = int((det["scores"] >= 0.3).sum())
    patches = rects(fig.axes[0])
    assert len(patches) == len(target["boxes"]) + shown
    gt = patches[:len(target["boxes"])]
    assert all(p.get_linestyle() == "--" for p in gt)
    np.testing.assert_allclose(xyxy(gt), target["boxes"])
    assert len(rects(V.plot_detections(image, None, target=target).axes[0])) == len(gt)


def test_plot_anchors_draws_the_chosen_anchors_and_refuses_thousands(scene):
    _, image, _, trace = scene
    anchors, size = trace["anchors"]["anchors"], trace["preprocess"]["image_size"]
    idx = V.cell_anchor_indices(0, 0, trace["features"]["features"].shape[3], 12)
    ax = V.plot_anchors(size, anchors, idx, image=image).axes[0]
    np.testing.assert_allclose(xyxy(rects(ax)), anchors[idx], rtol=1e-6)
    # Corner anchors cross the border: the view must still show all of them.
    assert ax.get_xlim()[0] <= anchors[idx, 0].min()
    with pytest.raises(ValueError, match="indices="):
        V.plot_anchors(size, anchors)


def test_plot_anchor_labels_counts_and_maps_back_to_original_pixels(scene):
    _, image, target, trace = scene
    labels = trace["anchor_labels"].result
    lab = labels.labels
    pos, neg, ign = ((lab == v).sum() for v in (1, 0, -1))
    fig = V.plot_anchor_labels(image, trace["anchor_labels"], max_negatives=7, max_ignored=5)
    patches = rects(fig.axes[0])
    assert len(patches) == 5 + min(neg, 7) + pos + len(target["boxes"])
    # The last K rectangles are the GT, back in original pixels.
    np.testing.assert_allclose(xyxy(patches[-len(target["boxes"]):]), target["boxes"], rtol=1e-5)
    green = [p for p in patches if p.get_edgecolor()[:3] == matplotlib.colors.to_rgb(V.POSITIVE)]
    assert len(green) == pos > 0
    assert f"{pos} positive" in fig.axes[0].get_title()


def test_plot_proposals_shows_before_and_after_nms(scene):
    _, image, _, trace = scene
    p, size = trace["proposals"], trace["preprocess"]["image_size"]
    fig = V.plot_proposals(image, p, top=20, network_size=size)
    before, after = fig.axes[:2]
    assert len(fig.axes) == 3                          # two panels and a colour bar
    assert len(rects(before)) == min(20, len(p["before_nms_boxes"]))
    assert len(rects(after)) == min(20, len(p["boxes"]))
    best = V.network_to_original(p["boxes"][:1], size, image.shape[:2])
    np.testing.assert_allclose(xyxy(rects(after)[-1:]), best)   # best drawn last
    with pytest.raises(ValueError, match="top"):
        V.plot_proposals(image, p, top=0)
    with pytest.raises(TypeError, match="before_nms_boxes"):
        V.plot_proposals(image, {"boxes": p["boxes"]})


def test_plot_rois_draws_foreground_and_distinct_background(scene):
    _, image, _, trace = scene
    sampled = trace["proposal_targets"].result
    fig = V.plot_rois(image, trace["proposal_targets"], trace["preprocess"]["image_size"], NAMES)
    assert len(rects(fig.axes[0])) == sampled.num_positive + sampled.num_negative_unique
    assert len(fig.axes[0].texts) == sampled.num_positive
    assert f"{sampled.num_positive} foreground" in fig.axes[0].get_title()


def test_plot_feature_maps_shows_the_most_active_channels(scene):
    features = trace_features = scene[3]["features"]["features"]
    fig = V.plot_feature_maps(features, n=6, ncols=4)
    assert len(fig.axes) == 6
    best = int(np.argmax(trace_features[0].mean(axis=(1, 2))))
    assert fig.axes[0].get_title() == f"channel {best}"
    assert len(V.plot_feature_maps(features[:, :3]).axes) == 3
    with pytest.raises(ValueError, match="features"):
        V.plot_feature_maps(np.zeros((2, 3, 4, 4), np.float32))


def test_plot_objectness_checks_the_feature_shape(scene):
    model, image, _, trace = scene
    f = trace["features"]["features"]
    fig = V.plot_objectness(image, trace["rpn"]["fg_probs"], f.shape[2:], model.stride,
                            trace["preprocess"]["image_size"])
    assert len(fig.axes) == 2 and fig.axes[0].images[-1].get_array().shape == f.shape[2:]
    with pytest.raises(ValueError, match="Hf \\* Wf \\* A"):
        V.plot_objectness(image, trace["rpn"]["fg_probs"][:-1], f.shape[2:], model.stride)


def test_plot_trace_saves_a_png_of_the_figure_size(scene, tmp_path):
    _, _, _, trace = scene
    fig = V.plot_trace(trace, NAMES, min_score=0.0, top=10)
    assert len(fig.axes) == 7                          # six panels, one colour bar
    assert fig._suptitle.get_text().startswith("losses:")
    path = V.save_figure(fig, tmp_path / "sub" / "trace.png", dpi=40)
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size == tuple(int(v) for v in fig.get_size_inches() * 40)   # floored


def test_every_figure_saves_as_a_png_of_its_size(scene, tmp_path):
    model, image, target, trace = scene
    size = trace["preprocess"]["image_size"]
    figures = {
        "detections": V.plot_detections(image, trace["detections"].outputs, NAMES, target),
        "anchors": V.plot_anchors(size, trace["anchors"]["anchors"], [0, 1, 2]),
        "labels": V.plot_anchor_labels(image, trace["anchor_labels"]),
        "objectness": V.plot_objectness(image, trace["rpn"]["fg_probs"],
                                        trace["features"]["features"].shape[2:], model.stride,
                                        size),
        "proposals": V.plot_proposals(image, trace["proposals"], 5, size),
        "rois": V.plot_rois(image, trace["proposal_targets"], size),
        "features": V.plot_feature_maps(trace["features"]["features"], n=2),
        "losses": V.plot_loss_curves([{"rpn_cls": 1.0, "lr": 0.1}, {"rpn_cls": 0.5, "lr": 0.1}]),
        "grid": V.detection_grid([image], [trace["detections"].outputs]),
    }
    for name, fig in figures.items():
        with Image.open(V.save_figure(fig, tmp_path / f"{name}.png", dpi=20)) as im:
            assert im.size == tuple(int(v) for v in fig.get_size_inches() * 20), name


def test_plot_trace_of_a_lazy_trace_marks_stages_not_run(scene):
    model, image, _, _ = scene
    lazy = model.step_through(image, lazy=True)
    with pytest.raises(ValueError, match="trace.next"):
        V.plot_trace(lazy)
    lazy.next()
    fig = V.plot_trace(lazy)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "stage 'proposals' has not run" in texts and "stage 'rpn' has not run" in texts
    assert "no target" in " ".join(texts)            # an inference trace labels no anchors
    with pytest.raises(TypeError, match="Trace"):
        V.plot_trace({"image": image})


def test_plot_loss_curves_reads_a_jsonl_log(tmp_path):
    path = tmp_path / "log.jsonl"
    rows = [{"step": 10 * i, "rpn_cls": 1.0 / (i + 1), "rpn_box": 0.1, "roi_cls": 0.5,
             "roi_box": 0.2, "total": 0.8 + 1.0 / (i + 1), "lr": 0.01} for i in range(30)]
    rows.insert(5, {"step": 50, "eval": {"map": 0.1}})          # not a training record
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    fig = V.plot_loss_curves(path, window=5)
    ax, twin = fig.axes
    assert len(ax.lines) == 10 and len(twin.lines) == 1       # 5 smoothed + 5 raw; lr
    total = ax.lines[8]
    np.testing.assert_allclose(total.get_xdata(), np.arange(30) * 10)
    # Nested losses, no lr: one axes; total is left out when absent.
    nested = [{"losses": {"rpn_cls": 1.0, "roi_cls": 2.0}} for _ in range(3)]
    assert len(V.plot_loss_curves(nested).axes) == 1


def test_smoothing_is_a_trailing_moving_average():
    np.testing.assert_allclose(V._smooth(np.array([1.0, 2, 3, 4]), 2), [1, 1.5, 2.5, 3.5])


def test_plot_loss_curves_rejects_bad_logs(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"rpn_cls": 1}\nnot json\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        V.plot_loss_curves(bad)
    with pytest.raises(ValueError, match="no training record"):
        V.plot_loss_curves([{"step": 1}])
    with pytest.raises(TypeError, match="log must be"):
        V.plot_loss_curves(3)
    with pytest.raises(TypeError, match="record 0"):
        V.plot_loss_curves([[1, 2]])


def test_detection_grid_has_one_axes_per_image(scene):
    model, image, target, _ = scene
    images = [image, image[:, ::-1].copy(), image[:50]]
    dets = [{"boxes": np.array([[0, 0, 10, 10.0]]), "scores": np.array([0.9]),
             "labels": np.array([2])}] * 3
    fig = V.detection_grid(images, dets, NAMES, ncols=2)
    assert len(fig.axes) == 3 and all(len(rects(ax)) == 1 for ax in fig.axes)
    with pytest.raises(ValueError, match="targets must hold one entry per image"):
        V.detection_grid(images, dets, targets=[target])


def test_save_figure_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=".png"):
        V.save_figure(Figure(), tmp_path / "x.jpg")
    with pytest.raises(TypeError, match="Figure"):
        V.save_figure("figure", tmp_path / "x.png")


def test_large_images_are_drawn_from_a_downscaled_copy():
    """matplotlib resamples what imshow gets through float RGBA buffers
    (~30 bytes a pixel: 1.9 GB for 5000 x 5000), so a figure must get a copy
    no larger than MAX_DRAW_SIDE, with the boxes still in original pixels."""
    from minirpn.visualize.boxes import MAX_DRAW_SIDE
    image = np.zeros((3000, 2000, 3), np.uint8)
    image[:1500] = 255                                    # top half white
    det = {"boxes": np.array([[100.0, 200.0, 1900.0, 2900.0]]), "scores": np.array([0.9]),
           "labels": np.array([1])}
    ax = V.plot_detections(image, det).axes[0]
    shown = ax.images[0]
    h, w = shown.get_array().shape[:2]
    assert max(h, w) <= MAX_DRAW_SIDE and h / w == pytest.approx(1.5, rel=0.01)
    assert tuple(shown.get_extent()) == (0, 2000, 3000, 0)
    assert shown.get_array()[0, 0, 0] == 255 and shown.get_array()[-1, 0, 0] == 0
    assert ax.patches[0].get_xy() == (100.0, 200.0) and ax.patches[0].get_width() == 1800.0
    small = np.zeros((40, 50, 3), np.uint8)
    assert V.plot_detections(small).axes[0].images[0].get_array().shape == (40, 50, 3)
