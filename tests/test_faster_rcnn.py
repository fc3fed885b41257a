import numpy as np
import pytest

from minirpn import Config, FasterRCNN
from minirpn.nn import SGD
from minirpn.nn.gradcheck import gradcheck
from minirpn.ops import box_iou

from scenes import make_scene, toy_scenes


def tiny_config(**overrides):
    """A float64 detector small enough for a whole-model gradient check."""
    values = dict(target_size=32, max_size=48, pixel_std=(50.0, 50.0, 50.0),
                  backbone_channels=(4, "M", 6), anchor_scales=(4, 8),
                  rpn_channels=6, rpn_batch_size=32,
                  rpn_pre_nms_top_n_train=300, rpn_post_nms_top_n_train=40,
                  rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=40,
                  rpn_min_size=1.0, roi_batch_size=16, roi_output_size=2,
                  head_hidden=8, head_dropout=0.25, dtype="float64")
    values.update(overrides)
    return Config(num_classes=2, **values)


def tiny_batch():
    rng = np.random.default_rng(0)
    images = [make_scene(rng, 32, 32, [[4, 4, 16, 20], [18, 10, 30, 30]], [1, 2]),
              make_scene(rng, 28, 36, [[6, 2, 20, 14]], [2])]
    targets = [{"boxes": np.array([[4, 4, 16, 20], [18, 10, 30, 30]], float), "labels": np.array([1, 2])},
               {"boxes": np.array([[6, 2, 20, 14]], float), "labels": np.array([2])}]
    return images, targets


def freeze_proposals(model):
    """Make the model reuse the proposals of its first call.

    Approximate joint training (paper section 3.2) treats proposals as
    constants, so the hand-written gradient leaves out how the RoI
    coordinates (and their regression targets) move with the RPN's deltas.
    Finite differences would see that path; freezing the proposals removes
    it, so both compute the same derivative.
    """
    stage, frozen = model.proposals, []

    def frozen_proposals(*args, **kwargs):
        if not frozen:
            frozen.append(stage(*args, **kwargs))
        return frozen[0]
    model.proposals = frozen_proposals


@pytest.mark.parametrize("crop_method", ["roi_pool", "roi_align", "crop_pool"])
def test_whole_model_gradient_check(crop_method):
    """Perturb a few entries of every parameter array; compare the change in
    ``total`` with ``gradients()``."""
    model = FasterRCNN(tiny_config(crop_method=crop_method))
    freeze_proposals(model)
    # Zero biases put ReLUs exactly on their kink wherever the input is zero
    # (the padding, dead units), where a central difference reads 1/2.
    rng = np.random.default_rng(2)
    for name, value in model.parameters().items():
        if name.endswith("bias"):
            value[...] = rng.normal(0, 0.05, size=value.shape)
    images, targets = tiny_batch()

    def total(**_):
        return model.forward_train(images, targets, rng=np.random.default_rng(5))["total"]

    losses = model.forward_train(images, targets, rng=np.random.default_rng(5))
    assert all(losses[k] > 0 for k in ("rpn_cls", "rpn_box", "roi_cls", "roi_box"))
    model.zero_grad()
    model.backward()
    grads = {k: v.copy() for k, v in model.gradients().items()}
    params = model.parameters()
    assert set(grads) == set(params) and len(params) == 2 * (2 + 3 + 4)
    # 1e-5, where each layer's own check holds 1e-6: the loss sums thousands
    # of float64 terms, and its round-off over the 1e-6 step is ~1e-10, which
    # is 1e-6 of a gradient entry of 1e-4 (fc6 has such entries); a larger
    # step would instead carry a ReLU across its kink.
    report = gradcheck(total, params, grads, max_probes=4, tolerance=1e-5,
                       rng=np.random.default_rng(1))
    assert report.passed, report


def test_same_seed_gives_identical_losses_and_batches_of_two_work():
    model = FasterRCNN(tiny_config())
    images, targets = tiny_batch()
    a = model.forward_train(images, targets, rng=np.random.default_rng(3))
    b = model.forward_train(images, targets, rng=np.random.default_rng(3))
    assert a == b
    assert set(a) == {"rpn_cls", "rpn_box", "roi_cls", "roi_box", "total"}
    assert a["total"] == pytest.approx(sum(a[k] for k in ("rpn_cls", "rpn_box", "roi_cls", "roi_box")))


def test_image_without_objects_is_valid():
    model = FasterRCNN(tiny_config())
    images, _ = tiny_batch()
    losses = model.forward_train(images[:1], [{"boxes": np.zeros((0, 4)), "labels": np.zeros(0, int)}])
    assert losses["rpn_box"] == 0.0 and losses["roi_box"] == 0.0
    assert np.isfinite(losses["total"])
    model.backward()


