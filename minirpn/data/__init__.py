"""Datasets: generated toy sets, COCO / VOC loaders, flips, writers.

Every dataset is indexable, ``image, target = dataset[i]``, with ``image``
(H, W, 3) uint8 RGB and ``target`` a dict of ``"boxes"`` (K, 4) float32
(x1, y1, x2, y2) continuous, ``"labels"`` (K,) int64 in 1..C,
``"difficult"`` (K,) bool and ``"image_id"``; ``dataset.class_names``
names labels 1..C. See :mod:`minirpn.data.dataset`; the COCO and VOC
loaders' strict, lenient and checking modes are in
:mod:`minirpn.data.validation`.

Only numpy, scipy and Pillow are needed here; :class:`DigitsDataset` also
needs the optional extra ``minirpn[data]`` (scikit-learn, scikit-image),
imported only when one is built.
"""
from .coco import CocoDataset
from .dataset import (DetectionDataset, Subset, drop_difficult, make_target,
                      split_indices)
from .digits import DIGIT_CLASSES, DigitsDataset, render_digits
from .images import read_image, write_png
from .shapes import SHAPE_CLASSES, ShapesDataset, render_shapes
from .transforms import Compose, RandomHorizontalFlip, hflip
from .validation import LoadReport
from .voc import VOC_CLASSES, VocDataset
from .writing import TOY_DATASETS, make_dataset, write_coco

__all__ = ["DetectionDataset", "Subset", "make_target", "drop_difficult",
           "split_indices", "ShapesDataset", "render_shapes", "SHAPE_CLASSES",
           "DigitsDataset", "render_digits", "DIGIT_CLASSES", "CocoDataset",
           "VocDataset", "VOC_CLASSES", "hflip", "RandomHorizontalFlip",
           "Compose", "read_image", "write_png", "make_dataset", "write_coco",
           "TOY_DATASETS", "LoadReport"]
