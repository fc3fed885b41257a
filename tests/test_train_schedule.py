"""Learning-rate schedule, TrainConfig checks, stage split, batch stream."""
import numpy as np
import pytest

from minirpn.data import make_target
from minirpn.train import TrainConfig, learning_rate, milestones
from minirpn.train.batches import BatchStream
from minirpn.train.stages import locate, split_lengths


def test_warmup_is_linear_from_lr_over_w_to_lr():
    rates = [learning_rate(s, 0.1, 100, warmup_iterations=4) for s in range(6)]
    assert rates == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1], abs=1e-15)


def test_step_decay_at_fractions_and_at_absolute_iterations():
    # iterations 20, steps at 50% and 75%: milestones 10 and 15
    lr = [learning_rate(s, 0.1, 20, 0, (0.5, 0.75), 0.1) for s in range(20)]
    assert lr[:10] == [0.1] * 10
    assert lr[10:15] == pytest.approx([0.01] * 5, abs=1e-15)
    assert lr[15:] == pytest.approx([0.001] * 5, abs=1e-15)
    # an int is a step index, independent of the run length
    assert learning_rate(2, 1.0, 1000, 0, (3,), 0.5) == 1.0
    assert learning_rate(3, 1.0, 1000, 0, (3,), 0.5) == 0.5


def test_warmup_and_decay_multiply():
    assert learning_rate(1, 0.1, 10, 4, (1,), 0.1) == pytest.approx(0.1 * 2 / 4 * 0.1)


def test_no_warmup_for_zero_or_one():
    assert learning_rate(0, 0.3, 10, 0) == learning_rate(0, 0.3, 10, 1) == 0.3


def test_milestones_round_fractions_and_sort():
    assert milestones((0.75, 2, 0.5), 10) == [2, 5, 8]   # 7.5 rounds to 8
    assert milestones((), 10) == []


@pytest.mark.parametrize("bad", [1.5, 0.0, -1, 0, True, "0.5", 1.0])
def test_bad_milestone_is_named(bad):
    with pytest.raises(ValueError, match=r"lr_steps\[0\]"):
        milestones((bad,), 10)


@pytest.mark.parametrize("field,value", [
    ("iterations", 0), ("iterations", None), ("batch_size", 0), ("lr", -1.0),
    ("momentum", 1.5), ("scheme", "mixed"), ("stage_fractions", (0.5, 0.5)),
    ("lr_steps", (2.5,)), ("minutes", 0), ("rpn_init", "a"), ("warmup_iterations", -1),
])
def test_train_config_names_the_bad_field(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_train_config_round_trips_through_a_dict():
    cfg = TrainConfig(iterations=None, minutes=2.5, lr_steps=[0.5, 7], scheme="alternating")
    again = TrainConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.lr_steps == (0.5, 7)
    with pytest.raises(ValueError, match="unknown TrainConfig field"):
        TrainConfig.from_dict({"iters": 3})


def test_split_lengths_add_up_and_need_a_step_per_stage():
    assert split_lengths(10, (0.25,) * 4) == [3, 2, 3, 2]
    assert split_lengths(7, (1.0,)) == [7]
    assert sum(split_lengths(1001, (1, 2, 3, 4))) == 1001
    with pytest.raises(ValueError, match="at least one"):
        split_lengths(3, (0.25,) * 4)


def test_locate():
    lengths = [3, 2, 3, 2]
    assert [locate(lengths, s) for s in (0, 2, 3, 4, 5, 9)] == \
        [(0, 0), (0, 2), (1, 0), (1, 1), (2, 0), (3, 1)]
    with pytest.raises(ValueError, match="past the end"):
        locate(lengths, 10)


def _dataset(n):
    """n 10x20 images; image i has one box at x = i and one difficult box."""
    out = []
    for i in range(n):
        image = np.full((10, 20, 3), i, np.uint8)
        out.append((image, make_target([[i, 0, i + 2, 5], [0, 0, 1, 1]], [1, 2],
                                       difficult=[False, True], image_id=i)))
    return out


def test_batches_are_shuffled_epochs_of_fixed_size():
    stream = BatchStream(_dataset(5), 2, np.random.default_rng(0), flip=False)
    seen = [stream.next_indices() for _ in range(5)]       # 10 images = 2 epochs
    assert all(len(b) == 2 for b in seen)
    flat = sum(seen, [])
    assert sorted(flat[:5]) == sorted(flat[5:]) == list(range(5))
    assert stream.epoch == 2


def test_stream_state_continues_exactly():
    data = _dataset(5)
    a = BatchStream(data, 3, np.random.default_rng(1))
    for _ in range(2):
        a.next_batch()
    state, rng_state = a.state(), a.rng.bit_generator.state
    expected = [a.next_batch() for _ in range(3)]
    rng = np.random.default_rng()
    rng.bit_generator.state = rng_state
    b = BatchStream(data, 3, rng)
    b.load_state(state)
    for (ims_a, ts_a), (ims_b, ts_b) in zip(expected, [b.next_batch() for _ in range(3)]):
        for x, y in zip(ims_a + [t["boxes"] for t in ts_a], ims_b + [t["boxes"] for t in ts_b]):
            np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="permutation of 5"):
        BatchStream(_dataset(4), 3, rng).load_state(state)


def test_batches_drop_difficult_and_flip_boxes_with_images():
    stream = BatchStream(_dataset(4), 4, np.random.default_rng(3), flip=True)
    flips = 0
    for _ in range(5):
        images, targets = stream.next_batch()
        for image, target in zip(images, targets):
            i = int(image[0, 0, 0])
            assert target["labels"].tolist() == [1]       # the difficult box is gone
            box = target["boxes"][0].tolist()
            assert box in ([i, 0, i + 2, 5], [18 - i, 0, 20 - i, 5])
            flips += box != [i, 0, i + 2, 5]
    assert 0 < flips < 20
