"""Gradient-check every functional layer: the report of ``minirpn demo``.

For each layer we draw small float64 inputs, run the hand-written forward
and backward once, and compare each analytic gradient with central
differences (:func:`minirpn.nn.gradcheck.gradcheck`). Inputs are chosen so
that no kink of a piecewise-linear layer lies within the finite-difference
step: ReLU inputs are kept away from 0, and everything that takes a max
(max-pool, RoI pool) sees distinct values spaced far apart compared with
the step. Smooth L1 differences are kept away from the joint |d| = 1/sigma^2.

A layer that raises is reported as ERROR rather than stopping the report.
"""
import time
from dataclasses import dataclass, field

import numba
import numpy as np

from . import functional as F
from .gradcheck import gradcheck

__all__ = ["run_selfcheck", "SelfcheckReport", "SelfcheckRow", "LAYERS"]

TOLERANCE = 1e-6
EPS = 1e-6


@dataclass
class SelfcheckRow:
    """One checked gradient: ``layer`` w.r.t. ``input`` of ``shape``."""

    layer: str
    input: str
    shape: tuple
    error: float = float("nan")
    seconds: float = 0.0
    message: str = ""

    @property
    def passed(self):
        return not self.message and self.error < TOLERANCE


@dataclass
class SelfcheckReport:
    """All rows of :func:`run_selfcheck`; ``passed`` when every row is."""

    rows: list = field(default_factory=list)

    @property
    def passed(self):
        return bool(self.rows) and all(r.passed for r in self.rows)

    def table(self):
        """A text table: layer, input (shape), max relative error, ok/FAIL,
        time of the numerical check in milliseconds."""
        head = ("layer", "input", "max rel err", "result", "time")
        body = []
        for r in self.rows:
            shape = "x".join(str(s) for s in r.shape)
            what = f"{r.input} ({shape})" if r.shape else r.input
            err = "-" if r.message else f"{r.error:.1e}"
            result = "ERROR" if r.message else ("ok" if r.passed else "FAIL")
            body.append((r.layer, what, err, result,
                         f"{1e3 * r.seconds:.0f} ms"))
        widths = [max(len(row[i]) for row in [head] + body) for i in range(5)]
        fmt = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
        lines = ["Gradient check: float64, central differences "
                 f"(eps {EPS:g}), tolerance {TOLERANCE:g}",
                 fmt(head), fmt(tuple("-" * w for w in widths))]
        lines += [fmt(row) for row in body]
        for r in self.rows:
            if r.message:
                lines.append(f"ERROR {r.layer} / {r.input}: {r.message}")
        n_ok = sum(r.passed for r in self.rows)
        lines.append(f"{n_ok}/{len(self.rows)} gradients ok: "
                     + ("PASSED" if self.passed else "FAILED"))
        return "\n".join(lines)

    __str__ = table


# -- inputs -------------------------------------------------------------
def _distinct(rng, shape, spacing=0.01):
    """Values that are pairwise at least ``spacing`` apart (no ties for a
    max to flip on), in random order, centred on 0."""
    n = int(np.prod(shape))
    return (rng.permutation(n) - n / 2).reshape(shape) * spacing


def _away_from_zero(rng, shape, margin=0.05):
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < margin, np.copysign(margin, x) + x, x)


def _rois():
    # (R, 5) rows [batch, x1, y1, x2, y2] in image pixels; spatial_scale 0.5
    # maps them onto an 8 x 8 feature map.
    return np.array([[0, 1.3, 2.1, 11.7, 13.4],
                     [1, 4.2, 0.6, 14.9, 9.8],
                     [0, 0.0, 0.0, 15.0, 15.0],
                     [1, 6.4, 5.3, 9.1, 8.2]])


# -- one case per layer: (name, inputs, forward(**inputs) -> y,
#    backward(y_grad, cache) -> dict of grads, dy) -------------------------
def _conv(stride):
    def case(rng):
        inputs = {"x": rng.standard_normal((2, 3, 7, 7)),
                  "w": rng.standard_normal((4, 3, 3, 3)),
                  "b": rng.standard_normal(4)}
        fwd = lambda x, w, b: F.conv2d_forward(x, w, b, stride=stride, padding=1)
        bwd = lambda dy, cache: dict(zip("xwb", F.conv2d_backward(dy, cache)))
        return inputs, fwd, bwd
    return case


def _relu(rng):
    return ({"x": _away_from_zero(rng, (2, 3, 4, 4))}, F.relu_forward,
            lambda dy, cache: {"x": F.relu_backward(dy, cache)})


def _max_pool(rng):
    return ({"x": _distinct(rng, (2, 3, 6, 6))},
            lambda x: F.max_pool2d_forward(x, kernel_size=2, stride=2),
            lambda dy, cache: {"x": F.max_pool2d_backward(dy, cache)})


