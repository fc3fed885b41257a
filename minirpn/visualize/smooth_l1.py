"""Smooth L1, the box-regression loss, and its gradient for several sigmas.

Fast R-CNN (Girshick 2015, eq. 3) defines smooth L1 as 0.5 d^2 for |d| < 1
and |d| - 0.5 otherwise; py-faster-rcnn's ``SmoothL1Loss`` layer adds a
sigma that narrows the quadratic zone to |d| < 1 / sigma^2 (sigma 3 in the
RPN, 1 in the detection head). The curves are computed by the layer itself,
:func:`minirpn.nn.functional.smooth_l1_forward` and ``_backward``.
"""
import numpy as np
from matplotlib.figure import Figure

from ..checks import check_positive_int, check_positive_number
from ..nn.functional import smooth_l1_backward, smooth_l1_forward

__all__ = ["smooth_l1_curve", "plot_smooth_l1"]


def smooth_l1_curve(d, sigma=1.0):
    """Smooth L1 and its derivative at each difference ``d``, by the layer.

    Parameters
    ----------
    d : (N,) float
        Differences pred - target.
    sigma : float > 0

    Returns
    -------
    values, slopes : (N,) float64 each
        f(d) and f'(d).
    """
    d = np.asarray(d, dtype=np.float64).reshape(-1)
    zero, one = np.zeros(1), np.ones(1)
    values = np.array([float(smooth_l1_forward(np.array([v]), zero, one, sigma=sigma)[0])
                       for v in d])
    _, cache = smooth_l1_forward(d, np.zeros_like(d), np.ones_like(d), sigma=sigma)
    return values, smooth_l1_backward(1.0, cache)


def plot_smooth_l1(sigmas=(1.0, 3.0), limit=2.0, points=401):
    """Smooth L1 (left) and its gradient (right) against d, one curve per sigma.

    The joint of each curve, |d| = 1 / sigma^2, where the parabola meets the
    line, is marked with dots and dotted lines; L2 (0.5 d^2) is drawn faint for
    comparison.

    Parameters
    ----------
    sigmas : sequence of float > 0
    limit : float > 0
        d runs over [-limit, limit].
    points : int

    Returns
    -------
    Figure with two axes
    """
    limit = check_positive_number(limit, "limit")
    d = np.linspace(-limit, limit, check_positive_int(points, "points"))
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    loss_ax, grad_ax = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    loss_ax.plot(d, 0.5 * d * d, color="0.75", linewidth=1, label="L2: 0.5 d²")
    for sigma in sigmas:
        values, slopes = smooth_l1_curve(d, sigma)
        joint = 1.0 / sigma ** 2
        line, = loss_ax.plot(d, values, linewidth=2, label=f"sigma {sigma:g}")
        grad_ax.plot(d, slopes, color=line.get_color(), linewidth=2,
                     label=f"sigma {sigma:g}")
        for ax in (loss_ax, grad_ax):
            for x in (-joint, joint):
                ax.axvline(x, color=line.get_color(), linestyle=":", linewidth=1)
        loss_ax.plot([-joint, joint], [0.5 * joint] * 2, "o", color=line.get_color(),
                     markersize=5)
        loss_ax.annotate(f"1/σ² = {joint:.3g}", (joint, 0.5 / sigma ** 2),
                         xytext=(6, 14), textcoords="offset points", fontsize=8,
                         color=line.get_color())
    loss_ax.set_ylim(0, limit), loss_ax.set_xlabel("d = prediction - target")
    loss_ax.set_title("smooth L1: 0.5 σ² d² inside |d| < 1/σ², |d| - 0.5/σ² outside",
                      fontsize=9)
    grad_ax.set_xlabel("d"), grad_ax.set_title("its gradient: σ² d inside, sign(d) outside",
                                               fontsize=9)
    loss_ax.legend(fontsize=8), grad_ax.legend(fontsize=8)
    return fig
