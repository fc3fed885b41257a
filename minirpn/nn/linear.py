"""Fully connected (affine) layer, ``y = x @ w + b``."""
from ..backend import get_array_module
from ..checks import check_float_array, check_same_dtype

__all__ = ["linear_forward", "linear_backward"]


def linear_forward(x, w, b):
    """Affine forward.

    Shapes: N rows (e.g. RoIs), D input features, M output features. Inputs
    with more axes (RoI features (R, C, 7, 7)) must be reshaped to (N, D) by
    the caller: nothing is flattened silently.

    Parameters
    ----------
    x : ndarray, (N, D) float32 or float64
    w : ndarray, (D, M), dtype of x
    b : ndarray, (M,), dtype of x

    Returns
    -------
    y : ndarray, (N, M), dtype of x
    cache : tuple
        ``(x, w)`` for :func:`linear_backward`.
    """
    check_float_array(x, "x")
    if x.ndim != 2:
        raise ValueError(f"x must have shape (N, D), got {tuple(x.shape)}")
    check_float_array(w, "w")
    if w.ndim != 2 or w.shape[0] != x.shape[1]:
        raise ValueError(f"w must have shape ({x.shape[1]}, M) to match x "
                         f"{tuple(x.shape)}, got {tuple(w.shape)}")
    check_float_array(b, "b", shape=(w.shape[1],))
    check_same_dtype("x", x, w=w, b=b)
    y = x @ w
    y += b
    return y, (x, w)


def linear_backward(dy, cache):
    """Affine backward.

    Parameters
    ----------
    dy : ndarray, (N, M), dtype of x
        Upstream gradient.
    cache : tuple
        From :func:`linear_forward`.

    Returns
    -------
    dx : ndarray, (N, D), dtype of x
    dw : ndarray, (D, M), dtype of x
    db : ndarray, (M,), dtype of x
    """
    x, w = cache
    check_float_array(dy, "dy", shape=(x.shape[0], w.shape[1]))
    check_same_dtype("w", w, dy=dy)
    xp = get_array_module(dy)
    return dy @ w.T, x.T @ dy, xp.sum(dy, axis=0)
