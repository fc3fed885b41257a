"""COCO "instances" JSON files: user data and the toy datasets on disk.

Documented choices:

* ``bbox`` [x, y, w, h] is already continuous (COCO's convention matches
  ours), so boxes are (x, y, x + w, y + h), no +1 or -1.
* Category ids (any ints, COCO's run 1..90 with gaps) map to contiguous
  labels 1..C in sorted id order; ``label_to_category_id`` and
  ``category_id_to_label`` keep the mapping for writing results back,
  ``class_names`` holds the category names in label order.
* ``iscrowd`` regions are not objects to train on. By default
  (``include_crowd=False``) they are left out of the targets; with
  ``include_crowd=True`` they are kept with ``difficult`` True, which
  evaluation ignores like Pascal VOC's difficult objects (use this for
  evaluation, and :func:`minirpn.data.drop_difficult` before training).
* Images without annotations are kept (no objects is valid).
* Everything is validated when the dataset is built: a malformed record
  raises ValueError naming the file, the record (``annotations[12] (id
  57)``, 0-based list index) and the field. Boxes must have w, h > 0 and lie
  in the image; an overhang of at most 0.01 px is rounding in the file and
  is clipped away. Every image file's header is read (not its pixels) to
  check that it is an image of the size the record gives.
* Real files break those rules with degenerate boxes and boxes past the
  image edge (torchvision's detection reference, ``ConvertCocoPolysToMask``,
  clips and filters them silently): ``clip=True`` clips overhanging boxes to
  the image, ``skip_invalid=True`` leaves out boxes and images that cannot be
  used, and ``report`` says what was done, per reason (see
  :mod:`minirpn.data.validation`). Crowd regions that are left out anyway
  are not checked against the image.
"""
import json
import math
import numbers
import os

from ..checks import check_positive_int
from .dataset import DetectionDataset, copy_target, make_target
from .images import read_annotated_image
from .validation import (CLIP_HINT, OUTSIDE, ZERO_SIZE, RecordPolicy,
                         check_image_file, clip_box)

__all__ = ["CocoDataset"]

_TOLERANCE = 0.01      # px: room for rounding in x + w <= width


def _where(path, section, index, record):
    rid = record.get("id") if isinstance(record, dict) else None
    return f"{path}: {section}[{index}]" + (f" (id {rid})" if rid is not None
                                           else "")


def _field(record, key, where, kind):
    """record[key], which must exist and be an int ("int"), a non-empty
    string ("str") or a positive int ("size")."""
    if not isinstance(record, dict):
        raise ValueError(f"{where}: must be a JSON object, got {record!r}")
    if key not in record:
        raise ValueError(f"{where}: field '{key}' missing")
    check = {"str": _non_empty_string, "int": _int, "size": check_positive_int}[kind]
    try:
        return check(record[key], f"{where}: field '{key}'")
    except TypeError as exc:   # a bad record in a file is a ValueError, whatever its type
        raise ValueError(str(exc)) from None


def _non_empty_string(value, name):
    if not (isinstance(value, str) and value):
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int, got {value!r}")
    return value


def _load_json(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"annotation file not found: {path}")
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: top level must be a JSON object, got "
                         f"{type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"{path}: field '{key}' must be a list, got "
                             f"{data.get(key, 'nothing')!r:.80}")
    for key in ("images", "categories"):
        if not data[key]:
            raise ValueError(f"{path}: field '{key}' is empty (no {key})")
    return data


def _parse_bbox(ann, where):
    """[x, y, w, h] of an annotation: four finite numbers."""
    bbox = ann.get("bbox")
    if "bbox" not in ann:
        raise ValueError(f"{where}: field 'bbox' missing")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(
            isinstance(v, numbers.Real) and not isinstance(v, bool)
            and math.isfinite(v) for v in bbox)):
        raise ValueError(f"{where}: field 'bbox' must be 4 numbers "
                         f"[x, y, w, h], got {bbox!r}")
    return [float(v) for v in bbox]


