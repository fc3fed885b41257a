"""Pictures of how well anchors cover a dataset's GT boxes (``minirpn inspect-anchors``).

They take a :class:`minirpn.inspect.Coverage` (duck-typed: only its arrays
are read): the histogram of each GT box's best IoU with the two thresholds
of the anchor target layer (Ren et al. 2015, section 3.1.2); the boxes'
widths and heights on log axes with the anchor shapes over them; and a
gallery of the worst-covered boxes, each on its image with its best anchor.
"""
import numpy as np
from matplotlib.figure import Figure

from ..backend import to_numpy
from ..anchors import base_anchors
from .boxes import GT, NEGATIVE, POSITIVE, _mapped, _show_image, draw_boxes

__all__ = ["plot_best_iou_histogram", "plot_box_shapes", "plot_worst_covered"]


def plot_best_iou_histogram(coverage, bins=40, ax=None):
    """Histogram of the GT boxes' best IoU, thresholds marked.

    Parameters
    ----------
    coverage : Coverage
        Its ``best_iou`` (K,) and ``config`` (the thresholds).
    bins : int
    ax : Axes, optional

    Returns
    -------
    Figure
    """
    best, c = np.asarray(coverage.best_iou, dtype=np.float64), coverage.config
    fig = ax.figure if ax is not None else Figure(figsize=(6.5, 3.6), layout="constrained")
    ax = ax or fig.add_subplot()
    ax.hist(best, bins=bins, range=(0, 1), color="#4c72b0")
    for t, color, name in ((c.rpn_negative_iou, NEGATIVE, "negative"),
                           (c.rpn_positive_iou, POSITIVE, "positive")):
        ax.axvline(t, color=color, linewidth=2, label=f"{name} threshold {t:g}")
    ax.set_xlabel("best IoU of a GT box with any anchor of its image")
    ax.set_ylabel("GT boxes")
    pos = float((best >= c.rpn_positive_iou).mean())
    ax.set_title(f"{len(best)} GT boxes: {100 * pos:.1f}% reach {c.rpn_positive_iou:g}, "
                 f"median {np.median(best):.2f}", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def plot_box_shapes(coverage, max_points=20000, ax=None):
    """GT widths and heights (network pixels, log axes), coloured by best IoU, anchors over them.

    Parameters
    ----------
    coverage : Coverage
        Its ``network_boxes`` (K, 4), ``best_iou`` (K,) and ``config``.
    max_points : int
        At most this many boxes are drawn (evenly spaced).
    ax : Axes, optional

    Returns
    -------
    Figure
    """
    c = coverage.config
    boxes = np.asarray(coverage.network_boxes, dtype=np.float64)
    best = np.asarray(coverage.best_iou, dtype=np.float64)
    if len(boxes) > max_points:
        keep = np.linspace(0, len(boxes) - 1, max_points).round().astype(int)
        boxes, best = boxes[keep], best[keep]
    fig = ax.figure if ax is not None else Figure(figsize=(6, 5), layout="constrained")
    ax = ax or fig.add_subplot()
    art = ax.scatter(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1], c=best, s=6,
                     cmap="viridis", vmin=0, vmax=1, alpha=0.7, linewidths=0)
    fig.colorbar(art, ax=ax, label="best IoU")
    base = to_numpy(base_anchors(c.stride, c.anchor_scales, c.anchor_ratios, dtype="float64"))
    ax.scatter(base[:, 2] - base[:, 0], base[:, 3] - base[:, 1], marker="x", s=80,
               color="red", linewidths=2, label="anchor shapes")
    ax.set_xscale("log"), ax.set_yscale("log")
    ax.set_xlabel("width (network pixels)"), ax.set_ylabel("height (network pixels)")
    ax.set_title(f"GT boxes and the {len(base)} anchor shapes (scales "
                 f"{list(c.anchor_scales)}, ratios {list(c.anchor_ratios)})", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    return fig


def plot_worst_covered(coverage, dataset, count=12, ncols=4):
    """The ``count`` worst-covered GT boxes, each on its image with its best anchor.

    Reads the pixels of their images. GT dashed white, best anchor solid
    (green at or above the positive threshold, red below the negative one,
    yellow between), both in original pixels.

    Parameters
    ----------
    coverage : Coverage
        Its ``best_iou`` (K,), ``image_index`` (K,), ``gt_boxes`` (K, 4),
        ``best_anchor_box`` (K, 4), ``network_size`` (N, 2), ``config``.
    dataset : DetectionDataset
        The dataset the coverage was computed on (``dataset[i]`` gives image i).
    count, ncols : int

    Returns
    -------
    Figure
    """
    c = coverage.config
    order = np.argsort(coverage.best_iou, kind="stable")[:count]
    nrows = max(1, -(-len(order) // ncols))
    fig = Figure(figsize=(3.2 * ncols, 2.9 * nrows), layout="constrained")
    for n, k in enumerate(order):
        ax = fig.add_subplot(nrows, ncols, n + 1)
        i = int(coverage.image_index[k])
        image = dataset[i][0]
        _show_image(ax, image)
        draw_boxes(ax, None, coverage.gt_boxes[k:k + 1], color=GT, linestyle="--",
                   captions=False)
        best = float(coverage.best_iou[k])
        if np.isfinite(coverage.best_anchor_box[k]).all():
            anchor = _mapped(coverage.best_anchor_box[k:k + 1], coverage.network_size[i],
                             image.shape[:2], "best_anchor_box")
            color = POSITIVE if best >= c.rpn_positive_iou else \
                NEGATIVE if best < c.rpn_negative_iou else "yellow"
            draw_boxes(ax, None, anchor, color=color, captions=False)
        g = coverage.gt_boxes[k]
        # Zoomed on the box and its anchor, with a box-sized margin: small
        # boxes are the usual suspects and vanish in a whole-image view.
        both = np.vstack([g[None], anchor]) if np.isfinite(coverage.best_anchor_box[k]).all() \
            else g[None]
        lo, hi = both[:, :2].min(axis=0), both[:, 2:].max(axis=0)
        pad = max(float((g[2:] - g[:2]).max()), 16.0)
        ax.set_xlim(lo[0] - pad, hi[0] + pad), ax.set_ylim(hi[1] + pad, lo[1] - pad)
        ax.set_title(f"image {i}, box {g[2] - g[0]:.0f}x{g[3] - g[1]:.0f}: "
                     f"IoU {best:.2f}", fontsize=8)
    fig.suptitle("worst-covered GT boxes (dashed) and their best anchors", fontsize=10)
    return fig
