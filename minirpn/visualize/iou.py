"""Pictures of IoU: pairs of boxes with their overlap, and the max-IoU histogram of a labelling.

Intersection over union is the one number Faster R-CNN uses to compare boxes: anchor labels
(Ren et al. 2015, section 3.1.2: positive at IoU >= 0.7, negative below 0.3), NMS (section
3.3, IoU 0.7) and evaluation (IoU 0.5, PASCAL VOC) all threshold it.
"""
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..anchor_explanations import Reason
from ..backend import to_numpy
from ..checks import check_positive_int
from ..ops import box_iou
from .boxes import IGNORED, NEGATIVE, POSITIVE, _boxes, _field

__all__ = ["plot_iou_pairs", "plot_max_iou_histogram"]

_A, _B = "tab:blue", "tab:orange"


def plot_iou_pairs(pairs, ncols=None, size=3.0):
    """One panel per pair of boxes: both outlines, the intersection filled, the IoU as title.

    Shapes: P pairs.

    Parameters
    ----------
    pairs : sequence of P pairs (a, b), each a 4-sequence (x1, y1, x2, y2), any float
        Boxes in one coordinate frame (continuous, width = x2 - x1). y grows downwards,
        as in an image.
    ncols : int, optional
        Panels per row; all P in one row when None.
    size : float
        Side of one panel in inches.

    Returns
    -------
    Figure with P axes, titled ``"IoU 0.50"`` (two decimals, from :func:`minirpn.ops.box_iou`)
    """
    pairs = list(pairs)
    if not pairs:
        raise ValueError("pairs must hold at least one pair of boxes, got none")
    boxes = _boxes(np.asarray([b for pair in pairs for b in pair], dtype=np.float64)
                   .reshape(-1, 4), "pairs")
    if len(boxes) != 2 * len(pairs):
        raise ValueError(f"pairs must be pairs (a, b) of 4 numbers, got {len(boxes)} boxes "
                         f"for {len(pairs)} pairs")
    ncols = len(pairs) if ncols is None else check_positive_int(ncols, "ncols")
    nrows = -(-len(pairs) // ncols)
    fig = Figure(figsize=(size * ncols, size * nrows), layout="constrained")
    lo, hi = boxes[:, :2].min(axis=0), boxes[:, 2:].max(axis=0)
    margin = 0.05 * (hi - lo).max()
    for k in range(len(pairs)):
        a, b = boxes[2 * k], boxes[2 * k + 1]
        ax = fig.add_subplot(nrows, ncols, k + 1)
        iou = float(box_iou(a[None], b[None])[0, 0])
        x1, y1 = np.maximum(a[:2], b[:2])
        x2, y2 = np.minimum(a[2:], b[2:])
        if x2 > x1 and y2 > y1:
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, color="tab:purple", alpha=0.35,
                                   label="intersection"))
        for box, color, name in ((a, _A, "a"), (b, _B, "b")):
            ax.add_patch(Rectangle(box[:2], *(box[2:] - box[:2]), fill=False, edgecolor=color,
                                   linewidth=2, label=name))
        ax.set_xlim(lo[0] - margin, hi[0] + margin)
        ax.set_ylim(hi[1] + margin, lo[1] - margin)
        ax.set_aspect("equal")
        ax.set_title(f"IoU {iou:.2f}")
        ax.tick_params(labelsize=7)
    fig.axes[0].legend(fontsize=7, loc="lower left")
    return fig


def plot_max_iou_histogram(anchor_labels, bins=40, ax=None):
    """Histogram of each anchor's best IoU with a GT box, with the two thresholds marked.

    Anchors crossing the border are left out (they get no IoU, rule 1). Bars are coloured
    by the threshold rules: red below ``negative_iou`` (negative), grey between (ignored),
    green at or above ``positive_iou`` (positive). The y axis is logarithmic: negatives
    outnumber positives by orders of magnitude. Anchors made positive only as a GT's best
    anchor (rule 4, below ``positive_iou``) are counted in the legend.

    Parameters
    ----------
    anchor_labels : AnchorLabels, or ``trace["anchor_labels"]``
        Reads ``max_iou`` (A,), ``reason_before_sampling`` (A,) int8 and ``config``.
    bins : int
        Number of bins over [0, 1].
    ax : Axes, optional

    Returns
    -------
    Figure
    """
    if not hasattr(anchor_labels, "explain"):
        anchor_labels = _field(anchor_labels, "result", "anchor_labels")
    bins = check_positive_int(bins, "bins")
    reason = to_numpy(anchor_labels.reason_before_sampling)
    max_iou = to_numpy(anchor_labels.max_iou).astype(np.float64)[reason != Reason.CROSSED_BORDER]
    neg, pos = anchor_labels.config.negative_iou, anchor_labels.config.positive_iou
    if ax is None:
        fig = Figure(figsize=(7, 3.2), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts, _ = np.histogram(max_iou, edges)
    centres = (edges[:-1] + edges[1:]) / 2
    colors = np.where(centres < neg, NEGATIVE, np.where(centres < pos, IGNORED, POSITIVE))
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=colors,
           edgecolor="white", linewidth=0.5)
    rescued = int(np.count_nonzero(reason == Reason.POSITIVE_AS_BEST_ANCHOR))
    ax.axvline(neg, color=NEGATIVE, linestyle="--", label=f"negative below {neg:g}")
    ax.axvline(pos, color=POSITIVE, linestyle="--", label=f"positive from {pos:g}")
    ax.plot([], [], " ", label=f"{rescued} positive as a GT's best anchor (< {pos:g})")
    if counts.any():
        ax.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.set_xlabel("max IoU of the anchor over the GT boxes")
    ax.set_ylabel("anchors")
    ax.set_title(f"{len(max_iou)} anchors inside the image", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    return fig
