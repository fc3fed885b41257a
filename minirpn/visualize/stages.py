"""Pictures of the network's intermediate stages: objectness, proposals, sampled RoIs,
feature maps, and the one-page overview of a step-through trace."""
import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from ..backend import to_numpy
from ..checks import check_array, check_positive_int
from .anchors import plot_anchor_labels
from .boxes import (IGNORED, _field, _image, _mapped, _missing, _name, _new_axes,
                    _show_image, draw_boxes)
from .results import plot_detections


# ---- objectness ------------------------------------------------------------------------
def plot_objectness(image, fg_probs, feature_shape, stride, network_size=None, ax=None):
    """The RPN's P(object), max over each cell's A anchors, over the image.

    Parameters
    ----------
    image : (H, W, 3) uint8, original pixels
    fg_probs : (Hf * Wf * A,) float in [0, 1] (``trace["rpn"]["fg_probs"]``)
    feature_shape : (Hf, Wf), the feature map's size
    stride : int, network pixels per feature cell (``model.stride``)
    network_size : (h', w'), optional; None when the image is not resized
    ax : Axes, optional

    Returns
    -------
    Figure
    """
    image = _image(image)
    hf, wf = (check_positive_int(v, "feature_shape") for v in feature_shape)
    probs = to_numpy(fg_probs).reshape(-1)
    if probs.size % (hf * wf):
        raise ValueError(f"fg_probs must hold Hf * Wf * A = {hf} * {wf} * A values, "
                         f"got {probs.size}")
    cells = probs.reshape(hf, wf, -1).max(axis=2)
    (H, W), (h, w) = image.shape[:2], image.shape[:2] if network_size is None else network_size
    fig, (ax,) = _new_axes(ax, image.shape)
    _show_image(ax, image)
    # The map covers the padded network image: cells beyond h', w' are padding.
    art = ax.imshow(cells, extent=(0, wf * stride * W / w, hf * stride * H / h, 0),
                    cmap="magma", alpha=0.6, vmin=0, vmax=1)
    ax.set_xlim(0, W), ax.set_ylim(H, 0)
    fig.colorbar(art, ax=ax, fraction=0.04, label="max P(object) in the cell")
    ax.set_title(f"RPN objectness on the {hf} x {wf} feature map", fontsize=9)
    return fig


# ---- proposals and RoIs ----------------------------------------------------------------
# The two proposal panels: (prefix of the boxes/scores fields, panel title).
_NMS_PANELS = (("before_nms_", "before NMS"), ("", "after NMS"))


def _proposal_panel(ax, image, boxes, scores, top, network_size, title):
    boxes = _mapped(boxes, network_size, image.shape[:2], "proposal boxes")
    scores = to_numpy(scores).reshape(-1)
    order = np.argsort(-scores, kind="stable")[:top][::-1]    # best drawn last, on top
    _show_image(ax, image)
    for i in order:
        draw_boxes(ax, None, boxes[i:i + 1], color=colormaps["viridis"](float(scores[i])),
                   linewidth=1.0, captions=False)
    ax.set_title(f"{title}: top {len(order)} of {len(boxes)}", fontsize=9)


def plot_proposals(image, proposals, top=50, network_size=None):
    """The proposal layer's boxes before and after NMS, side by side.

    Shapes: Q boxes into NMS, P proposals out; colour is P(object).

    Parameters
    ----------
    image : (H, W, 3) uint8, original pixels
    proposals : Proposals, or ``trace["proposals"]``
        ``before_nms_boxes`` (Q, 4), ``before_nms_scores`` (Q,), ``boxes``
        (P, 4) and ``scores`` (P,), network pixels.
    top : int
        Boxes drawn per panel, best scores first.
    network_size : (h', w'), optional

    Returns
    -------
    Figure with two axes (before, after)
    """
    image, top = _image(image), check_positive_int(top, "top")
    fig, axes = _new_axes(None, image.shape, ncols=2, width=5.0)
    for ax, (prefix, title) in zip(axes, _NMS_PANELS):
        _proposal_panel(ax, image, _field(proposals, prefix + "boxes", "proposals"),
                        _field(proposals, prefix + "scores", "proposals"), top,
                        network_size, title)
    fig.colorbar(ScalarMappable(Normalize(0, 1), "viridis"), ax=axes, fraction=0.03,
                 label="P(object)")
    return fig