def _image_box(bbox, where, image, policy):
    """(x1, y1, x2, y2) of a bbox [x, y, w, h], checked against its image
    (clipped, or left out, as ``policy`` says)."""
    x, y, w, h = bbox
    if w <= 0 or h <= 0:
        policy.invalid(ValueError(
            f"{where}: field 'bbox' must have width and height > 0, got "
            f"{bbox!r}"), ZERO_SIZE)
    W, H = image["width"], image["height"]
    box = [x, y, x + w, y + h]
    if x < -_TOLERANCE or y < -_TOLERANCE or x + w > W + _TOLERANCE \
            or y + h > H + _TOLERANCE:
        message = (f"{where}: field 'bbox' {bbox!r} reaches outside its "
                   f"image (width {W}, height {H})")
        if not policy.clip:
            policy.invalid(ValueError(message), OUTSIDE, CLIP_HINT)
        box = clip_box(box, W, H)
        if box[2] <= box[0] or box[3] <= box[1]:
            policy.invalid(ValueError(
                f"{message}: nothing is left inside it"), OUTSIDE)
        policy.clipped(message)
    return clip_box(box, W, H)  # rounding overhangs (< 0.01 px) go


class CocoDataset(DetectionDataset):
    """Images and boxes described by a COCO instances JSON file.

    Parameters
    ----------
    json_path : str or os.PathLike
        The annotation file (``images``, ``annotations``, ``categories``).
    images_dir : str or os.PathLike, optional
        Folder that ``file_name`` is relative to; default: the JSON's own
        folder.
    include_crowd : bool
        Keep ``iscrowd`` regions in the targets, flagged ``difficult``
        (see the module docstring). Default False: left out.
    check_files : bool
        Check at construction that every image file exists and is an image
        of the size its record gives (Pillow reads the header, not the
        pixels); a bad file is otherwise reported when read.
    skip_invalid : bool
        Leave out boxes with zero or negative width or height, boxes outside
        the image, and images whose file is missing, unreadable or of
        another size (with their boxes), instead of raising. Default False.
    clip : bool
        Clip boxes that overhang their image to it instead of raising.
        Default False.
    collect_problems : bool
        Record every problem in ``report.problems`` instead of raising at
        the first one, leaving the bad records out (``minirpn check-data``).

    Attributes
    ----------
    class_names : tuple of str
        Category names, label order (label ``l`` is ``class_names[l - 1]``).
    label_to_category_id, category_id_to_label : dict of int -> int
    image_ids : list of int
        COCO image ids, dataset order (that of the file's ``images``).
    paths : list of str
        Resolved image file paths.
    report : minirpn.data.validation.LoadReport
        What ``skip_invalid`` and ``clip`` left out or changed, per reason.
    """

    def __init__(self, json_path, images_dir=None, include_crowd=False,
                 check_files=True, skip_invalid=False, clip=False,
                 collect_problems=False):
        path = self.json_path = os.fspath(json_path)
        self._policy = RecordPolicy(skip_invalid, clip, collect_problems)
        self.report = self._policy.report
        data = _load_json(path)
        images_dir = os.path.dirname(path) if images_dir is None \
            else os.fspath(images_dir)
        self._parse_categories(data["categories"])
        self._parse_images(data["images"], images_dir)
        self._parse_annotations(data["annotations"], bool(include_crowd))
        if check_files:
            self._check_files()

    def _check_files(self):
        """Header of every image file; the images that fail are left out
        (``skip_invalid``) or reported, or the first one raises."""
        policy, keep = self._policy, []
        missing = [i for i, p in enumerate(self.paths) if not os.path.isfile(p)]
        if missing and not (policy.skip_invalid or policy.collect):
            i, more = missing[0], len(missing) - 1
            raise FileNotFoundError(
                f"{self._where_image(i)}: field 'file_name': image file not "
                f"found: {self.paths[i]}" + (f" (and {more} more)" if more
                                             else "")
                + "; pass skip_invalid=True (minirpn: --skip-invalid) to "
                "leave such images out")
        for i in range(len(self._images)):
            with policy.record():
                check_image_file(policy, *self._annotated_file(i))
                keep.append(i)
        if len(keep) < len(self._images):
            for name in ("_images", "image_ids", "paths", "_targets"):
                setattr(self, name, [getattr(self, name)[i] for i in keep])

    def _parse_categories(self, categories):
        names = {}
        for k, cat in enumerate(categories):
            with self._policy.record():
                where = _where(self.json_path, "categories", k, cat)
                cid = _field(cat, "id", where, "int")
                if cid in names:
                    raise ValueError(f"{where}: field 'id' repeats category "
                                     f"id {cid}")
                names[cid] = _field(cat, "name", where, "str")
        ids = sorted(names)
        self.label_to_category_id = {l + 1: c for l, c in enumerate(ids)}
        self.category_id_to_label = {c: l + 1 for l, c in enumerate(ids)}
        self.class_names = tuple(names[c] for c in ids)

    def _parse_images(self, images, images_dir):
        self._images, self.image_ids, self.paths, index = [], [], [], {}
        self._reported_ids = set()  # images left out with a problem
        for k, img in enumerate(images):
            with self._policy.record():
                where = _where(self.json_path, "images", k, img)
                iid = _field(img, "id", where, "int")
                self._reported_ids.add(iid)
                if iid in index:
                    raise ValueError(f"{where}: field 'id' repeats image id "
                                     f"{iid}")
                record = {"id": iid, "index": k,
                          "file_name": _field(img, "file_name", where, "str"),
                          "width": _field(img, "width", where, "size"),
                          "height": _field(img, "height", where, "size")}
                index[iid] = len(self._images)
                self._images.append(record)
                self.image_ids.append(iid)
                self.paths.append(os.path.join(images_dir,
                                               record["file_name"]))
        self._image_index = index
        self._reported_ids -= set(index)

    def _parse_annotations(self, annotations, include_crowd):
        per_image = [([], [], []) for _ in self._images]
        for k, ann in enumerate(annotations):
            with self._policy.record():
                self._parse_annotation(k, ann, include_crowd, per_image)
        self._targets = [make_target(*t, image_id=self.image_ids[i])
                         for i, t in enumerate(per_image)]

    def _parse_annotation(self, k, ann, include_crowd, per_image):
        where = _where(self.json_path, "annotations", k, ann)
        iid = _field(ann, "image_id", where, "int")
        if iid in self._reported_ids:
            return  # its image's problem is reported (checking mode)
        if iid not in self._image_index:
            raise ValueError(f"{where}: field 'image_id' refers to no "
                             f"image: {iid}")
        cid = _field(ann, "category_id", where, "int")
        if cid not in self.category_id_to_label:
            raise ValueError(f"{where}: field 'category_id' refers to no "
                             f"category: {cid}")
        crowd = ann.get("iscrowd", 0)
        if crowd not in (0, 1) or isinstance(crowd, float):
            raise ValueError(f"{where}: field 'iscrowd' must be 0 or 1, "
                             f"got {crowd!r}")
        i = self._image_index[iid]
        bbox = _parse_bbox(ann, where)
        if crowd and not include_crowd:
            return  # left out anyway, so its geometry does not matter
        box = _image_box(bbox, where, self._images[i], self._policy)
        boxes, labels, difficult = per_image[i]
        boxes.append(box)
        labels.append(self.category_id_to_label[cid])
        difficult.append(bool(crowd))

    def _where_image(self, i):
        record = self._images[i]
        return _where(self.json_path, "images", record["index"], record)

    def __len__(self):
        return len(self._images)

    def _annotated_file(self, index):
        """(path, (H, W) as annotated, where, what gives the size)."""
        record = self._images[index]
        return (self.paths[index], (record["height"], record["width"]),
                self._where_image(index), "the record")

    def _get(self, index):
        image = read_annotated_image(*self._annotated_file(index))
        return image, copy_target(self._targets[index])
