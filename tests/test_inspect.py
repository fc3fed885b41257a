"""minirpn.inspect and `minirpn inspect-anchors`: anchor coverage from annotations.

Hand-made annotation files whose coverage is computed by hand below, the
per-box search checked against the brute-force labelling, the shapes and
digits data, and bad input.
"""
import dataclasses
import json

import numpy as np
import pytest

import minirpn
from minirpn.anchor_targets import label_anchors
from minirpn.anchors import base_anchors, grid_anchors
from minirpn.cli import main
from minirpn.inspect import (Annotations, anchor_coverage, coverage_report, inspect_anchors,
                             read_annotations, suggest_anchors)
from minirpn.ops import box_iou

PAPER = minirpn.Config.paper(1)


def write_coco(path, sizes, boxes_per_image):
    """A COCO instances file: ``sizes`` (H, W) per image, boxes (x1, y1, x2, y2)."""
    images = [dict(id=i + 1, file_name=f"{i}.png", height=h, width=w)
              for i, (h, w) in enumerate(sizes)]
    anns = [dict(id=len(images) * 100 + k * 10 + i, image_id=i + 1, category_id=1,
                 bbox=[x1, y1, x2 - x1, y2 - y1])
            for i, boxes in enumerate(boxes_per_image) for k, (x1, y1, x2, y2) in enumerate(boxes)]
    path.write_text(json.dumps(dict(images=images, annotations=anns,
                                    categories=[dict(id=1, name="thing")])))
    return path


def anchor_box(config, row, col, shape):
    """The anchor of cell (row, col), shape a, in network pixels (minirpn.anchors)."""
    base = base_anchors(config.stride, config.anchor_scales, config.anchor_ratios, "float64")
    return (base[shape] + config.stride * np.array([col, row, col, row])).tolist()


def thin_box(cx, cy):
    """A 24 x 180 box (width x height) centred at (cx, cy)."""
    return [cx - 12, cy - 90, cx + 12, cy + 90]


# Under the paper config a 600 x 800 image keeps its size (scale 1). A 24 x
# 180 box centred on an anchor centre lies inside the 90.5 x 181 anchor
# (scale 8, ratio 2), the anchor nearest its shape: IoU = 24 * 180 / 128**2
# = 0.2637, below 0.3. The square 128 anchor gives 24*128 / (128**2 +
# 4320 - 3072) = 0.174 and the others less. Anchor centres lie at 8 + 16 j.
THIN_IOU = 24 * 180 / 128 ** 2


def test_thin_boxes_and_exact_anchors_give_the_fractions_computed_by_hand(tmp_path):
    exact = [anchor_box(PAPER, 10, 10, 4), anchor_box(PAPER, 20, 30, 1)]   # 128x128, 256 1:2
    thin = [thin_box(200, 296), thin_box(456, 296), thin_box(600, 312)]
    path = write_coco(tmp_path / "a.json", [(600, 800), (600, 800)], [exact + thin[:1], thin[1:]])
    report, cov = inspect_anchors(read_annotations(minirpn.data.CocoDataset(
        path, check_files=False)), PAPER, suggestions=0)
    np.testing.assert_allclose(np.sort(cov.best_iou), [THIN_IOU] * 3 + [1, 1], atol=1e-6)
    assert report["num_gt"] == 5
    assert report["fraction_positive"] == pytest.approx(2 / 5)
    assert report["fraction_rescued"] == pytest.approx(3 / 5)
    assert report["fraction_below_negative"] == pytest.approx(3 / 5)
    assert report["median_best_iou"] == pytest.approx(THIN_IOU, abs=1e-6)
    assert report["by_ratio"][">=3"]["num_gt"] == 3
    assert report["by_ratio"][">=3"]["fraction_positive"] == 0.0
    assert report["by_ratio"]["2/3-3/2"]["fraction_positive"] == 1.0
    assert report["uncovered"]["count"] == 3
    assert report["uncovered"]["by_cause"]["too small"] == 3     # 4320 px² < 128²
    # The best anchor of an exact box is that very anchor, numbered (row, col, a).
    k = int(np.flatnonzero(cov.gt_boxes[:, 0] == exact[0][0])[0])
    assert cov.best_anchor[k] == (10 * 50 + 10) * 9 + 4        # 800 / 16 = 50 columns


