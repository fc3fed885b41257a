"""Reading and writing image files with Pillow.

Every loader hands the model an (H, W, 3) uint8 RGB array, whatever the file
holds. Conversions (documented choices):

* ``L``, ``1``, ``P``, ``CMYK``, ``YCbCr``, ... : Pillow's own
  ``convert("RGB")``.
* ``RGBA``, ``LA``, ``PA`` and palette images with a transparent colour: the
  alpha channel is dropped, not composited, so pixels keep their stored
  colour (what ``Image.convert("RGB")`` does).
* 16-bit grey (``I;16*``, and ``I``, which Pillow uses for 16-bit PNG and
  TIFF data): mapped to 0..255 by ``round(v / 257)`` (65535 -> 255).
* Float images (``F``) have no agreed range and are refused.

EXIF orientation is NOT applied: COCO and VOC boxes refer to the pixel grid
as stored in the file.
"""
import os

import numpy
from PIL import Image

from ..checks import check_array

__all__ = ["read_image", "read_image_size", "read_annotated_image",
           "verify_image_file", "write_png"]


def _to_rgb(img, path):
    mode = img.mode
    if mode == "F":
        raise ValueError(
            f"{path}: float images (Pillow mode 'F') are not supported; "
            "expected an 8-bit or 16-bit image")
    if mode == "I" or mode.startswith("I;16"):
        grey = numpy.asarray(img, dtype=numpy.float64)
        if grey.min() < 0 or grey.max() > 65535:
            raise ValueError(
                f"{path}: integer image values must lie in [0, 65535], "
                f"got [{grey.min():g}, {grey.max():g}]")
        grey = numpy.rint(grey / 257.0).astype(numpy.uint8)
        return numpy.repeat(grey[:, :, None], 3, axis=2)
    if mode == "P" and "transparency" in img.info:
        # Pillow warns when a palette image with transparency goes straight
        # to RGB; going through RGBA is the same colours without the warning.
        img = img.convert("RGBA")
    return numpy.asarray(img.convert("RGB"), dtype=numpy.uint8)


def read_image(path):
    """Read an image file as RGB.

    Shapes: ``H, W`` the image's height and width in pixels.

    Parameters
    ----------
    path : str or os.PathLike
        The image file (any format and mode Pillow reads; see the module
        docstring for how modes become RGB).

    Returns
    -------
    image : (H, W, 3) uint8 ndarray
        A fresh, C-contiguous, writable array.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (the message names it).
    ValueError
        If Pillow cannot decode the file, or it holds float data.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as img:
            img.load()
            rgb = _to_rgb(img, path)
    except (OSError, SyntaxError) as exc:  # Pillow's "cannot identify"
        raise ValueError(f"{path}: cannot read image: {exc}") from exc
    return numpy.ascontiguousarray(rgb)


def read_image_size(path):
    """(H, W) of an image file from its header, without decoding the pixels.

    Pillow's ``Image.open`` reads only the header (the pixels are decoded
    on ``load``), so this costs one small read per file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    (int, int)
        Height and width in pixels.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If Pillow does not recognise the file as an image.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as img:
            return img.height, img.width
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"{path}: cannot read image: {exc}") from exc


def size_mismatch_error(where, path, got, size, size_source):
    """The ValueError for an image file of (H, W) ``got`` whose annotation
    (``where``, ``size_source``) says ``size``."""
    h, w = size
    return ValueError(
        f"{where}: image file {path} is {got[1]}x{got[0]} (WxH) but "
        f"{size_source} says width {w}, height {h}")


def verify_image_file(path, size, where, size_source):
    """Decode an annotated image file completely, as training will read it.

    Pillow's ``Image.verify`` checks the file's structure (a PNG's chunk
    checksums, for one) and a full :func:`read_annotated_image` decodes
    every pixel, so a truncated or corrupt file fails here rather than at
    some step of training. Arguments and errors as
    :func:`read_annotated_image`.
    """
    try:
        with Image.open(os.fspath(path)) as img:
            img.verify()
    except FileNotFoundError:
        pass  # read_annotated_image names it
    except (OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"{where}: {path}: corrupt image: {exc}") from exc
    read_annotated_image(path, size, where, size_source)


def read_annotated_image(path, size, where, size_source):
    """Read an image file that an annotation describes, as RGB, and hold it
    to the annotation's size.

    Shapes: ``H, W`` the image's height and width in pixels.

    Parameters
    ----------
    path : str or os.PathLike
        The image file.
    size : (int, int)
        (H, W) as the annotation gives it.
    where : str
        The annotation (file, record) naming the image: the start of every
        error message.
    size_source : str
        What in the annotation gives ``size`` ("the record", "field
        'size'"), for the message.

    Returns
    -------
    image : (H, W, 3) uint8 ndarray
        As :func:`read_image`.

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`read_image`, the message prefixed by ``where``; ValueError
        also if the file's (H, W) is not ``size``.
    """
    try:
        image = read_image(path)
    except (OSError, ValueError) as exc:
        raise type(exc)(f"{where}: {exc}") from exc
    if image.shape[:2] != tuple(size):
        raise size_mismatch_error(where, path, image.shape[:2], size, size_source)
    return image


def write_png(path, image):
    """Write an RGB image as a PNG file (lossless, so a round trip is exact).

    Shapes: ``H, W`` the image's height and width.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file; its folder must exist.
    image : (H, W, 3) uint8 ndarray
        The pixels.
    """
    check_array(image, "image", shape=(None, None, 3))
    if image.dtype != numpy.uint8:
        raise TypeError(f"image must have dtype uint8, got {image.dtype}")
    Image.fromarray(numpy.ascontiguousarray(image)).save(
        os.fspath(path), format="PNG")
