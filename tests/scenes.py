"""Tiny synthetic scenes for model tests: solid rectangles on a noisy field.

Class k (1..3) is drawn in COLOURS[k - 1], so the task is learnable in a
few hundred SGD steps.
"""
import numpy as np

COLOURS = np.array([[230, 40, 40], [40, 200, 60], [50, 80, 230]], dtype=np.float64)


def make_scene(rng, height, width, boxes, labels):
    """(H, W, 3) uint8 image with the given (K, 4) boxes filled."""
    image = rng.normal(120, 12, size=(height, width, 3))
    for (x1, y1, x2, y2), label in zip(np.asarray(boxes, int), labels):
        image[y1:y2, x1:x2] = COLOURS[label - 1]
    return np.clip(image, 0, 255).astype(np.uint8)


def toy_scenes():
    """Three images with two or three objects each, and their targets."""
    rng = np.random.default_rng(7)
    specs = [
        ((128, 128), [[10, 12, 50, 60], [70, 70, 118, 110]], [1, 2]),
        ((120, 140), [[20, 20, 60, 50], [80, 30, 130, 90], [30, 70, 60, 110]], [3, 1, 2]),
        ((128, 128), [[40, 40, 100, 90]], [3]),
    ]
    images, targets = [], []
    for (h, w), boxes, labels in specs:
        images.append(make_scene(rng, h, w, boxes, labels))
        targets.append({"boxes": np.asarray(boxes, np.float32),
                        "labels": np.asarray(labels, np.int64)})
    return images, targets
