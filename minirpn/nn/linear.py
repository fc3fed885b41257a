"""Fully connected (affine) layer, ``y = x @ w + b``."""
import numpy as np

from ..backend import get_array_module
from ..checks import check_float_array, check_same_dtype
from .blas import gemm_add

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


def linear_backward(dy, cache, add_dw_to=None):
    """Affine backward.

    Parameters
    ----------
    dy : ndarray, (N, M), dtype of x
        Upstream gradient.
    cache : tuple
        From :func:`linear_forward`.
    add_dw_to : ndarray, (D, M), dtype of x, optional
        An array to add dw into, in place (a module's gradient), which is
        then returned as dw. For NumPy arrays that is one BLAS call,
        ``add_dw_to = x.T @ dy + add_dw_to``, and no (D, M) temporary: VGG16's
        fc6 would make a 411 MB one every step.

    Returns
    -------
    dx : ndarray, (N, D), dtype of x
    dw : ndarray, (D, M), dtype of x (``add_dw_to`` itself when given)
    db : ndarray, (M,), dtype of x
    """
    x, w = cache
    check_float_array(dy, "dy", shape=(x.shape[0], w.shape[1]))
    check_same_dtype("w", w, dy=dy)
    xp = get_array_module(dy)
    if add_dw_to is None:
        dw = x.T @ dy
    else:
        check_float_array(add_dw_to, "add_dw_to", shape=w.shape)
        check_same_dtype("w", w, add_dw_to=add_dw_to)
        if isinstance(dy, np.ndarray) and add_dw_to.flags.c_contiguous:
            dw = gemm_add(np.ascontiguousarray(x).T, np.ascontiguousarray(dy), add_dw_to)
        else:
            add_dw_to += x.T @ dy
            dw = add_dw_to
    return dy @ w.T, dw, xp.sum(dy, axis=0)
