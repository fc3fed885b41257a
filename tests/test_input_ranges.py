"""Input that would silently change the results is refused: pixel values
off the 0..255 scale (issue: [0, 1] floats, uint16, scaled floats) and
labels that are not integers (True and "1" used to become class 1)."""
import re

import numpy as np
import pytest

from minirpn import Config, FasterRCNN
from minirpn.preprocess import check_images, check_targets, preprocess

from scenes import make_scene

IMAGE = make_scene(np.random.default_rng(0), 24, 32, [[4, 4, 16, 20]], [1])


@pytest.mark.parametrize("image", [
    IMAGE,                                   # uint8
    IMAGE.astype(np.float32),                # float on 0..255
    IMAGE.astype(np.int64),                  # ints on 0..255
    np.zeros((8, 8, 3), np.float32),         # black: the same in any scale
    np.clip(IMAGE * 1.2 - 20, -20, 290).astype(np.float64),  # jitter overshoot
])
def test_images_on_the_0_255_scale_pass(image):
    assert check_images([image])[0].shape == image.shape


@pytest.mark.parametrize("image,match", [
    (IMAGE.astype(np.float32) / 255, r"images\[0\] looks like a float image in \[0, 1\].*image \* 255"),
    (IMAGE.astype(np.uint16) * 257, r"images\[0\] must be uint8 or float in 0\.\.255.*uint16.*/ 257"),
    (IMAGE.astype(np.float32) * 10, r"images\[0\] must hold pixel values in 0\.\.255, got dtype float32 with values in \[400, 2300\]"),
    (IMAGE.astype(np.float32) - 124.0, r"images\[0\] must hold pixel values in 0\.\.255"),
    (IMAGE.astype(np.int32) * 4, r"images\[0\] must hold pixel values in 0\.\.255.*as uint8"),
])
def test_images_off_the_scale_are_refused(image, match):
    with pytest.raises(ValueError, match=match):
        check_images([image])


def test_every_entry_point_checks_the_range():
    model = FasterRCNN(Config(num_classes=2, target_size=32, max_size=48,
                              backbone_channels=(4, "M", 6), rpn_channels=6,
                              roi_output_size=2, head_hidden=8))
    unit = IMAGE.astype(np.float32) / 255
    target = {"boxes": [[4, 4, 16, 20]], "labels": [1]}
    for call in (lambda: model.detect([IMAGE, unit]),
                 lambda: model.forward_train([IMAGE, unit], [target, target]),
                 lambda: preprocess([IMAGE, unit], model.config)):
        with pytest.raises(ValueError, match=r"images\[1\] looks like"):
            call()
    with pytest.raises(ValueError, match=r"images\[0\] looks like"):
        model.step_through(unit, target)


def test_the_range_check_costs_little_beside_preprocessing():
    import time
    image = np.random.default_rng(0).uniform(0, 255, (600, 800, 3)).astype(np.float32)
    cfg = Config.toy(1)
    t0 = time.perf_counter()
    for _ in range(3):
        check_images([image])
    check = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(3):
        preprocess([image], cfg)
    whole = time.perf_counter() - t0
    assert check < 0.5 * whole  # the check is inside ``whole`` too


def _target(labels):
    return {"boxes": [[0, 0, 5, 5]] * (len(labels) if isinstance(labels, list) else 1),
            "labels": labels}


@pytest.mark.parametrize("labels,error,match", [
    ([True], TypeError, "dtype bool"),
    (["1"], TypeError, "dtype <U1"),
    (["cat"], TypeError, "dtype <U3: \\['cat'\\]"),
    (None, TypeError, "got None"),
    ([1.5], ValueError, "got 1.5 at position 0"),
    ([np.nan], ValueError, "got nan"),
    ([1, None], TypeError, "dtype object"),
])
def test_labels_must_be_integers(labels, error, match):
    with pytest.raises(error, match=re.escape("targets[0]['labels'] must be "
                                              "integer class labels in 1..2")):
        check_targets([_target(labels)], [np.zeros((10, 20, 3))], 2)
    with pytest.raises(error, match=match):
        check_targets([_target(labels)], [np.zeros((10, 20, 3))], 2)


def test_integral_labels_of_any_numeric_dtype_pass():
    for labels in ([1, 2], np.array([1, 2], np.uint8), np.array([1.0, 2.0])):
        out = check_targets([{"boxes": [[0, 0, 5, 5], [1, 1, 4, 4]], "labels": labels}],
                            [np.zeros((10, 20, 3))], 2)
        assert out[0]["labels"].dtype == np.int64
        assert out[0]["labels"].tolist() == [1, 2]
    out = check_targets([{"boxes": [], "labels": []}], [np.zeros((10, 20, 3))], 2)
    assert out[0]["labels"].dtype == np.int64 and out[0]["labels"].shape == (0,)
