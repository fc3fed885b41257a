"""The command line: exit codes, one-line errors, and a tiny end-to-end run."""
import json
import subprocess
import sys

from minirpn.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "minirpn", *args],
                          capture_output=True, text=True)


def test_help_lists_every_sub_command():
    out = run("--help")
    assert out.returncode == 0
    for command in ("demo", "train", "evaluate", "detect", "make-dataset", "gradcheck"):
        assert command in out.stdout
    for command in ("demo", "train", "evaluate", "detect", "make-dataset"):
        assert run(command, "--help").returncode == 0


def test_usage_errors_exit_2():
    assert run("train").returncode == 2                    # --data, --out missing
    assert run("make-dataset", "cats", "--out", "x").returncode == 2


def test_other_errors_exit_1_with_one_line(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "missing.npz"), "--data", "shapes"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("minirpn evaluate: error:") and "missing.npz" in err
    assert len(err.splitlines()) == 1
    assert main(["train", "--data", "pascal:x", "--out", str(tmp_path)]) == 1
    assert "unknown data spec 'pascal:x'" in capsys.readouterr().err


TINY = dict(target_size=64, max_size=96, pixel_std=[58.4, 57.1, 57.4],
            backbone_channels=[8, "M", 16, "M", 16], anchor_scales=[4, 8, 16],
            rpn_channels=16, rpn_pre_nms_top_n_train=300, rpn_post_nms_top_n_train=64,
            rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=32, rpn_min_size=2.0,
            roi_batch_size=32, head_hidden=32, head_dropout=0.0)


def test_make_dataset_train_evaluate_detect_round_trip(tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["make-dataset", "shapes", "--out", str(data), "--num-images", "6",
                 "--quiet"]) == 0
    coco = data / "annotations.json"
    assert len(json.loads(coco.read_text())["images"]) == 6
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    run_dir = tmp_path / "run"
    assert main(["train", "--data", f"coco:{coco}", "--val", f"coco:{coco}",
                 "--out", str(run_dir), "--config", str(config), "--iterations", "4",
                 "--quiet"]) == 0
    assert (run_dir / "model.npz").exists()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"map", "per_class", "method", "seconds", "iterations"} <= set(metrics)
    assert metrics["iterations"] == 4
    lines = (run_dir / "log.jsonl").read_text().splitlines()
    assert sum(json.loads(line).get("event") == "step" for line in lines) == 4
    capsys.readouterr()
    assert main(["evaluate", str(run_dir / "model.npz"), "--data", f"coco:{coco}",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0.0 <= result["map"] <= 1.0
    assert set(result["per_class"]) <= {"circle", "square", "triangle"}
    out = tmp_path / "det"
    image = sorted((data / "images").iterdir())[0]
    assert main(["detect", str(run_dir / "model.npz"), str(image), "--out", str(out),
                 "--score-threshold", "0.0"]) == 0
    records = json.loads((out / "detections.json").read_text())
    assert records[0]["image"] == str(image)
    assert (out / f"{image.stem}.png").exists()
    # a checkpoint evaluated on data with other classes names the field
    other = json.loads(coco.read_text())
    other["categories"] = other["categories"][:2]
    other["annotations"] = [a for a in other["annotations"]
                            if a["category_id"] in {c["id"] for c in other["categories"]}]
    (data / "two.json").write_text(json.dumps(other))
    capsys.readouterr()
    assert main(["evaluate", str(run_dir / "model.npz"), "--data",
                 f"coco:{data / 'two.json'}"]) == 1
    err = capsys.readouterr().err
    assert "model.npz: field num_classes is 3 but the data has 2 classes" in err
