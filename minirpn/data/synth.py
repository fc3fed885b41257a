"""Shared machinery of the generated toy datasets (shapes, digits).

A toy image is a background canvas on which "sprites" are pasted. A sprite
is an (h, w) float alpha map in [0, 1] whose nonzero pixels touch all four
edges, so the object's box is exactly its pasted extent:
``(x0, y0, x0 + w, y0 + h)`` (continuous coordinates: the last covered
column ``x0 + w - 1`` ends at ``x0 + w``). Objects are never cut by the
image border. Every random draw comes from the ``rng`` passed in, so an
image is a pure function of its generator's seed.

:class:`ToyDataset` is the common dataset class: image ``i`` of a toy
dataset is drawn from ``numpy.random.default_rng([seed, i])``.
"""
import colorsys

import numpy
from PIL import Image

from ..checks import check_non_negative_int, check_positive_int
from .dataset import DetectionDataset, copy_target

__all__ = ["check_size_range",
           "draw_image_size", "log_uniform", "box_iou", "tight_crop",
           "smooth_noise", "paste_sprites", "to_uint8", "ToyDataset"]


def check_size_range(image_size):
    """``(lo, hi)`` ints with 1 <= lo <= hi: the range of H and of W."""
    lo, hi = (int(v) for v in image_size)
    if not 1 <= lo <= hi:
        raise ValueError(f"image_size must be (lo, hi) with 1 <= lo <= hi, "
                         f"got {tuple(image_size)}")
    return lo, hi


def draw_image_size(rng, size_range):
    """(H, W), each drawn independently and uniformly from ``size_range``
    = (lo, hi), both inclusive."""
    lo, hi = size_range
    h, w = rng.integers(lo, hi + 1, size=2)
    return int(h), int(w)


def log_uniform(rng, lo, hi):
    """A float drawn log-uniformly from [lo, hi): each octave of object
    size is equally common, so every anchor scale sees objects."""
    return float(numpy.exp(rng.uniform(numpy.log(lo), numpy.log(hi))))


def box_iou(box, boxes):
    """IoU of one box with each of M boxes.

    Parameters
    ----------
    box : (4,) float ndarray
    boxes : (M, 4) float ndarray

    Returns
    -------
    iou : (M,) float64 ndarray
    """
    boxes = numpy.asarray(boxes, dtype=numpy.float64).reshape(-1, 4)
    lo = numpy.maximum(box[:2], boxes[:, :2])
    hi = numpy.minimum(box[2:], boxes[:, 2:])
    iw, ih = (hi - lo).T
    inter = numpy.clip(iw, 0, None) * numpy.clip(ih, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / (area + areas - inter)


def tight_crop(alpha):
    """Crop an (h, w) alpha map to the bounding box of its nonzero pixels
    (which must exist)."""
    rows = numpy.flatnonzero(alpha.any(axis=1))
    cols = numpy.flatnonzero(alpha.any(axis=0))
    return alpha[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def smooth_noise(rng, h, w, cell):
    """(h, w) float32 smooth noise with unit standard deviation: white noise
    on a coarse grid of ``cell``-pixel cells, bicubically upsampled."""
    gh, gw = h // cell + 2, w // cell + 2
    coarse = rng.standard_normal((gh, gw)).astype(numpy.float32)
    fine = numpy.asarray(Image.fromarray(coarse).resize(
        (w, h), Image.Resampling.BICUBIC))
    return (fine - fine.mean()) / max(float(fine.std()), 1e-6)


def _random_colour(rng):
    """A saturated, fairly bright RGB colour in [0, 255]."""
    rgb = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.6, 1.0),
                              rng.uniform(0.55, 1.0))
    return 255.0 * numpy.array(rgb)


def _contrasting_colour(rng, pixels, min_distance=100.0, tries=20):
    """A random saturated colour at least ``min_distance`` (RGB Euclidean)
    from the mean of the (P, 3) background ``pixels`` it will cover; after
    ``tries`` misses, the farthest candidate seen."""
    mean = pixels.mean(axis=0)
    best, best_d = None, -1.0
    for _ in range(tries):
        colour = _random_colour(rng)
        d = float(numpy.linalg.norm(colour - mean))
        if d >= min_distance:
            return colour
        if d > best_d:
            best, best_d = colour, d
    return best


