"""Data augmentation on (image, target) pairs.

Only what the original Faster R-CNN trains with: horizontal flips
(py-faster-rcnn ``TRAIN.USE_FLIPPED``). Resizing and mean subtraction
belong to the model, not here. Random transforms take the ``rng`` they
draw from, so a seed reproduces a run.
"""
import numpy

from ..checks import check_array, check_probability, check_rng

__all__ = ["hflip", "RandomHorizontalFlip", "Compose"]


def hflip(image, target):
    """Mirror an image and its boxes left-right.

    Continuous coordinates make the flip exact and order-preserving: a
    point x goes to W - x, so the box [x1, x2] goes to [W - x2, W - x1]
    (x2' - x1' = x2 - x1 >= 0). py-faster-rcnn needs ``W - x - 1`` because
    its boxes name inclusive pixels.

    Shapes: ``H, W`` the image size, ``K`` the number of objects.

    Parameters
    ----------
    image : (H, W, C) ndarray
        Any dtype (uint8 from the datasets).
    target : dict
        With ``"boxes"`` (K, 4) float (x1, y1, x2, y2); other keys are
        copied unchanged.

    Returns
    -------
    image : (H, W, C) ndarray
        A new C-contiguous array, same dtype.
    target : dict
        A new dict; ``"boxes"`` a new (K, 4) array of the input's dtype.
    """
    check_array(image, "image", ndim=3)
    boxes = target["boxes"]
    check_array(boxes, 'target["boxes"]', shape=(None, 4))
    width = image.shape[1]
    flipped = boxes.copy()
    flipped[:, 0] = width - boxes[:, 2]
    flipped[:, 2] = width - boxes[:, 0]
    out = dict(target)
    out["boxes"] = flipped
    return numpy.ascontiguousarray(image[:, ::-1]), out


class RandomHorizontalFlip:
    """Apply :func:`hflip` with probability ``p``.

    Parameters
    ----------
    p : float
        Flip probability in [0, 1].

    Calling ``flip(image, target, rng=None)`` returns ``(image, target)``,
    flipped or unchanged (then the very same objects); ``rng`` is a
    ``numpy.random.Generator`` (``None`` -> ``np.random.default_rng()``)
    and one ``rng.random()`` is drawn per call.
    """

    def __init__(self, p=0.5):
        self.p = check_probability(p, "p")

    def __call__(self, image, target, rng=None):
        rng = check_rng(rng)
        if rng.random() < self.p:
            return hflip(image, target)
        return image, target

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


class Compose:
    """Chain transforms ``t(image, target, rng) -> (image, target)``, each
    given the same ``rng`` in turn."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, image, target, rng=None):
        rng = check_rng(rng)
        for t in self.transforms:
            image, target = t(image, target, rng)
        return image, target
