"""From the head's outputs to final detections (Fast R-CNN section 3;
py-faster-rcnn's ``lib/fast_rcnn/test.py``).

1. softmax over the C + 1 class scores of each RoI;
2. decode each class's deltas against the RoI (undoing the box-std
   normalisation of the targets) and clip to the image;
3. drop the background column and every (RoI, class) scoring at most the
   score threshold (0.05), and boxes that collapsed to zero size;
4. per-class NMS at 0.3;
5. keep the highest-scoring ``max_detections`` (100).
"""
from .backend import get_array_module
from .ops import (batched_nms, clip_boxes, decode_boxes, remove_small_boxes,
                  stds_to_weights)

__all__ = ["class_probabilities", "class_boxes", "postprocess_detections"]


def class_probabilities(class_scores):
    """Row-wise softmax of (R, K) scores; returns (R, K) of the same dtype."""
    xp = get_array_module(class_scores)
    z = class_scores - class_scores.max(axis=1, keepdims=True)
    e = xp.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def class_boxes(rois, box_deltas, image_size, box_stds):
    """Class-specific boxes for every RoI.

    Parameters
    ----------
    rois : (R, 4) float
    box_deltas : (R, 4 K) float
        The head's normalised deltas.
    image_size : (int, int)
        (H, W) the boxes are clipped to.
    box_stds : 4 floats
        The stds the training targets were divided by.

    Returns
    -------
    (R, K, 4) float, the dtype of ``rois``
    """
    xp = get_array_module(rois)
    R, K = rois.shape[0], box_deltas.shape[1] // 4
    reference = xp.repeat(rois, K, axis=0)
    boxes = decode_boxes(reference, box_deltas.reshape(R * K, 4).astype(rois.dtype),
                         weights=stds_to_weights(box_stds))
    return clip_boxes(boxes, image_size).reshape(R, K, 4)


def postprocess_detections(class_scores, box_deltas, rois, image_size,
                           box_stds, score_threshold=0.05, nms_threshold=0.3,
                           max_detections=100):
    """Final detections of one image, in the network's coordinates.

    Parameters
    ----------
    class_scores : (R, K) float
        Head logits, K = C + 1 with column 0 the background.
    box_deltas : (R, 4 K) float
    rois : (R, 4) float
        The proposals the head saw.
    image_size : (int, int)
        (H, W) of the resized image.
    box_stds : 4 floats
    score_threshold, nms_threshold : float
    max_detections : int

    Returns
    -------
    dict
        ``boxes`` (D, 4) float, ``scores`` (D,) float, ``labels`` (D,) int64
        in 1..C, sorted by score (descending).
    """
    xp = get_array_module(class_scores)
    R, K = class_scores.shape
    probs = class_probabilities(class_scores)[:, 1:]              # (R, C)
    boxes = class_boxes(rois, box_deltas, image_size, box_stds)[:, 1:]
    labels = xp.broadcast_to(xp.arange(1, K, dtype=xp.int64), (R, K - 1))
    boxes, probs, labels = boxes.reshape(-1, 4), probs.reshape(-1), labels.reshape(-1)
    keep = xp.flatnonzero(probs > score_threshold)
    boxes, probs, labels = boxes[keep], probs[keep], labels[keep]
    keep = remove_small_boxes(boxes, 1e-2)
    boxes, probs, labels = boxes[keep], probs[keep], labels[keep]
    keep = batched_nms(boxes, probs, labels, nms_threshold)[:max_detections]
    return {"boxes": boxes[keep], "scores": probs[keep], "labels": labels[keep]}
