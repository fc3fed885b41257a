"""The 4-step alternating scheme (Ren et al. 2015, section 3.2)."""
import numpy as np
import pytest

from minirpn import FasterRCNN
from minirpn.train import TrainConfig, read_log, train
from minirpn.train.alternating import alternating_stages

from test_faster_rcnn import tiny_config
from test_train import Crash, crash_after, step_records, tiny_dataset

PARTS = ("backbone", "rpn", "roi_head")


def alt_config(**overrides):
    values = dict(iterations=8, batch_size=2, warmup_iterations=0, lr=0.02,
                  lr_steps=(), checkpoint_every=3, scheme="alternating")
    values.update(overrides)
    return TrainConfig(**values)


def snapshot(net):
    return {k: v.copy() for k, v in net.parameters().items()}


def changed(before, after):
    """The parts (backbone, rpn, roi_head) with any parameter changed."""
    return {part for part in PARTS
            if any(not np.array_equal(before[k], after[k]) for k in before
                   if k.startswith(part + "."))}


def test_each_step_trains_only_its_layers(tmp_path):
    a = FasterRCNN(tiny_config())
    snaps = {}

    def record(info):
        snaps[info.step] = {name: snapshot(net) for name, net in info.networks.items()}
    snaps[0] = {"a": snapshot(a)}
    result = train(a, tiny_dataset(), tmp_path, alt_config(), callback=record)
    b = result.model
    assert b is not a and b.config.seed == a.config.seed + 1
    # B is built inside train(); step 1 cannot touch it (A's optimizer only)
    snaps[0]["b"] = snaps[1]["b"]
    stages = [r["stage"] for r in result.history]
    assert stages == ["1-rpn"] * 2 + ["2-detector"] * 2 + ["3-rpn"] * 2 + ["4-detector"] * 2
    expected = {  # step -> (parts of A changed, parts of B changed)
        1: ({"backbone", "rpn"}, set()), 2: ({"backbone", "rpn"}, set()),
        3: (set(), {"backbone", "roi_head"}), 4: (set(), {"backbone", "roi_head"}),
        5: (set(), {"rpn"}), 6: (set(), {"rpn"}),
        7: (set(), {"roi_head"}), 8: (set(), {"roi_head"}),
    }
    for step, (in_a, in_b) in expected.items():
        assert changed(snaps[step - 1]["a"], snaps[step]["a"]) == in_a, step
        assert changed(snaps[step - 1]["b"], snaps[step]["b"]) == in_b, step
    # B's first network is its own: its conv layers never came from A
    assert not np.array_equal(snaps[8]["b"]["backbone.0.weight"],
                              snaps[8]["a"]["backbone.0.weight"])
    # the result is one plain network: unfrozen, saved, and it detects
    assert len(b.parameters(trainable_only=True)) == len(b.parameters())
    loaded = FasterRCNN.load(tmp_path / "model.npz")
    for key, value in b.parameters().items():
        np.testing.assert_array_equal(loaded.parameters()[key], value)
    images = [image for image, _ in tiny_dataset(2)]
    detections = b.detect(images, score_threshold=0.0)
    assert len(detections) == 2 and all(len(d["boxes"]) > 0 for d in detections)


def test_stage_setup_freezes_and_initialises():
    a, b = FasterRCNN(tiny_config()), FasterRCNN(tiny_config(seed=1))
    stages = alternating_stages(a, b, (1, 1, 1, 1), rpn_init="copy")
    trainable = []
    for stage in stages:
        stage.enter(True)
        trainable.append((stage.model is a,
                          {k.split(".")[0] for k in stage.model.parameters(trainable_only=True)}))
    assert trainable == [(True, {"backbone", "rpn"}), (False, {"backbone", "roi_head"}),
                         (False, {"rpn"}), (False, {"roi_head"})]
    for key, value in a.rpn.parameters().items():       # step 3 started from A's RPN
        np.testing.assert_array_equal(b.rpn.parameters()[key], value)
    b.rpn.parameters()["cls.bias"][...] += 1.0
    stages[2].enter(False)                               # resumed mid-step: no re-copy
    assert not np.array_equal(b.rpn.parameters()["cls.bias"], a.rpn.parameters()["cls.bias"])
    fresh_b = FasterRCNN(tiny_config(seed=1))
    before = snapshot(fresh_b.rpn)
    alternating_stages(a, fresh_b, (1,) * 4, rpn_init="fresh")[2].enter(True)
    for key, value in before.items():
        np.testing.assert_array_equal(fresh_b.rpn.parameters()[key], value)


def test_step_two_proposals_are_model_a_boxes_in_original_pixels():
    a = FasterRCNN(tiny_config())
    data = tiny_dataset(3)
    images = [image for image, _ in data]
    proposals = a.rpn_proposals(images, training=True)
    assert len(proposals) == 3
    for boxes, image in zip(proposals, images):
        H, W = image.shape[:2]
        assert boxes.ndim == 2 and boxes.shape[1] == 4
        assert 0 < len(boxes) <= a.config.rpn_post_nms_top_n_train
        assert np.all(boxes[:, 2] >= boxes[:, 0]) and np.all(boxes[:, 3] >= boxes[:, 1])
        assert boxes.min() >= 0 and np.all(boxes[:, [0, 2]] <= W + 1e-9)
        assert np.all(boxes[:, [1, 3]] <= H + 1e-9)
    again = a.rpn_proposals(images, training=True)                     # no state kept between calls
    for x, y in zip(proposals, again):
        np.testing.assert_array_equal(x, y)
    losses = FasterRCNN(tiny_config(seed=1)).forward_head(
        images, [{"boxes": t["boxes"][~t["difficult"]], "labels": t["labels"][~t["difficult"]]}
                 for _, t in data], np.random.default_rng(0), proposals=proposals)
    assert np.isfinite(losses["total"])


@pytest.mark.parametrize("checkpoint_every,crash", [(3, 4), (4, 5)])
def test_alternating_resume_is_bit_identical(tmp_path, checkpoint_every, crash):
    """(3, 4): resumed in the middle of step 2 of the scheme (momentum
    restored); (4, 5): resumed exactly where step 3 starts (B's RPN is
    initialised from A's then, once)."""
    data = tiny_dataset()
    cfg = alt_config(checkpoint_every=checkpoint_every)
    straight = train(FasterRCNN(tiny_config()), data, tmp_path / "straight", cfg)
    with pytest.raises(Crash):
        train(FasterRCNN(tiny_config()), data, tmp_path / "cut", cfg, callback=crash_after(crash))
    resumed = train(FasterRCNN(tiny_config()), data, tmp_path / "cut", cfg, resume=True)
    assert step_records(tmp_path / "cut" / "log.jsonl") == \
        step_records(tmp_path / "straight" / "log.jsonl")
    for key, value in straight.model.parameters().items():
        np.testing.assert_array_equal(resumed.model.parameters()[key], value)


def test_alternating_evaluates_only_once_b_is_a_detector(tmp_path):
    data = tiny_dataset()
    result = train(FasterRCNN(tiny_config()), data, tmp_path, alt_config(eval_every=1),
                   val_dataset=data[:2])
    evals = [r for r in read_log(tmp_path / "log.jsonl") if r["event"] == "eval"]
    assert [r["step"] for r in evals] == [5, 6, 7, 8]
    assert result.metrics["iterations"] == 8 and 0 <= result.metrics["map"] <= 1


def test_alternating_needs_a_step_per_stage(tmp_path):
    with pytest.raises(ValueError, match="every stage needs at least one"):
        train(FasterRCNN(tiny_config()), tiny_dataset(), tmp_path, alt_config(iterations=3))
