"""Pascal VOC folders: ``Annotations/*.xml``, ``JPEGImages/``,
``ImageSets/Main/{split}.txt``.

Coordinates: VOC's ``xmin..xmax`` are INCLUSIVE, 1-based pixel indices (a
box one pixel wide has xmin == xmax). In our continuous, 0-based
coordinates pixel ``i`` (1-based) covers [i - 1, i), so::

    x1 = xmin - 1,   x2 = xmax      (width = xmax - xmin + 1 = x2 - x1)

and the same for y. This module is the ONE place in minirpn that converts
(py-faster-rcnn subtracts 1 from all four and then adds +1 to widths
everywhere; we do neither).

Documented choices:

* ``difficult`` objects are kept by default, flagged in
  ``target["difficult"]``: evaluation ignores them (VOC rule), training
  should drop them (:func:`minirpn.data.drop_difficult`, as
  py-faster-rcnn's ``use_diff = False``). ``include_difficult=False``
  leaves them out altogether.
* The image file is the XML's ``<filename>`` in ``JPEGImages/`` (``{id}.jpg``
  when absent).
* All XML files of the split are parsed when the dataset is built; a
  malformed one raises ValueError naming the file, the object (counted
  from 1, in file order) and the field. Boxes must lie in the image
  (1 <= xmin <= xmax <= width), and every image file's header is read to
  check its size against ``<size>``.
* A 0 in ``xmin``/``ymin`` (files written by 0-based tools) is a box that
  starts one pixel left of the image in VOC's 1-based convention: it is
  refused by default, and ``clip=True`` clips it to the first pixel
  (x1 = 0), reported like every clipped box. We do not guess that a whole
  file is 0-based: its ``xmax`` may be right either way.
* ``clip``, ``skip_invalid`` and ``report`` work as for COCO (see
  :mod:`minirpn.data.validation`); ``skip_invalid`` also leaves out objects
  whose name is not one of ``class_names``.
"""
import math
import os
import xml.etree.ElementTree as ET

from .dataset import DetectionDataset, copy_target, make_target
from .images import read_annotated_image
from .validation import (CLIP_HINT, OUTSIDE, UNKNOWN_CLASS, ZERO_SIZE,
                         RecordPolicy, check_image_file, clip_box)

__all__ = ["VocDataset", "VOC_CLASSES"]

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
               "cat", "chair", "cow", "diningtable", "dog", "horse",
               "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")


_CLASSES_HINT = ("pass class_names=[...] or None for the names found in the "
                 "annotations (minirpn: --classes NAMES|FILE|found), or "
                 "skip_invalid=True (--skip-invalid) to leave such objects out")


def _text(node, key, where):
    child = node.find(key)
    if child is None or child.text is None or not child.text.strip():
        raise ValueError(f"{where}: field '{key}' missing")
    return child.text.strip()


def _number(node, key, where, positive=False):
    text = _text(node, key, where)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or (positive and value <= 0):
        kind = "a positive number" if positive else "a number"
        raise ValueError(f"{where}: field '{key}' must be {kind}, "
                         f"got {text!r}")
    return value


def _parse_object(obj, where, width, height, policy):
    """(name, [x1, y1, x2, y2] continuous, difficult) of one <object>."""
    name = _text(obj, "name", where)
    xmin, ymin, xmax, ymax = (_number(obj, f"bndbox/{k}", where)
                              for k in ("xmin", "ymin", "xmax", "ymax"))
    difficult = obj.find("difficult")
    flag = "0" if difficult is None or difficult.text is None \
        else difficult.text.strip()
    if flag not in ("0", "1"):
        raise ValueError(f"{where}: field 'difficult' must be 0 or 1, "
                         f"got {flag!r}")
    for lo, hi, axis in ((xmin, xmax, "x"), (ymin, ymax, "y")):
        if hi < lo:
            policy.invalid(ValueError(
                f"{where}: field 'bndbox/{axis}max' = {hi:g} is less than "
                f"'bndbox/{axis}min' = {lo:g}"), ZERO_SIZE)
    # The ONE conversion from VOC's inclusive 1-based pixel indices.
    box = [xmin - 1.0, ymin - 1.0, xmax, ymax]
    outside = [f"fields 'bndbox/{axis}min..{axis}max' = {lo:g}..{hi:g} "
               f"reach outside 1..{size:g}"
               for lo, hi, size, axis in ((xmin, xmax, width, "x"),
                                          (ymin, ymax, height, "y"))
               if lo < 1 or hi > size]
    if outside:
        zero = " (VOC coordinates are 1-based: a 0 comes from a 0-based " \
            "tool)" if min(xmin, ymin) == 0 else ""
        message = f"{where}: {', '.join(outside)}{zero}"
        if not policy.clip:
            policy.invalid(ValueError(message), OUTSIDE, CLIP_HINT)
        box = clip_box(box, width, height)
        if box[2] <= box[0] or box[3] <= box[1]:
            policy.invalid(ValueError(f"{message}: nothing is left inside "
                                      f"it"), OUTSIDE)
        policy.clipped(message)
    return name, box, flag == "1"


def _parse_objects(root, path, width, height, policy):
    """The <object>s of one file that ``policy`` keeps."""
    objects = []
    for k, obj in enumerate(root.findall("object"), start=1):
        with policy.record():
            objects.append(_parse_object(obj, f"{path}: object {k}", width,
                                         height, policy) + (k,))
    return objects


