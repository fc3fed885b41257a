"""Weight initialisers.

Every initialiser returns a NEW array on the active backend
(:func:`minirpn.backend.array_module`). Random values are drawn on the host
from a ``numpy.random.Generator`` in float64 and only then cast and copied to
the device, so one seed gives the same weights on NumPy and CuPy and in
float32 and float64 (up to rounding).

Faster R-CNN (Ren et al. 2015, section 3.1.3) initialises its new layers
from a zero-mean Gaussian with standard deviation 0.01; py-faster-rcnn uses
0.001 for the box-regression layer of the head. Backbone layers trained
from scratch use He initialisation.
"""
import math

import numpy as np

from ..backend import array_module

__all__ = ["normal", "he_normal", "zeros", "fan_in"]


def _check_shape(shape):
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = tuple(shape)
    if any(not isinstance(s, (int, np.integer)) or s < 0 for s in shape):
        raise ValueError(
            f"shape must be a tuple of non-negative ints, got {shape!r}")
    return tuple(int(s) for s in shape)


def _rng(rng):
    if rng is None:
        return np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator or None, got {type(rng).__name__}")
    return rng


def fan_in(shape):
    """Number of inputs feeding one output unit.

    Parameters
    ----------
    shape : tuple of int
        A conv weight (F, C, KH, KW) -> C * KH * KW; a linear weight
        (IN, OUT) -> IN (minirpn stores linear weights input-major, so that
        ``y = x @ w``).

    Raises
    ------
    ValueError
        For any other rank.
    """
    shape = _check_shape(shape)
    if len(shape) == 4:
        return math.prod(shape[1:])
    if len(shape) == 2:
        return shape[0]
    raise ValueError(
        "fan_in needs a conv weight (F, C, KH, KW) or a linear weight "
        f"(IN, OUT), got shape {shape}")


def normal(shape, std, rng=None, dtype="float32"):
    """Zero-mean Gaussian weights.

    Parameters
    ----------
    shape : tuple of int
        Shape of the new array.
    std : float >= 0
        Standard deviation (0.01 for most new layers, 0.001 for box
        regression).
    rng : numpy.random.Generator, optional
        Source of randomness; a fresh unseeded one when omitted.
    dtype : str or dtype
        float32 (default) or float64.

    Returns
    -------
    array of ``shape``, ``dtype``, on the active backend
    """
    shape = _check_shape(shape)
    if isinstance(std, bool) or not isinstance(std, (int, float, np.floating)) \
            or not std >= 0 or not math.isfinite(std):
        raise ValueError(f"std must be a finite number >= 0, got {std!r}")
    values = _rng(rng).standard_normal(shape) * float(std)
    return array_module().asarray(values.astype(dtype))


def he_normal(shape, rng=None, dtype="float32"):
    """He et al. (2015) Gaussian: std = sqrt(2 / fan_in), for ReLU layers.

    Parameters
    ----------
    shape : tuple of int
        (F, C, KH, KW) conv weight or (IN, OUT) linear weight; see
        :func:`fan_in`.
    rng : numpy.random.Generator, optional
    dtype : str or dtype

    Returns
    -------
    array of ``shape``, ``dtype``, on the active backend
    """
    n = fan_in(shape)
    if n == 0:
        raise ValueError(f"he_normal needs fan_in > 0, got shape {tuple(shape)}")
    return normal(shape, math.sqrt(2.0 / n), rng=rng, dtype=dtype)


def zeros(shape, dtype="float32"):
    """Zeros of ``shape`` and ``dtype`` on the active backend (biases)."""
    return array_module().zeros(_check_shape(shape), dtype=dtype)
