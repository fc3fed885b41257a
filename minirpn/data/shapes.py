"""The "shapes" toy dataset: coloured circles, squares and triangles.

Each image (H and W drawn independently from 128..320 px) has a smooth
background (a colour gradient plus smoothed noise, muted so that saturated
objects stand out) and 1..6 objects whose largest side is drawn
log-uniformly from 16..96 px. Placements overlapping a placed box with IoU
above 0.1 are re-drawn (50 tries, then the object is left out), so
occlusion stays low. Each object's colour is re-drawn until it is far from
the background it covers.

Masks are hard (a pixel belongs to a shape when its centre does), so each
box is exactly the extent of the drawn shape: x2 = last covered column + 1.
Squares stay square (axis-aligned); triangles vary in aspect (height /
width in 0.6..1.6), apex position and orientation (up, down, left, right).

Image ``i`` is drawn from ``numpy.random.default_rng([seed, i])``: indexing
is random-access and independent of the order images are asked for.
"""
import math

import numpy

from ..checks import check_positive_int
from .dataset import make_target
from .synth import (ToyDataset, draw_image_size, log_uniform, paste_sprites,
                    smooth_noise, tight_crop, to_uint8)

__all__ = ["ShapesDataset", "render_shapes", "SHAPE_CLASSES"]

SHAPE_CLASSES = ("circle", "square", "triangle")


def _pixel_centres(n):
    ys, xs = numpy.mgrid[0:n, 0:n]
    return ys + 0.5, xs + 0.5


def _circle(rng, size):
    """Disc of diameter ``size`` at a random sub-pixel offset."""
    n = int(math.ceil(size)) + 3
    ys, xs = _pixel_centres(n)
    r = size / 2.0
    cy, cx = 1.0 + rng.uniform(0, 1, size=2) + r
    return (xs - cx) ** 2 + (ys - cy) ** 2 <= r * r


def _square(rng, size):
    side = max(int(round(size)), 1)
    return numpy.ones((side, side), dtype=bool)


def _triangle(rng, size):
    """Triangle with base ``w``, height ``h`` (max(w, h) = size), apex at a
    random point along the base's width, then turned 0/90/180/270 deg."""
    aspect = log_uniform(rng, 0.6, 1.6)          # height / width
    w, h = (size / aspect, size) if aspect >= 1 else (size, size * aspect)
    n = int(math.ceil(size)) + 3
    oy, ox = 1.0 + rng.uniform(0, 1, size=2)
    apex = ox + rng.uniform(0, 1) * w
    verts = numpy.array([[ox, oy + h], [ox + w, oy + h], [apex, oy]])
    ys, xs = _pixel_centres(n)
    # Half-plane test at pixel centres: inside when on the same side of all
    # three edges (the vertices run counter-clockwise in image coordinates).
    inside = numpy.ones((n, n), dtype=bool)
    for k in range(3):
        (x1, y1), (x2, y2) = verts[k], verts[(k + 1) % 3]
        inside &= (x2 - x1) * (ys - y1) - (y2 - y1) * (xs - x1) <= 0
    return numpy.rot90(inside, k=int(rng.integers(4)))


_DRAW = (_circle, _square, _triangle)


def _background(rng, h, w):
    """(h, w, 3) float64 in [0, 255]: gradient between two muted colours
    along a random direction, plus smoothed colour noise."""
    c0, c1 = rng.uniform(30, 225, size=(2, 3))
    c0, c1 = (0.5 * c + 0.5 * c.mean() for c in (c0, c1))   # mute
    theta = rng.uniform(0, 2 * math.pi)
    ys, xs = numpy.mgrid[0:h, 0:w]
    t = math.cos(theta) * xs + math.sin(theta) * ys
    t = (t - t.min()) / max(float(numpy.ptp(t)), 1e-6)
    canvas = c0 + t[:, :, None] * (c1 - c0)
    # Mostly brightness noise, shared by the channels, plus fainter colour
    # noise: a textured but not confetti-like background.
    amp = rng.uniform(8, 30)
    cell = int(rng.integers(12, 65))
    canvas += amp * smooth_noise(rng, h, w, cell)[:, :, None]
    for c in range(3):
        canvas[:, :, c] += 0.4 * amp * smooth_noise(rng, h, w, cell)
    return numpy.clip(canvas, 0, 255)


def render_shapes(rng, image_size=(128, 320), object_size=(16, 96),
                  max_objects=6, max_iou=0.1):
    """Draw one shapes image.

    Shapes: ``H, W`` the image size, ``K`` the objects placed
    (1 <= K <= max_objects).

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness.
    image_size : (int, int)
        Inclusive range of H and of W (drawn independently).
    object_size : (float, float)
        Range of each object's largest side in pixels (log-uniform).
    max_objects : int
        Objects offered per image (the count is uniform in 1..max_objects;
        some may find no place).
    max_iou : float
        Largest IoU between two objects' boxes.

    Returns
    -------
    image : (H, W, 3) uint8 ndarray
    target : dict
        ``"boxes"`` (K, 4) float32, ``"labels"`` (K,) int64 in 1..3 (1
        circle, 2 square, 3 triangle), ``"difficult"`` (K,) bool (False).
    masks : (K, H, W) bool ndarray
        Each object's drawn pixels; ``boxes[k]`` is the tight box of
        ``masks[k]``.
    """
    h, w = draw_image_size(rng, image_size)
    canvas = _background(rng, h, w)
    sprites = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        label = int(rng.integers(1, len(SHAPE_CLASSES) + 1))
        size = log_uniform(rng, *object_size)
        mask = tight_crop(_DRAW[label - 1](rng, size))
        sprites.append((mask.astype(numpy.float64), label))
    boxes, labels, masks = paste_sprites(rng, canvas, sprites, max_iou)
    return to_uint8(rng, canvas), make_target(boxes, labels), masks


class ShapesDataset(ToyDataset):
    """``num_images`` generated shapes images (see the module docstring).

    Parameters
    ----------
    num_images : int
        Length of the dataset.
    seed : int
        Image ``i`` is ``render_shapes(default_rng([seed, i]), ...)``.
    image_size, object_size, max_objects, max_iou
        As in :func:`render_shapes`; ``object_size[1]`` must not exceed
        ``image_size[0]`` (objects are never cut by the border).
    """

    class_names = SHAPE_CLASSES
    render = staticmethod(render_shapes)

    def __init__(self, num_images, seed=0, image_size=(128, 320),
                 object_size=(16, 96), max_objects=6, max_iou=0.1):
        lo, hi = self._check_common(num_images, seed, image_size)
        if not 1 <= object_size[0] <= object_size[1] <= lo - 2:
            raise ValueError(
                f"object_size must be (lo, hi) with 1 <= lo <= hi <= "
                f"image_size[0] - 2 = {lo - 2}, got {tuple(object_size)}")
        self.options = dict(image_size=(lo, hi),
                            object_size=tuple(float(v) for v in object_size),
                            max_objects=check_positive_int(max_objects, "max_objects"),
                            max_iou=float(max_iou))
