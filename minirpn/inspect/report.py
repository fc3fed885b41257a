"""The coverage report: fractions overall, by size and by aspect ratio, as JSON and text.

Three fractions of the GT boxes tell how the anchor target layer (Ren et al.
2015, section 3.1.2) will see them:

* ``fraction_positive``: some anchor reaches ``rpn_positive_iou`` (rule 3),
  so the box has "type B" positives;
* ``fraction_rescued``: none does, but the best anchor overlaps it (IoU > 0),
  so the best-anchor rule (rule 4) makes that one anchor positive: the box
  is learnt from a single, poorly fitting anchor;
* ``fraction_below_negative``: the best IoU is below ``rpn_negative_iou``,
  so even the rescuing anchor looks like background to the regressor.

Sizes are bucketed by sqrt(area) in the NETWORK's pixels (where anchors
live), in octaves; aspect ratios by height / width, around the paper's
1:2, 1:1 and 2:1.
"""
import numpy as np

from .coverage import CAUSES

__all__ = ["SIZE_EDGES", "RATIO_EDGES", "fractions", "coverage_report", "report_table"]

#: sqrt(area) bucket edges, network pixels.
SIZE_EDGES = (0, 16, 32, 64, 128, 256, 512, np.inf)
#: height / width bucket edges and their names.
RATIO_EDGES = (0, 1 / 3, 2 / 3, 3 / 2, 3, np.inf)
RATIO_NAMES = ("<1/3", "1/3-2/3", "2/3-3/2", "3/2-3", ">=3")


def _size_names():
    names = []
    for lo, hi in zip(SIZE_EDGES[:-1], SIZE_EDGES[1:]):
        names.append(f"<{hi:g}" if lo == 0 else f">={lo:g}" if hi == np.inf else f"{lo:g}-{hi:g}")
    return names


def fractions(best_iou, config):
    """The three fractions and the median of ``best_iou`` (K,) under ``config``'s thresholds.

    Returns
    -------
    dict
        ``num_gt``, ``fraction_positive``, ``fraction_rescued``,
        ``fraction_below_negative``, ``median_best_iou`` (None when K = 0).
    """
    best = np.asarray(best_iou, dtype=np.float64)
    if best.size == 0:
        return dict(num_gt=0, fraction_positive=None, fraction_rescued=None,
                    fraction_below_negative=None, median_best_iou=None)
    positive = best >= config.rpn_positive_iou
    return dict(num_gt=int(best.size),
                fraction_positive=float(positive.mean()),
                fraction_rescued=float((~positive & (best > 0)).mean()),
                fraction_below_negative=float((best < config.rpn_negative_iou).mean()),
                median_best_iou=float(np.median(best)))


def _buckets(values, edges, names, best, config):
    which = np.digitize(values, edges[1:-1], right=False)
    # JSON has no infinity: the open end of the last bucket is null.
    return {name: dict(fractions(best[which == b], config),
                       range=[float(edges[b]), None if edges[b + 1] == np.inf
                              else float(edges[b + 1])])
            for b, name in enumerate(names) if (which == b).any()}


def box_shapes(coverage):
    """(sqrt(area), height / width) of every box in network pixels, (K,) float64 each."""
    b = coverage.network_boxes.astype(np.float64)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return np.sqrt(w * h), h / w


