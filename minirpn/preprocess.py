"""The model's first stage: resize, subtract the mean, pad into a batch.

Ren et al. 2015, section 3.3 ("we re-scale the images such that their
shorter side is s = 600 pixels"), with py-faster-rcnn's cap on the longer
side (``prep_im_for_blob`` in lib/utils/blob.py, ``MAX_SIZE`` 1000): every
image is rescaled so its shorter side is ``target_size`` pixels unless the
longer side would then exceed ``max_size``; a fixed per-channel mean (a
configuration value, the same for every image) is subtracted. Images of one
batch are padded with zeros (the mean colour) at the bottom and right to a
common size, a multiple of the feature stride so every pixel lies under a
feature cell.

Boxes move between the original and the network's coordinates with the
per-axis factors ``(sy, sx) = (h' / h, w' / w)`` of the actual resized size;
the scalar ``scale`` also scales the RPN's minimum proposal size.
"""
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .backend import array_module, get_array_module, to_numpy

__all__ = ["PreprocessedBatch", "rescale_boxes", "compute_scale", "resize_image",
           "check_images", "check_targets", "preprocess"]


@dataclass
class PreprocessedBatch:
    """A batch ready for the backbone.

    Attributes
    ----------
    images : (N, 3, Hp, Wp) float32 or float64
        Resized, normalised images, zero-padded to a common size.
    image_sizes : list of (int, int)
        Each image's (h', w') after resizing, before padding.
    original_sizes : list of (int, int)
        Each image's (H, W) as given.
    scales : list of float
        The scalar resize factor of each image (:func:`compute_scale`).
    """

    images: object
    image_sizes: list
    original_sizes: list
    scales: list

    def to_network(self, i, boxes, dtype=None, xp=None):
        """(K, 4) boxes of image i, original -> network pixels.

        Returns them beside the batch's images (numpy or cupy), or in the
        array module ``xp`` if given, in ``dtype``; by default float boxes
        keep theirs, others take the images'.
        """
        xp = get_array_module(self.images) if xp is None else xp
        boxes = to_numpy(boxes)
        if dtype is None:
            dtype = boxes.dtype if np.asarray(boxes).dtype.kind == "f" else self.images.dtype
        boxes = np.asarray(boxes, dtype=dtype)
        return xp.asarray(rescale_boxes(boxes, self.original_sizes[i], self.image_sizes[i]))

    def to_original(self, i, boxes):
        """(K, 4) boxes of image i, network -> original pixels, as a numpy
        array clipped to the original image (the rounding of the resized
        size can push an edge a hair past the border)."""
        H, W = self.original_sizes[i]
        boxes = rescale_boxes(to_numpy(boxes), self.image_sizes[i], (H, W))
        return np.clip(boxes, 0, np.array([W, H, W, H], dtype=boxes.dtype))


def rescale_boxes(boxes, from_size, to_size):
    """Map (K, 4) boxes between two sizes of one image, axis by axis.

    ``boxes * (w'/w, h'/h, w'/w, h'/h)`` for ``from_size`` (h, w) and
    ``to_size`` (h', w'), in the boxes' dtype and array module: the one
    rule for original <-> network pixels (the per-axis factors of the
    actual resized size, see the module notes).
    """
    (h, w), (h2, w2) = from_size, to_size
    factors = np.array([w2 / w, h2 / h, w2 / w, h2 / h], dtype=boxes.dtype)
    return boxes * get_array_module(boxes).asarray(factors)


def compute_scale(height, width, target_size, max_size):
    """The resize factor of py-faster-rcnn's ``prep_im_for_blob``: shorter
    side to ``target_size``,
    longer side at most ``max_size``."""
    scale = target_size / min(height, width)
    if round(scale * max(height, width)) > max_size:
        scale = max_size / max(height, width)
    return scale


def resize_image(image, scale):
    """Bilinear resize of an (H, W, 3) image by ``scale``.

    Returns
    -------
    (round(H*scale), round(W*scale), 3) float32
    """
    return _resize(image, scale).astype(np.float32, copy=False)


def _resize(image, scale):
    """:func:`resize_image` before the cast: uint8 stays uint8 (Pillow
    resizes it as uint8), so a GPU batch uploads a quarter of the bytes and
    converts on the device, to the same float32 values."""
    H, W = image.shape[:2]
    size = (max(1, round(W * scale)), max(1, round(H * scale)))
    if image.dtype == np.uint8:
        return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
    channels = [np.asarray(Image.fromarray(
        np.ascontiguousarray(image[:, :, c], dtype=np.float32), mode="F")
        .resize(size, Image.BILINEAR)) for c in range(3)]
    return np.stack(channels, axis=2)


