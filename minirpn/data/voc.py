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
  (1 <= xmin <= xmax <= width): nothing is clipped.
"""
import math
import os
import xml.etree.ElementTree as ET

from .dataset import DetectionDataset, copy_target, make_target
from .images import read_annotated_image

__all__ = ["VocDataset", "VOC_CLASSES"]

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
               "cat", "chair", "cow", "diningtable", "dog", "horse",
               "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")


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


def _parse_object(obj, where, width, height):
    """(name, [x1, y1, x2, y2] continuous, difficult) of one <object>."""
    name = _text(obj, "name", where)
    xmin, ymin, xmax, ymax = (_number(obj, f"bndbox/{k}", where)
                              for k in ("xmin", "ymin", "xmax", "ymax"))
    for lo, hi, size, axis in ((xmin, xmax, width, "x"),
                               (ymin, ymax, height, "y")):
        if hi < lo:
            raise ValueError(
                f"{where}: field 'bndbox/{axis}max' = {hi:g} is less than "
                f"'bndbox/{axis}min' = {lo:g}")
        if lo < 1 or hi > size:
            raise ValueError(
                f"{where}: fields 'bndbox/{axis}min..{axis}max' = "
                f"{lo:g}..{hi:g} reach outside 1..{size:g} (VOC coordinates "
                f"are 1-based)")
    difficult = obj.find("difficult")
    flag = "0" if difficult is None or difficult.text is None \
        else difficult.text.strip()
    if flag not in ("0", "1"):
        raise ValueError(f"{where}: field 'difficult' must be 0 or 1, "
                         f"got {flag!r}")
    # The ONE conversion from VOC's inclusive 1-based pixel indices.
    return name, [xmin - 1.0, ymin - 1.0, xmax, ymax], flag == "1"


def _parse_xml(path):
    """(filename or None, width, height, objects) of one annotation file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"annotation file not found: {path}")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"{path}: not valid XML: {exc}") from exc
    width = _number(root, "size/width", path, positive=True)
    height = _number(root, "size/height", path, positive=True)
    objects = [_parse_object(obj, f"{path}: object {k}", width, height)
               for k, obj in enumerate(root.findall("object"), start=1)]
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
        A name not in the list raises ValueError naming file and object.
    include_difficult : bool
        Keep difficult objects (flagged in ``target["difficult"]``).
    check_files : bool
        Check at construction that every image file exists; missing files
        are always reported when read.

    Attributes
    ----------
    image_ids : list of str
        The split's ids, in file order.
    paths : list of str
        Resolved image file paths.
    """

    def __init__(self, root, split="trainval", class_names=VOC_CLASSES,
                 include_difficult=True, check_files=True):
        root = self.root = os.fspath(root)
        self.image_ids = _read_split(
            os.path.join(root, "ImageSets", "Main", f"{split}.txt"))
        parsed = [_parse_xml(os.path.join(root, "Annotations", f"{i}.xml"))
                  for i in self.image_ids]
        if class_names is None:
            class_names = sorted({o[0] for _, _, objs in parsed for o in objs})
        self.class_names = tuple(class_names)
        if len(set(self.class_names)) != len(self.class_names) or not all(
                isinstance(n, str) and n for n in self.class_names):
            raise ValueError(f"class_names must be distinct non-empty "
                             f"strings, got {self.class_names!r}")
        label_of = {n: l + 1 for l, n in enumerate(self.class_names)}
        self.paths, self._sizes, self._targets = [], [], []
        for image_id, (filename, size, objects) in zip(self.image_ids, parsed):
            xml = os.path.join(root, "Annotations", f"{image_id}.xml")
            for k, (name, _, _) in enumerate(objects, start=1):
                if name not in label_of:
                    raise ValueError(
                        f"{xml}: object {k}: field 'name' = {name!r} is not "
                        f"one of the {len(label_of)} class names")
            kept = [o for o in objects if include_difficult or not o[2]]
            self._targets.append(make_target(
                [o[1] for o in kept], [label_of[o[0]] for o in kept],
                [o[2] for o in kept], image_id=image_id))
            self.paths.append(os.path.join(
                root, "JPEGImages", filename or f"{image_id}.jpg"))
            self._sizes.append(size)
            if check_files and not os.path.isfile(self.paths[-1]):
                raise FileNotFoundError(
                    f"{xml}: image file not found: {self.paths[-1]}")

    def __len__(self):
        return len(self.image_ids)

    def _get(self, index):
        xml = os.path.join(self.root, "Annotations",
                           f"{self.image_ids[index]}.xml")
        image = read_annotated_image(self.paths[index], self._sizes[index],
                                     xml, "field 'size'")
        return image, copy_target(self._targets[index])