def test_thin_boxes_suggestion_adds_small_thin_anchors_and_covers_them(tmp_path):
    path = write_coco(tmp_path / "t.json", [(600, 800)],
                      [[thin_box(200 + 64 * j, 296) for j in range(6)]])
    annotations = read_annotations(minirpn.data.CocoDataset(path, check_files=False))
    ranked = suggest_anchors(annotations, PAPER, top=3)
    best = ranked[0]
    # A scale-4 anchor of ratio 8 is 22.6 x 181: IoU 0.94 with a centred 24 x 180 box.
    assert best["anchor_scales"] == [4.0, 8.0, 16.0]
    assert 8.0 in best["anchor_ratios"] and best["fraction_positive"] == 1.0
    assert ranked[-1]["current"] and ranked[-1]["fraction_positive"] == 0.0
    changed = dataclasses.replace(PAPER, anchor_scales=tuple(best["anchor_scales"]),
                                  anchor_ratios=tuple(best["anchor_ratios"]))
    assert coverage_report(anchor_coverage(annotations, changed))["fraction_positive"] == 1.0


@pytest.mark.parametrize("config", [minirpn.Config.toy(1), PAPER,
                                    minirpn.Config.toy(1, rpn_allowed_border=12.0)])
def test_best_iou_equals_the_labelling_layers_over_all_anchors(config):
    rng = np.random.default_rng(3)
    sizes, boxes = [], []
    for _ in range(12):
        H, W = (int(v) for v in rng.integers(60, 700, 2))
        k = int(rng.integers(1, 5))
        x1, y1 = rng.uniform(0, W - 2, k), rng.uniform(0, H - 2, k)
        w, h = rng.uniform(1, W - x1), rng.uniform(1, H - y1)
        boxes.append(np.stack([x1, y1, x1 + w, y1 + h], 1).astype(np.float32))
        sizes.append((H, W))
    cov = anchor_coverage(Annotations(np.array(sizes), boxes, list(range(12))), config)
    base = base_anchors(config.stride, config.anchor_scales, config.anchor_ratios, config.dtype)
    for n in range(12):
        h, w = cov.network_size[n]
        anchors = grid_anchors(-(-h // config.stride), -(-w // config.stride), config.stride,
                               base)
        mine = cov.image_index == n
        gt = cov.network_boxes[mine]
        lab = label_anchors(anchors, gt, (h, w), allowed_border=config.rpn_allowed_border,
                            batch_size=None)
        inside = np.flatnonzero(lab.matched_gt >= 0)
        np.testing.assert_allclose(cov.best_iou[mine], box_iou(anchors[inside], gt).max(0),
                                   atol=1e-6)
        for j, a in enumerate(cov.best_anchor[mine]):
            assert box_iou(anchors[a:a + 1], gt[j:j + 1])[0, 0] == pytest.approx(
                cov.best_iou[mine][j], abs=1e-6)


def test_boxes_are_scaled_as_the_models_preprocessing_scales_them():
    # 300 x 500 -> scale 2 (shorter side 600) but 1000 max: exactly 600 x 1000.
    # 400 x 1000 -> 600/400 = 1.5 would give 1500 > 1000: scale 1, unchanged.
    ann = Annotations(np.array([[300, 500], [400, 1000]]),
                      [np.array([[10, 20, 30, 60]], np.float32),
                       np.array([[10, 20, 30, 60]], np.float32)], [0, 1])
    cov = anchor_coverage(ann, PAPER)
    assert cov.network_size.tolist() == [[600, 1000], [400, 1000]]
    np.testing.assert_allclose(cov.network_boxes, [[20, 40, 60, 120], [10, 20, 30, 60]])


def test_cli_on_shapes_json_and_pictures(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["inspect-anchors", "--data", "shapes", "--num-images", "8", "--json",
                 "--out", str(out), "--gallery", "4"]) == 0
    report = json.loads(capsys.readouterr().out)
    expected = sum(len(t["boxes"]) for _, t in minirpn.data.ShapesDataset(8, seed=0))
    assert report["num_gt"] == expected
    for key in ("fraction_positive", "fraction_rescued", "fraction_below_negative",
                "median_best_iou", "by_size", "by_ratio", "suggestions"):
        assert key in report
    assert report["fraction_positive"] + report["fraction_rescued"] \
        + report["fraction_no_overlap"] == pytest.approx(1.0)
    assert sum(b["num_gt"] for b in report["by_size"].values()) == expected
    assert {"anchor_scales", "anchor_ratios", "fraction_positive"} <= set(report["suggestions"][0])
    assert sorted(p.name for p in out.iterdir()) == ["best_iou.png", "box_shapes.png",
                                                     "report.json", "worst_covered.png"]
    assert json.loads((out / "report.json").read_text())["num_gt"] == expected
    # A second run never overwrites the first's results.
    assert main(["inspect-anchors", "--data", "shapes", "--num-images", "8",
                 "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err


def test_cli_on_digits_prints_the_table(capsys):
    pytest.importorskip("sklearn")
    pytest.importorskip("skimage")
    assert main(["inspect-anchors", "--data", "digits", "--num-images", "6",
                 "--suggestions", "0"]) == 0
    out = capsys.readouterr().out
    assert "reach the positive threshold" in out and "sqrt(area) px" in out


def test_coco_without_pixels_needs_no_image_files(tmp_path, capsys):
    path = write_coco(tmp_path / "a.json", [(600, 800)], [[anchor_box(PAPER, 10, 10, 4)]])
    assert main(["inspect-anchors", "--data", f"coco:{path}", "--config", "paper",
                 "--json", "--suggestions", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["fraction_positive"] == 1.0


def test_the_gallery_is_skipped_with_a_message_when_pixels_are_missing(tmp_path, capsys):
    path = write_coco(tmp_path / "a.json", [(600, 800)], [[anchor_box(PAPER, 10, 10, 4)]])
    assert main(["inspect-anchors", "--data", f"coco:{path}", "--config", "paper",
                 "--suggestions", "0", "--out", str(tmp_path / "o")]) == 0
    assert "gallery was not drawn" in capsys.readouterr().err
    assert (tmp_path / "o" / "best_iou.png").exists()


@pytest.mark.parametrize("sizes, boxes, args, words", [
    ([(100, 100)], [[]], [], "no GT boxes"),
    ([(100, 100)], [[[10, 10, 150, 50]]], [], "reaches outside its image"),
    ([(100, 100)], [[[10, 10, 50, 50]]], ["--config", "huge"], "--config huge: not toy, paper"),
])
def test_bad_input_gets_a_clear_one_line_message(tmp_path, capsys, sizes, boxes, args, words):
    path = write_coco(tmp_path / "bad.json", sizes, boxes)
    assert main(["inspect-anchors", "--data", f"coco:{path}", *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("minirpn inspect-anchors: error:") and words in err
    assert len(err.strip().splitlines()) == 1


def test_python_api_names_the_box_outside_its_image():
    ann = Annotations(np.array([[50, 60]]), [np.array([[0, 0, 10, 10], [5, 5, 61, 20]])],
                      ["img"], source="mine.json")
    with pytest.raises(ValueError, match=r"mine.json: image 0 \(id 'img'\) box 1 .* outside "
                                         r"its 60x50 image"):
        anchor_coverage(ann, PAPER)


def test_voc_annotations_are_read_without_pixels_and_difficult_objects_left_out(tmp_path,
                                                                                 capsys):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "ImageSets" / "Main").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Main" / "trainval.txt").write_text("a\n")
    # VOC's 1-based inclusive pixels: xmin 105..xmax 232 is x 104..232, the 128 px
    # anchor of cell (10, 10) exactly; the difficult object is left out as in training.
    obj = ("<object><name>{}</name><difficult>{}</difficult><bndbox><xmin>{}</xmin>"
           "<ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox></object>")
    (tmp_path / "Annotations" / "a.xml").write_text(
        "<annotation><size><width>800</width><height>600</height></size>"
        + obj.format("cat", 0, 105, 105, 232, 232) + obj.format("dog", 1, 1, 1, 5, 5)
        + "</annotation>")
    assert main(["inspect-anchors", "--data", f"voc:{tmp_path}", "--config", "paper",
                 "--json", "--suggestions", "0"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_gt"] == 1 and report["fraction_positive"] == 1.0
