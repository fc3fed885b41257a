"""Pictures of the detection head's training targets and its class-specific boxes.

- :func:`plot_roi_sampling`: how the candidates' best IoU with the ground
  truth splits into foreground (IoU >= 0.5), background ([0.1, 0.5)) and
  unused, and which of them the sampler drew (Girshick 2015, Fast R-CNN,
  section 2.3, "Mini-batch sampling").
- :func:`plot_bbox_mask`: the (R, 4 (C + 1)) regression weights, 1 only on
  the four columns of each foreground RoI's class (py-faster-rcnn's
  ``bbox_inside_weights``).
- :func:`plot_class_boxes`: one RoI and the C boxes the head decodes from it,
  one per class (Fast R-CNN, section 2.3: "bounding-box regression offsets
  ... for each of the K object classes").
"""
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from ..backend import to_numpy
from .boxes import (GT, NEGATIVE, POSITIVE, _boxes, _field, _image, _mapped, _name,
                    _new_axes, _show_image, class_color, draw_boxes)

__all__ = ["plot_roi_sampling", "plot_bbox_mask", "plot_class_boxes"]


def _targets(proposal_targets):
    """A ProposalTargets, or the one inside a ``trace["proposal_targets"]`` stage."""
    if hasattr(proposal_targets, "num_positive"):
        return proposal_targets
    return _field(proposal_targets, "result", "proposal_targets")


def plot_roi_sampling(candidate_iou, proposal_targets, positive_iou=0.5, negative_iou=0.5,
                      negative_iou_floor=0.1, bins=40):
    """Histogram of the candidates' best IoU, and of the RoIs sampled from them.

    Parameters
    ----------
    candidate_iou : (N + K,) float
        Best IoU of every candidate (the N proposals, then the K GT boxes,
        which have IoU 1) with any GT box.
    proposal_targets : ProposalTargets
        The sampled batch (``max_iou`` (R,), ``num_positive``, ``num_negative_unique``).
    positive_iou, negative_iou, negative_iou_floor : float
        The thresholds it was sampled with (``sample_proposals``'): positive
        at ``>= positive_iou``, negative in ``[negative_iou_floor, negative_iou)``.
    bins : int

    Returns
    -------
    Figure
        Left: all candidates, the background window shaded red and the
        foreground region green. Right: the sampled RoIs (distinct ones).
    """
    t = _targets(proposal_targets)
    iou = to_numpy(candidate_iou).astype(np.float64).reshape(-1)
    sampled = to_numpy(t.max_iou).astype(np.float64)
    fg, bg = sampled[:t.num_positive], sampled[t.num_positive:t.num_positive + t.num_negative_unique]
    edges = np.linspace(0, 1, int(bins) + 1)
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    left = fig.add_subplot(1, 2, 1)
    right = fig.add_subplot(1, 2, 2, sharex=left)
    left.hist(iou, edges, color="0.55")
    right.hist([bg, fg], edges, color=[NEGATIVE, POSITIVE], stacked=True,
               label=[f"background ({len(bg)} distinct)", f"foreground ({len(fg)})"])
    for ax in (left, right):
        ax.axvspan(negative_iou_floor, negative_iou, color=NEGATIVE, alpha=0.12)
        ax.axvspan(positive_iou, 1.0, color=POSITIVE, alpha=0.12)
        for x in (negative_iou_floor, negative_iou, positive_iou):
            ax.axvline(x, color="black", linestyle=":", linewidth=1)
        ax.set_xlabel("best IoU with a GT box")
    n_fg = int((iou >= positive_iou).sum())
    n_bg = int(((iou >= negative_iou_floor) & (iou < negative_iou)).sum())
    left.set_title(f"{len(iou)} candidates: {n_fg} could be foreground, {n_bg} background, "
                   f"{len(iou) - n_fg - n_bg} unused", fontsize=9)
    right.set_title(f"{len(sampled)} sampled RoIs", fontsize=9)
    left.set_ylabel("count"), right.legend(fontsize=8)
    return fig


