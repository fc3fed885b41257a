"""Validation of the detections and ground truths handed to evaluation.

Detections are the model's per-image dicts (``boxes``, ``scores``,
``labels``); ground truths are the datasets' target dicts (``boxes``,
``labels``, optional ``difficult``). Every array goes through
:func:`minirpn.backend.to_numpy` first, so cupy detections are accepted;
evaluation itself always runs in NumPy, in float64 (it is not a hot path
and float64 keeps precision/recall ratios exact enough to compare with
the reference implementations to 1e-9).
"""
from collections import namedtuple
from collections.abc import Mapping

import numpy

from ..backend import to_numpy
from ..checks import check_array, check_probability, first_bad_row
from ..ops import check_boxes

__all__ = ["Image", "prepare_images", "check_iou_threshold"]

DETECTION_KEYS = ("boxes", "scores", "labels")
TRUTH_KEYS = ("boxes", "labels")

#: One image, validated: detections (K boxes) and ground truths (G boxes).
Image = namedtuple("Image", [
    "det_boxes",     # (K, 4) float64
    "det_scores",    # (K,) float64
    "det_labels",    # (K,) int64, >= 1
    "gt_boxes",      # (G, 4) float64
    "gt_labels",     # (G,) int64, >= 1
    "gt_difficult",  # (G,) bool
])


def check_iou_threshold(value, name="iou_threshold"):
    """Require an IoU threshold in (0, 1]; return it as a float.

    0 is refused: every detection would "match" a ground truth it does not
    even touch (IoU 0 >= 0).
    """
    value = check_probability(value, name)
    if value <= 0.0:
        raise ValueError(f"{name} must lie in (0, 1], got {value!r}")
    return value


def _check_list(x, name):
    if isinstance(x, Mapping) or isinstance(x, (str, bytes)) \
            or not hasattr(x, "__len__") or not hasattr(x, "__getitem__"):
        raise TypeError(
            f"{name} must be a list with one dict per image, "
            f"got {type(x).__name__}")


def _field(entry, key, where, keys):
    if key not in entry:
        raise ValueError(
            f"{where} has no key {key!r} (expected keys {', '.join(keys)})")
    return to_numpy(entry[key])


def _real(x, name):
    """Reject non-numeric dtypes (bool, object, strings) with a TypeError."""
    if x.dtype.kind not in "iuf":
        raise TypeError(
            f"{name} must be a real-valued array, got dtype {x.dtype}")
    return x


def _boxes(x, name):
    _real(x, name)
    return check_boxes(x.astype(numpy.float64), name)


def _labels(x, name, count):
    check_array(x, name, shape=(count,))
    if x.dtype.kind not in "iu":
        raise TypeError(
            f"{name} must be an integer array of class labels 1..C, "
            f"got dtype {x.dtype}")
    bad = first_bad_row(x < 1)
    if bad is not None:
        raise ValueError(
            f"{name} must hold class labels >= 1 (0 is background), "
            f"got {x[bad]} at index {bad}")
    return x.astype(numpy.int64)


def _scores(x, name, count):
    check_array(x, name, shape=(count,))
    x = _real(x, name).astype(numpy.float64)
    bad = first_bad_row(~numpy.isfinite(x))
    if bad is not None:
        raise ValueError(
            f"{name} must be finite, got {x[bad]} at index {bad}")
    return x


def _difficult(entry, name, count):
    if "difficult" not in entry:
        return numpy.zeros(count, dtype=bool)
    x = check_array(to_numpy(entry["difficult"]), name, shape=(count,))
    if x.dtype.kind == "b":
        return x.copy()
    if x.dtype.kind in "iu" and bool(numpy.isin(x, (0, 1)).all()):
        return x.astype(bool)
    raise TypeError(f"{name} must be a bool array (or 0/1 integers), "
                    f"got dtype {x.dtype} with values {numpy.unique(x)}")


def _entry_boxes(entry, where, keys, optional=""):
    """Require ``entry`` to be a dict; return its boxes, (B, 4) float64 (B
    sizes the entry's other arrays). ``optional`` names optional keys in the
    message."""
    if not isinstance(entry, Mapping):
        raise TypeError(f"{where} must be a dict with keys {', '.join(keys)}"
                        f"{optional}, got {type(entry).__name__}")
    return _boxes(_field(entry, "boxes", where, keys), f"{where}['boxes']")


def _detection(entry, i):
    where = f"detections[{i}]"
    boxes = _entry_boxes(entry, where, DETECTION_KEYS)
    count = boxes.shape[0]
    scores = _scores(_field(entry, "scores", where, DETECTION_KEYS),
                     f"{where}['scores']", count)
    labels = _labels(_field(entry, "labels", where, DETECTION_KEYS),
                     f"{where}['labels']", count)
    return boxes, scores, labels


def _truth(entry, i):
    where = f"ground_truths[{i}]"
    boxes = _entry_boxes(entry, where, TRUTH_KEYS,
                         " (and optionally difficult)")
    count = boxes.shape[0]
    labels = _labels(_field(entry, "labels", where, TRUTH_KEYS),
                     f"{where}['labels']", count)
    difficult = _difficult(entry, f"{where}['difficult']", count)
    return boxes, labels, difficult


def prepare_images(detections, ground_truths):
    """Validate both lists and convert every image to an :class:`Image`.

    Shapes (per image): K detections, G ground-truth boxes.

    Parameters
    ----------
    detections : list of dict
        One dict per image: ``boxes`` (K, 4) float, ``scores`` (K,) float,
        ``labels`` (K,) int in 1..C. numpy or cupy arrays (or lists).
    ground_truths : list of dict
        One dict per image: ``boxes`` (G, 4) float, ``labels`` (G,) int in
        1..C, optional ``difficult`` (G,) bool (absent: all False).

    Returns
    -------
    list of Image
        Arrays in float64 / int64 / bool, in image order.

    Raises
    ------
    TypeError
        If a list or an entry has the wrong type, or an array the wrong
        dtype.
    ValueError
        If the lists differ in length, a key is missing, a shape is wrong,
        a score or coordinate is not finite, a box has x2 < x1 or y2 < y1,
        or a label is < 1. The message names the image index and key.
    """
    _check_list(detections, "detections")
    _check_list(ground_truths, "ground_truths")
    if len(detections) != len(ground_truths):
        raise ValueError(
            f"detections and ground_truths must have one entry per image "
            f"each, got {len(detections)} detections and "
            f"{len(ground_truths)} ground_truths")
    return [Image(*_detection(det, i), *_truth(gt, i))
            for i, (det, gt) in enumerate(zip(detections, ground_truths))]