def plot_rois(image, proposal_targets, network_size=None, class_names=None, ax=None):
    """The RoIs sampled for the detection head: foreground by class, background grey.

    Foreground RoIs are solid, captioned with class and IoU ("gt" for the GT
    boxes appended to the candidates); each distinct background RoI is
    dashed grey (repeats drawn once).

    Parameters
    ----------
    image : (H, W, 3) uint8, original pixels
    proposal_targets : ProposalTargets, or ``trace["proposal_targets"]``
        ``rois`` (R, 4) network pixels, ``labels`` (R,), ``max_iou`` (R,),
        ``is_gt`` (R,), ``num_positive``, ``num_negative_unique``.
    network_size : (h', w'), optional
    class_names : sequence of C str, optional
    ax : Axes, optional

    Returns
    -------
    Figure
    """
    image, t = _image(image), proposal_targets
    if not hasattr(t, "num_positive"):
        t = _field(t, "result", "proposal_targets")
    rois = _mapped(t.rois, network_size, image.shape[:2], "rois")
    labels, iou, is_gt = (to_numpy(v) for v in (t.labels, t.max_iou, t.is_gt))
    nf, nb = t.num_positive, t.num_negative_unique
    fig, (ax,) = _new_axes(ax, image.shape)
    _show_image(ax, image)
    draw_boxes(ax, None, rois[nf:nf + nb], color=IGNORED, linestyle="--", linewidth=0.8,
               captions=False)
    draw_boxes(ax, None, rois[:nf], labels[:nf], captions=[
        f"{_name(l, class_names)} {'gt' if g else f'{v:.2f}'}"
        for l, v, g in zip(labels[:nf], iou[:nf], is_gt[:nf])])
    ax.set_title(f"{len(labels)} RoIs: {nf} foreground, {len(labels) - nf} background "
                 f"({nb} distinct){' [window widened]' if t.fallback else ''}", fontsize=9)
    return fig


def plot_feature_maps(features, n=16, ncols=4):
    """The ``n`` most active channels of a feature map (largest mean first).

    Parameters
    ----------
    features : (1, C, Hf, Wf) or (C, Hf, Wf) float (``trace["features"]["features"]``)
    n : int, channels shown (at most C)
    ncols : int, channels per row

    Returns
    -------
    Figure with min(n, C) axes
    """
    x = to_numpy(features)
    check_array(x, "features", ndim=x.ndim if x.ndim in (3, 4) else 3)
    if x.ndim == 4:
        if x.shape[0] != 1:
            raise ValueError(f"features must be (1, C, Hf, Wf) or (C, Hf, Wf), got {x.shape}")
        x = x[0]
    n, ncols = check_positive_int(n, "n"), check_positive_int(ncols, "ncols")
    order = np.argsort(-x.mean(axis=(1, 2)), kind="stable")[:n]
    nrows = -(-len(order) // ncols)
    fig = Figure(figsize=(2.2 * ncols, 2.2 * nrows * x.shape[1] / x.shape[2] + 0.6),
                 layout="constrained")
    for i, c in enumerate(order):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.imshow(x[c], cmap="viridis")
        ax.set_title(f"channel {c}", fontsize=8)
        ax.set_axis_off()
    fig.suptitle(f"{len(order)} of {x.shape[0]} channels ({x.shape[1]} x {x.shape[2]}), "
                 "most active first", fontsize=10)
    return fig


# ---- the whole trace ------------------------------------------------------------------
def plot_trace(trace, class_names=None, min_score=0.5, top=50):
    """A one-page overview of a step-through (stages not yet run are marked).

    Panels: the image with its GT, the RPN's objectness, the anchor labels
    (a trace with a target), the proposals before and after NMS, and the
    detections scoring at least ``min_score`` over the GT; all in original
    pixels.

    Parameters
    ----------
    trace : minirpn.step_through.Trace, at least its "preprocess" stage run
    class_names : sequence of C str, optional
    min_score : float, detections drawn
    top : int, proposals drawn per panel

    Returns
    -------
    Figure with six axes
    """
    if not hasattr(trace, "stages") or not hasattr(trace, "image"):
        raise TypeError(f"trace must be a minirpn Trace, got {type(trace).__name__}")
    if "preprocess" not in trace.names:
        raise ValueError("plot_trace needs at least the 'preprocess' stage: call trace.next()")
    image, names = trace.image, set(trace.names)
    size = trace["preprocess"]["image_size"]
    fig = Figure(figsize=(15, 2 * min(4.5 * image.shape[0] / image.shape[1], 6) + 1),
                 layout="constrained")
    axes = [fig.add_subplot(2, 3, i + 1) for i in range(6)]
    plot_detections(image, None, class_names, trace.target, ax=axes[0],
                    title="input" + (" and GT (dashed)" if trace.target is not None else ""))
    if "rpn" in names:
        features = trace["features"]["features"]
        plot_objectness(image, trace["rpn"]["fg_probs"], features.shape[2:],
                        trace.model.stride, size, ax=axes[1])
    else:
        _missing(axes[1], "rpn")
    if "anchor_labels" in names:
        plot_anchor_labels(image, trace["anchor_labels"].result, ax=axes[2])
    else:
        _missing(axes[2], "anchor_labels", None if trace.target is not None else
                 "no target: anchors are labelled\nonly when a target is given")
    for ax, (prefix, title) in zip(axes[3:5], _NMS_PANELS):
        if "proposals" in names:
            p = trace["proposals"]
            _proposal_panel(ax, image, p[prefix + "boxes"], p[prefix + "scores"], top, size,
                            title)
        else:
            _missing(ax, "proposals")
    if "detections" in names:
        plot_detections(image, trace["detections"].outputs, class_names, trace.target,
                        min_score, ax=axes[5])
    else:
        _missing(axes[5], "detections")
    fig.suptitle(trace.stages[-1].summary if "losses" not in names else
                 "losses: " + trace["losses"].summary, fontsize=10)
    return fig
