"""Pictures of what the model produces: detections on one image or a grid of images,
and the training losses against the step."""
import json
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..backend import to_numpy
from ..checks import check_positive_int
from ..detection_losses import LOSS_NAMES
from .boxes import (_boxes, _field, _image, _new_axes, _show_image,
                    draw_boxes)


# ---- detections on one image ----------------------------------------------------------
def plot_detections(image, detections=None, class_names=None, target=None, min_score=0.0,
                    ax=None, title=None):
    """Detections (solid, "name 0.93") and ground truth (dashed) on an image.

    Shapes: D detections, K GT boxes, all in ORIGINAL pixels.

    Parameters
    ----------
    image : (H, W, 3) uint8
    detections : dict, optional
        ``boxes`` (D, 4) float, ``scores`` (D,), ``labels`` (D,) in 1..C, as
        ``model.detect`` or ``trace["detections"]`` give them; None: GT only.
    class_names : sequence of C str, optional
    target : dict, optional
        ``boxes`` (K, 4) and ``labels`` (K,).
    min_score : float
        Draw only detections scoring at least this.
    ax : Axes, optional
        Draw here instead of on a new figure.
    title : str, optional

    Returns
    -------
    Figure
    """
    fig, (ax,) = _new_axes(ax, _image(image).shape)
    _show_image(ax, image)
    shown = total = 0
    if target is not None:
        draw_boxes(ax, None, _field(target, "boxes", "target"), _field(target, "labels", "target"),
                   class_names=class_names, linestyle="--", captions=False)
    if detections is not None:
        scores = to_numpy(_field(detections, "scores", "detections")).reshape(-1)
        keep, total = scores >= min_score, len(scores)
        shown = int(keep.sum())
        draw_boxes(ax, None, _boxes(_field(detections, "boxes", "detections"), "boxes")[keep],
                   to_numpy(_field(detections, "labels", "detections"))[keep], scores[keep],
                   class_names=class_names)
    parts = [] if detections is None else [f"{shown} of {total} detections, score >= "
                                           f"{min_score:g}"]
    if target is not None:
        parts.append(f"{len(_field(target, 'boxes', 'target'))} GT (dashed)")
    ax.set_title(title or ", ".join(parts), fontsize=9)
    return fig


# ---- training logs and many images --------------------------------------------------
def _log_records(log):
    if isinstance(log, (str, os.PathLike)):
        records = []
        for n, line in enumerate(Path(log).read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{log}:{n} is not a JSON record ({e.msg})") from None
    elif isinstance(log, (list, tuple)):
        records = list(log)
    else:
        raise TypeError(f"log must be a list of dicts or a path to a .jsonl file, "
                        f"got {type(log).__name__}")
    rows = []
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise TypeError(f"log record {i} must be a dict, got {type(r).__name__}")
        r = {**r, **r["losses"]} if isinstance(r.get("losses"), dict) else r
        if any(k in r for k in LOSS_NAMES):   # other records (evaluation...) are skipped
            rows.append(r)
    if not rows:
        raise ValueError(f"log holds no training record: none has any of {LOSS_NAMES}")
    return rows


def _smooth(values, window):
    """Trailing moving average; the first points average what exists."""
    c = np.cumsum(np.insert(values, 0, 0.0))
    i = np.arange(1, len(values) + 1)
    lo = np.maximum(i - window, 0)
    return (c[i] - c[lo]) / (i - lo)


def plot_loss_curves(log, window=20):
    """The four losses and their total against the step, with the learning rate.

    Each curve is drawn raw (faint) and as a ``window``-step moving average.
    A record is a dict with the losses ``rpn_cls``, ``rpn_box``, ``roi_cls``,
    ``roi_box`` (flat or under ``"losses"``), optionally ``total``, ``step``
    (else the record's position) and ``lr`` (drawn on a twin axis).
    Records without any loss (e.g. evaluations) are skipped.

    Parameters
    ----------
    log : list of dict, or str / PathLike of a JSON-lines file (``log.jsonl``)
    window : int, steps averaged

    Returns
    -------
    Figure with one axes, two when some record has ``lr``
    """
    rows, window = _log_records(log), check_positive_int(window, "window")
    steps = np.array([r.get("step", r.get("iteration", i)) for i, r in enumerate(rows)], float)
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for name in (*LOSS_NAMES, "total"):
        have = [name in r for r in rows]
        if not any(have):
            continue
        x = steps[have]
        y = np.array([r[name] for r in rows if name in r], dtype=float)
        style = dict(color="black", linewidth=2) if name == "total" else dict(linewidth=1.2)
        line, = ax.plot(x, _smooth(y, window), label=name, **style)
        ax.plot(x, y, color=line.get_color(), alpha=0.2, linewidth=0.8)
    ax.set_xlabel("step"), ax.set_ylabel(f"loss ({window}-step average)")
    ax.legend(loc="upper right", fontsize=8)
    if any("lr" in r for r in rows):
        lr = [(s, r["lr"]) for s, r in zip(steps, rows) if "lr" in r]
        twin = ax.twinx()
        twin.plot(*zip(*lr), color="tab:gray", linestyle=":", label="lr")
        twin.set_ylim(0, 1.1 * max(v for _, v in lr) or 1.0)
        twin.set_ylabel("learning rate (dotted)")
    ax.set_title(f"{len(rows)} training records", fontsize=10)
    return fig


def detection_grid(images, detections, class_names=None, targets=None, ncols=4, min_score=0.0):
    """Several images with their detections (and GT), one axes each.

    Parameters
    ----------
    images : list of N (H_i, W_i, 3) uint8
    detections : list of N dicts (``model.detect(images)``)
    class_names : sequence of C str, optional
    targets : list of N dicts, optional
    ncols : int
    min_score : float

    Returns
    -------
    Figure with N axes
    """
    n, ncols = len(images), check_positive_int(ncols, "ncols")
    for name, v in (("detections", detections), ("targets", targets)):
        if v is not None and len(v) != n:
            raise ValueError(f"{name} must hold one entry per image ({n}), got {len(v)}")
    if n == 0:
        raise ValueError("images must hold at least one image, got an empty list")
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(3.5 * ncols, 3.5 * nrows), layout="constrained")
    for i in range(n):
        plot_detections(images[i], detections[i], class_names,
                        None if targets is None else targets[i], min_score,
                        ax=fig.add_subplot(nrows, ncols, i + 1))
    return fig