_FLOAT_SLACK = 64.0  # px values: room for resampling overshoot and jitter


def _check_pixel_range(image, i):
    """Refuse pixel values that are not on the 0..255 scale.

    The network subtracts a mean colour given in 0..255 units (the paper's
    VGG-16 from Caffe, py-faster-rcnn's ``PIXEL_MEANS``), so an image on
    another scale is not an error the model would notice: it only gives
    different detections. torchvision's detectors take [0, 1] floats; we
    take 0..255, and say so rather than guess. One min and one max per image
    (a NaN or inf shows up in them too), on the host-side copy.
    """
    lo, hi = image.min(), image.max()
    if image.dtype.kind == "f" and not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"images[{i}] contains NaN or inf pixels")
    given = f"got dtype {image.dtype} with values in [{lo:g}, {hi:g}]"
    if image.dtype == np.uint16:
        raise ValueError(
            f"images[{i}] must be uint8 or float in 0..255, {given}: uint16 "
            f"is 16-bit data (0..65535); convert it with "
            f"(image / 257).round().astype(np.uint8)")
    if image.dtype.kind in "iu" and (lo < 0 or hi > 255):
        raise ValueError(
            f"images[{i}] must hold pixel values in 0..255, {given}; "
            f"rescale it to 0..255 and pass it as uint8")
    if image.dtype.kind != "f":
        return
    if 0 < hi <= 1.0:
        raise ValueError(
            f"images[{i}] looks like a float image in [0, 1] ({given}); "
            f"minirpn expects 0..255 (the pixel mean is in those units): "
            f"pass image * 255, or a uint8 image if it really is that dark")
    if lo < -_FLOAT_SLACK or hi > 255 + _FLOAT_SLACK:
        raise ValueError(
            f"images[{i}] must hold pixel values in 0..255, {given}; "
            f"rescale it to 0..255 (pass raw RGB, not mean-subtracted or "
            f"normalised pixels)")


def check_images(images):
    """Validate a list of raw images; return them as (H, W, 3) numpy arrays.

    Grayscale (H, W) images are repeated to three channels. Pixel values
    must be on the 0..255 scale: uint8, another integer dtype with values
    in 0..255, or float with values in 0..255 (up to 64 either side, for
    resampling overshoot). Refused, because each would silently change the
    detections: uint16 (16-bit data), float images in [0, 1] (their
    maximum is at most 1 and not 0) and float images far outside 0..255
    (scaled, mean-subtracted or normalised). Raises TypeError/ValueError
    naming the image index.
    """
    if not isinstance(images, (list, tuple)):
        raise TypeError(
            f"images must be a list of (H, W, 3) arrays, got {type(images).__name__}")
    if len(images) == 0:
        raise ValueError("images must hold at least one image, got an empty list")
    out = []
    for i, image in enumerate(images):
        image = to_numpy(image)
        if image.dtype.kind not in "uif" or image.dtype == np.bool_:
            raise TypeError(f"images[{i}] must be numeric (uint8 or float), "
                            f"got dtype {image.dtype}")
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"images[{i}] must have shape (H, W, 3) or (H, W), "
                             f"got {image.shape}")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError(f"images[{i}] is empty: shape {image.shape}")
        if image.dtype != np.uint8:
            _check_pixel_range(image, i)
        out.append(image)
    return out


def _check_labels(raw, i, num_classes):
    """targets[i]["labels"] as a (K,) int64 array: integers, or floats with
    no fraction (1.0); bools, strings, None and 1.5 are refused, since
    NumPy would turn True and "1" into class 1 without a word."""
    name = f"targets[{i}]['labels']"
    want = f"{name} must be integer class labels in 1..{num_classes}"
    if raw is None:
        raise TypeError(f"{want}, got None (use [] for an image with no objects)")
    try:
        labels = np.asarray(to_numpy(raw))
    except ValueError as exc:  # ragged nested lists
        raise TypeError(f"{want}, got {raw!r:.80} ({exc})") from None
    labels = labels.reshape(-1)
    if labels.size == 0:
        return labels.astype(np.int64)  # [] is float64 to NumPy: no objects
    if labels.dtype.kind not in "iuf":
        raise TypeError(f"{want}, got dtype {labels.dtype}: "
                        f"{labels[:5].tolist()!r:.80}")
    if labels.dtype.kind == "f":
        whole = np.isfinite(labels) & (labels == np.round(labels))
        if not whole.all():
            k = int(np.argmin(whole))
            raise ValueError(f"{want}, got {float(labels[k]):g} at position {k}")
    return labels.astype(np.int64)


