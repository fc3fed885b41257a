"""Tests of minirpn.visualize.comparison: run comparisons and staged loss curves."""
import matplotlib

matplotlib.use("Agg")

import numpy as np   # noqa: E402
import pytest        # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from minirpn import visualize as V       # noqa: E402

RUNS = {"joint": {"map": 0.8, "per_class": {"circle": 0.9, "square": 0.7}, "seconds": 120.0},
        "alternating": {"map": 0.6, "per_class": {"circle": 0.5, "square": 0.7},
                        "seconds": 90.0}}


def test_run_comparison_draws_one_bar_per_run_and_class_and_the_minutes():
    fig = V.plot_run_comparison(RUNS, title="equal budgets")
    ap_ax, time_ax = fig.axes
    bars = [p for p in ap_ax.patches if isinstance(p, Rectangle)]
    assert len(bars) == 2 * 3                           # 2 runs x (2 classes + mAP)
    heights = sorted(round(b.get_height(), 3) for b in bars)
    assert heights == [0.5, 0.6, 0.7, 0.7, 0.8, 0.9]
    assert [t.get_text() for t in ap_ax.get_xticklabels()] == ["circle", "square", "mAP"]
    widths = [p.get_width() for p in time_ax.patches]
    np.testing.assert_allclose(widths, [2.0, 1.5])      # minutes
    assert [t.get_text() for t in time_ax.get_yticklabels()] == ["joint", "alternating"]


def test_run_comparison_rejects_bad_runs():
    with pytest.raises(ValueError, match="non-empty"):
        V.plot_run_comparison({})
    with pytest.raises(ValueError, match="'seconds'"):
        V.plot_run_comparison({"a": {"map": 0.1, "per_class": {}}})
    with pytest.raises(ValueError, match="same classes"):
        V.plot_run_comparison({**RUNS, "b": {"map": 0.1, "per_class": {"x": 0.1},
                                             "seconds": 1.0}})
    with pytest.raises(ValueError, match="finite"):
        V.plot_run_comparison({"a": {"map": float("nan"), "per_class": {}, "seconds": 1.0}})


def test_stage_losses_shade_each_stage_once():
    stages = ["1-rpn"] * 3 + ["2-detector"] * 2 + ["3-rpn"] * 2 + ["4-detector"] * 3
    rows = [{"step": i + 1, "stage": s, "lr": 0.01,
             **({"rpn_cls": 0.5, "rpn_box": 0.1} if "rpn" in s else
                {"roi_cls": 1.0, "roi_box": 0.2}), "total": 0.6}
            for i, s in enumerate(stages)]
    ax = V.plot_stage_losses(rows, window=2).axes[0]
    spans = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(spans) == 4
    starts = sorted(round(p.get_x(), 1) for p in spans)
    assert starts == [0.5, 3.5, 5.5, 7.5]
    assert [t.get_text() for t in ax.texts] == ["1-rpn", "2-detector", "3-rpn", "4-detector"]
    with pytest.raises(ValueError, match="'stage'"):
        V.plot_stage_losses([{"rpn_cls": 1.0}])
