"""Box geometry: IoU, NMS and box coding, compiled with numba on the CPU.

Boxes are float (x1, y1, x2, y2) in continuous coordinates (width = x2 - x1,
no +1). Every op validates its boxes with :func:`check_boxes` and returns
arrays in the dtype of its input. :mod:`minirpn.ops.reference` holds the
plain-loop definitions of IoU and NMS (``box_iou_reference``,
``nms_reference``) that the fast numba versions are tested to match.
"""
from .box_coder import BBOX_XFORM_CLIP, decode_boxes, encode_boxes, stds_to_weights
from .boxes import box_area, box_iou, check_boxes, check_positive_area, clip_boxes, \
    remove_small_boxes
from .nms import batched_nms, nms
from .reference import box_iou_reference, nms_reference, pair_iou_reference

__all__ = ["check_boxes", "check_positive_area", "box_area", "box_iou", "clip_boxes",
           "remove_small_boxes", "nms", "batched_nms", "encode_boxes",
           "decode_boxes", "stds_to_weights", "BBOX_XFORM_CLIP",
           "pair_iou_reference", "box_iou_reference", "nms_reference"]
