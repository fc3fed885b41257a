"""The training loop: log, checkpoints, exact resume, divergence, budget."""
import json
import os

import numpy as np
import pytest

from minirpn import FasterRCNN
from minirpn.data import make_target
from minirpn.detection_losses import LOSS_NAMES
from minirpn.train import (TrainConfig, TrainingDiverged, learning_rate, read_log,
                           train)
from minirpn.train.state import load_run, save_run

from scenes import make_scene
# the float64 detector on 32 px images; its head dropout lets the run's
# generator drive it too
from test_faster_rcnn import tiny_config


def tiny_dataset(n=5, seed=0):
    """n scenes of 28-36 px with one or two coloured boxes; image 0 also
    has a difficult object."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = (int(v) for v in rng.integers(28, 37, size=2))
        boxes = [[2, 3, 14, 16], [16, 12, w - 2, h - 3]][: 1 + i % 2]
        labels = [1 + (i + k) % 2 for k in range(len(boxes))]
        image = make_scene(rng, h, w, boxes, labels)
        difficult = [False] * len(boxes)
        if i == 0:
            boxes, labels, difficult = boxes + [[20, 2, 26, 8]], labels + [2], difficult + [True]
        out.append((image, make_target(boxes, labels, difficult, image_id=i)))
    return out


def quick_config(**overrides):
    values = dict(iterations=6, batch_size=2, warmup_iterations=2, lr=0.02,
                  lr_steps=(0.5,), checkpoint_every=3)
    values.update(overrides)
    return TrainConfig(**values)


def step_records(path):
    """Step records of a log without their timings."""
    return [{k: v for k, v in r.items() if k != "time"}
            for r in read_log(path) if r["event"] == "step"]


class Crash(BaseException):
    """A hard stop, like a kill -9 or a power cut: train() checkpoints on
    Ctrl-C and on errors (Exception), not on this, so the steps since the
    last periodic checkpoint are lost and must be run again on resume."""


def crash_after(step):
    def callback(info):
        if info.step == step:
            raise Crash(f"simulated crash after step {step}")
    return callback


def test_run_logs_every_step_and_writes_a_loadable_model(tmp_path):
    model = FasterRCNN(tiny_config())
    data = tiny_dataset()
    result = train(model, data, tmp_path, quick_config(), val_dataset=data[:2],
                   class_names=("red", "green"))
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["event"] == "step"]
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5, 6]
    for r in steps:
        assert set(r) == {"event", "step", "stage", "epoch", "lr", "time", "total", *LOSS_NAMES}
        assert r["lr"] == learning_rate(r["step"] - 1, 0.02, 6, 2, (0.5,), 0.1)
        assert r["total"] == pytest.approx(sum(r[k] for k in LOSS_NAMES))
    assert [r["lr"] for r in steps] == pytest.approx([0.01, 0.02, 0.02, 0.002, 0.002, 0.002])
    assert result.history == steps and result.iterations == result.planned_iterations == 6
    assert records[-1]["event"] == "eval" and records[-1]["step"] == 6
    loaded = FasterRCNN.load(tmp_path / "model.npz")
    for key, value in model.parameters().items():
        np.testing.assert_array_equal(loaded.parameters()[key], value)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics == result.metrics
    assert set(metrics["per_class"]) == {"red", "green"} and 0 <= metrics["map"] <= 1
    assert metrics["iterations"] == 6 and metrics["method"] == "area"
    assert result.ap.map == metrics["map"] and "mAP" in result.ap.table()


def test_training_changes_every_parameter_and_is_reproducible(tmp_path):
    a, b = FasterRCNN(tiny_config()), FasterRCNN(tiny_config())
    before = {k: v.copy() for k, v in a.parameters().items()}
    train(a, tiny_dataset(), tmp_path / "a", quick_config(), progress=False)
    train(b, tiny_dataset(), tmp_path / "b", quick_config(), progress=False)
    assert step_records(tmp_path / "a" / "log.jsonl") == step_records(tmp_path / "b" / "log.jsonl")
    for key, value in a.parameters().items():
        assert not np.array_equal(value, before[key]), key
        np.testing.assert_array_equal(value, b.parameters()[key])


@pytest.mark.parametrize("checkpoint_every,crash", [(3, 4), (4, 2)])
def test_resume_continues_bit_identically(tmp_path, checkpoint_every, crash):
    """(3, 4): the interrupted run gets past its step-3 checkpoint, so step 4
    is logged, lost, and must be run again identically. (4, 2): it crashes
    before any periodic checkpoint and resumes from the one of step 0."""
    data = tiny_dataset()
    cfg = quick_config(checkpoint_every=checkpoint_every)
    straight = FasterRCNN(tiny_config())
    train(straight, data, tmp_path / "straight", cfg)
    with pytest.raises(Crash):
        train(FasterRCNN(tiny_config()), data, tmp_path / "cut", cfg, callback=crash_after(crash))
    assert [r["step"] for r in step_records(tmp_path / "cut" / "log.jsonl")] == \
        list(range(1, crash + 1))
    fresh = FasterRCNN(tiny_config())          # weights come from the checkpoint
    result = train(fresh, data, tmp_path / "cut", cfg, resume=True)
    assert step_records(tmp_path / "cut" / "log.jsonl") == \
        step_records(tmp_path / "straight" / "log.jsonl")
    assert [r["step"] for r in result.history] == [1, 2, 3, 4, 5, 6]
    for key, value in straight.parameters().items():
        np.testing.assert_array_equal(fresh.parameters()[key], value)


def test_resume_refuses_another_train_config_or_a_missing_run(tmp_path):
    data = tiny_dataset()
    train(FasterRCNN(tiny_config()), data, tmp_path, quick_config(iterations=4))
    with pytest.raises(ValueError, match="lr"):
        train(FasterRCNN(tiny_config()), data, tmp_path, quick_config(iterations=4, lr=0.5),
              resume=True)
    with pytest.raises(ValueError, match="Config"):
        train(FasterRCNN(tiny_config(rpn_channels=5)), data, tmp_path,
              quick_config(iterations=4), resume=True)
    with pytest.raises(FileNotFoundError, match="train_state.npz"):
        train(FasterRCNN(tiny_config()), data, tmp_path / "none", quick_config(), resume=True)


def test_nan_loss_stops_naming_loss_and_step_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    model = FasterRCNN(tiny_config())
    forward, calls, snapshots = model.forward_train, [0], {}

    def flaky_forward(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 5:
            raise FloatingPointError("loss roi_cls is nan")
        return forward(*args, **kwargs)
    monkeypatch.setattr(model, "forward_train", flaky_forward)

    def snapshot(info):
        snapshots[info.step] = {k: v.copy() for k, v in model.parameters().items()}
    with pytest.raises(TrainingDiverged, match=r"step 5 .*roi_cls.*step 4") as err:
        train(model, tiny_dataset(), tmp_path, quick_config(checkpoint_every=2),
              callback=snapshot)
    assert isinstance(err.value, FloatingPointError)
    state, _ = load_run(tmp_path, {"model": FasterRCNN(tiny_config())})
    assert state["step"] == 4
    saved = FasterRCNN.load(tmp_path / "model.npz")
    for key, value in saved.parameters().items():
        np.testing.assert_array_equal(value, snapshots[4][key])
    last = read_log(tmp_path / "log.jsonl")[-1]
    assert last["event"] == "diverged" and last["step"] == 5


def test_nan_parameter_is_caught_at_the_next_forward(tmp_path):
    model = FasterRCNN(tiny_config())

    def poison(info):
        if info.step == 3:
            model.parameters()["rpn.cls.bias"][...] = np.nan
    with pytest.raises(TrainingDiverged, match=r"step 4 .*rpn_cls.*step 3"):
        train(model, tiny_dataset(), tmp_path, quick_config(), callback=poison)


def test_a_diverged_update_is_not_checkpointed(tmp_path, monkeypatch):
    from minirpn.nn import SGD

    class PoisonedSGD(SGD):
        calls = 0

        def step(self):
            super().step()
            PoisonedSGD.calls += 1
            if PoisonedSGD.calls == 3:
                self.params["roi_head.cls_score.weight"][0, 0] = np.inf
    monkeypatch.setattr("minirpn.train.trainer.SGD", PoisonedSGD)
    with pytest.raises(TrainingDiverged,
                       match=r"step 3 .*roi_head.cls_score.weight.*not finite.*\(step 0\)"):
        train(FasterRCNN(tiny_config()), tiny_dataset(), tmp_path, quick_config())
    state, _ = load_run(tmp_path, {"model": FasterRCNN(tiny_config())})
    assert state["step"] == 0


def test_a_broken_checkpoint_is_never_written(tmp_path):
    model = FasterRCNN(tiny_config())
    state = {"step": 1}
    save_run(str(tmp_path), {"model": model}, {}, state)
    before = (tmp_path / "train_state.npz").read_bytes(), (tmp_path / "model.npz").read_bytes()
    model.parameters()["roi_head.fc6.weight"][0, 0] = np.inf
    with pytest.raises(TrainingDiverged, match="roi_head.fc6.weight"):
        save_run(str(tmp_path), {"model": model}, {}, {"step": 2})
    assert before == ((tmp_path / "train_state.npz").read_bytes(),
                      (tmp_path / "model.npz").read_bytes())


def test_time_budget_fixes_the_iteration_count(tmp_path, monkeypatch):
    # Pretend a step takes 1 s: a 10 s budget plans int(0.9 * (10 - setup)) = 8.
    monkeypatch.setattr("minirpn.train.trainer.estimate_step_seconds", lambda *a: 1.0)
    cfg = quick_config(iterations=None, minutes=10 / 60)
    result = train(FasterRCNN(tiny_config()), tiny_dataset(), tmp_path, cfg)
    assert result.planned_iterations == result.iterations == 8
    assert result.stop_reason == "completed"
    # The cap still applies when the budget would allow more.
    monkeypatch.setattr("minirpn.train.trainer.estimate_step_seconds", lambda *a: 1e-3)
    result = train(FasterRCNN(tiny_config()), tiny_dataset(), tmp_path / "capped",
                   quick_config(iterations=5, minutes=1.0))
    assert result.planned_iterations == 5


def test_resume_keeps_the_iteration_count_fixed_by_the_budget(tmp_path, monkeypatch):
    monkeypatch.setattr("minirpn.train.trainer.estimate_step_seconds", lambda *a: 1.0)
    cfg = quick_config(iterations=None, minutes=10 / 60)
    with pytest.raises(Crash):
        train(FasterRCNN(tiny_config()), tiny_dataset(), tmp_path, cfg, callback=crash_after(4))
    # now steps look 1000x faster: a fresh plan would be far longer
    monkeypatch.setattr("minirpn.train.trainer.estimate_step_seconds", lambda *a: 1e-3)
    result = train(FasterRCNN(tiny_config()), tiny_dataset(), tmp_path, cfg, resume=True)
    assert result.planned_iterations == result.iterations == 8


def test_time_budget_stops_the_run_and_saves(tmp_path, monkeypatch):
    import time
    monkeypatch.setattr("minirpn.train.trainer.estimate_step_seconds", lambda *a: 1e-3)
    result = train(FasterRCNN(tiny_config()), tiny_dataset(), tmp_path,
                   quick_config(iterations=50, minutes=0.8 / 60),
                   callback=lambda info: time.sleep(0.5))
    assert result.stop_reason == "time budget" and result.iterations == 2
    assert result.planned_iterations == 50
    state, _ = load_run(tmp_path, {"model": FasterRCNN(tiny_config())})
    assert state["step"] == 2 and state["iterations"] == 50
    assert read_log(tmp_path / "log.jsonl")[-1]["event"] == "stop"


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="model"):
        train("model", tiny_dataset(), tmp_path, quick_config())
    with pytest.raises(TypeError, match="train_config"):
        train(FasterRCNN(tiny_config()), tiny_dataset(), tmp_path, {"iterations": 3})
    with pytest.raises(ValueError, match="at least one image"):
        train(FasterRCNN(tiny_config()), [], tmp_path, quick_config())
    with pytest.raises(ValueError, match="class_names"):
        train(FasterRCNN(tiny_config()), tiny_dataset(), tmp_path, quick_config(),
              class_names=("a", "b", "c"))
    assert os.path.isdir(tmp_path)
