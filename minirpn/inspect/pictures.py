"""The pictures ``minirpn inspect-anchors --out DIR`` writes, and its report.json.

Drawn with :mod:`minirpn.visualize`; existing files are never overwritten.
"""
import json
import os

__all__ = ["COVERAGE_FILES", "write_coverage"]

#: What is written, by key.
COVERAGE_FILES = dict(report="report.json", histogram="best_iou.png",
                      shapes="box_shapes.png", gallery="worst_covered.png")


def write_coverage(report, coverage, out_dir, dataset=None, gallery=12):
    """Write report.json, the best-IoU histogram, the box shapes and the gallery.

    Parameters
    ----------
    report : dict
        :func:`minirpn.inspect.coverage_report`'s result.
    coverage : Coverage
    out_dir : str or os.PathLike
        Created if missing.
    dataset : DetectionDataset, optional
        Needed for the gallery, which reads the images' pixels; None skips it.
    gallery : int
        Boxes in the gallery (0: none).

    Returns
    -------
    dict
        Key -> path written (``gallery`` None when it was not drawn).

    Raises
    ------
    FileExistsError
        One of the files is already there.
    """
    from ..visualize import (plot_best_iou_histogram, plot_box_shapes, plot_worst_covered,
                             save_figure)
    paths = {k: os.path.join(out_dir, v) for k, v in COVERAGE_FILES.items()}
    if dataset is None or gallery <= 0:
        paths["gallery"] = None
    for path in paths.values():
        if path is not None and os.path.exists(path):
            raise FileExistsError(f"{path} exists: choose another --out or remove it (earlier "
                                  f"results are never overwritten)")
    os.makedirs(out_dir, exist_ok=True)
    with open(paths["report"], "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1, default=_jsonable)
    save_figure(plot_best_iou_histogram(coverage), paths["histogram"])
    save_figure(plot_box_shapes(coverage), paths["shapes"])
    if paths["gallery"] is not None:
        save_figure(plot_worst_covered(coverage, dataset, gallery), paths["gallery"])
    return paths


def _jsonable(value):
    """numpy scalars and infinities in the report (bucket ranges end at inf)."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
