"""A picture of greedy non-maximum suppression: which box suppressed which.

Greedy NMS (Ren et al. 2015, section 3.3; ``torchvision.ops.nms``) walks the boxes by
score: a box not yet suppressed is kept and suppresses every later box whose IoU with it
is greater than the threshold.
"""
import numpy as np
from matplotlib.figure import Figure

from ..backend import to_numpy
from ..ops import box_iou, nms
from .boxes import NEGATIVE, POSITIVE, _boxes, _image, draw_boxes

__all__ = ["nms_suppressors", "plot_nms"]


def nms_suppressors(boxes, scores, iou_threshold):
    """For each box, the kept box that suppressed it in greedy NMS (-1 if it was kept).

    Shapes: N boxes.

    Parameters
    ----------
    boxes : (N, 4) float32 or float64, (x1, y1, x2, y2)
    scores : (N,) float, same dtype
    iou_threshold : float in [0, 1]

    Returns
    -------
    (N,) int64
        -1 for a kept box; otherwise the index of the highest-scoring kept box whose IoU
        with it is greater than ``iou_threshold`` (the one that removed it first).
    """
    keep = to_numpy(nms(boxes, scores, iou_threshold))     # score order
    boxes = to_numpy(boxes)
    iou = box_iou(boxes, boxes)
    by = np.full(len(boxes), -1, dtype=np.int64)
    kept = np.zeros(len(boxes), dtype=bool)
    kept[keep] = True
    for i in np.flatnonzero(~kept):
        by[i] = next(int(k) for k in keep if iou[k, i] > iou_threshold)
    return by


def plot_nms(boxes, scores, iou_threshold, image=None, size=4.5):
    """Two panels: every box numbered by its score rank, then what NMS kept and removed.

    Kept boxes are drawn solid green; a suppressed box is dashed red and captioned with
    the box that suppressed it and their IoU, e.g. ``"#3 <- #1 (IoU 0.78)"``. Captions use
    the boxes' indices in ``boxes``.

    Shapes: N boxes.

    Parameters
    ----------
    boxes : (N, 4) float32 or float64, (x1, y1, x2, y2) in the image's pixels
    scores : (N,) float, same dtype
    iou_threshold : float in [0, 1]
    image : (H, W, 3) uint8, optional
        Drawn under the boxes; otherwise the view is fitted to the boxes (y down).
    size : float
        Height of a panel in inches.

    Returns
    -------
    Figure with two axes (before, after)
    """
    by = nms_suppressors(boxes, scores, iou_threshold)
    scores = to_numpy(scores).astype(np.float64)
    boxes = _boxes(boxes, "boxes")
    iou = box_iou(boxes, boxes)
    fig = Figure(figsize=(2.2 * size, size), layout="constrained")
    axes = [fig.add_subplot(1, 2, k + 1) for k in range(2)]
    kept = np.flatnonzero(by < 0)
    gone = np.flatnonzero(by >= 0)
    if image is not None:
        image = _image(image)
        for ax in axes:
            draw_boxes(ax, image, np.zeros((0, 4)))
    draw_boxes(axes[0], None, boxes, color="gold",
               captions=[f"#{i} {s:.2f}" for i, s in enumerate(scores)])
    draw_boxes(axes[1], None, boxes[kept], color=POSITIVE, linewidth=2,
               captions=[f"#{i} kept" for i in kept])
    draw_boxes(axes[1], None, boxes[gone], color=NEGATIVE, linestyle="--",
               captions=[f"#{i} <- #{by[i]} (IoU {iou[by[i], i]:.2f})" for i in gone])
    if image is None and len(boxes):
        lo, hi = boxes[:, :2].min(axis=0), boxes[:, 2:].max(axis=0)
        pad = 0.1 * (hi - lo).max()
        for ax in axes:
            ax.set_xlim(lo[0] - pad, hi[0] + pad)
            ax.set_ylim(hi[1] + pad, lo[1] - 2 * pad)
            ax.set_aspect("equal")
    axes[0].set_title(f"{len(boxes)} boxes, index and score", fontsize=9)
    axes[1].set_title(f"NMS at IoU > {iou_threshold:g}: {len(kept)} kept (green), "
                      f"{len(gone)} suppressed (red)", fontsize=9)
    return fig
