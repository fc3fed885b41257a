"""Gradient checking by central differences, as a feature.

Every backward pass in minirpn is written by hand, so every one is checked
against finite differences. For a function ``y = f(x_1, ..., x_k)`` and an
upstream gradient ``dy`` we define the scalar ``L = sum(dy * y)``; its exact
gradient with respect to ``x_i`` is what the hand-written backward returns,
and its numerical gradient is

    dL/dx[j] ~ (L(x + h e_j) - L(x - h e_j)) / (2 h)

evaluated in float64. The error reported per input is the norm-wise relative
error ``max|a - n| / max(max|a|, max|n|)``, which stays meaningful when many
entries of the gradient are zero (ReLU, max-pool, RoI pool).
"""
from dataclasses import dataclass, field

import numpy as np

from ..backend import get_array_module, to_numpy

__all__ = ["numerical_gradient", "relative_error", "gradcheck",
           "GradcheckReport"]


def relative_error(analytic, numeric):
    """Norm-wise relative error between two gradients of the same shape.

    Returns 0.0 when both are exactly zero.
    """
    a = to_numpy(analytic).astype(np.float64)
    n = to_numpy(numeric).astype(np.float64)
    if a.shape != n.shape:
        raise ValueError(
            f"gradient shapes differ: analytic {a.shape}, numeric {n.shape}")
    scale = max(np.abs(a).max(initial=0.0), np.abs(n).max(initial=0.0))
    if scale == 0.0:
        return 0.0
    return float(np.abs(a - n).max() / scale)


def numerical_gradient(f, x, dy=None, eps=1e-6, indices=None):
    """Central-difference gradient of ``sum(dy * f())`` with respect to ``x``.

    Parameters
    ----------
    f : callable
        Takes no arguments and returns the output array (or a scalar). It
        must read ``x``, which is perturbed in place and restored.
    x : ndarray, float64
        The input to differentiate with respect to.
    dy : ndarray, optional
        Upstream gradient with the shape of ``f()``; ones when omitted.
    eps : float
        Step size ``h``.
    indices : iterable of int, optional
        Flat indices of ``x`` to probe; all of them when omitted (the rest of
        the returned gradient is then left at zero).

    Returns
    -------
    ndarray, float64, shape of ``x``
    """
    xp = get_array_module(x)
    grad = xp.zeros(x.shape, dtype=np.float64)
    flat = x.reshape(-1)  # a view: perturbing it perturbs x
    if indices is None:
        indices = range(flat.size)

    def scalar():
        y = f()
        return float((y * dy).sum()) if dy is not None else float(xp.sum(y))

    for j in indices:
        old = flat[j].item()
        flat[j] = old + eps
        plus = scalar()
        flat[j] = old - eps
        minus = scalar()
        flat[j] = old
        grad.reshape(-1)[j] = (plus - minus) / (2 * eps)
    return grad


@dataclass
class GradcheckReport:
    """Result of :func:`gradcheck`: the max relative error per input."""

    errors: dict = field(default_factory=dict)
    tolerance: float = 1e-6

    @property
    def passed(self):
        """True when every error is below ``tolerance``."""
        return all(e < self.tolerance for e in self.errors.values())

    def __str__(self):
        rows = [f"  {name:<12s} {err:.2e}  {'ok' if err < self.tolerance else 'FAIL'}"
                for name, err in self.errors.items()]
        return "\n".join(rows)


def gradcheck(f, inputs, grads, dy=None, eps=1e-6, tolerance=1e-6,
              max_probes=None, rng=None):
    """Compare hand-written gradients with central differences.

    Parameters
    ----------
    f : callable
        ``f(**inputs)`` returns the output array (or a scalar loss).
    inputs : dict of str -> ndarray, float64
        Named inputs; each one listed in ``grads`` is perturbed in place.
    grads : dict of str -> ndarray
        The analytic gradient of ``sum(dy * f(**inputs))`` for each input to
        check, as returned by the layer's backward.
    dy : ndarray, optional
        Upstream gradient with the shape of the output; ones when omitted.
    eps : float
        Finite-difference step.
    tolerance : float
        Error below which an input passes (float64: 1e-6 by default).
    max_probes : int, optional
        Probe at most this many random entries per input (all when omitted),
        for large inputs.
    rng : numpy.random.Generator, optional
        Chooses the probed entries when ``max_probes`` is set.

    Returns
    -------
    GradcheckReport
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    report = GradcheckReport(tolerance=tolerance)
    for name, analytic in grads.items():
        x = inputs[name]
        if x.dtype != np.float64:
            raise TypeError(
                f"gradcheck needs float64 inputs; {name} is {x.dtype}")
        indices = None
        if max_probes is not None and x.size > max_probes:
            indices = rng.choice(x.size, size=max_probes, replace=False)
        numeric = numerical_gradient(lambda: f(**inputs), x, dy, eps, indices)
        analytic = to_numpy(analytic)
        if indices is not None:
            analytic = analytic.reshape(-1)[indices]
            numeric = to_numpy(numeric).reshape(-1)[indices]
        report.errors[name] = relative_error(analytic, numeric)
    return report
