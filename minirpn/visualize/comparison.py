"""Pictures that compare training runs: the APs and time of several runs
side by side, and the losses of a staged run (4-step alternating training,
Ren et al. 2015, section 3.2) with each stage shaded."""
import numbers

import numpy as np
from matplotlib.figure import Figure

from .results import _log_records, plot_loss_curves

__all__ = ["plot_run_comparison", "plot_stage_losses"]


def _check_run(name, metrics):
    if not isinstance(metrics, dict):
        raise TypeError(f"runs[{name!r}] must be a metrics dict, got {type(metrics).__name__}")
    for key in ("map", "per_class", "seconds"):
        if key not in metrics:
            raise ValueError(f"runs[{name!r}] must have a {key!r} field "
                             "(TrainResult.metrics has map, per_class, seconds)")
    if not isinstance(metrics["per_class"], dict):
        raise TypeError(f"runs[{name!r}]['per_class'] must be a dict class -> AP, "
                        f"got {type(metrics['per_class']).__name__}")
    values = [metrics["map"], metrics["seconds"], *metrics["per_class"].values()]
    if not all(isinstance(v, numbers.Real) and np.isfinite(v) for v in values):
        raise ValueError(f"runs[{name!r}] must hold finite numbers for map, seconds "
                         "and every per-class AP")


def plot_run_comparison(runs, title=None):
    """Per-class AP and mAP of several runs as grouped bars, and their training time.

    Parameters
    ----------
    runs : dict str -> dict
        Run name -> metrics as ``TrainResult.metrics`` gives them: ``map``
        (float), ``per_class`` (class name -> AP float), ``seconds``
        (float, training wall time). Every run must name the same classes.
    title : str, optional

    Returns
    -------
    Figure with two axes: the APs (one group per class, then "mAP") and
    the minutes of each run.
    """
    if not isinstance(runs, dict) or not runs:
        raise ValueError(f"runs must be a non-empty dict name -> metrics, got {runs!r}")
    for name, metrics in runs.items():
        _check_run(name, metrics)
    classes = list(next(iter(runs.values()))["per_class"])
    for name, metrics in runs.items():
        if list(metrics["per_class"]) != classes:
            raise ValueError(f"runs[{name!r}] names the classes {list(metrics['per_class'])}, "
                             f"the first run {classes}: compare runs on the same classes")
    groups, names = classes + ["mAP"], list(runs)
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ap_ax, time_ax = fig.subplots(1, 2, width_ratios=(3, 1))
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        values = [runs[name]["per_class"][c] for c in classes] + [runs[name]["map"]]
        x = np.arange(len(groups)) + (k - (len(names) - 1) / 2) * width
        bars = ap_ax.bar(x, values, width, label=name, color=f"C{k}")
        ap_ax.bar_label(bars, fmt="%.2f", fontsize=7)
        time_ax.barh(k, runs[name]["seconds"] / 60, color=f"C{k}")
    ap_ax.set_xticks(np.arange(len(groups)), groups)
    ap_ax.set_ylim(0, 1.1), ap_ax.set_ylabel("AP (IoU 0.5)")
    ap_ax.legend(loc="lower right", fontsize=8)
    time_ax.set_yticks(np.arange(len(names)), names)
    time_ax.invert_yaxis(), time_ax.set_xlabel("training minutes")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_stage_losses(log, window=20):
    """:func:`plot_loss_curves` with the stages of the run shaded and named.

    A stage is a run of consecutive records with the same ``stage`` field
    ("joint"; "1-rpn", "2-detector", "3-rpn", "4-detector" for the
    alternating scheme); each stage trains only some losses, so each curve
    stops and starts at the stage boundaries.

    Parameters
    ----------
    log : list of dict, or str / PathLike of a JSON-lines file
        Training records with ``stage`` (``TrainResult.history``).
    window : int, steps averaged

    Returns
    -------
    Figure (as :func:`plot_loss_curves`), the first axes shaded
    """
    rows = _log_records(log)
    if any("stage" not in r for r in rows):
        raise ValueError("every training record in log must have a 'stage' field "
                         "(as TrainResult.history and log.jsonl have)")
    fig = plot_loss_curves(rows, window)
    ax = fig.axes[0]
    steps = [r.get("step", i) for i, r in enumerate(rows)]
    start = shaded = 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i]["stage"] != rows[start]["stage"]:
            lo, hi = steps[start] - 0.5, steps[i - 1] + 0.5
            ax.axvspan(lo, hi, color=("0.93", "0.85")[shaded % 2], zorder=0)
            shaded += 1
            ax.text((lo + hi) / 2, 0.98, rows[start]["stage"], transform=ax.get_xaxis_transform(),
                    ha="center", va="top", fontsize=8)
            start = i
    return fig
