"""A dataset's declared image sizes and GT boxes, read without its pixels.

COCO files declare ``width``/``height`` per image and Pascal VOC files
``<size>``: :class:`~minirpn.data.CocoDataset` and
:class:`~minirpn.data.VocDataset` keep them when they parse the annotations,
so no image file is opened. Any other dataset (the generated shapes and
digits, a :class:`~minirpn.data.Subset`) is read image by image. As in
training (py-faster-rcnn's ``use_diff = False``), difficult objects and
COCO crowd regions are left out.
"""
import numpy as np

from ..data import CocoDataset, VocDataset, drop_difficult
from .coverage import Annotations

__all__ = ["read_annotations"]


def read_annotations(dataset):
    """The (H, W) sizes and GT boxes of every image of ``dataset``.

    Shapes: N images, K_i boxes in image i.

    Parameters
    ----------
    dataset : DetectionDataset
        Indexable, ``image, target = dataset[i]``.

    Returns
    -------
    Annotations
        ``sizes`` (N, 2) int64, ``boxes`` N arrays (K_i, 4) float32 in
        original pixels, ``image_ids``.
    """
    if isinstance(dataset, CocoDataset):
        sizes = [(r["height"], r["width"]) for r in dataset._images]
        targets, source = dataset._targets, dataset.json_path
    elif isinstance(dataset, VocDataset):
        sizes, targets, source = dataset._sizes, dataset._targets, dataset.root
    else:
        sizes, targets = [], []
        for image, target in dataset:
            sizes.append(image.shape[:2])
            targets.append(target)
        source = repr(dataset)
    if len(sizes) == 0:
        raise ValueError(f"{source}: the dataset has no images")
    targets = [drop_difficult(t) for t in targets]
    return Annotations(
        sizes=np.asarray(sizes, dtype=np.int64).reshape(-1, 2),
        boxes=[np.asarray(t["boxes"], dtype=np.float32).reshape(-1, 4) for t in targets],
        image_ids=[t.get("image_id", i) for i, t in enumerate(targets)], source=source)