def _find_position(rng, image_hw, sprite_hw, boxes, max_iou, tries):
    """Top-left corner (y0, x0) whose box overlaps every box in ``boxes``
    with IoU <= ``max_iou``, or None after ``tries`` rejected draws."""
    (H, W), (h, w) = image_hw, sprite_hw
    for _ in range(tries):
        y0 = int(rng.integers(0, H - h + 1))
        x0 = int(rng.integers(0, W - w + 1))
        box = numpy.array([x0, y0, x0 + w, y0 + h], dtype=numpy.float64)
        if not boxes or box_iou(box, boxes).max() <= max_iou:
            return y0, x0
    return None


def paste_sprites(rng, canvas, sprites, max_iou=0.1, tries=50):
    """Paste sprites at random non-overlapping places, in contrasting colours.

    Shapes: ``H, W`` the canvas size, ``N`` sprites offered, ``K <= N``
    placed (a sprite that finds no place within ``tries`` draws is left out;
    the first one always fits).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of positions and colours.
    canvas : (H, W, 3) float64 ndarray
        Background in [0, 255]; painted in place.
    sprites : list of (alpha, label)
        ``alpha`` an (h, w) float ndarray in [0, 1], tight (see module
        docstring), h <= H and w <= W; ``label`` an int.
    max_iou : float
        Largest IoU allowed between a new box and any placed one: keeps
        occlusion low, so every object stays mostly visible.
    tries : int
        Position draws per sprite before it is given up.

    Returns
    -------
    boxes : (K, 4) float32 ndarray
        (x1, y1, x2, y2) of the placed sprites.
    labels : (K,) int64 ndarray
    masks : (K, H, W) bool ndarray
        Where each placed sprite's alpha is nonzero (full sprite, even where
        a later one covers it).
    """
    H, W = canvas.shape[:2]
    boxes, labels, masks = [], [], []
    for alpha, label in sprites:
        h, w = alpha.shape
        where = _find_position(rng, (H, W), (h, w), boxes, max_iou, tries)
        if where is None:
            continue
        y0, x0 = where
        region = canvas[y0:y0 + h, x0:x0 + w]
        a = alpha[:, :, None]
        colour = _contrasting_colour(rng, region[alpha > 0])
        region[...] = (1.0 - a) * region + a * colour
        mask = numpy.zeros((H, W), dtype=bool)
        mask[y0:y0 + h, x0:x0 + w] = alpha > 0
        boxes.append([x0, y0, x0 + w, y0 + h])
        labels.append(label)
        masks.append(mask)
    return (numpy.array(boxes, dtype=numpy.float32).reshape(-1, 4),
            numpy.array(labels, dtype=numpy.int64),
            numpy.array(masks, dtype=bool).reshape(-1, H, W))


def to_uint8(rng, canvas, noise_std=3.0):
    """Add faint per-pixel noise (so no region is perfectly flat) and
    round to (H, W, 3) uint8."""
    noisy = canvas + rng.normal(0.0, noise_std, size=canvas.shape)
    return numpy.clip(numpy.rint(noisy), 0, 255).astype(numpy.uint8)


class ToyDataset(DetectionDataset):
    """Base class of the generated datasets: image ``i`` is
    ``render(default_rng([seed, i]), **options)``, so indexing is
    random-access and independent of the order images are asked for.

    Subclasses set ``class_names`` and ``render`` (a ``render_*(rng,
    **options) -> (image, target, masks)`` function, as a staticmethod) and,
    in ``__init__``, call :meth:`_check_common` and then set ``options``.
    """

    render = None

    def _check_common(self, num_images, seed, image_size):
        """Check and store ``num_images`` and ``seed``; return the checked
        ``image_size`` as ``(lo, hi)`` ints."""
        self.num_images = check_positive_int(num_images, "num_images")
        # default_rng([seed, i]) needs ints >= 0
        self.seed = check_non_negative_int(seed, "seed")
        return check_size_range(image_size)

    def __len__(self):
        return self.num_images

    def _get(self, index):
        # Rendering costs tens of milliseconds, a sizeable part of a toy
        # training step, so each image is drawn once and kept (a few hundred
        # images are tens of MB). Callers get copies: the cache stays pristine.
        memo = self.__dict__.setdefault("_memo", {})
        if index not in memo:
            rng = numpy.random.default_rng([self.seed, index])
            image, target, _ = self.render(rng, **self.options)
            target["image_id"] = index
            memo[index] = (image, target)
        image, target = memo[index]
        return image.copy(), copy_target(target)
