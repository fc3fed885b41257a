"""The command line keeps a user's files: detect never writes over its
inputs or earlier results and keeps every good result; train refuses an
earlier run, takes 0 as a value, reports an empty run, and Ctrl-C through
the real CLI leaves a run that resumes to the uninterrupted result."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from minirpn import Config, FasterRCNN
from minirpn.cli import main
from minirpn.cli.detect_command import output_names
from minirpn.train.state import load_run

from test_cli import TINY


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An (untrained) tiny model's checkpoint; detect only needs a model."""
    path = tmp_path_factory.mktemp("ck") / "model.npz"
    FasterRCNN(Config.from_dict(dict(TINY, num_classes=3,
                                     class_names=["circle", "square", "triangle"]))).save(path)
    return path


def write_image(path, seed=0, size=(40, 48)):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


def detect(checkpoint, *args):
    return main(["detect", str(checkpoint), *map(str, args), "--score-threshold", "0"])


# ---- detect ---------------------------------------------------------------------------
def test_detect_refuses_an_out_folder_holding_its_inputs(tmp_path, checkpoint, capsys):
    a = write_image(tmp_path / "z" / "a.png")
    before = a.read_bytes()
    assert detect(checkpoint, a, "--out", tmp_path / "z") == 1
    err = capsys.readouterr().err
    assert f"--out {tmp_path / 'z'} holds the input image {a}" in err
    assert a.read_bytes() == before and sorted(os.listdir(tmp_path / "z")) == ["a.png"]
    # the same folder named another way (trailing "/.", a symlink) is the same folder
    (tmp_path / "link").symlink_to(tmp_path / "z")
    assert detect(checkpoint, a, "--out", f"{tmp_path / 'z'}/.") == 1
    assert detect(checkpoint, a, "--out", tmp_path / "link") == 1
    assert a.read_bytes() == before


def test_detect_names_outputs_uniquely(tmp_path, checkpoint):
    x = write_image(tmp_path / "x" / "img.png", 0)
    y = write_image(tmp_path / "y" / "img.png", 1)
    out = tmp_path / "out"
    assert detect(checkpoint, x, y, "--out", out) == 0
    records = json.loads((out / "detections.json").read_text())
    assert [(r["image"], r["output"]) for r in records] == [(str(x), "x_img.png"),
                                                          (str(y), "y_img.png")]
    first, second = (np.asarray(Image.open(out / n)) for n in ("x_img.png", "y_img.png"))
    assert not np.array_equal(first, second)        # two pictures, not one overwritten
    # running again is refused: the earlier results are kept unless --overwrite
    before = (out / "detections.json").read_bytes()
    assert detect(checkpoint, x, "--out", out) == 1
    assert (out / "detections.json").read_bytes() == before
    assert detect(checkpoint, x, "--out", out, "--overwrite") == 0
    assert len(json.loads((out / "detections.json").read_text())) == 1
    # a file of the user's under an output's name is kept too
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "img.png").write_bytes(b"my picture")
    assert detect(checkpoint, x, "--out", mine) == 1
    assert (mine / "img.png").read_bytes() == b"my picture"


def test_output_names_are_unique_and_deterministic():
    assert output_names(["a/b.jpg", "c.png"]) == ["b.png", "c.png"]
    assert output_names(["p/x/img.png", "q/x/img.png"]) == ["p_x_img.png", "q_x_img.png"]
    names = output_names(["d/a.png", "d/a.jpg", "d/A.png", "d/a.png", "d/a-1.png"])
    assert len({n.lower() for n in names}) == 5
    assert names == output_names(["d/a.png", "d/a.jpg", "d/A.png", "d/a.png", "d/a-1.png"])
    assert names[-1] == "a-1.png"                   # a real name is never taken by a number


