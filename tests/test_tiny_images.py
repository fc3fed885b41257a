"""Degenerate sizes: images smaller than one stride and batches with zero
RoIs run through detect, forward_train, backward and step_through."""
import numpy as np
import pytest

from minirpn import Config, FasterRCNN
from minirpn.nn import Flatten


def small_config(**overrides):
    values = dict(target_size=32, max_size=48, backbone_channels=(4, "M", 6),
                  anchor_scales=(4, 8), rpn_channels=6, roi_output_size=2,
                  head_hidden=8)
    values.update(overrides)
    return Config(num_classes=2, **values)


def no_objects():
    return {"boxes": np.zeros((0, 4)), "labels": np.zeros(0, np.int64)}


def test_flatten_keeps_the_width_of_zero_rows():
    layer = Flatten()
    y = layer(np.zeros((0, 3, 2, 2), np.float32))
    assert y.shape == (0, 12)
    assert layer.backward(y).shape == (0, 3, 2, 2)


@pytest.mark.parametrize("crop_method", ["roi_pool", "roi_align", "crop_pool"])
@pytest.mark.parametrize("shape", [(1, 1, 3), (8, 8, 3), (1, 200, 3)])
def test_tiny_images_detect_and_train(crop_method, shape):
    # target_size 32 and max_size 48: a 1x200 image becomes 1 pixel tall,
    # less than one stride, and a 1x1 image yields no proposals of the
    # minimum size, so the RoI head sees zero rows.
    model = FasterRCNN(small_config(crop_method=crop_method, rpn_min_size=64.0))
    image = np.full(shape, 128, np.uint8)
    det = model.detect([image])[0]
    assert det["boxes"].shape == (0, 4) and det["scores"].shape == (0,)
    losses = model.forward_train([image], [no_objects()],
                                 rng=np.random.default_rng(0))
    assert model.roi_head.last_crops.shape[0] == 0
    assert all(np.isfinite(v) for v in losses.values())
    assert losses["roi_cls"] == 0.0 and not np.signbit(losses["roi_cls"])
    model.backward()
    grads = model.gradients()
    assert all(np.isfinite(g).all() for g in grads.values())
    assert not grads["roi_head.fc6.weight"].any()  # no RoI, no head gradient


def test_zero_rois_beside_an_image_with_objects():
    """Only one image of the batch has RoIs: the head still trains."""
    model = FasterRCNN(small_config())
    images = [np.full((1, 1, 3), 90, np.uint8), np.full((32, 32, 3), 90, np.uint8)]
    targets = [no_objects(), {"boxes": np.array([[4., 4., 20., 20.]]),
                              "labels": np.array([1])}]
    losses = model.forward_train(images, targets, rng=np.random.default_rng(0))
    model.backward()
    assert np.isfinite(losses["total"])
    assert np.abs(model.gradients()["roi_head.cls_score.weight"]).sum() > 0


def test_step_through_tiny_image():
    model = FasterRCNN(small_config(rpn_min_size=64.0))
    trace = model.step_through(np.zeros((2, 2, 3), np.uint8), no_objects())
    assert trace["roi_features"]["crops"].shape[0] == 0
    assert trace["detections"]["boxes"].shape == (0, 4)
    assert np.isfinite(trace["losses"]["total"])
