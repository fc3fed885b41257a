"""The common dataset interface, targets, subsets and splits.

A detection dataset is indexable: ``image, target = dataset[i]`` with

* ``image``: (H, W, 3) uint8, RGB, as stored (no resizing, no mean
  subtraction: those belong to the model);
* ``target``: a dict with, for ``K`` objects (``K = 0`` is valid),

  - ``"boxes"``: (K, 4) float32, (x1, y1, x2, y2) in continuous pixel
    coordinates (pixel column ``i`` covers [i, i + 1); width = x2 - x1);
  - ``"labels"``: (K,) int64 in 1..C (0 is background);
  - ``"difficult"``: (K,) bool, objects that evaluation ignores (Pascal VOC
    ``difficult``; COCO ``iscrowd`` when a CocoDataset is asked to include
    crowd regions). Training should not use them: see :func:`drop_difficult`;
  - ``"image_id"``: the image's id (int for COCO and the toy datasets, the
    file stem str for VOC).

and ``dataset.class_names`` names labels 1..C: ``class_names[label - 1]``.
"""
import numbers

import numpy

from ..checks import check_non_negative_int, check_probability, check_rng

__all__ = ["DetectionDataset", "Subset", "make_target", "drop_difficult",
           "split_indices"]

_PER_BOX_KEYS = ("boxes", "labels", "difficult")


def make_target(boxes, labels, difficult=None, image_id=None):
    """Build a target dict with the standard dtypes.

    Shapes: ``K`` the number of objects (may be 0).

    Parameters
    ----------
    boxes : (K, 4) array-like of float
        (x1, y1, x2, y2) corners, continuous coordinates.
    labels : (K,) array-like of int
        Class labels in 1..C.
    difficult : (K,) array-like of bool, optional
        Objects evaluation ignores; all False when omitted.
    image_id : int or str, optional
        Stored under ``"image_id"``.

    Returns
    -------
    target : dict
        ``"boxes"`` (K, 4) float32, ``"labels"`` (K,) int64,
        ``"difficult"`` (K,) bool, ``"image_id"``.
    """
    boxes = numpy.asarray(boxes, dtype=numpy.float32).reshape(-1, 4)
    labels = numpy.asarray(labels, dtype=numpy.int64).reshape(-1)
    if difficult is None:
        difficult = numpy.zeros(len(labels), dtype=bool)
    difficult = numpy.asarray(difficult, dtype=bool).reshape(-1)
    if not len(boxes) == len(labels) == len(difficult):
        raise ValueError(
            f"boxes, labels and difficult must have the same length K, got "
            f"{len(boxes)}, {len(labels)} and {len(difficult)}")
    return {"boxes": boxes, "labels": labels, "difficult": difficult,
            "image_id": image_id}


def copy_target(target):
    """A copy of a stored target dict whose arrays (``"boxes"`` (K, 4),
    ``"labels"`` (K,), ``"difficult"`` (K,)) the caller may change: loaders
    keep their parsed targets and hand out copies."""
    return {k: (v.copy() if isinstance(v, numpy.ndarray) else v)
            for k, v in target.items()}


def drop_difficult(target):
    """The target without its difficult (ignored) objects, for training.

    py-faster-rcnn trains without VOC's difficult objects (``use_diff =
    False``) but evaluates with them as "ignore" ground truth; COCO crowd
    regions are handled the same way.

    Shapes: ``K`` objects in, ``K'`` non-difficult objects out.

    Parameters
    ----------
    target : dict
        With ``"boxes"`` (K, 4), ``"labels"`` (K,) and optionally
        ``"difficult"`` (K,) bool.

    Returns
    -------
    target : dict
        A new dict, per-object arrays cut to (K', ...); other keys copied.
    """
    if "difficult" not in target:
        return dict(target)
    keep = ~numpy.asarray(target["difficult"], dtype=bool)
    return {k: (v[keep] if k in _PER_BOX_KEYS else v)
            for k, v in target.items()}


def _check_index(index, length, name="index"):
    if isinstance(index, bool) or not isinstance(index, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(index).__name__}")
    index = int(index)
    if not -length <= index < length:
        raise IndexError(
            f"{name} {index} out of range for a dataset of {length} images")
    return index % length


class DetectionDataset:
    """Base class: subclasses set ``class_names`` and define ``__len__``
    and ``_get(i)`` for ``0 <= i < len(self)``; indexing checks ``i``
    (negative indices count from the end, as for lists)."""

    class_names = ()

    def __len__(self):
        raise NotImplementedError

    def _get(self, index):
        raise NotImplementedError

    def __getitem__(self, index):
        """``(image (H, W, 3) uint8, target dict)`` of image ``index``."""
        return self._get(_check_index(index, len(self)))

    def __iter__(self):
        for i in range(len(self)):
            yield self._get(i)

    @property
    def num_classes(self):
        """``C``, the number of object classes (background not counted)."""
        return len(self.class_names)

    def __repr__(self):
        return (f"{type(self).__name__}({len(self)} images, "
                f"{self.num_classes} classes)")


class Subset(DetectionDataset):
    """The images ``indices`` of ``dataset``, in that order.

    Parameters
    ----------
    dataset : DetectionDataset
        Any indexable dataset with ``class_names``.
    indices : (M,) array-like of int
        Indices into ``dataset`` (negative ones count from the end;
        repeats allowed).
    """

    def __init__(self, dataset, indices):
        self.dataset = dataset
        n = len(dataset)
        flat = numpy.asarray(indices).reshape(-1).tolist()
        self.indices = numpy.array(
            [_check_index(i, n, f"indices[{k}]") for k, i in enumerate(flat)],
            dtype=numpy.int64)
        self.class_names = dataset.class_names

    def __len__(self):
        return len(self.indices)

    def _get(self, index):
        return self.dataset[int(self.indices[index])]


def split_indices(n, val_fraction, rng=None):
    """Randomly split ``range(n)`` into training and validation indices.

    Shapes: ``V = round(n * val_fraction)`` validation images.

    Parameters
    ----------
    n : int
        Number of images.
    val_fraction : float
        Fraction in [0, 1] held out for validation.
    rng : numpy.random.Generator, optional
        Source of the permutation; ``None`` -> ``np.random.default_rng()``.

    Returns
    -------
    train : (n - V,) int64 ndarray
        Sorted training indices.
    val : (V,) int64 ndarray
        Sorted validation indices.
    """
    n = check_non_negative_int(n, "n")
    val_fraction = check_probability(val_fraction, "val_fraction")
    order = check_rng(rng).permutation(n)
    n_val = int(round(n * val_fraction))
    return (numpy.sort(order[n_val:]).astype(numpy.int64),
            numpy.sort(order[:n_val]).astype(numpy.int64))
