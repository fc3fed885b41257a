"""Trace one image: the step-through overview, a table of the anchors that matter, and
one explanation figure per anchor asked about (``minirpn trace``).

Anchor labels do not depend on the weights (Ren et al. 2015, section 3.1.2:
they come from IoU with the GT boxes alone), so an untrained model of the
right config traces as well as a trained one for everything but the RPN's
scores, proposals and detections.

The table lists the anchors whose labels a debugging session asks about:
every anchor that rules 3 or 4 made positive (sampling may have dropped some
since), every best anchor of each GT box (ties included, as in
py-faster-rcnn's ``anchor_target_layer.py``), and a random sample, drawn
with the given generator, of the negatives and of each kind of ignored
anchor. Each row carries ``labels.explain(i)``'s sentence.
"""
import csv
import os

import numpy as np

from ..anchor_explanations import Reason
from ..backend import to_numpy
from ..checks import check_rng
from ..ops import box_iou
from ..step_through import Trace

__all__ = ["TABLE_COLUMNS", "best_anchors_of_gt", "anchors_that_matter", "label_table",
           "write_label_table", "write_trace"]

TABLE_COLUMNS = ("anchor", "x1", "y1", "x2", "y2", "label", "reason", "max_iou",
                 "matched_gt", "best_anchor_of", "listed_because", "explanation")


def best_anchors_of_gt(labels):
    """Each GT box's best anchors (all ties), among the anchors inside the border.

    Returns
    -------
    list of K (M_k,) int64
        Anchor indices; empty where no inside anchor overlaps GT k.
    """
    anchors, gt = to_numpy(labels.anchors), to_numpy(labels.gt_boxes)
    inside = np.flatnonzero(to_numpy(labels.reason_before_sampling) != Reason.CROSSED_BORDER)
    if len(gt) == 0 or len(inside) == 0:
        return [np.zeros(0, np.int64) for _ in range(len(gt))]
    iou = box_iou(anchors[inside], gt)                       # (inside, K)
    top = iou.max(axis=0)
    return [inside[(iou[:, k] == top[k]) & (top[k] > 0)] for k in range(len(gt))]


def anchors_that_matter(labels, rng, samples=10):
    """The anchors the label table lists, and why each is listed.

    Parameters
    ----------
    labels : AnchorLabels
    rng : numpy.random.Generator or None
        Draws the samples of negative and ignored anchors (None: a fresh,
        unseeded one, as :func:`minirpn.checks.check_rng` gives).
    samples : int
        How many of each: negatives, between the thresholds, crossing the
        border, dropped by sampling.

    Returns
    -------
    dict of int to str
        Anchor index -> why it is listed, in increasing index order.
    """
    rng = check_rng(rng)
    before, final = to_numpy(labels.reason_before_sampling), to_numpy(labels.reason)
    why = {}
    for i in np.flatnonzero((before == Reason.POSITIVE_BY_THRESHOLD)
                            | (before == Reason.POSITIVE_AS_BEST_ANCHOR)):
        why[int(i)] = "positive before sampling"
    for k, best in enumerate(best_anchors_of_gt(labels)):
        for i in best:
            why[int(i)] = (why.get(int(i), "") + f"; best anchor of GT {k}").lstrip("; ")
    groups = (("sampled negative", final == Reason.NEGATIVE),
              ("sampled: between thresholds", final == Reason.IGNORED_BETWEEN_THRESHOLDS),
              ("sampled: crosses the border", final == Reason.CROSSED_BORDER),
              ("sampled: dropped by sampling", final == Reason.DROPPED_BY_SAMPLING))
    for name, mask in groups:
        pool = np.setdiff1d(np.flatnonzero(mask), list(why))
        for i in rng.choice(pool, size=min(samples, len(pool)), replace=False):
            why[int(i)] = name
    return dict(sorted(why.items()))


