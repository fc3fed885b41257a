"""Training never loses work: an earlier run is kept unless replaced on
request, Ctrl-C and errors checkpoint the last finished step (and the resumed
run is still bit-identical), orphaned temporary files go."""
import os
import signal

import numpy as np
import pytest

from minirpn import FasterRCNN
from minirpn.nn import SGD
from minirpn.train import TrainingInterrupted, read_log, train
from minirpn.train.state import load_run

from test_faster_rcnn import tiny_config
from test_train import quick_config, step_records, tiny_dataset

RUN = ("model.npz", "train_state.npz", "log.jsonl")


def snapshot(folder, names=RUN):
    return {n: (folder / n).read_bytes() for n in names if (folder / n).exists()}


def assert_same_parameters(a, b):
    assert a.keys() == b.keys()
    for key, value in a.items():
        np.testing.assert_array_equal(b[key], value, err_msg=key)


def assert_consistent_checkpoint(folder, step):
    """train_state.npz is at ``step`` and model.npz holds the same weights."""
    net = FasterRCNN(tiny_config())
    state, _ = load_run(folder, {"model": net})
    assert state["step"] == step
    assert_same_parameters(net.parameters(), FasterRCNN.load(folder / "model.npz").parameters())


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The parameters and step records of an uninterrupted 6-step run."""
    folder = tmp_path_factory.mktemp("straight")
    model = FasterRCNN(tiny_config())
    train(model, tiny_dataset(), folder, quick_config(checkpoint_every=0), progress=False)
    return model.parameters(), step_records(folder / "log.jsonl")


def resume_and_compare(folder, straight, data=None):
    model = FasterRCNN(tiny_config())
    result = train(model, data or tiny_dataset(), folder, quick_config(checkpoint_every=0),
                   resume=True, progress=False)
    assert result.iterations == 6
    assert_same_parameters(straight[0], model.parameters())
    assert step_records(folder / "log.jsonl") == straight[1]


def test_an_earlier_run_is_refused_without_resume_or_overwrite(tmp_path):
    train(FasterRCNN(tiny_config()), tiny_dataset(), tmp_path, quick_config(iterations=2))
    before = snapshot(tmp_path)
    with pytest.raises(FileExistsError, match=r"already holds a training run \(model.npz, "
                       r"train_state.npz, log.jsonl\).*overwrite=True"):
        train(FasterRCNN(tiny_config()), tiny_dataset(), tmp_path, quick_config(iterations=2))
    assert snapshot(tmp_path) == before
    with pytest.raises(ValueError, match="at most one"):
        train(FasterRCNN(tiny_config()), tiny_dataset(), tmp_path, quick_config(),
              resume=True, overwrite=True)
    # another folder's files are not a run: only ours count
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    train(FasterRCNN(tiny_config()), tiny_dataset(), tmp_path / "other",
          quick_config(iterations=1))
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


class Unreadable(list):
    """A dataset whose ``fail_at``-th read (1-based) raises, as a corrupt PNG
    found mid-run does."""

    def __init__(self, items, fail_at=1):
        super().__init__(items)
        self.fail_at, self.reads = fail_at, 0

    def __getitem__(self, i):
        self.reads += 1
        if self.reads == self.fail_at:
            raise ValueError(f"images/{i}.png: cannot identify image file")
        return super().__getitem__(i)


def test_overwrite_keeps_the_earlier_run_until_the_new_checkpoint(tmp_path, monkeypatch):
    train(FasterRCNN(tiny_config()), tiny_dataset(), tmp_path, quick_config(iterations=2),
          val_dataset=tiny_dataset()[:1])
    before = snapshot(tmp_path, RUN + ("metrics.json",))
    # fails before its step-0 checkpoint (the time-budget probe reads a bad image)
    def probe(stages, dataset, *args):
        return dataset[0]
    monkeypatch.setattr("minirpn.train.trainer.estimate_step_seconds", probe)
    with pytest.raises(ValueError, match="cannot identify"):
        train(FasterRCNN(tiny_config()), Unreadable(tiny_dataset()), tmp_path,
              quick_config(iterations=None, minutes=1.0), overwrite=True)
    assert snapshot(tmp_path, RUN + ("metrics.json",)) == before
    monkeypatch.undo()
    result = train(FasterRCNN(tiny_config()), tiny_dataset(), tmp_path,
                   quick_config(iterations=3), overwrite=True)
    assert result.iterations == 3 and not (tmp_path / "metrics.json").exists()
    assert [r["step"] for r in step_records(tmp_path / "log.jsonl")] == [1, 2, 3]
    assert_consistent_checkpoint(tmp_path, 3)


def test_ctrl_c_checkpoints_the_last_step_and_resume_is_bit_identical(tmp_path, straight):
    def ctrl_c(info):
        if info.step == 4:
            raise KeyboardInterrupt
    with pytest.raises(TrainingInterrupted, match="after step 4 of 6.*checkpoint of step 4") \
            as caught:
        train(FasterRCNN(tiny_config()), tiny_dataset(), tmp_path,
              quick_config(checkpoint_every=0), callback=ctrl_c, progress=False)
    assert isinstance(caught.value, KeyboardInterrupt) and caught.value.step == 4
    assert_consistent_checkpoint(tmp_path, 4)
    assert read_log(tmp_path / "log.jsonl")[-1]["event"] == "stopped"
    resume_and_compare(tmp_path, straight)


def test_sigint_during_the_update_takes_effect_after_it(tmp_path, straight, monkeypatch):
    """A real SIGINT arriving inside SGD.step: the update finishes, its step
    is checkpointed, nothing is half-applied."""
    step, calls = SGD.step, [0]

    def step_with_sigint(self):
        calls[0] += 1
        if calls[0] == 3:
            os.kill(os.getpid(), signal.SIGINT)   # the handler runs right here
        step(self)
    monkeypatch.setattr(SGD, "step", step_with_sigint)
    with pytest.raises(TrainingInterrupted) as caught:
        train(FasterRCNN(tiny_config()), tiny_dataset(), tmp_path,
              quick_config(checkpoint_every=0), progress=False)
    assert caught.value.step == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    monkeypatch.undo()
    assert_consistent_checkpoint(tmp_path, 3)
    resume_and_compare(tmp_path, straight)


def test_an_error_mid_run_checkpoints_the_last_finished_step(tmp_path, straight):
    """The 8th image read, the second of step 4's batch, fails: the flip draw
    of the first and the data order are rewound, so the resumed run (image
    fixed) is bit-identical."""
    data = Unreadable(tiny_dataset(), fail_at=8)
    with pytest.raises(ValueError, match="cannot identify") as caught:
        train(FasterRCNN(tiny_config()), data, tmp_path, quick_config(checkpoint_every=0),
              progress=False)
    assert [r["step"] for r in step_records(tmp_path / "log.jsonl")] == [1, 2, 3]
    assert any("checkpoint of step 3" in note for note in caught.value.__notes__)
    assert_consistent_checkpoint(tmp_path, 3)
    resume_and_compare(tmp_path, straight)


def test_orphaned_temporaries_are_removed_at_the_next_start(tmp_path):
    train(FasterRCNN(tiny_config()), tiny_dataset(), tmp_path, quick_config(iterations=2))
    orphan = tmp_path / ".tmp-ab3_9xyz.npz"     # a kill -9 during a checkpoint write
    keep = [tmp_path / ".tmp-notours.npz", tmp_path / "x.tmp-ab3_9xyz.npz",
            tmp_path / ".tmp-ab3_9xyz.npz.bak"]
    for path in [orphan, *keep]:
        path.write_bytes(b"partial")
    train(FasterRCNN(tiny_config()), tiny_dataset(), tmp_path, quick_config(iterations=2),
          resume=True)
    assert not orphan.exists() and all(path.exists() for path in keep)
    orphan.write_bytes(b"partial")
    train(FasterRCNN(tiny_config()), tiny_dataset(), tmp_path, quick_config(iterations=1),
          overwrite=True)
    assert not orphan.exists()


def test_lr_zero_is_honoured(tmp_path):
    model = FasterRCNN(tiny_config())
    before = {k: v.copy() for k, v in model.parameters().items()}
    result = train(model, tiny_dataset(), tmp_path, quick_config(iterations=2, lr=0.0))
    assert result.iterations == 2 and {r["lr"] for r in result.history} == {0.0}
    assert_same_parameters(before, model.parameters())
