"""`minirpn trace` and minirpn.inspect's label table: the anchors that matter, explained."""
import csv

import numpy as np
import pytest

import minirpn
from minirpn.anchor_targets import Reason, label_anchors
from minirpn.cli import main
from minirpn.data import ShapesDataset, write_png
from minirpn.inspect import anchors_that_matter, best_anchors_of_gt, label_table

TINY = minirpn.Config.toy(3)


@pytest.fixture
def labels():
    anchors = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 60, 60],
                        [-5, 0, 5, 10], [70, 70, 80, 80], [80, 80, 90, 90]], np.float64)
    gt = np.array([[0, 0, 10, 10], [40, 40, 50, 60]], np.float64)
    return label_anchors(anchors, gt, (100, 100), batch_size=None)


def test_best_anchors_include_ties_and_skip_border_anchors(labels):
    best = best_anchors_of_gt(labels)
    assert best[0].tolist() == [0, 1] and best[1].tolist() == [3]


def test_listed_anchors_cover_positives_best_anchors_and_seeded_samples(labels):
    listed = anchors_that_matter(labels, np.random.default_rng(0), samples=1)
    assert listed[0] == "positive before sampling; best anchor of GT 0"
    assert listed[3] == "positive before sampling; best anchor of GT 1"
    sampled = [i for i, why in listed.items() if why.startswith("sampled")]
    assert len([i for i in sampled if labels.reason[i] == Reason.NEGATIVE]) == 1
    assert 4 in listed and listed[4] == "sampled: crosses the border"
    assert anchors_that_matter(labels, np.random.default_rng(0), samples=1) == listed
    rows = label_table(labels, listed)
    assert [r["anchor"] for r in rows] == sorted(listed)
    assert rows[0]["explanation"] == labels.explain(0) and rows[0]["best_anchor_of"] == "0"


def test_trace_an_untrained_model_on_generated_data(tmp_path, capsys):
    out = tmp_path / "t"
    assert main(["trace", "--config", "toy", "--data", "shapes", "--index", "1",
                 "--anchor", "7", "--anchor", "1200", "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"overview.png", "labels.csv", "labels.md",
                                               "anchor_7.png", "anchor_1200.png"}
    with open(out / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    image, target = ShapesDataset(2, seed=0)[1]
    lab = minirpn.FasterRCNN(TINY).step_through(image, target)["anchor_labels"].result
    positives = np.flatnonzero(np.isin(lab.reason_before_sampling, (3, 4)))
    listed = {int(r["anchor"]): r for r in rows}
    assert set(positives.tolist()) <= set(listed)
    i = int(positives[0])
    assert listed[i]["explanation"] == lab.explain(i)
    assert (out / "labels.md").read_text().startswith("| anchor | x1 |")
    assert "anchor_labels" in capsys.readouterr().out


def test_trace_a_checkpoint_on_an_image_file_with_gt(tmp_path, capsys):
    ckpt = tmp_path / "model.npz"
    minirpn.FasterRCNN(TINY).save(ckpt)
    image, target = ShapesDataset(1, seed=0)[0]
    write_png(tmp_path / "x.png", image)
    x1, y1, x2, y2 = target["boxes"][0].tolist()
    assert main(["trace", str(ckpt), str(tmp_path / "x.png"), "--gt",
                 f"{x1},{y1},{x2},{y2},{int(target['labels'][0])}",
                 "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "labels.csv").exists()
    # Without GT there is nothing to label: the overview only, and a note.
    assert main(["trace", str(ckpt), str(tmp_path / "x.png"), "--out",
                 str(tmp_path / "p")]) == 0
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["overview.png"]
    assert "no GT boxes" in capsys.readouterr().out


@pytest.mark.parametrize("args, words", [
    (["--config", "toy", "--data", "shapes", "--anchor", "99999999"], "out of range"),
    (["--config", "toy", "img.png", "--data", "shapes"], "exactly one"),
    (["--data", "shapes"], "give CHECKPOINT"),
    (["--config", "toy", "a.npz", "img.png"], "at most IMAGE"),
    (["--config", "toy", "img.png", "--gt", "1,2,3"], "--gt must be"),
])
def test_trace_bad_arguments(tmp_path, capsys, args, words):
    assert main(["trace", *args, "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("minirpn trace: error:") and words in err
