"""Inverted dropout (Srivastava et al. 2014, as implemented by every framework).

During training each unit is kept with probability ``1 - p`` and the kept
units are scaled by ``1 / (1 - p)``, so the expected activation is
unchanged and inference is the identity.

The keep mask is drawn on the host from the caller's numpy Generator and
only then moved to the array's device with ``xp.asarray`` (as booleans,
scaled there): a seed gives the same mask on NumPy and CuPy.
"""
import numpy as np

from ..backend import get_array_module
from ..checks import check_float_array

__all__ = ["dropout_forward", "dropout_backward"]


def dropout_forward(x, p, rng, train=True):
    """Dropout forward.

    Parameters
    ----------
    x : ndarray, any shape S, float32 or float64
    p : float
        Probability of dropping a unit, in [0, 1).
    rng : numpy.random.Generator or None
        Draws the mask; ``None`` means ``np.random.default_rng()``.
    train : bool
        When False (or when ``p == 0``) the layer is the identity.

    Returns
    -------
    y : ndarray, shape S, dtype of x
        ``x`` itself in the identity case.
    cache : ndarray, shape S, dtype of x, or None
        The scaled keep mask (0 or ``1/(1-p)``); None in the identity case.
    """
    check_float_array(x, "x")
    if not isinstance(p, (int, float, np.integer, np.floating)) or isinstance(p, bool):
        raise TypeError(f"p must be a number in [0, 1), got {p!r}")
    if not 0.0 <= p < 1.0:  # p = 1 would drop everything and divide by 0
        raise ValueError(f"p must lie in [0, 1), got {p!r}")
    p = float(p)
    if not isinstance(train, (bool, np.bool_)):
        raise TypeError(f"train must be a bool, got {train!r}")
    if rng is None:
        rng = np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator or None, got {type(rng).__name__}")
    if not train or p == 0.0:
        return x, None
    xp = get_array_module(x)
    # float32 uniforms whatever the dtype of x: one random stream per seed.
    keep = rng.random(x.shape, dtype=np.float32) >= p
    # the booleans cross (a quarter of a float32 mask's bytes), scaled where x is
    mask = xp.asarray(keep).astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return x * mask, mask


def dropout_backward(dy, cache):
    """Dropout backward.

    Parameters
    ----------
    dy : ndarray, shape S, dtype of x
        Upstream gradient.
    cache : ndarray or None
        From :func:`dropout_forward`.

    Returns
    -------
    dx : ndarray, shape S, dtype of dy
        ``dy * mask``; ``dy`` itself when the forward was the identity.
    """
    mask = cache
    if mask is None:
        check_float_array(dy, "dy")
        return dy
    check_float_array(dy, "dy", shape=mask.shape)
    return dy * mask
