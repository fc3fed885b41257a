"""Result records of :func:`average_precision` and :func:`coco_map`."""
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy

__all__ = ["APResult", "COCOResult"]


def _name(label, class_names):
    """Name of ``label``: class_names[label] for a mapping or a sequence
    indexed by label (index 0 being the background, as in
    py-faster-rcnn's ``classes``); the number itself when None."""
    if class_names is None:
        return str(label)
    if isinstance(class_names, Mapping):
        if label not in class_names:
            raise ValueError(f"class_names has no entry for label {label}")
        return str(class_names[label])
    if not 0 <= label < len(class_names):
        raise ValueError(
            f"class_names is indexed by label (index 0 = background) and "
            f"has {len(class_names)} entries, got label {label}")
    return str(class_names[label])


def _table(rows, mean_line, missing, class_names):
    """rows: (label, num_gt, ap) triples; missing: labels without GT."""
    names = [_name(label, class_names) for label, _, _ in rows]
    width = max([len("class"), len(mean_line[0])] + [len(n) for n in names])
    lines = [f"{'class':<{width}}  {'num_gt':>6}  {'AP':>6}"]
    for name, (_, num_gt, ap) in zip(names, rows):
        lines.append(f"{name:<{width}}  {num_gt:>6d}  {ap:>6.4f}")
    lines.append(f"{mean_line[0]:<{width}}  {'':>6}  {mean_line[1]:>6.4f}")
    if missing:
        lines.append("no ground truth (left out of the mean): "
                     + ", ".join(_name(c, class_names) for c in missing))
    return "\n".join(lines)


@dataclass(frozen=True)
class APResult:
    """Average precision of every class at one IoU threshold.

    Shapes: D_c kept (not ignored) detections of class c.

    Attributes
    ----------
    per_class : dict of int -> float
        AP of each class that has at least one non-difficult ground truth.
    map : float
        Mean of ``per_class`` over those classes.
    precision, recall : dict of int -> ndarray, (D_c,) float64
        The raw PR curve of each class in ``per_class`` (before the
        envelope), detections in descending score order, ignored ones
        (and for "coco101" those past the 100-per-image cap) left out.
        For plotting.
    num_gt : dict of int -> int
        Non-difficult ground truths of every class seen in detections or
        ground truths (0 for the classes in ``classes_without_gt``).
    classes_without_gt : tuple of int
        Classes seen only in detections (or only as difficult boxes): AP is
        undefined (no positives), so they are left out of ``per_class``
        and of the mean, as COCOeval does (precision -1, skipped).
    method : str
        "voc07", "area" or "coco101".
    iou_threshold : float
    """
    per_class: dict
    map: float
    precision: dict = field(repr=False)
    recall: dict = field(repr=False)
    num_gt: dict
    classes_without_gt: tuple
    method: str
    iou_threshold: float

    def table(self, class_names=None):
        """A text table: one row per class (name, num_gt, AP), then mAP.

        Parameters
        ----------
        class_names : dict or sequence of str, optional
            Label -> name; a sequence is indexed by label, so its entry 0
            is the background. Labels are printed when None.

        Returns
        -------
        str
        """
        rows = [(c, self.num_gt[c], ap) for c, ap in self.per_class.items()]
        mean = (f"mAP ({self.method}, IoU {self.iou_threshold:g})", self.map)
        return _table(rows, mean, self.classes_without_gt, class_names)


@dataclass(frozen=True)
class COCOResult:
    """COCO-style AP averaged over IoU thresholds (``COCOeval.stats[0]``).

    Shapes: T IoU thresholds.

    Attributes
    ----------
    map : float
        Mean over classes with ground truth of ``per_class`` (the AP
        averaged over the T thresholds): COCO's AP@[.50:.95].
    map50, map75 : float or None
        Mean over classes of the "coco101" AP at IoU 0.5 / 0.75; None when
        that threshold is not among ``iou_thresholds``.
    per_class : dict of int -> float
        Each class's AP averaged over the thresholds.
    per_threshold : dict of int -> ndarray, (T,) float64
        Each class's "coco101" AP at every threshold.
    iou_thresholds : ndarray, (T,) float64
    num_gt : dict of int -> int
    classes_without_gt : tuple of int
        As in :class:`APResult`.
    """
    map: float
    map50: object
    map75: object
    per_class: dict
    per_threshold: dict = field(repr=False)
    iou_thresholds: numpy.ndarray = field(repr=False)
    num_gt: dict
    classes_without_gt: tuple

    def table(self, class_names=None):
        """A text table of AP@[.50:.95] per class, then mAP@0.5/0.75;
        ``class_names`` as in :meth:`APResult.table`."""
        rows = [(c, self.num_gt[c], ap) for c, ap in self.per_class.items()]
        low, high = self.iou_thresholds.min(), self.iou_thresholds.max()
        mean = (f"mAP (coco101, IoU {low:g}:{high:g})", self.map)
        text = _table(rows, mean, self.classes_without_gt, class_names)
        extras = [f"mAP@{t}: {v:.4f}" for t, v in
                  (("0.5", self.map50), ("0.75", self.map75)) if v is not None]
        return text + ("\n" + ", ".join(extras) if extras else "")