def plot_bbox_mask(proposal_targets, class_names=None, max_rows=48):
    """The regression weights mask: rows are RoIs, columns 4 per class.

    Parameters
    ----------
    proposal_targets : ProposalTargets
        ``bbox_weights`` (R, 4 (C + 1)), ``labels`` (R,), ``num_positive``.
    class_names : sequence of C str, optional
    max_rows : int
        Show the first ``max_rows`` RoIs (foreground rows come first).

    Returns
    -------
    Figure
        Ones coloured by their class, zeros white; the class of each row
        written on the left.
    """
    t = _targets(proposal_targets)
    weights = to_numpy(t.bbox_weights)[:max_rows]
    labels = to_numpy(t.labels)[:max_rows]
    rows, cols = weights.shape
    k = cols // 4
    # colour index: 0 for zeros, class + 1 for a one in class c's columns
    index = np.where(weights > 0, np.arange(cols)[None, :] // 4 + 1, 0)
    cmap = ListedColormap(["white", "0.6"] + [class_color(c) for c in range(1, k)])
    fig = Figure(figsize=(min(1.2 + 0.35 * cols, 12), 1 + 0.18 * rows), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(index, cmap=cmap, vmin=0, vmax=k, aspect="auto", interpolation="nearest")
    for col in range(1, cols):
        ax.axvline(col - 0.5, color="black" if col % 4 == 0 else "0.8",
                   linewidth=0.8 if col % 4 == 0 else 0.4)
    ax.set_xticks([4 * c + 1.5 for c in range(k)])
    ax.set_xticklabels(["background"] + [_name(c, class_names) for c in range(1, k)],
                       fontsize=8)
    ax.set_yticks(range(rows))
    ax.set_yticklabels([_name(l, class_names) if l > 0 else "bg" for l in labels], fontsize=6)
    ax.set_xlabel("columns 4c .. 4c + 3: (tx, ty, tw, th) of class c")
    ax.set_title(f"bbox_weights: {int(weights.sum())} ones = 4 x {min(t.num_positive, rows)} "
                 f"foreground rows (first {rows} of {len(to_numpy(t.labels))} RoIs)", fontsize=9)
    return fig


def plot_class_boxes(image, roi, boxes, probs=None, class_names=None, network_size=None,
                     target=None, ax=None):
    """One RoI (dashed yellow) and its class-specific boxes, one per class.

    Shapes: C classes (background excluded).

    Parameters
    ----------
    image : (H, W, 3) uint8, original pixels
    roi : (4,) float, network pixels
    boxes : (C, 4) or (C + 1, 4) float, network pixels
        The RoI decoded with each class's deltas (a row of
        :func:`minirpn.detections.class_boxes`); with C + 1 rows, row 0
        (background) is skipped.
    probs : (C,) or (C + 1,) float, optional
        Class probabilities, written in the captions.
    class_names : sequence of C str, optional
    network_size : (h', w'), optional
        The resized size; None when network pixels are the image's.
    target : dict, optional
        GT ``boxes`` (K, 4) in original pixels, drawn dashed white.
    ax : Axes, optional

    Returns
    -------
    Figure
    """
    image = _image(image)
    boxes = _boxes(boxes, "boxes")
    probs = None if probs is None else to_numpy(probs).astype(np.float64).reshape(-1)
    if probs is not None and len(probs) != len(boxes):
        raise ValueError(f"probs must have one entry per box ({len(boxes)}), got {len(probs)}")
    if class_names is not None and len(boxes) == len(class_names) + 1:
        boxes = boxes[1:]
        probs = None if probs is None else probs[1:]
    boxes = _mapped(boxes, network_size, image.shape[:2], "boxes")
    roi = _mapped(np.asarray(to_numpy(roi), dtype=np.float64).reshape(1, 4), network_size,
                  image.shape[:2], "roi")
    fig, (ax,) = _new_axes(ax, image.shape)
    _show_image(ax, image)
    if target is not None:
        draw_boxes(ax, None, target["boxes"], color=GT, linestyle="--", linewidth=1,
                   captions=False)
    labels = np.arange(1, len(boxes) + 1)
    draw_boxes(ax, None, boxes, labels, linewidth=2, captions=[
        _name(c, class_names) + ("" if probs is None else f" p={probs[c - 1]:.2f}")
        for c in labels])
    draw_boxes(ax, None, roi, color="yellow", linestyle="--", linewidth=2.5, captions=["RoI"])
    ax.set_title(f"one RoI (dashed yellow) and its {len(boxes)} class-specific boxes",
                 fontsize=9)
    return fig
