"""Pictures of detection evaluation: detections matched to ground truth, and
the precision-recall curve with the three ways of reading an AP off it.

Matching is the VOC devkit's (``VOCevaldet.m``, through
:func:`minirpn.evaluation.matching.match_voc`): in descending score order,
each detection takes the ground truth of the same class it overlaps most if
that IoU is at least the threshold and the ground truth is still free
(true positive); otherwise it is a false positive. The three APs are those of
:mod:`minirpn.evaluation.curves`: VOC2007's 11 recall points (Everingham et
al. 2010, section 4), the area under the precision envelope (VOC2010 and
later) and COCO's 101 recall points (``pycocotools`` COCOeval).
"""
import numpy as np
from matplotlib.figure import Figure

from ..backend import to_numpy
from ..evaluation import ap_area, ap_coco101, ap_voc07
from ..evaluation.curves import COCO_RECALL_POINTS, VOC07_RECALL_POINTS
from ..evaluation.matching import FALSE_POSITIVE, IGNORED, TRUE_POSITIVE, match_voc, overlaps
from .boxes import GT, IGNORED as IGNORED_COLOR, NEGATIVE, POSITIVE, _boxes, _field, \
    _image, _new_axes, _show_image, draw_boxes

__all__ = ["match_image", "plot_matches", "precision_envelope", "plot_pr_curve"]

_STATE_NAMES = {TRUE_POSITIVE: "TP", FALSE_POSITIVE: "FP", IGNORED: "ignored"}


def match_image(detections, target, iou_threshold=0.5):
    """TP / FP / ignored for every detection of one image, the VOC devkit way.

    Shapes: D detections, K ground-truth boxes.

    Parameters
    ----------
    detections : dict
        ``boxes`` (D, 4) float, ``scores`` (D,) float, ``labels`` (D,) int.
    target : dict
        ``boxes`` (K, 4) float, ``labels`` (K,) int, optional ``difficult``
        (K,) bool.
    iou_threshold : float

    Returns
    -------
    (D,) int8
        ``minirpn.evaluation.matching``'s TRUE_POSITIVE (1), FALSE_POSITIVE
        (0) or IGNORED (-1), in the order of ``detections`` (matched class by
        class, in descending score order).
    """
    boxes = _boxes(_field(detections, "boxes", "detections"), "detections boxes")
    scores = to_numpy(_field(detections, "scores", "detections")).astype(np.float64).reshape(-1)
    labels = to_numpy(_field(detections, "labels", "detections")).reshape(-1)
    gt_boxes = _boxes(_field(target, "boxes", "target"), "target boxes")
    gt_labels = to_numpy(_field(target, "labels", "target")).reshape(-1)
    difficult = to_numpy(target["difficult"]).astype(bool) if "difficult" in target \
        else np.zeros(len(gt_boxes), bool)
    if not len(scores) == len(labels) == len(boxes):
        raise ValueError(f"detections must have one score and label per box ({len(boxes)}), "
                         f"got {len(scores)} scores and {len(labels)} labels")
    states = np.full(len(boxes), FALSE_POSITIVE, dtype=np.int8)
    for label in np.unique(labels):
        mine = np.flatnonzero(labels == label)
        mine = mine[np.argsort(-scores[mine], kind="stable")]
        gt = gt_labels == label
        iou = overlaps(boxes[mine], gt_boxes[gt], np.zeros(int(gt.sum()), bool))
        states[mine] = match_voc(iou, difficult[gt], iou_threshold)
    return states


