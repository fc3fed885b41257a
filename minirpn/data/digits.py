"""The "digits" toy dataset: handwritten digits scattered over photographs.

scikit-learn's ``load_digits`` 8x8 images (1797 digits, shipped inside the
scikit-learn wheel) are enlarged bicubically to 24..80 px (log-uniform,
aspect jitter 0.8..1.25), coloured, and pasted onto a random crop of one of
the photographs and textures shipped inside the scikit-image wheel (brick,
grass, gravel, coffee, chelsea, rocket, astronaut) or matplotlib's
``grace_hopper.jpg``. Files are read straight from the installed packages'
folders with Pillow, so nothing is ever downloaded (no ``pooch``).

A digit's alpha is ``clip((v - 0.25) / 0.35, 0, 1)`` for the upsampled
intensity ``v`` in [0, 1]: zero outside the thresholded mask ``v > 0.25``
and solid in the stroke, so the box (the mask's tight extent) is exactly
what is drawn. 10 classes "0".."9", label = digit + 1. Digits are never
flipped or rotated (a mirrored 2 is not a 2, and 6 / 9 would swap), so
horizontal-flip augmentation is a poor fit for this dataset.

Needs the optional extra ``minirpn[data]`` (scikit-learn, scikit-image);
importing this module does not.
"""
import functools
import os

import numpy
from PIL import Image

from ..checks import check_positive_int
from .dataset import make_target
from .images import read_image
from .synth import (ToyDataset, draw_image_size, log_uniform, paste_sprites,
                    tight_crop, to_uint8)

__all__ = ["DigitsDataset", "render_digits", "DIGIT_CLASSES"]

DIGIT_CLASSES = tuple(str(d) for d in range(10))
SKIMAGE_FILES = ("brick.png", "grass.png", "gravel.png", "coffee.png",
                 "chelsea.png", "rocket.jpg", "astronaut.png")
_EXTRA = "DigitsDataset needs scikit-learn and scikit-image: " \
         "pip install minirpn[data]"


def _require_extras():
    try:
        import sklearn.datasets  # noqa: F401
        import skimage  # noqa: F401  (lazy package: cheap to import)
    except ImportError as exc:
        raise ImportError(f"{_EXTRA} ({exc})") from exc


@functools.lru_cache(maxsize=1)
def _digit_images():
    """(1797, 8, 8) float32 in [0, 1] and (1797,) int64 digits."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    return ((digits.images / 16.0).astype(numpy.float32),
            digits.target.astype(numpy.int64))


def background_files():
    """Paths of the photographs used as backgrounds (all shipped inside the
    scikit-image and matplotlib wheels)."""
    import matplotlib
    import skimage
    skdata = os.path.join(os.path.dirname(skimage.__file__), "data")
    mpldata = os.path.join(matplotlib.get_data_path(), "sample_data")
    return tuple([os.path.join(skdata, f) for f in SKIMAGE_FILES]
                 + [os.path.join(mpldata, "grace_hopper.jpg")])


@functools.lru_cache(maxsize=1)
def _backgrounds():
    """The background photographs as RGB Pillow images (read once)."""
    return tuple(Image.fromarray(read_image(p)) for p in background_files())


def _background(rng, h, w):
    """(h, w, 3) float64: a random crop of a random photograph, rescaled by
    0.5..1.5 (more where the photo is too small), maybe mirrored, with a
    random per-channel gain so grey textures get a colour cast."""
    photos = _backgrounds()
    photo = photos[int(rng.integers(len(photos)))]
    pw, ph = photo.size
    scale = max(rng.uniform(0.5, 1.5), h / ph, w / pw)
    cw, ch = min(w / scale, pw), min(h / scale, ph)   # crop, photo pixels
    x0, y0 = rng.uniform(0, pw - cw), rng.uniform(0, ph - ch)
    crop = photo.resize((w, h), Image.Resampling.BILINEAR,
                        box=(x0, y0, x0 + cw, y0 + ch))
    canvas = numpy.asarray(crop, dtype=numpy.float64)
    if rng.uniform() < 0.5:
        canvas = canvas[:, ::-1]
    gain = rng.uniform(0.7, 1.1, size=3)
    return numpy.clip(canvas * gain, 0, 255)


def _digit_sprite(rng, size_range):
    """(alpha (h, w) float64, label) of one random digit."""
    images, digits = _digit_images()
    j = int(rng.integers(len(images)))
    size = log_uniform(rng, *size_range)
    aspect = log_uniform(rng, 0.8, 1.25)               # height / width
    h = max(int(round(size * aspect ** 0.5)), 8)
    w = max(int(round(size / aspect ** 0.5)), 8)
    up = numpy.asarray(Image.fromarray(images[j]).resize(
        (w, h), Image.Resampling.BICUBIC), dtype=numpy.float64)
    alpha = numpy.clip((up - 0.25) / 0.35, 0.0, 1.0)
    return tight_crop(alpha), int(digits[j]) + 1


def render_digits(rng, image_size=(128, 320), digit_size=(24, 80),
                  max_objects=6, max_iou=0.1):
    """Draw one digits image.

    Shapes: ``H, W`` the image size, ``K`` the digits placed
    (1 <= K <= max_objects).

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness.
    image_size : (int, int)
        Inclusive range of H and of W (drawn independently).
    digit_size : (float, float)
        Range of the enlarged 8x8 digit's side in pixels (log-uniform); the
        box, cut to the strokes, is smaller.
    max_objects : int
        Digits offered per image (uniform in 1..max_objects).
    max_iou : float
        Largest IoU between two digits' boxes.

    Returns
    -------
    image : (H, W, 3) uint8 ndarray
    target : dict
        ``"boxes"`` (K, 4) float32, ``"labels"`` (K,) int64 in 1..10
        (digit + 1), ``"difficult"`` (K,) bool (False).
    masks : (K, H, W) bool ndarray
        Each digit's drawn pixels; ``boxes[k]`` is their tight box.
    """
    _require_extras()
    h, w = draw_image_size(rng, image_size)
    canvas = _background(rng, h, w)
    sprites = [_digit_sprite(rng, digit_size)
               for _ in range(int(rng.integers(1, max_objects + 1)))]
    boxes, labels, masks = paste_sprites(rng, canvas, sprites, max_iou)
    return to_uint8(rng, canvas), make_target(boxes, labels), masks


class DigitsDataset(ToyDataset):
    """``num_images`` generated digits images (see the module docstring).

    Parameters
    ----------
    num_images : int
        Length of the dataset.
    seed : int
        Image ``i`` is ``render_digits(default_rng([seed, i]), ...)``.
    image_size, digit_size, max_objects, max_iou
        As in :func:`render_digits`.

    Raises
    ------
    ImportError
        If scikit-learn or scikit-image is missing ("pip install
        minirpn[data]").
    """

    class_names = DIGIT_CLASSES
    render = staticmethod(render_digits)

    def __init__(self, num_images, seed=0, image_size=(128, 320),
                 digit_size=(24, 80), max_objects=6, max_iou=0.1):
        _require_extras()
        lo, hi = self._check_common(num_images, seed, image_size)
        if not 8 <= digit_size[0] <= digit_size[1] <= (lo - 2) / 1.25 ** 0.5:
            raise ValueError(
                f"digit_size must be (lo, hi) with 8 <= lo <= hi <= "
                f"(image_size[0] - 2) / sqrt(1.25), got {tuple(digit_size)}")
        self.options = dict(image_size=(lo, hi),
                            digit_size=tuple(float(v) for v in digit_size),
                            max_objects=check_positive_int(max_objects, "max_objects"),
                            max_iou=float(max_iou))