def label_table(labels, listed):
    """Rows of the label table: one dict per anchor, keys :data:`TABLE_COLUMNS`.

    Parameters
    ----------
    labels : AnchorLabels
    listed : dict of int to str
        Anchor -> why it is listed (:func:`anchors_that_matter`).

    Returns
    -------
    list of dict
    """
    anchors = to_numpy(labels.anchors)
    best_of = {}
    for k, best in enumerate(best_anchors_of_gt(labels)):
        for i in best:
            best_of.setdefault(int(i), []).append(str(k))
    rows = []
    for i, because in listed.items():
        x1, y1, x2, y2 = (round(float(v), 2) for v in anchors[i])
        rows.append(dict(anchor=i, x1=x1, y1=y1, x2=x2, y2=y2, label=int(labels.labels[i]),
                         reason=Reason(int(labels.reason[i])).name.lower(),
                         max_iou=round(float(labels.max_iou[i]), 4),
                         matched_gt=int(labels.matched_gt[i]),
                         best_anchor_of=";".join(best_of.get(i, [])),
                         listed_because=because, explanation=labels.explain(i)))
    return rows


def _refuse_existing(paths):
    for path in paths:
        if os.path.exists(path):
            raise FileExistsError(f"{path} exists: choose another output folder or remove it "
                                  f"(earlier results are never overwritten)")


def write_label_table(rows, csv_path, md_path):
    """Write the rows as CSV and as a Markdown table; returns the two paths."""
    _refuse_existing((csv_path, md_path))
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=TABLE_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |",
             "|" + "---|" * len(TABLE_COLUMNS)]
    lines += ["| " + " | ".join(str(r[c]).replace("|", "\\|") for c in TABLE_COLUMNS) + " |"
              for r in rows]
    with open(md_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return csv_path, md_path


def write_trace(model, image, target, out_dir, anchors=(), rng=None, class_names=None,
                samples=10):
    """Step ``model`` through one image and write what ``minirpn trace`` writes.

    Shapes: H x W image, K GT boxes, A anchors.

    Parameters
    ----------
    model : FasterRCNN
        Trained or not (anchor labels do not depend on the weights).
    image : (H, W, 3) uint8
    target : dict or None
        ``boxes`` (K, 4), ``labels`` (K,) in original pixels; without it no
        anchor is labelled, so only the overview is written.
    out_dir : str or os.PathLike
        Created if missing; existing files are never overwritten.
    anchors : sequence of int
        Anchors in [0, A) to explain, one figure each.
    rng : numpy.random.Generator, optional
        Drives the anchor and RoI sampling and the table's samples; seeded
        with 0 when omitted.
    class_names : sequence of str, optional
    samples : int
        Negatives and ignored anchors of each kind sampled into the table.

    Returns
    -------
    dict
        ``overview``, ``table_csv``, ``table_md`` (None without a target),
        ``anchors`` (anchor -> PNG path), ``summary`` (the trace's text) and
        ``labels`` (the AnchorLabels or None).
    """
    from ..visualize import plot_explanation, plot_trace, save_figure
    anchors = [int(a) for a in anchors]
    if anchors and target is None:
        raise ValueError("--anchor needs GT boxes: anchors are labelled only against a "
                         "target (use --data with --index, or pass a target)")
    rng = np.random.default_rng(0) if rng is None else rng
    os.makedirs(out_dir, exist_ok=True)
    names = dict(overview="overview.png", table_csv="labels.csv", table_md="labels.md")
    paths = {k: os.path.join(out_dir, v) for k, v in names.items()}
    anchor_paths = {a: os.path.join(out_dir, f"anchor_{a}.png") for a in anchors}
    _refuse_existing([paths["overview"], *anchor_paths.values()]
                     + ([paths["table_csv"], paths["table_md"]] if target is not None else []))
    trace = Trace(model, image, target, rng=rng)
    while "anchors" not in trace.names:      # check --anchor before the costly stages
        trace.next()
    total = len(trace["anchors"]["anchors"])
    for a in anchors:
        if not 0 <= a < total:
            raise ValueError(f"--anchor {a} is out of range: this image has {total} anchors "
                             f"(0..{total - 1})")
    trace.run()
    labels = trace["anchor_labels"].result if target is not None else None
    save_figure(plot_trace(trace, class_names=class_names), paths["overview"])
    if labels is not None:
        write_label_table(label_table(labels, anchors_that_matter(labels, rng, samples)),
                          paths["table_csv"], paths["table_md"])
    else:
        paths["table_csv"] = paths["table_md"] = None
    for a, path in anchor_paths.items():
        save_figure(plot_explanation(labels, a, image=trace.image), path)
    return dict(paths, anchors=anchor_paths, summary=trace.summary(), labels=labels)

