"""One figure answering "why is anchor i labelled so?".

The anchor target layer (Ren et al. 2015, section 3.1.2; py-faster-rcnn's
``anchor_target_layer.py``) decides each anchor's label by the first rule
that applies: (1) crossing the image border -> ignored; (2) max IoU below
the negative threshold -> negative; (3) max IoU at or above the positive
threshold -> positive; (4) the best anchor of some GT box -> positive;
(5) sampling may then drop positives and negatives to -1. The figure shows
everything that decision reads: the anchor, the GT box it overlaps most,
the GT box it is the best anchor of (when that is another one), the image
border with its ``allowed_border`` margin, the IoU on a 0..1 scale with
both thresholds, and ``labels.explain(i)``'s sentence.
"""
import textwrap

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..backend import to_numpy
from ..checks import check_index
from .boxes import GT, IGNORED, NEGATIVE, POSITIVE, _image, _mapped, _show_image

__all__ = ["rule_name", "plot_explanation"]

# Reason codes of minirpn.anchor_explanations.Reason, in code order; the
# rule (numbered as in anchor_targets) that each code stands for.
_RULES = ("rule 1: crosses the image border",
          "rule 2: max IoU below the negative threshold",
          "between the thresholds: neither rule 2 nor rule 3",
          "rule 3: max IoU at or above the positive threshold",
          "rule 4: the best anchor of a GT box",
          "rule 5: dropped by sampling")
_LABEL_COLOR = {1: POSITIVE, 0: NEGATIVE, -1: IGNORED}
_LABEL_WORD = {1: "positive (1)", 0: "negative (0)", -1: "ignored (-1)"}


def rule_name(labels, index):
    """The rule that decided anchor ``index``'s label, as a short phrase.

    Parameters
    ----------
    labels : AnchorLabels
        Reads ``reason`` and ``reason_before_sampling``, (A,) int8 codes.
    index : int
        Anchor index in [0, A).

    Returns
    -------
    str
        e.g. ``"rule 4: the best anchor of a GT box"``; for a dropped anchor
        ``"rule 5: dropped by sampling (was rule 3: ...)"``.
    """
    i = _index(labels, index)
    code, before = int(labels.reason[i]), int(labels.reason_before_sampling[i])
    if code == 5:
        return f"{_RULES[5]} (was {_RULES[before]})"
    return _RULES[code]


def _index(labels, index):
    if not hasattr(labels, "explain") or not hasattr(labels, "reason"):
        raise TypeError(f"labels must be an AnchorLabels (label_anchors' result or "
                        f"trace['anchor_labels'].result), got "
                        f"{type(labels).__name__}")
    return check_index(index, int(labels.labels.shape[0]))


def _iou_scale(ax, labels, i, best_k):
    """A 0..1 IoU axis: negative / between / positive zones and the anchor's IoUs."""
    c = labels.config
    for lo, hi, color in ((0, c.negative_iou, NEGATIVE),
                          (c.negative_iou, c.positive_iou, IGNORED),
                          (c.positive_iou, 1, POSITIVE)):
        ax.axvspan(lo, hi, color=color, alpha=0.35, linewidth=0)
    for t in (c.negative_iou, c.positive_iou):
        ax.axvline(t, color="black", linewidth=1)
        ax.text(t, 1.05, f"{t:g}", ha="center", va="bottom", fontsize=7,
                transform=ax.get_xaxis_transform())
    if int(labels.matched_gt[i]) >= 0:
        m = float(labels.max_iou[i])
        ax.plot([m], [0.5], marker="v", color="black", markersize=9)
        ax.text(m, 0.05, f" max IoU {m:.3f}", fontsize=7, va="bottom")
    if best_k is not None:
        ax.plot([best_k[1]], [0.5], marker="o", color="gold", markeredgecolor="black",
                markersize=7)
    ax.set_xlim(0, 1), ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_xlabel("IoU (red: negative, grey: ignored, green: positive)", fontsize=8)
    ax.tick_params(labelsize=7)


def _rule4_gt(labels, i):
    """(k, IoU with GT k) when anchor i is GT k's best anchor and k is not its argmax."""
    k = int(labels.best_anchor_of[i])
    if k < 0 or k == int(labels.matched_gt[i]):
        return None
    a = to_numpy(labels.anchors[i]).astype(np.float64)
    g = to_numpy(labels.gt_boxes[k]).astype(np.float64)
    w = max(min(a[2], g[2]) - max(a[0], g[0]), 0.0)
    h = max(min(a[3], g[3]) - max(a[1], g[1]), 0.0)
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (g[2] - g[0]) * (g[3] - g[1]) - inter
    return k, inter / union


