"""Detection evaluation: per-class average precision and mean AP.

Three methods, one matching rule each, all on continuous IoU (no +1):

========  ==============================  =================================
method    AP from the PR curve            matching
========  ==============================  =================================
voc07     11-point interpolation          VOC devkit (best-IoU box only)
area      area under precision envelope   VOC devkit
coco101   101-point interpolation         COCOeval (best free box, <= 100
                                          detections per image and class)
========  ==============================  =================================

:func:`average_precision` evaluates one IoU threshold;
:func:`coco_map` averages "coco101" over IoU .50:.05:.95 like COCOeval's
AP. Every deliberate difference from the VOC devkit, py-faster-rcnn's
``voc_eval.py`` and pycocotools is listed in the Notes of
:func:`average_precision`.

Modules: :mod:`.inputs` (validation), :mod:`.matching` (TP/FP/ignored per
image), :mod:`.curves` (PR curve and the three AP rules), :mod:`.results`
(result records), :mod:`.mean_ap` (the pipeline), :mod:`.detector`
(:func:`evaluate`: a model's detections on a dataset, scored).
"""
from .mean_ap import COCO_IOU_THRESHOLDS, COCO_MAX_DETECTIONS, \
    METHODS, average_precision, coco_map
from .curves import ap_area, ap_coco101, ap_voc07, pr_curve
from .results import APResult, COCOResult
from .detector import evaluate

__all__ = ["evaluate", "average_precision", "coco_map", "APResult", "COCOResult",
           "METHODS", "COCO_MAX_DETECTIONS", "COCO_IOU_THRESHOLDS",
           "pr_curve", "ap_voc07", "ap_area", "ap_coco101"]
