"""Tests of minirpn.visualize.smooth_l1: the curves are the layer's, the joints are marked."""
import matplotlib

matplotlib.use("Agg")

import numpy as np   # noqa: E402
import pytest        # noqa: E402

from minirpn import visualize as V   # noqa: E402


def test_curve_values_by_hand():
    values, slopes = V.smooth_l1_curve([-2.0, 0.5, 0.1, 1.0], sigma=1.0)
    np.testing.assert_allclose(values, [1.5, 0.125, 0.005, 0.5])
    np.testing.assert_allclose(slopes, [-1.0, 0.5, 0.1, 1.0])
    values, slopes = V.smooth_l1_curve([0.1, 1.0], sigma=3.0)
    np.testing.assert_allclose(values, [0.045, 1 - 1 / 18])
    np.testing.assert_allclose(slopes, [0.9, 1.0])


def test_plot_marks_each_joint():
    fig = V.plot_smooth_l1(sigmas=(1.0, 3.0), limit=2.0, points=41)
    loss_ax, grad_ax = fig.axes
    joints = sorted({round(float(line.get_xdata()[0]), 6) for line in loss_ax.lines
                     if line.get_linestyle() == ":"})
    assert joints == pytest.approx([-1.0, -1 / 9, 1 / 9, 1.0])
    # L2 plus one curve per sigma, then the joint markers
    assert len([line for line in loss_ax.lines if line.get_linestyle() == "-"]) == 3
    assert len(grad_ax.lines) == 2 + 4


def test_bad_limit_is_named():
    with pytest.raises(ValueError, match="limit"):
        V.plot_smooth_l1(limit=0)
