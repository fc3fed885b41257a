"""Evaluate a detector on a dataset: mean average precision."""
import numpy as np

from .mean_ap import average_precision

__all__ = ["evaluate", "metrics_dict", "label_names"]


def evaluate(model, dataset, method="area", score_threshold=None, batch_size=4,
             iou_threshold=0.5):
    """Run ``model.detect`` over ``dataset`` and compute the mAP.

    Ground truths keep their ``difficult`` flags: difficult objects are
    neither required nor penalised (VOC devkit rule, see
    :func:`minirpn.evaluation.average_precision`).

    Parameters
    ----------
    model : FasterRCNN
    dataset : indexable dataset
        ``dataset[i] -> (image (H, W, 3) uint8, target dict)``.
    method : {"area", "voc07", "coco101"}
    score_threshold : float, optional
        Overrides ``model.config.score_threshold``.
    batch_size : int
        Images per ``detect`` call (memory, not results).
    iou_threshold : float

    Returns
    -------
    APResult
        ``.map``, ``.per_class`` (label -> AP), ``.table()``.
    """
    if len(dataset) == 0:
        raise ValueError("dataset must hold at least one image to evaluate, got 0")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    detections, truths = [], []
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        detections += model.detect([image for image, _ in items],
                                   score_threshold=score_threshold)
        for _, t in items:
            difficult = t.get("difficult", np.zeros(len(t["labels"]), dtype=bool))
            truths.append({"boxes": t["boxes"], "labels": t["labels"],
                           "difficult": difficult})
    return average_precision(detections, truths, iou_threshold=iou_threshold,
                             method=method)


def label_names(class_names, num_classes):
    """Label (1..C) -> name: ``class_names[label - 1]`` (the datasets'
    convention), or the label as a string when ``class_names`` is None."""
    if class_names is None:
        return {c: str(c) for c in range(1, num_classes + 1)}
    if len(class_names) != num_classes:
        raise ValueError(f"class_names must name the {num_classes} classes "
                         f"1..{num_classes}, got {len(class_names)} names")
    return {c: str(class_names[c - 1]) for c in range(1, num_classes + 1)}


def metrics_dict(result, names):
    """JSON-ready dict of an APResult: ``map``, ``per_class`` (name -> AP),
    ``method``, ``iou_threshold``; ``names`` from :func:`label_names`."""
    return {"map": float(result.map),
            "per_class": {names.get(c, str(c)): float(ap)
                          for c, ap in result.per_class.items()},
            "method": result.method, "iou_threshold": float(result.iou_threshold)}
