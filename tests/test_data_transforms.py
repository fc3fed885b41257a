"""Horizontal flips in continuous coordinates."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minirpn.data import (Compose, RandomHorizontalFlip, hflip, make_target,
                          render_shapes)


def test_hand_worked_flip():
    image = np.arange(2 * 10 * 3, dtype=np.uint8).reshape(2, 10, 3)
    target = make_target([[1, 2, 4, 5], [0, 0, 10, 2]], [1, 2])
    out, flipped = hflip(image, target)
    # x -> W - x: [1, 4] -> [10 - 4, 10 - 1] = [6, 9]; the full width stays.
    np.testing.assert_array_equal(flipped["boxes"],
                                  [[6, 2, 9, 5], [0, 0, 10, 2]])
    np.testing.assert_array_equal(out[:, 0], image[:, 9])
    assert out.flags.c_contiguous and out.dtype == np.uint8
    assert flipped["labels"] is target["labels"]
    np.testing.assert_array_equal(target["boxes"][0], [1, 2, 4, 5])  # intact


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 64), st.lists(
    st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1),
              st.floats(0, 1)), max_size=6),
       st.sampled_from([np.float32, np.float64]))
def test_flip_twice_is_identity_and_keeps_order(width, unit, dtype):
    boxes = np.array([[min(a, b) * width, min(c, d) * 5,
                       max(a, b) * width, max(c, d) * 5]
                      for a, b, c, d in unit], dtype=dtype).reshape(-1, 4)
    image = np.random.default_rng(0).integers(0, 255, (5, width, 3),
                                              dtype=np.uint8)
    target = {"boxes": boxes, "labels": np.ones(len(boxes), np.int64)}
    once_img, once = hflip(image, target)
    assert once["boxes"].dtype == dtype
    assert (once["boxes"][:, 2] >= once["boxes"][:, 0]).all()
    assert (once["boxes"][:, 0] >= 0).all() and \
        (once["boxes"][:, 2] <= width).all()
    twice_img, twice = hflip(once_img, once)
    np.testing.assert_array_equal(twice_img, image)
    np.testing.assert_allclose(twice["boxes"], boxes, atol=1e-5 * width)


def test_flipped_box_is_the_box_of_the_flipped_mask():
    image, target, masks = render_shapes(np.random.default_rng([1, 2]))
    _, flipped = hflip(image, target)
    for box, mask in zip(flipped["boxes"], masks[:, :, ::-1]):
        cols = np.flatnonzero(mask.any(axis=0))
        assert box[0] == cols[0] and box[2] == cols[-1] + 1


def test_random_flip_probability_and_seed():
    image = np.zeros((4, 6, 3), np.uint8)
    target = make_target([[0, 0, 1, 1]], [1])
    never = RandomHorizontalFlip(p=0.0)
    assert never(image, target, np.random.default_rng(0))[1] is target
    always = RandomHorizontalFlip(p=1.0)
    np.testing.assert_array_equal(
        always(image, target, np.random.default_rng(0))[1]["boxes"],
        [[5, 0, 6, 1]])
    half = RandomHorizontalFlip()

    def flips(seed):
        rng = np.random.default_rng(seed)
        return [half(image, target, rng)[1]["boxes"][0, 0] == 5
                for _ in range(200)]
    assert flips(3) == flips(3)
    assert 60 < sum(flips(3)) < 140
    with pytest.raises(ValueError, match="p must lie"):
        RandomHorizontalFlip(p=1.5)


def test_compose_passes_the_same_rng():
    image = np.zeros((4, 6, 3), np.uint8)
    target = make_target([[0, 0, 1, 1]], [1])
    both = Compose([RandomHorizontalFlip(1.0), RandomHorizontalFlip(1.0)])
    np.testing.assert_array_equal(both(image, target)[1]["boxes"],
                                  target["boxes"])


def test_bad_inputs():
    with pytest.raises(ValueError, match="image"):
        hflip(np.zeros((4, 6), np.uint8), make_target([], []))
    with pytest.raises(ValueError, match="boxes"):
        hflip(np.zeros((4, 6, 3), np.uint8), {"boxes": np.zeros((2, 3))})
