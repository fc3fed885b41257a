"""A picture of greedy non-maximum suppression: which box suppressed which.

Greedy NMS (Ren et al. 2015, section 3.3; ``torchvision.ops.nms``) walks the boxes by
score: a box not yet suppressed is kept and suppresses every later box whose IoU with it
is greater than the threshold.
"""
import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..backend import to_numpy
from ..ops import box_iou, nms
from .boxes import _boxes, _image, draw_boxes

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


def plot_nms(boxes, scores, iou_threshold, image=None, size=4.0):
    """Two panels: every box with its score, then what NMS kept and what it removed.

    Each box has its own colour in both panels, and a legend entry: ``"#2 0.75"`` on the
    left; on the right a kept box is solid (``"#2 kept"``) and a suppressed one dashed,
    captioned with the box that suppressed it and their IoU, e.g. ``"#3 <- #2 (IoU 0.82)"``.
    Numbers are the boxes' indices in ``boxes``.

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
    fig = Figure(figsize=(3.2 * size, size), layout="constrained")
    axes = [fig.add_subplot(1, 2, k + 1) for k in range(2)]
    if image is not None:
        image = _image(image)
        for ax in axes:
            draw_boxes(ax, image, np.zeros((0, 4)))
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        color = colormaps["tab10"](i % 10)
        axes[0].add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color,
                                    linewidth=1.5, label=f"#{i} {scores[i]:.2f}"))
        kept = by[i] < 0
        axes[1].add_patch(Rectangle(
            (x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color,
            linewidth=2.5 if kept else 1.2, linestyle="-" if kept else "--",
            label=f"#{i} kept" if kept else f"#{i} <- #{by[i]} (IoU {iou[by[i], i]:.2f})"))
    if image is None and len(boxes):
        lo, hi = boxes[:, :2].min(axis=0), boxes[:, 2:].max(axis=0)
        pad = 0.05 * (hi - lo).max()
        for ax in axes:
            ax.set_xlim(lo[0] - pad, hi[0] + pad)
            ax.set_ylim(hi[1] + pad, lo[1] - pad)
            ax.set_aspect("equal")
    for ax in axes:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    n_kept = int(np.count_nonzero(by < 0))
    axes[0].set_title(f"{len(boxes)} boxes: index and score", fontsize=9)
    axes[1].set_title(f"NMS at IoU > {iou_threshold:g}: {n_kept} kept (solid), "
                      f"{len(boxes) - n_kept} suppressed (dashed)", fontsize=9)
    return fig