def test_nan_loss_raises_before_any_gradient():
    model = FasterRCNN(tiny_config())
    images, targets = tiny_batch()
    model.parameters()["roi_head.cls_score.bias"][...] = np.nan
    with pytest.raises(FloatingPointError, match="roi_cls"):
        model.forward_train(images, targets)
    with pytest.raises(RuntimeError, match="forward_train"):
        model.backward()
    model.parameters()["rpn.cls.bias"][...] = np.inf
    with pytest.raises(FloatingPointError, match="rpn_cls"):
        model.forward_train(images, targets)


@pytest.mark.parametrize("images,targets,match", [
    ([np.zeros((8, 8))[None]], [{"boxes": [], "labels": []}], r"images\[0\]"),
    ([np.zeros((16, 16, 3))], [{"boxes": [[0, 0, 4, 4]], "labels": [3]}], r"targets\[0\]\['labels'\]\[0\] is 3"),
    ([np.zeros((16, 16, 3))], [{"boxes": [[0, 0, 40, 4]], "labels": [1]}], "outside"),
    ([np.zeros((16, 16, 3))], [], "one dict per image"),
])
def test_bad_input_is_named(images, targets, match):
    with pytest.raises((ValueError, TypeError), match=match):
        FasterRCNN(tiny_config()).forward_train(images, targets)


def test_detect_returns_original_coordinates_and_sorted_scores():
    model = FasterRCNN(tiny_config())
    images, _ = tiny_batch()
    dets = model.detect(images, score_threshold=0.0)
    assert len(dets) == 2
    for det, image in zip(dets, images):
        H, W = image.shape[:2]
        assert det["boxes"].shape[1] == 4 and len(det["scores"]) == len(det["labels"])
        assert np.all(det["boxes"] >= 0) and np.all(det["boxes"][:, [0, 2]] <= W)
        assert np.all(det["boxes"][:, [1, 3]] <= H)
        assert np.all(np.diff(det["scores"]) <= 0)
        assert set(det["labels"]) <= {1, 2}


def test_save_load_detect_is_identical(tmp_path):
    model = FasterRCNN(tiny_config())
    images, targets = tiny_batch()
    model.forward_train(images, targets)
    model.backward()
    SGD(model.parameters(), model.gradients(), lr=0.01).step()
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = FasterRCNN.load(path)
    assert loaded.config == model.config
    for a, b in zip(model.detect(images, 0.0), loaded.detect(images, 0.0)):
        for key in ("boxes", "scores", "labels"):
            np.testing.assert_array_equal(a[key], b[key])


def test_truncated_or_foreign_checkpoint_is_a_clear_error(tmp_path):
    model = FasterRCNN(tiny_config())
    path = tmp_path / "model.npz"
    model.save(path)
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.npz"):
        FasterRCNN.load(tmp_path / "cut.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a minirpn checkpoint"):
        FasterRCNN.load(tmp_path / "other.npz")


def test_overfits_a_few_toy_images():
    """Loss falls at least 10x and every GT box is found again (IoU >= 0.5)."""
    cfg = Config.toy(3, target_size=128, max_size=160, seed=1)
    model = FasterRCNN(cfg)
    images, targets = toy_scenes()
    opt = SGD(model.parameters(), model.gradients(), lr=0.01, momentum=0.9,
              weight_decay=0.0)
    rng = np.random.default_rng(0)
    first = None
    for step in range(250):
        model.zero_grad()
        losses = model.forward_train(images, targets, rng=rng)
        first = first or losses["total"]
        model.backward()
        opt.step()
    assert losses["total"] < first / 10, (first, losses)
    for det, target in zip(model.detect(images), targets):
        iou = box_iou(target["boxes"].astype(np.float32), det["boxes"].astype(np.float32))
        same = target["labels"][:, None] == det["labels"][None, :]
        assert np.all((iou * same).max(axis=1, initial=0) >= 0.5), (target, det)


def test_the_rpn_and_head_halves_for_alternating_training():
    model = FasterRCNN(tiny_config())
    images, targets = tiny_batch()
    rpn_only = model.forward_rpn(images, targets, rng=np.random.default_rng(0))
    assert set(rpn_only) == {"rpn_cls", "rpn_box", "total"}
    model.zero_grad()
    model.backward()
    grads = model.gradients()
    assert not np.any(grads["roi_head.fc6.weight"]) and np.any(grads["rpn.cls.weight"])
    props = [t["boxes"] + 0.5 for t in targets]
    head_only = model.forward_head(images, targets, rng=np.random.default_rng(0),
                                   proposals=props)
    assert set(head_only) == {"roi_cls", "roi_box", "total"}
    model.zero_grad()
    model.backward()
    assert not np.any(grads["rpn.cls.weight"]) and np.any(grads["roi_head.fc6.weight"])
    assert np.any(grads["backbone.0.weight"])
    with pytest.raises(ValueError, match="one \\(P, 4\\) array per image"):
        model.forward_head(images, targets, proposals=props[:1])
    own = model.forward_head(images, targets, rng=np.random.default_rng(0))  # step 4
    assert set(own) == {"roi_cls", "roi_box", "total"}
