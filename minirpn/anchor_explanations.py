"""Why each anchor got its label: the :class:`Reason` codes and the text.

The anchor target layer (:mod:`minirpn.anchor_targets`, Ren et al. 2015,
section 3.1.2) records a :class:`Reason` for every anchor; this module
turns those codes into the
counts, the one-line summary and the per-anchor sentences behind
``AnchorLabels.counts()``, ``.summary()`` and ``.explain(i)``. It takes the
``AnchorLabels`` object as an argument and never imports
``anchor_targets`` (which imports this module), so there is no cycle.
"""
import enum

from .backend import get_array_module, to_numpy
from .checks import check_index
from .ops import box_iou

__all__ = ["Reason", "label_counts", "summarize", "explain_anchor"]


class Reason(enum.IntEnum):
    """Why an anchor got its label (stored as int8 codes)."""
    CROSSED_BORDER = 0              # -1, rule 1
    NEGATIVE = 1                    # 0, rule 2 (or: the image has no GT)
    IGNORED_BETWEEN_THRESHOLDS = 2  # -1, neither rule 2 nor 3
    POSITIVE_BY_THRESHOLD = 3       # 1, rule 3
    POSITIVE_AS_BEST_ANCHOR = 4     # 1, rule 4 only (IoU < positive_iou)
    DROPPED_BY_SAMPLING = 5         # -1, rule 5


def label_counts(labels):
    """Count anchors per label and per final :class:`Reason`.

    Shapes: A anchors.

    Parameters
    ----------
    labels : AnchorLabels
        A labelling from :func:`minirpn.anchor_targets.label_anchors`; reads
        its ``labels`` (A,) int8 and ``reason`` (A,) int8.

    Returns
    -------
    dict of str to int
        ``positive``, ``negative``, ``ignored``, then one key per
        :class:`Reason`, its name in lower case.
    """
    xp = get_array_module(labels.labels)
    out = {name: int(xp.count_nonzero(labels.labels == value))
           for name, value in (("positive", 1), ("negative", 0),
                               ("ignored", -1))}
    for r in Reason:
        out[r.name.lower()] = int(xp.count_nonzero(labels.reason == int(r)))
    return out


def summarize(labels):
    """One line: label counts and where the ignored anchors came from.

    Shapes: A anchors, K GT boxes.

    Parameters
    ----------
    labels : AnchorLabels
        Reads ``labels`` (A,) int8, ``reason`` (A,) int8 and
        ``gt_boxes`` (K, 4).

    Returns
    -------
    str
    """
    c = label_counts(labels)
    return (f"{labels.labels.shape[0]} anchors, {labels.gt_boxes.shape[0]} GT:"
            f" {c['positive']} positive ({c['positive_by_threshold']} by"
            f" threshold, {c['positive_as_best_anchor']} as best anchor),"
            f" {c['negative']} negative, {c['ignored']} ignored"
            f" ({c['crossed_border']} crossing the border,"
            f" {c['ignored_between_thresholds']} between thresholds,"
            f" {c['dropped_by_sampling']} dropped by sampling)")


def explain_anchor(labels, index):
    """A sentence saying why anchor ``index`` has its label.

    Shapes: A anchors, K GT boxes.

    Parameters
    ----------
    labels : AnchorLabels
        Reads its per-anchor arrays (A,), ``anchors`` (A, 4),
        ``gt_boxes`` (K, 4), ``image_size``, ``config`` and ``sampling``.
    index : int
        Anchor index in [0, A) (a negative index is refused: it names no
        anchor of the grid).

    Returns
    -------
    str

    Raises
    ------
    TypeError
        ``index`` is not an int (bool included).
    IndexError
        ``index`` is outside [0, A).
    """
    i = check_index(index, labels.labels.shape[0])
    box = to_numpy(labels.anchors[i])
    head = f"anchor {i} [{', '.join(f'{v:.1f}' for v in box)}]"
    before = Reason(int(labels.reason_before_sampling[i]))
    if before == Reason.CROSSED_BORDER:
        return f"{head} is ignored (-1): it crosses the image border " \
               f"({_border_violation(labels, box)})."
    why = _why(labels, i, before)
    if int(labels.reason[i]) != Reason.DROPPED_BY_SAMPLING:
        word = {1: "positive (1)", 0: "negative (0)", -1: "ignored (-1)"}
        return f"{head} is {word[int(labels.labels[i])]}: {why}."
    s, bs = labels.sampling, labels.config.batch_size
    if before == Reason.NEGATIVE:
        return (f"{head} is ignored (-1): it was a negative ({why}) "
                f"dropped by sampling: the {bs}-anchor batch already had "
                f"{s.positives_kept} positives, leaving room for "
                f"{s.negative_cap} of the {s.negative_candidates} "
                f"negatives, kept at random.")
    return (f"{head} is ignored (-1): it was a positive ({why}) dropped "
            f"by sampling: the image's {s.positive_candidates} positives exceeded"
            f" the cap int({bs} * {labels.config.positive_fraction:g}) = "
            f"{s.positive_cap}, kept at random.")


def _border_violation(labels, box):
    """The first coordinate of ``box`` (4,) that breaks rule 1."""
    b = labels.config.allowed_border
    (h, w), lo = labels.image_size, -b
    for name, v, ok, rel, lim in (("x1", box[0], box[0] >= lo, "<", lo),
                                  ("y1", box[1], box[1] >= lo, "<", lo),
                                  ("x2", box[2], box[2] <= w + b, ">", w + b),
                                  ("y2", box[3], box[3] <= h + b, ">", h + b)):
        if not ok:
            return f"{name} = {v:.1f} {rel} {lim + 0.0:.1f}"  # no -0.0
    return "inside"     # unreachable for a CROSSED_BORDER anchor


def _why(labels, i, before):
    """The clause behind rules 2-4 for inside anchor i."""
    c, m = labels.config, float(labels.max_iou[i])
    g = int(labels.matched_gt[i])
    if labels.gt_boxes.shape[0] == 0:
        return "the image has no GT boxes, so every inside anchor is background"
    best = (f"its best IoU is {m:.2f} with GT {g}" if m > 0
            else "it overlaps no GT box (IoU 0)")
    if before == Reason.NEGATIVE:
        return f"{best}, below the negative threshold {c.negative_iou:g}"
    if before == Reason.IGNORED_BETWEEN_THRESHOLDS:
        return (f"{best}, between the negative threshold "
                f"{c.negative_iou:g} and the positive threshold "
                f"{c.positive_iou:g}")
    k = int(labels.best_anchor_of[i])
    if before == Reason.POSITIVE_BY_THRESHOLD:
        also = f"; it is also the best anchor of GT {k}" if k >= 0 else ""
        return f"{best}, at or above the positive threshold " \
               f"{c.positive_iou:g}{also}"
    # Rule 4: recompute IoU with GT k, which may not be the argmax GT g.
    iou_k = float(box_iou(labels.anchors[i:i + 1],
                          labels.gt_boxes[k:k + 1])[0, 0])
    target = "" if g == k else (f"; its regression target stays GT {g},"
                                f" its best match (IoU {m:.2f})")
    return (f"it is the best anchor of GT {k} (IoU {iou_k:.2f} < "
            f"{c.positive_iou:g} but no anchor overlaps GT {k} more)"
            f"{target}")