def _parse_xml(path, policy):
    """(filename or None, (height, width), objects) of one annotation file;
    objects are (name, box, difficult, number in the file)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"annotation file not found: {path}")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"{path}: not valid XML: {exc}") from exc
    width = _number(root, "size/width", path, positive=True)
    height = _number(root, "size/height", path, positive=True)
    objects = _parse_objects(root, path, width, height, policy)
    filename = root.find("filename")
    filename = None if filename is None or not (filename.text or "").strip() \
        else filename.text.strip()
    return filename, (int(height), int(width)), objects


def _read_split(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"split file not found: {path}")
    with open(path, encoding="utf-8") as f:
        ids = [line.split()[0] for line in f if line.strip()]
    if not ids:
        raise ValueError(f"{path}: no image ids (empty split)")
    return ids


class VocDataset(DetectionDataset):
    """A Pascal VOC style dataset (see the module docstring).

    Parameters
    ----------
    root : str or os.PathLike
        Folder holding ``Annotations``, ``JPEGImages``, ``ImageSets``
        (e.g. ``VOCdevkit/VOC2007``).
    split : str
        Reads ``ImageSets/Main/{split}.txt`` (one image id per line).
    class_names : sequence of str or None
        Label ``l`` is ``class_names[l - 1]``; default the 20 VOC classes.
        ``None``: the sorted set of names found in the split's annotations.
        A name not in the list raises ValueError naming file and object
        (``skip_invalid=True`` leaves such objects out instead).
    include_difficult : bool
        Keep difficult objects (flagged in ``target["difficult"]``).
    check_files : bool
        Check at construction that every image file exists and is an image
        of the size its XML gives (Pillow reads the header, not the
        pixels); a bad file is otherwise reported when read.
    skip_invalid, clip, collect_problems : bool
        As for :class:`~minirpn.data.CocoDataset`: leave out unusable boxes,
        objects and images; clip overhanging boxes (and 0-based 0s) to the
        image; record every problem instead of raising. Default False.

    Attributes
    ----------
    image_ids : list of str
        The split's ids, in file order.
    paths : list of str
        Resolved image file paths.
    report : minirpn.data.validation.LoadReport
        What ``skip_invalid`` and ``clip`` left out or changed, per reason.
    """

    def __init__(self, root, split="trainval", class_names=VOC_CLASSES,
                 include_difficult=True, check_files=True, skip_invalid=False,
                 clip=False, collect_problems=False):
        root = self.root = os.fspath(root)
        policy = self._policy = RecordPolicy(skip_invalid, clip,
                                             collect_problems)
        self.report = policy.report
        parsed = []
        for image_id in _read_split(
                os.path.join(root, "ImageSets", "Main", f"{split}.txt")):
            with policy.record():
                parsed.append((image_id, _parse_xml(self._xml(image_id),
                                                    policy)))
        if class_names is None:
            class_names = sorted({o[0] for _, (_, _, objs) in parsed
                                  for o in objs})
        self.class_names = tuple(class_names)
        if len(set(self.class_names)) != len(self.class_names) or not all(
                isinstance(n, str) and n for n in self.class_names):
            raise ValueError(f"class_names must be distinct non-empty "
                             f"strings, got {self.class_names!r}")
        self._label_of = {n: l + 1 for l, n in enumerate(self.class_names)}
        self.image_ids, self.paths, self._sizes, self._targets = [], [], [], []
        for image_id, (filename, size, objects) in parsed:
            with policy.record():
                self._add_image(image_id, filename, size, objects,
                                include_difficult, check_files)

    def _xml(self, image_id):
        return os.path.join(self.root, "Annotations", f"{image_id}.xml")

    def _known_objects(self, xml, objects):
        """The objects whose name is a class name (others: policy.invalid)."""
        kept = []
        for name, box, difficult, k in objects:
            with self._policy.record():
                if name not in self._label_of:
                    self._policy.invalid(ValueError(
                        f"{xml}: object {k}: field 'name' = {name!r} is not "
                        f"one of the {len(self.class_names)} class names"),
                        UNKNOWN_CLASS, _CLASSES_HINT)
                kept.append((name, box, difficult))
        return kept

    def _add_image(self, image_id, filename, size, objects, include_difficult,
                   check_files):
        xml = self._xml(image_id)
        path = os.path.join(self.root, "JPEGImages",
                            filename or f"{image_id}.jpg")
        kept = [o for o in self._known_objects(xml, objects)
                if include_difficult or not o[2]]
        if check_files:
            check_image_file(self._policy, path, size, xml, "field 'size'")
        self._targets.append(make_target(
            [o[1] for o in kept], [self._label_of[o[0]] for o in kept],
            [o[2] for o in kept], image_id=image_id))
        self.image_ids.append(image_id)
        self.paths.append(path)
        self._sizes.append(size)

    def __len__(self):
        return len(self.image_ids)

    def _annotated_file(self, index):
        """(path, (H, W) as annotated, where, what gives the size)."""
        return (self.paths[index], self._sizes[index],
                self._xml(self.image_ids[index]), "field 'size'")

    def _get(self, index):
        image = read_annotated_image(*self._annotated_file(index))
        return image, copy_target(self._targets[index])
