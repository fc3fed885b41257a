"""Rectified linear unit, ``relu(x) = max(x, 0)``."""
from ..backend import get_array_module
from ..checks import check_float_array

__all__ = ["relu_forward", "relu_backward"]


def relu_forward(x):
    """ReLU forward.

    Parameters
    ----------
    x : ndarray, any shape S, float32 or float64

    Returns
    -------
    y : ndarray, shape S, dtype of x
        ``max(x, 0)``.
    cache : ndarray, shape S, dtype of x
        ``y`` itself: ``y > 0`` is exactly where the gradient flows, and
        keeping ``y`` costs no memory that the next layer does not hold
        anyway.
    """
    check_float_array(x, "x")
    xp = get_array_module(x)
    y = xp.maximum(x, 0)
    return y, y


def relu_backward(dy, cache):
    """ReLU backward.

    Parameters
    ----------
    dy : ndarray, shape S, dtype of x
        Upstream gradient.
    cache : ndarray, shape S
        From :func:`relu_forward`.

    Returns
    -------
    dx : ndarray, shape S, dtype of dy
        ``dy`` where ``x > 0``, else 0 (the gradient at exactly 0 is taken
        as 0, as in PyTorch).
    """
    y = cache
    check_float_array(dy, "dy", shape=y.shape)
    xp = get_array_module(dy)
    return xp.where(y > 0, dy, 0)
