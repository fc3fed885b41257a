"""evaluate(), and a tiny run that takes the mAP from chance to ~0.9."""
import numpy as np
import pytest

from minirpn import Config, FasterRCNN
from minirpn.data import make_target
from minirpn.train import TrainConfig, evaluate, train

from scenes import make_scene


class Squares:
    """n images of 64-96 px with one or two solid red (1) or green (2)
    squares of 20-40 px on a noisy grey field; image i drawn from
    default_rng([seed, i])."""

    class_names = ("red", "green")

    def __init__(self, n, seed):
        self.n, self.seed = n, seed

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        rng = np.random.default_rng([self.seed, i])
        h, w = (int(v) for v in rng.integers(64, 97, size=2))
        boxes, labels = [], []
        for _ in range(int(rng.integers(1, 3))):
            for _ in range(50):                    # re-draw until it does not overlap
                s = int(rng.integers(20, 41))
                x, y = int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1))
                box = [x, y, x + s, y + s]
                if all(box[2] <= o[0] or o[2] <= box[0] or box[3] <= o[1] or o[3] <= box[1]
                       for o in boxes):
                    boxes.append(box)
                    labels.append(int(rng.integers(1, 3)))
                    break
        return make_scene(rng, h, w, boxes, labels), make_target(boxes, labels, image_id=i)


def small_config():
    """Stride 4, anchors of 16-64 px, narrow layers: ~0.1 s a step."""
    return Config.toy(2, target_size=64, max_size=96, backbone_channels=(8, "M", 16, "M", 32),
                      anchor_scales=(4, 8, 16), anchor_ratios=(1.0,), rpn_channels=32,
                      head_hidden=64, roi_output_size=4, rpn_batch_size=64,
                      roi_batch_size=32, rpn_min_size=2.0, seed=0)


def test_tiny_run_takes_map_from_chance_to_well_above(tmp_path):
    model = FasterRCNN(small_config())
    train_set, val_set = Squares(8, seed=0), Squares(6, seed=1)
    before = evaluate(model, val_set).map
    result = train(model, train_set, tmp_path, TrainConfig(
        iterations=60, batch_size=2, lr=0.02, warmup_iterations=10, lr_steps=(0.8,),
        checkpoint_every=0), val_dataset=val_set)
    after = result.metrics["map"]
    assert before < 0.1
    assert after > 0.5, result.metrics
    assert set(result.metrics["per_class"]) == {"red", "green"}
    first, last = result.history[:10], result.history[-10:]
    assert np.mean([r["total"] for r in last]) < 0.5 * np.mean([r["total"] for r in first])


class Oracle:
    """A stand-in model whose detections are given per image."""

    def __init__(self, per_image):
        self.per_image, self.calls = per_image, []

    def detect(self, images, score_threshold=None):
        self.calls.append((len(images), score_threshold))
        return [self.per_image.pop(0) for _ in images]


def test_evaluate_batches_images_and_keeps_difficult_flags():
    data = [(np.zeros((20, 20, 3), np.uint8),
             make_target([[0, 0, 10, 10], [10, 10, 20, 20]], [1, 2], [False, True])),
            (np.zeros((20, 20, 3), np.uint8), make_target([[2, 2, 8, 8]], [1]))]
    hit = {"boxes": np.array([[0.0, 0, 10, 10]]), "scores": np.array([0.9]),
           "labels": np.array([1])}
    miss_on_difficult = {"boxes": np.array([[2.0, 2, 8, 8], [10, 10, 20, 20]]),
                         "scores": np.array([0.8, 0.7]), "labels": np.array([1, 2])}
    model = Oracle([hit, miss_on_difficult])
    result = evaluate(model, data, batch_size=1, score_threshold=0.3)
    assert model.calls == [(1, 0.3), (1, 0.3)]
    # class 2 has only a difficult box: no AP; class 1 both found
    assert result.per_class == {1: pytest.approx(1.0)} and result.map == pytest.approx(1.0)
    assert result.classes_without_gt == (2,)
    with pytest.raises(ValueError, match="at least one image"):
        evaluate(model, [])
