"""Writing datasets to disk as COCO JSON + PNG files.

Layout written by :func:`write_coco` (and ``minirpn make-dataset``)::

    out_dir/annotations.json        COCO instances file
    out_dir/images/000000.png       one lossless PNG per image

``file_name`` is ``images/000000.png``, relative to the JSON's folder, so
``CocoDataset(out_dir / "annotations.json")`` reads it back unchanged.
Image ids are the dataset's int ``target["image_id"]`` (the index when it
is missing or not an int, e.g. VOC's str ids), category ids are the labels
1..C, ``bbox`` is [x1, y1, x2 - x1, y2 - y1] and ``area`` the box area
w * h (no masks are stored). Difficult objects are written with
``iscrowd`` 1, the COCO way of saying "ignore".
Files already in ``out_dir`` are overwritten, others left alone.
"""
import json
import numbers
import os

from .digits import DigitsDataset
from .images import write_png
from .shapes import ShapesDataset

__all__ = ["write_coco", "make_dataset", "TOY_DATASETS"]

TOY_DATASETS = {"shapes": ShapesDataset, "digits": DigitsDataset}


def _coco_records(image_id, file_name, image, target, first_ann_id):
    """The ``images`` entry and the ``annotations`` entries of one image."""
    h, w = image.shape[:2]
    record = {"id": image_id, "file_name": file_name, "width": int(w),
              "height": int(h)}
    anns = []
    for k, (box, label, hard) in enumerate(zip(
            target["boxes"].tolist(), target["labels"].tolist(),
            target["difficult"].tolist())):
        x1, y1, x2, y2 = box
        anns.append({"id": first_ann_id + k, "image_id": image_id,
                     "category_id": int(label),
                     "bbox": [x1, y1, x2 - x1, y2 - y1],
                     "area": (x2 - x1) * (y2 - y1), "iscrowd": int(hard)})
    return record, anns


def write_coco(dataset, out_dir, description="", progress=False):
    """Write every image of ``dataset`` as PNG and its targets as COCO JSON.

    Parameters
    ----------
    dataset : DetectionDataset
        Indexable, yielding ``(image (H, W, 3) uint8, target)`` with
        ``"boxes"`` (K, 4), ``"labels"`` (K,) in 1..C, ``"difficult"``
        (K,) bool, and ``class_names`` (C names).
    out_dir : str or os.PathLike
        Created if needed; see the module docstring for the layout.
    description : str
        Stored as ``info.description``.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    json_path : str
        Path of the written ``annotations.json``.
    """
    out_dir = os.fspath(out_dir)
    if len(dataset) == 0:
        raise ValueError("dataset must hold at least one image, got 0")
    os.makedirs(os.path.join(out_dir, "images"), exist_ok=True)
    images, annotations = [], []
    indices = range(len(dataset))
    if progress:
        from tqdm import tqdm
        indices = tqdm(indices, desc="writing images", unit="img")
    for i in indices:
        image, target = dataset[i]
        image_id = target.get("image_id")
        if isinstance(image_id, bool) \
                or not isinstance(image_id, numbers.Integral):
            image_id = i          # COCO ids are ints; VOC's are str stems
        file_name = f"images/{i:06d}.png"
        write_png(os.path.join(out_dir, file_name), image)
        record, anns = _coco_records(image_id, file_name, image, target,
                                     len(annotations) + 1)
        images.append(record)
        annotations.extend(anns)
    categories = [{"id": l, "name": n, "supercategory": "object"}
                  for l, n in enumerate(dataset.class_names, start=1)]
    coco = {"info": {"description": description}, "licenses": [],
            "images": images, "annotations": annotations,
            "categories": categories}
    json_path = os.path.join(out_dir, "annotations.json")
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(coco, f)
    return json_path


def make_dataset(name, out_dir, num_images, seed=0, progress=False):
    """Generate a toy dataset and write it as COCO JSON + PNG files.

    Parameters
    ----------
    name : str
        ``"shapes"`` or ``"digits"`` (the latter needs ``minirpn[data]``).
    out_dir : str or os.PathLike
        Destination folder (layout in the module docstring).
    num_images : int
        Number of images, >= 1.
    seed : int
        Image ``i`` is drawn from ``default_rng([seed, i])``: the same
        arguments write the same files.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    json_path : str
        Path of the written ``annotations.json``.
    """
    if name not in TOY_DATASETS:
        raise ValueError(f"name must be one of {sorted(TOY_DATASETS)}, "
                         f"got {name!r}")
    dataset = TOY_DATASETS[name](num_images, seed=seed)
    return write_coco(dataset, out_dir,
                      description=f"minirpn {name} dataset, {num_images} "
                                  f"images, seed {seed}", progress=progress)