def _linear(rng):
    inputs = {"x": rng.standard_normal((4, 5)), "w": rng.standard_normal((5, 3)),
              "b": rng.standard_normal(3)}
    return (inputs, F.linear_forward,
            lambda dy, cache: dict(zip("xwb", F.linear_backward(dy, cache))))


def _dropout(rng):
    # A fresh generator per call: every forward draws the same mask.
    fwd = lambda x: F.dropout_forward(x, 0.5, np.random.default_rng(7), train=True)
    return ({"x": rng.standard_normal((4, 6))}, fwd,
            lambda dy, cache: {"x": F.dropout_backward(dy, cache)})


def _cross_entropy(rng):
    labels = np.array([0, 3, -1, 2, 1, -1])
    fwd = lambda logits: F.softmax_cross_entropy_forward(logits, labels)
    return ({"logits": 3 * rng.standard_normal((6, 4))}, fwd,
            lambda dy, cache: {"logits": F.softmax_cross_entropy_backward(dy, cache)})


def _smooth_l1(rng):
    # sigma = 3: the quadratic zone is |d| < 1/9. Half the differences fall
    # inside it, half outside, none within 0.01 of the joint.
    sigma, joint = 3.0, 1.0 / 9.0
    magnitude = np.where(rng.random((5, 4)) < 0.5, rng.uniform(0.0, joint - 0.01,
                         (5, 4)), rng.uniform(joint + 0.01, 2.0, (5, 4)))
    target = rng.standard_normal((5, 4))
    pred = target + np.where(rng.random((5, 4)) < 0.5, -1, 1) * magnitude
    weights = (rng.random((5, 4)) < 0.7).astype(np.float64)
    fwd = lambda pred: F.smooth_l1_forward(pred, target, weights, sigma=sigma,
                                           normalizer=3.0)
    return ({"pred": pred}, fwd,
            lambda dy, cache: {"pred": F.smooth_l1_backward(dy, cache)})


def _roi_pool(rng):
    rois = _rois()
    fwd = lambda features: F.roi_pool_forward(features, rois, output_size=(2, 2),
                                              spatial_scale=0.5)
    return ({"features": _distinct(rng, (2, 3, 8, 8))}, fwd,
            lambda dy, cache: {"features": F.roi_pool_backward(dy, cache)})


def _roi_align(rng):
    rois = _rois()
    fwd = lambda features: F.roi_align_forward(
        features, rois, output_size=(2, 2), spatial_scale=0.5,
        sampling_ratio=2, aligned=True)
    return ({"features": rng.standard_normal((2, 3, 8, 8))}, fwd,
            lambda dy, cache: {"features": F.roi_align_backward(dy, cache)})


LAYERS = {
    "conv2d stride 1 pad 1": _conv(1),
    "conv2d stride 2 pad 1": _conv(2),
    "relu": _relu,
    "max_pool2d 2x2": _max_pool,
    "linear": _linear,
    "dropout p=0.5": _dropout,
    "softmax cross-entropy": _cross_entropy,
    "smooth L1 sigma=3": _smooth_l1,
    "roi_pool 2x2": _roi_pool,
    "roi_align 2x2": _roi_align,
}


def _check_layer(name, case, rng):
    """Rows for one layer: one per input that has a gradient."""
    try:
        inputs, fwd, bwd = case(rng)
        y, cache = fwd(**inputs)
        dy = rng.standard_normal(np.shape(y))
        dy = np.float64(dy) if np.ndim(y) == 0 else dy
        grads = bwd(dy, cache)
    except Exception as exc:  # report it, keep checking the other layers
        return [SelfcheckRow(name, "-", (), message=f"{type(exc).__name__}: {exc}")]
    rows = []
    for key, grad in grads.items():
        row = SelfcheckRow(name, key, tuple(inputs[key].shape))
        start = time.perf_counter()
        try:
            report = gradcheck(lambda **kw: fwd(**kw)[0], inputs, {key: grad},
                               dy=dy, eps=EPS, tolerance=TOLERANCE)
            row.error = report.errors[key]
        except Exception as exc:
            row.message = f"{type(exc).__name__}: {exc}"
        row.seconds = time.perf_counter() - start
        rows.append(row)
    return rows


def run_selfcheck(seed=0):
    """Gradient-check every functional layer on small random inputs.

    Parameters
    ----------
    seed : int
        Seed of the random inputs (and of the upstream gradients).

    Returns
    -------
    SelfcheckReport
        ``.table()`` for the text report, ``.passed`` for the verdict.
    """
    report = SelfcheckReport()
    # The inputs are tiny, so a parallel numba kernel (RoI pool) spends its
    # time waking threads, far more on a busy machine: the hundreds of
    # finite-difference calls run on one thread (benchmarks/README.md).
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        for index, (name, case) in enumerate(LAYERS.items()):
            rng = np.random.default_rng([seed, index])
            report.rows.extend(_check_layer(name, case, rng))
    finally:
        numba.set_num_threads(threads)
    return report