def coverage_report(coverage, suggestions=None, max_uncovered=50):
    """The report as a JSON-ready dict (the ``--json`` of ``minirpn inspect-anchors``).

    Parameters
    ----------
    coverage : Coverage
    suggestions : list of dict, optional
        From :func:`minirpn.inspect.suggest_anchors`.
    max_uncovered : int
        The worst-covered boxes listed under ``uncovered["boxes"]``.

    Returns
    -------
    dict
        ``num_gt``, ``num_images``, ``fraction_positive``,
        ``fraction_rescued``, ``fraction_below_negative``,
        ``median_best_iou``, ``fraction_no_overlap`` (no anchor overlaps the
        box: not even rule 4 helps), ``by_size`` and ``by_ratio`` (bucket
        name -> the same fractions and its ``range`` [lo, hi), hi None
        for the open end), ``uncovered`` (boxes
        below the negative threshold: ``count``, ``by_cause``, ``boxes``),
        ``thresholds``, ``anchors`` (the config's scales, ratios, stride)
        and ``suggestions``.
    """
    c, best = coverage.config, coverage.best_iou
    side, ratio = box_shapes(coverage)
    low = np.flatnonzero(best < c.rpn_negative_iou)
    worst = low[np.argsort(best[low], kind="stable")][:max_uncovered]
    ids = coverage.annotations.image_ids
    report = fractions(best, c)
    report.update(
        num_images=int(len(coverage.network_size)),
        fraction_no_overlap=float((best == 0).mean()),
        by_size=_buckets(side, SIZE_EDGES, _size_names(), best, c),
        by_ratio=_buckets(ratio, RATIO_EDGES, RATIO_NAMES, best, c),
        uncovered=dict(
            count=int(low.size),
            by_cause={name: int((coverage.cause == k).sum()) for k, name in enumerate(CAUSES)},
            boxes=[dict(image=int(coverage.image_index[k]),
                        image_id=ids[int(coverage.image_index[k])],
                        box=coverage.gt_boxes[k].tolist(),
                        network_box=coverage.network_boxes[k].astype(float).tolist(),
                        best_iou=float(best[k]), best_anchor=int(coverage.best_anchor[k]),
                        cause=CAUSES[coverage.cause[k]]) for k in worst]),
        thresholds=dict(rpn_positive_iou=c.rpn_positive_iou,
                        rpn_negative_iou=c.rpn_negative_iou,
                        rpn_allowed_border=c.rpn_allowed_border),
        anchors=dict(anchor_scales=list(c.anchor_scales), anchor_ratios=list(c.anchor_ratios),
                     stride=c.stride, target_size=c.target_size, max_size=c.max_size),
        suggestions=list(suggestions or []))
    return report


def _pct(v):
    return "     -" if v is None else f"{100 * v:5.1f}%"


def _rows(title, buckets):
    lines = [f"{title:<14s} {'GT':>6s} {'positive':>9s} {'rescued':>9s} {'< negative':>11s}"
             f" {'median IoU':>11s}"]
    for name, f in buckets.items():
        lines.append(f"{name:<14s} {f['num_gt']:6d} {_pct(f['fraction_positive']):>9s} "
                     f"{_pct(f['fraction_rescued']):>9s} {_pct(f['fraction_below_negative']):>11s}"
                     f" {f['median_best_iou']:11.3f}")
    return lines


def report_table(report):
    """The report as text: totals, the two bucket tables, uncovered boxes, suggestions."""
    t, a = report["thresholds"], report["anchors"]
    lines = [f"{report['num_gt']} GT boxes in {report['num_images']} images; anchors: scales "
             f"{a['anchor_scales']}, ratios {a['anchor_ratios']}, stride {a['stride']}; "
             f"positive IoU {t['rpn_positive_iou']:g}, negative IoU {t['rpn_negative_iou']:g}",
             f"  reach the positive threshold:          {_pct(report['fraction_positive'])}",
             f"  positive only by the best-anchor rule: {_pct(report['fraction_rescued'])}",
             f"  best anchor below the negative IoU:    {_pct(report['fraction_below_negative'])}",
             f"  no anchor overlaps at all:             {_pct(report['fraction_no_overlap'])}",
             f"  median best IoU: {report['median_best_iou']:.3f}", ""]
    lines += _rows("sqrt(area) px", report["by_size"]) + [""]
    lines += _rows("height/width", report["by_ratio"]) + [""]
    u = report["uncovered"]
    causes = ", ".join(f"{n} {k}" for k, n in u["by_cause"].items() if n)
    lines.append(f"{u['count']} boxes below the negative IoU" + (f": {causes}" if causes else ""))
    for b in u["boxes"][:5]:
        lines.append(f"  image {b['image']} (id {b['image_id']}) box "
                     f"[{', '.join(f'{v:.0f}' for v in b['box'])}]: best IoU "
                     f"{b['best_iou']:.3f} ({b['cause']})")
    if report["suggestions"]:
        lines += ["", "anchor settings ranked by the fraction reaching the positive threshold:"]
        for s in report["suggestions"]:
            mark = "  (current)" if s.get("current") else ""
            lines.append(f"  scales {s['anchor_scales']}, ratios {s['anchor_ratios']} "
                         f"({s['anchors_per_cell']} per cell): positive "
                         f"{_pct(s['fraction_positive'])}, rescued "
                         f"{_pct(s['fraction_rescued'])}, < negative "
                         f"{_pct(s['fraction_below_negative'])}, median "
                         f"{s['median_best_iou']:.3f}{mark}")
    return "\n".join(lines)