def plot_explanation(labels, index, image=None, ax=None, network_size=None, width=90):
    """Why anchor ``index`` has its label, in one figure.

    Draws the anchor (coloured by its final label: green positive, red
    negative, grey ignored), its max-IoU GT box (dashed) and, for a rule-4
    anchor whose best-anchor GT is another box, that GT too (dotted gold);
    the image border and, when it is not 0, the ``allowed_border`` margin;
    a 0..1 IoU scale with both thresholds; the deciding rule as the title
    and ``labels.explain(index)`` under it.

    Shapes: A anchors, K GT boxes; H x W original image.

    Parameters
    ----------
    labels : AnchorLabels
        ``label_anchors``' result or ``trace["anchor_labels"].result``;
        its ``anchors`` (A, 4) and ``gt_boxes`` (K, 4) are in network pixels,
        ``image_size`` is the network's (h', w').
    index : int
        The anchor, in [0, A).
    image : (H, W, 3) uint8, optional
        Drawn under the boxes, which are mapped from ``network_size`` to the
        image's pixels; None: the boxes are drawn in network pixels on a blank
        canvas of ``labels.image_size``.
    ax : Axes, optional
        Draw here (the IoU scale becomes an inset at its bottom).
    network_size : (h', w'), optional
        Defaults to ``labels.image_size``.
    width : int
        Characters per line of the wrapped explanation.

    Returns
    -------
    Figure

    Raises
    ------
    TypeError, IndexError
        ``labels`` is not an AnchorLabels, ``index`` not an int or out of range.
    """
    i = _index(labels, index)
    size = labels.image_size if network_size is None else network_size
    h, w = (float(v) for v in labels.image_size)
    if image is not None:
        image = _image(image)
        H, W = image.shape[:2]
        def mapped(boxes, name):
            return _mapped(boxes, size, (H, W), name)
    else:
        H, W = h, w
        def mapped(boxes, name):
            return _mapped(boxes, None, (H, W), name)
    fx, fy = W / w, H / h
    anchor = mapped(to_numpy(labels.anchors[i:i + 1]), "anchor")[0]
    gts = mapped(to_numpy(labels.gt_boxes), "gt_boxes")
    # An anchor overlapping no GT has argmax 0 by convention: no GT is "its" GT.
    g = int(labels.matched_gt[i]) if float(labels.max_iou[i]) > 0 else -1
    other = _rule4_gt(labels, i)
    label = int(labels.labels[i])

    if ax is None:
        side = min(5.0, 5.0 * W / H)       # the picture's width in inches
        fig = Figure(figsize=(side + 3.0, side * H / W + 1.9), layout="constrained")
        grid = fig.add_gridspec(2, 1, height_ratios=[side * H / W, 0.45])
        ax, scale_ax = fig.add_subplot(grid[0]), fig.add_subplot(grid[1])
    else:
        fig = ax.figure
        scale_ax = ax.inset_axes([0.0, -0.16, 1.0, 0.06])
    if image is not None:
        _show_image(ax, image)
    else:
        ax.add_patch(Rectangle((0, 0), W, H, facecolor="#202020", edgecolor="none"))
    ax.add_patch(Rectangle((0, 0), W, H, fill=False, edgecolor="black", linewidth=1.2))
    b = labels.config.allowed_border
    if 0 < b < np.inf:
        ax.add_patch(Rectangle((-b * fx, -b * fy), W + 2 * b * fx, H + 2 * b * fy, fill=False,
                               edgecolor="black", linestyle=":", linewidth=1,
                               label=f"allowed_border {b:g}"))
    for k, box in enumerate(gts):
        ax.add_patch(Rectangle(box[:2], *(box[2:] - box[:2]), fill=False, edgecolor=GT,
                               linestyle="--", linewidth=2.2 if k == g else 0.8,
                               label=f"GT {k}, max-IoU GT of the anchor" if k == g else None))
    if other is not None:
        box = gts[other[0]]
        ax.add_patch(Rectangle(box[:2], *(box[2:] - box[:2]), fill=False, edgecolor="gold",
                               linestyle=":", linewidth=2.2,
                               label=f"GT {other[0]}: its best anchor (IoU {other[1]:.3f})"))
    ax.add_patch(Rectangle(anchor[:2], *(anchor[2:] - anchor[:2]), fill=False,
                           edgecolor=_LABEL_COLOR[label], linewidth=2.5,
                           label=f"anchor {i}: {_LABEL_WORD[label]}"))
    lo = np.minimum(anchor[:2], 0)
    hi = np.maximum(anchor[2:], (W, H))
    pad = 0.04 * max(hi - lo)
    ax.set_xlim(lo[0] - pad, hi[0] + pad), ax.set_ylim(hi[1] + pad, lo[1] - pad)
    ax.set_aspect("equal")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), facecolor="#c8c8c8")
    ax.set_title(f"anchor {i} is {_LABEL_WORD[label]} by {rule_name(labels, i)}\n"
                 + "\n".join(textwrap.wrap(labels.explain(i), width)), fontsize=8)
    _iou_scale(scale_ax, labels, i, other)
    return fig