def test_detect_skips_unreadable_files_keeps_the_rest_and_exits_1(tmp_path, checkpoint, capsys):
    a, b = write_image(tmp_path / "a.png", 0), write_image(tmp_path / "b.png", 1)
    bad = tmp_path / "notimg.png"
    bad.write_text("not an image")
    out = tmp_path / "out"
    assert detect(checkpoint, a, bad, tmp_path / "missing.png", b, "--out", out) == 1
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "warning: skipping" in line]
    assert len(warnings) == 2
    assert warnings[0].startswith(f"minirpn detect: warning: skipping {bad}: ")
    assert warnings[1].startswith(f"minirpn detect: warning: skipping {tmp_path / 'missing.png'}")
    assert "2 of 4 images could not be read" in err.splitlines()[-1]
    records = json.loads((out / "detections.json").read_text())
    assert [r["image"] for r in records] == [str(a), str(b)]
    lines = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    assert lines == records
    assert (out / "a.png").exists() and (out / "b.png").exists()
    assert not [n for n in os.listdir(out) if n.startswith(".tmp-")]


def test_detect_writes_each_result_as_it_finishes(tmp_path, checkpoint, monkeypatch):
    """A crash at the second image leaves the first one's PNG and line."""
    a, b = write_image(tmp_path / "a.png", 0), write_image(tmp_path / "b.png", 1)
    detect_one, calls = FasterRCNN.detect, [0]

    def crash_second(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt
        return detect_one(self, *args, **kwargs)
    monkeypatch.setattr(FasterRCNN, "detect", crash_second)
    out = tmp_path / "out"
    assert detect(checkpoint, a, b, "--out", out) == 130
    assert (out / "a.png").exists() and not (out / "b.png").exists()
    lines = (out / "detections.jsonl").read_text().splitlines()
    assert [json.loads(line)["image"] for line in lines] == [str(a)]


# ---- checkpoints given to evaluate / detect --------------------------------------------
def test_a_missing_or_foreign_checkpoint_is_named(tmp_path, capsys):
    image = write_image(tmp_path / "in" / "a.png")
    assert main(["detect", str(tmp_path / "nope.npz"), str(image), "--out",
                 str(tmp_path / "o")]) == 1
    assert f"error: checkpoint not found: {tmp_path / 'nope.npz'}" in capsys.readouterr().err
    for name, content in (("run.json", b'{"a": 1}'), ("x.npy", b"\x93NUMPY...")):
        (tmp_path / name).write_bytes(content)
        assert main(["evaluate", str(tmp_path / name), "--data", "shapes"]) == 1
        err = capsys.readouterr().err
        assert f"{tmp_path / name}: not a minirpn checkpoint" in err
        assert "pickle" not in err and len(err.splitlines()) == 1


# ---- train --------------------------------------------------------------------------------
def tiny_config_file(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    return path


def train_args(tmp_path, out, *more):
    return ["train", "--data", "shapes", "--num-images", "6", "--config",
            str(tiny_config_file(tmp_path)), "--out", str(out), "--quiet", *more]


@pytest.mark.parametrize("flag", ["--iterations", "--minutes", "--batch-size",
                                  "--num-images", "--lr", "--checkpoint-every"])
def test_zero_and_negative_values_are_values(tmp_path, flag, capsys):
    with pytest.raises(SystemExit) as caught:
        main(train_args(tmp_path, tmp_path / "run", flag, "-1"))
    assert caught.value.code == 2
    if flag in ("--iterations", "--minutes", "--batch-size", "--num-images"):
        with pytest.raises(SystemExit) as caught:
            main(train_args(tmp_path, tmp_path / "run", flag, "0"))
        assert caught.value.code == 2
        expected = "a finite number > 0, got 0.0" if flag == "--minutes" \
            else "a positive int, got 0"           # the library's own words (checks.py)
        assert f"argument {flag}: must be {expected}" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    with pytest.raises(SystemExit):
        main(["demo", "--minutes", "0"])


def test_train_refuses_an_earlier_run_and_honours_lr_0(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(train_args(tmp_path, run, "--iterations", "2", "--lr", "0")) == 0
    state, _ = load_run(run, {"model": FasterRCNN(Config.from_dict(
        dict(TINY, num_classes=3, class_names=["circle", "square", "triangle"])))})
    assert state["train_config"]["lr"] == 0.0                 # not the default 0.001
    before = {n: (run / n).read_bytes() for n in ("model.npz", "train_state.npz", "log.jsonl")}
    capsys.readouterr()
    assert main(train_args(tmp_path, run, "--iterations", "2")) == 1
    err = capsys.readouterr().err
    assert "already holds a training run" in err and "--resume" in err and "--overwrite" in err
    assert {n: (run / n).read_bytes() for n in before} == before
    assert main(train_args(tmp_path, run, "--iterations", "3", "--overwrite",
                           "--checkpoint-every", "1")) == 0
    steps = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps if r["event"] == "step"] == [1, 2, 3]


def test_a_run_with_no_step_says_so_and_exits_1(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("minirpn.train.trainer.estimate_step_seconds", lambda *a: 1e-3)
    monkeypatch.setattr("minirpn.train.trainer._Run.elapsed", lambda self: 1e9)
    assert main(train_args(tmp_path, tmp_path / "run", "--minutes", "0.05")) == 1
    out = capsys.readouterr()
    assert "no training step ran (time budget)" in out.err and "untrained" in out.err
    assert "model written" not in out.out
    # and the untrained model.npz left there is named as such when used
    monkeypatch.undo()
    image = write_image(tmp_path / "in" / "a.png")
    assert main(["detect", str(tmp_path / "run" / "model.npz"), str(image),
                 "--out", str(tmp_path / "det")]) == 0
    assert "holds an untrained model (saved at step 0" in capsys.readouterr().err
    assert main(train_args(tmp_path, tmp_path / "run2", "--iterations", "1")) == 0
    assert main(["detect", str(tmp_path / "run2" / "model.npz"), str(image),
                 "--out", str(tmp_path / "det2")]) == 0
    assert "untrained" not in capsys.readouterr().err


# ---- end to end: SIGINT through the real CLI, then --resume -----------------------------
def test_sigint_then_resume_through_the_cli_equals_an_uninterrupted_run(tmp_path):
    args = train_args(tmp_path, tmp_path / "cut", "--iterations", "16",
                      "--checkpoint-every", "1000", "--seed", "3")
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.Popen([sys.executable, "-m", "minirpn", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log, deadline = tmp_path / "cut" / "log.jsonl", time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and log.read_text().count('"event": "step"') >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().startswith("minirpn train: interrupted; the checkpoint of step")
    assert "--resume" in err and len(err.strip().splitlines()) == 1
    cut_at = int(err.split("step ")[1].split()[0])
    assert 3 <= cut_at < 16 and "model written" not in out
    resumed = subprocess.run([sys.executable, "-m", "minirpn", *args, "--resume"], env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert main(train_args(tmp_path, tmp_path / "straight", "--iterations", "16",
                           "--checkpoint-every", "1000", "--seed", "3")) == 0
    a = FasterRCNN.load(tmp_path / "cut" / "model.npz").parameters()
    b = FasterRCNN.load(tmp_path / "straight" / "model.npz").parameters()
    for key, value in b.items():
        np.testing.assert_array_equal(a[key], value, err_msg=key)


def test_ctrl_c_in_process_then_resume_through_the_cli(tmp_path, monkeypatch, capsys):
    """The fast variant of the test above: Ctrl-C arrives while step 4 reads
    its batch (before any update)."""
    from minirpn.train.batches import BatchStream
    next_batch, calls = BatchStream.next_batch, [0]

    def interrupted(self):
        calls[0] += 1
        if calls[0] == 4:
            raise KeyboardInterrupt
        return next_batch(self)
    monkeypatch.setattr(BatchStream, "next_batch", interrupted)
    args = train_args(tmp_path, tmp_path / "cut", "--iterations", "6", "--seed", "3")
    assert main(args) == 130
    err = capsys.readouterr().err.strip()
    assert err == (f"minirpn train: interrupted; the checkpoint of step 3 is in "
                   f"{tmp_path / 'cut'}: run the same command with --resume to continue")
    monkeypatch.undo()
    assert main(args + ["--resume"]) == 0
    assert main(train_args(tmp_path, tmp_path / "straight", "--iterations", "6",
                           "--seed", "3")) == 0
    a = FasterRCNN.load(tmp_path / "cut" / "model.npz").parameters()
    b = FasterRCNN.load(tmp_path / "straight" / "model.npz").parameters()
    for key, value in b.items():
        np.testing.assert_array_equal(a[key], value, err_msg=key)