def plot_matches(image, detections, target, iou_threshold=0.5, class_names=None, ax=None):
    """One image's detections coloured by their match: TP green, FP red, ignored grey.

    Ground truth is dashed white. Each detection is captioned with its rank in
    score order, its class, score and state ("#2 circle 0.80 FP").

    Parameters
    ----------
    image : (H, W, 3) uint8
    detections, target : dict
        As in :func:`match_image`, in the image's pixels.
    iou_threshold : float
    class_names : sequence of C str, optional
    ax : Axes, optional

    Returns
    -------
    Figure
    """
    image = _image(image)
    states = match_image(detections, target, iou_threshold)
    boxes = _boxes(_field(detections, "boxes", "detections"), "detections boxes")
    scores = to_numpy(detections["scores"]).reshape(-1)
    labels = to_numpy(detections["labels"]).reshape(-1)
    fig, (ax,) = _new_axes(ax, image.shape)
    _show_image(ax, image)
    draw_boxes(ax, None, target["boxes"], color=GT, linestyle="--", captions=False)
    colors = {TRUE_POSITIVE: POSITIVE, FALSE_POSITIVE: NEGATIVE, IGNORED: IGNORED_COLOR}
    rank = np.empty(len(scores), int)
    rank[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
    for state, color in colors.items():
        keep = np.flatnonzero(states == state)
        names = [str(int(labels[i])) if class_names is None else class_names[int(labels[i]) - 1]
                 for i in keep]
        draw_boxes(ax, None, boxes[keep], color=color,
                   captions=[f"#{rank[i]} {n} {scores[i]:.2f} {_STATE_NAMES[state]}"
                             for i, n in zip(keep, names)])
    counts = {name: int((states == s).sum()) for s, name in _STATE_NAMES.items()}
    ax.set_title(f"IoU >= {iou_threshold:g}: {counts['TP']} TP, {counts['FP']} FP, "
                 f"{counts['ignored']} ignored; {len(target['boxes'])} GT (dashed)", fontsize=9)
    return fig


def precision_envelope(precision):
    """Precision made non-increasing: at each point, the best precision at
    that recall or beyond. (D,) float -> (D,) float64."""
    p = np.asarray(precision, dtype=np.float64)
    return np.maximum.accumulate(p[::-1])[::-1]


def plot_pr_curve(recall, precision, ax=None, title=None):
    """A precision-recall curve and the three APs read off it.

    Drawn: the raw curve (grey dots, one per detection), its envelope (blue,
    the area under it shaded: the "area" AP), VOC2007's 11 interpolated
    points (red squares) and COCO's 101 (small green dots).

    Parameters
    ----------
    recall, precision : (D,) float
        From :func:`minirpn.evaluation.pr_curve` or an ``APResult``'s
        ``recall[c]`` and ``precision[c]``, in descending score order.
    ax : Axes, optional
    title : str, optional

    Returns
    -------
    Figure
    """
    recall = np.asarray(recall, dtype=np.float64).reshape(-1)
    precision = np.asarray(precision, dtype=np.float64).reshape(-1)
    if recall.shape != precision.shape:
        raise ValueError(f"recall and precision must have the same shape, got {recall.shape} "
                         f"and {precision.shape}")
    if ax is None:
        fig = Figure(figsize=(5.5, 4.2), layout="constrained")
        ax = fig.add_subplot()
    fig = ax.figure
    # the envelope as a step function: from recall r_{k-1} to r_k it is env_k
    env = precision_envelope(precision)
    r_steps = np.concatenate(([0.0], recall))
    p_steps = np.concatenate((env[:1], env)) if len(env) else np.zeros(1)
    ax.fill_between(r_steps, p_steps, step="pre", color="tab:blue", alpha=0.15)
    ax.step(r_steps, p_steps, where="pre", color="tab:blue", linewidth=1.5,
            label=f"envelope; area AP = {ap_area(recall, precision):.3f}")
    ax.plot(recall, precision, "o", color="0.5", markersize=3, label="each detection")
    voc = [precision[recall >= t].max() if (recall >= t).any() else 0.0
           for t in VOC07_RECALL_POINTS]
    ax.plot(VOC07_RECALL_POINTS, voc, "s", color="tab:red", markersize=6, fillstyle="none",
            label=f"11 points; VOC07 AP = {ap_voc07(recall, precision):.3f}")
    index = np.searchsorted(recall, COCO_RECALL_POINTS, side="left")
    coco = np.where(index < len(recall), env[np.minimum(index, len(env) - 1)], 0.0) \
        if len(env) else np.zeros(len(COCO_RECALL_POINTS))
    ax.plot(COCO_RECALL_POINTS, coco, ".", color="tab:green", markersize=2.5,
            label=f"101 points; COCO AP = {ap_coco101(recall, precision):.3f}")
    ax.set_xlim(-0.02, 1.02), ax.set_ylim(-0.02, 1.05)
    ax.set_xlabel("recall"), ax.set_ylabel("precision")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(title or f"{len(recall)} detections", fontsize=9)
    return fig
