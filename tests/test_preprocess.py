import numpy as np
import pytest

from minirpn import Config
from minirpn.preprocess import check_targets, compute_scale, preprocess


@pytest.mark.parametrize("hw,scale", [
    ((375, 500), 600 / 375),       # shorter side to 600
    ((300, 1000), 1.0),            # 600/300 would make the long side 2000 > 1000
    ((600, 800), 1.0),
    ((1200, 1600), 0.5),
])
def test_scale_shorter_side_600_longer_at_most_1000(hw, scale):
    assert compute_scale(*hw, 600, 1000) == pytest.approx(scale)


def test_batch_is_padded_to_a_multiple_of_the_stride():
    cfg = Config.toy(2, target_size=100, max_size=200)
    images = [np.zeros((50, 70, 3), np.uint8), np.zeros((60, 60, 3), np.uint8)]
    batch = preprocess(images, cfg)
    N, C, Hp, Wp = batch.images.shape
    assert (N, C) == (2, 3) and Hp % cfg.stride == 0 and Wp % cfg.stride == 0
    assert batch.image_sizes == [(100, 140), (100, 100)]
    assert Hp >= 100 and Wp >= 140
    assert batch.images.dtype == np.float32
    # padding is zero (the mean colour after normalisation)
    assert np.all(batch.images[1, :, :, 100:] == 0)


def test_mean_is_subtracted_per_channel():
    cfg = Config.toy(1, target_size=16, max_size=16, pixel_std=(1, 1, 1))
    image = np.full((16, 16, 3), 100, np.uint8)
    out = preprocess([image], cfg).images[0]
    np.testing.assert_allclose(out[:, 0, 0], 100 - np.asarray(cfg.pixel_mean), rtol=1e-6)


def test_boxes_map_to_network_and_back():
    cfg = Config.toy(1, target_size=200, max_size=400)
    batch = preprocess([np.zeros((100, 150, 3), np.uint8)], cfg)
    boxes = np.array([[10.0, 20.0, 50.0, 80.0]])
    net = batch.to_network(0, boxes)
    np.testing.assert_allclose(net, boxes * 2)
    np.testing.assert_allclose(batch.to_original(0, net), boxes)


def test_float64_config_gives_float64_images():
    cfg = Config.toy(1, dtype="float64")
    assert preprocess([np.zeros((40, 40, 3))], cfg).images.dtype == np.float64


@pytest.mark.parametrize("image,match", [
    (np.zeros((10, 10, 4)), r"images\[0\] must have shape"),
    (np.zeros((0, 10, 3)), r"images\[0\] is empty"),
    (np.zeros((10, 10, 3), dtype=bool), r"images\[0\] must be numeric"),
    (np.full((4, 4, 3), np.nan), "NaN"),
])
def test_bad_images_are_named(image, match):
    with pytest.raises((ValueError, TypeError), match=match):
        preprocess([image], Config.toy(1))


@pytest.mark.parametrize("target,match", [
    ({"boxes": [[0, 0, 5, 5]], "labels": [3]}, "labels must be integers in 1..2"),
    ({"boxes": [[0, 0, 5, 5]], "labels": [0]}, r"targets\[0\]\['labels'\]\[0\] is 0"),
    ({"boxes": [[5, 0, 5, 5]], "labels": [1]}, "zero or negative width"),
    ({"boxes": [[0, 0, 25, 5]], "labels": [1]}, "outside the 20x10 image"),
    ({"boxes": [[0, 0, 5, 5]], "labels": [1, 2]}, "1 boxes but 2 labels"),
    ({"boxes": [[0, 0, 5]], "labels": [1]}, r"shape \(K, 4\)"),
])
def test_bad_targets_name_the_image_and_box(target, match):
    with pytest.raises(ValueError, match=match):
        check_targets([target], [np.zeros((10, 20, 3))], num_classes=2)


def test_no_boxes_is_valid_and_target_count_is_checked():
    images = [np.zeros((10, 20, 3))]
    out = check_targets([{"boxes": [], "labels": []}], images, 2)
    assert out[0]["boxes"].shape == (0, 4)
    with pytest.raises(ValueError, match="one dict per image"):
        check_targets([], images, 2)