def check_targets(targets, images, num_classes):
    """Validate targets against their images (original coordinates).

    Every box must be finite, have positive width and height, and lie inside
    its image; every label must be an integer in 1..num_classes. An image
    with no boxes is valid.

    Returns
    -------
    list of dict
        ``boxes`` (K, 4) float64 and ``labels`` (K,) int64 per image.
    """
    if not isinstance(targets, (list, tuple)) or len(targets) != len(images):
        got = len(targets) if isinstance(targets, (list, tuple)) else type(targets).__name__
        raise ValueError(f"targets must be a list with one dict per image "
                         f"({len(images)}), got {got}")
    out = []
    for i, (target, image) in enumerate(zip(targets, images)):
        if not isinstance(target, dict) or "boxes" not in target or "labels" not in target:
            raise ValueError(f"targets[{i}] must be a dict with 'boxes' and 'labels'")
        boxes = np.asarray(to_numpy(target["boxes"]), dtype=np.float64)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)  # [] is a valid "no objects"
        labels = _check_labels(target["labels"], i, num_classes)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"targets[{i}]['boxes'] must have shape (K, 4), "
                             f"got {boxes.shape}")
        if labels.shape[0] != boxes.shape[0]:
            raise ValueError(f"targets[{i}]: {boxes.shape[0]} boxes but "
                             f"{labels.shape[0]} labels")
        H, W = image.shape[:2]
        for k, (box, label) in enumerate(zip(boxes, labels)):
            x1, y1, x2, y2 = box
            where = f"targets[{i}] box {k} {box.tolist()}"
            if not np.isfinite(box).all():
                raise ValueError(f"{where} has NaN or inf coordinates")
            if not (x2 > x1 and y2 > y1):
                raise ValueError(f"{where} has zero or negative width/height")
            if x1 < 0 or y1 < 0 or x2 > W or y2 > H:
                raise ValueError(f"{where} lies outside the {W}x{H} image")
            if not 1 <= label <= num_classes:
                raise ValueError(f"targets[{i}]['labels'][{k}] is {int(label)}; "
                                 f"labels must be integers in 1..{num_classes}")
        out.append({"boxes": boxes, "labels": labels})
    return out


def preprocess(images, config, xp=None):
    """Resize, normalise and pad a list of raw images (the model's stage 0).

    Parameters
    ----------
    images : list of (H_i, W_i, 3) uint8 or float arrays
        Raw RGB images of any size, pixel values in [0, 255].
    config : Config
        Supplies target_size, max_size, pixel_mean, pixel_std, dtype and
        the stride that the padded size is a multiple of.
    xp : module, optional
        numpy or cupy, where the batch goes (the active backend's if omitted).

    Returns
    -------
    PreprocessedBatch
        ``images`` is (N, 3, Hp, Wp) in ``config.dtype`` on the active backend.
    """
    images = check_images(images)
    xp = xp or array_module()
    # the resize on the host (Pillow), the rest where the batch goes: on a
    # GPU the (uint8) resized pixels cross, then cast, normalise and pad
    # there, with the very float32 arithmetic of the CPU path
    mean = xp.asarray(np.asarray(config.pixel_mean, dtype=np.float32))
    std = xp.asarray(np.asarray(config.pixel_std, dtype=np.float32))
    resized, scales = [], []
    for image in images:
        scale = compute_scale(*image.shape[:2], config.target_size, config.max_size)
        resized.append(_resize(image, scale))
        scales.append(scale)
    stride = config.stride
    Hp = max(r.shape[0] for r in resized)
    Wp = max(r.shape[1] for r in resized)
    Hp, Wp = -(-Hp // stride) * stride, -(-Wp // stride) * stride
    batch = xp.zeros((len(images), 3, Hp, Wp), dtype=config.dtype)
    for n, r in enumerate(resized):
        pixels, (h, w) = xp.asarray(r), r.shape[:2]
        # one channel at a time: broadcast over the last axis (of 3), the
        # same arithmetic ran 4x slower (NumPy's inner loop is 3 elements)
        for c in range(3):
            channel = pixels[:, :, c].astype(np.float32)
            batch[n, c, :h, :w] = (channel - mean[c]) / std[c]
    return PreprocessedBatch(
        images=batch,
        image_sizes=[r.shape[:2] for r in resized],
        original_sizes=[im.shape[:2] for im in images],
        scales=scales)
