"""Debugging anchor labelling on your own data, from Python.

``inspect_anchors(dataset, config)`` answers "do my anchors fit my
objects?" from the annotations alone (:mod:`.coverage`, :mod:`.report`,
:mod:`.suggest`); ``write_trace(model, image, target, out)`` answers "why
is this anchor labelled so?" for one image (:mod:`.trace`). The command
line's ``minirpn inspect-anchors`` and ``minirpn trace`` call these.
"""
from .annotations import read_annotations
from .coverage import CAUSES, Annotations, Coverage, anchor_coverage, network_sizes
from .report import coverage_report, fractions, report_table
from .pictures import COVERAGE_FILES, write_coverage
from .suggest import anchor_grid, suggest_anchors
from .trace import (TABLE_COLUMNS, anchors_that_matter, best_anchors_of_gt, label_table,
                    write_label_table, write_trace)

__all__ = ["read_annotations", "Annotations", "Coverage", "CAUSES", "anchor_coverage",
           "network_sizes", "coverage_report", "fractions", "report_table", "anchor_grid",
           "suggest_anchors", "inspect_anchors", "COVERAGE_FILES", "write_coverage",
           "TABLE_COLUMNS", "anchors_that_matter", "best_anchors_of_gt", "label_table",
           "write_label_table", "write_trace"]


def inspect_anchors(data, config, suggestions=3, max_uncovered=50):
    """Anchor coverage of a dataset under ``config``, as a report dict.

    Parameters
    ----------
    data : DetectionDataset or Annotations
    config : Config
    suggestions : int
        Alternative anchor settings to rank (0: none).
    max_uncovered : int
        Worst-covered boxes listed in the report.

    Returns
    -------
    (dict, Coverage)
        The report (see :func:`coverage_report`; print it with
        :func:`report_table`) and the per-box coverage behind it.
    """
    annotations = data if isinstance(data, Annotations) else read_annotations(data)
    coverage = anchor_coverage(annotations, config)
    ranked = suggest_anchors(annotations, config, suggestions) if suggestions else []
    return coverage_report(coverage, ranked, max_uncovered), coverage
