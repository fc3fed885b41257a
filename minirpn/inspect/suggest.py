"""Alternative anchor settings: a small grid around the config, ranked by coverage.

The paper chose 3 scales x 3 ratios for PASCAL VOC and COCO objects (Ren et
al. 2015, section 3.1.1, "Anchors"; Table 8 compares other settings). Data
whose boxes are much smaller, larger, thinner or wider wants other anchors.
The grid tries each scale set multiplied by 2^(-2, -1, -1/2, 0, 1/2, 1, 2) and
extended by one octave down, up or both, or with a scale between each
two (a half-octave grid), against the ratio set as it is
and extended by one and two octaves of height / width at each end, and
ranks them by the fraction of boxes that reach the positive threshold
(ties: the fewer boxes below the negative threshold, then fewer anchors
per cell, then the higher median best IoU), listing
only the trade-offs: each next setting is cheaper than those above it. Only the
anchors change: preprocessing, stride and thresholds stay the config's.
"""
import numpy as np

from .coverage import prepare_boxes, shape_ious
from .report import fractions

__all__ = ["anchor_grid", "suggest_anchors"]


def _clean(values):
    return tuple(sorted({round(float(v), 4) for v in values}))


def anchor_grid(config):
    """The (anchor_scales, anchor_ratios) pairs tried, the config's own first."""
    s, r = _clean(config.anchor_scales), _clean(config.anchor_ratios)
    scale_sets = [_clean(v * f for v in s) for f in (1, 2 ** -0.5, 0.5, 2 ** 0.5, 2, 0.25, 4)]
    scale_sets += [_clean(s + (s[0] / 2,)), _clean(s + (s[-1] * 2,)),
                   _clean(s + (s[0] / 2, s[-1] * 2)), _clean(s + tuple(v * 2 ** 0.5 for v in s))]
    ratio_sets = [r, _clean(r + (r[0] / 2, r[-1] * 2)),
                  _clean(r + (r[0] / 2, r[-1] * 2, r[0] / 4, r[-1] * 4))]
    pairs = []
    for scales in scale_sets:
        for ratios in ratio_sets:
            if (scales, ratios) not in pairs:
                pairs.append((scales, ratios))
    return pairs


def suggest_anchors(annotations, config, top=3):
    """Rank the settings of :func:`anchor_grid` on ``annotations``.

    Parameters
    ----------
    annotations : Annotations
    config : Config
    top : int
        How many settings to return; the config's own is added (flagged
        ``current``) when it is not among them.

    Returns
    -------
    list of dict
        Best first, each needing fewer anchors per cell than those before
        it (settings that cover no more with more anchors are left out): ``anchor_scales``, ``anchor_ratios`` (lists),
        ``anchors_per_cell``, ``fraction_positive``, ``fraction_rescued``,
        ``fraction_below_negative``, ``median_best_iou``, ``current``.
    """
    from .coverage import _check
    _check(annotations)
    prepared = prepare_boxes(annotations, config)
    grid = anchor_grid(config)
    # A setting's best IoU is the max over its shapes, and each shape's anchors
    # do not depend on the others: compute every shape of the grid once.
    all_scales = sorted({v for scales, _ in grid for v in scales})
    all_ratios = sorted({v for _, ratios in grid for v in ratios})
    column = {}
    per_ratio = []
    for r in all_ratios:
        per_ratio.append(shape_ious(prepared, config, all_scales, (r,))[0])
        for j, v in enumerate(all_scales):
            column[r, v] = (len(per_ratio) - 1, j)
    results = []
    current = (_clean(config.anchor_scales), _clean(config.anchor_ratios))
    for scales, ratios in grid:
        best = np.max([per_ratio[column[r, v][0]][:, column[r, v][1]]
                       for r in ratios for v in scales], axis=0)
        f = fractions(best, config)
        f.pop("num_gt")
        results.append(dict(anchor_scales=list(scales), anchor_ratios=list(ratios),
                            anchors_per_cell=len(scales) * len(ratios), **f,
                            current=(scales, ratios) == current))
    results.sort(key=lambda d: (-d["fraction_positive"], d["fraction_below_negative"],
                                d["anchors_per_cell"], -d["median_best_iou"]))
    # Keep the trade-offs only: a setting is listed when it needs fewer anchors
    # per cell than every better-covering one listed before it.
    best = []
    for d in results:
        if len(best) < top and all(d["anchors_per_cell"] < b["anchors_per_cell"] for b in best):
            best.append(d)
    if not any(d["current"] for d in best):
        best += [d for d in results if d["current"]]
    return best
