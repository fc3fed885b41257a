"""Rectified linear unit, ``relu(x) = max(x, 0)``.

NumPy arrays take two one-pass numba kernels (``np.where(y > 0, dy, 0)``
makes a boolean temporary and reads it back); serial, like the conv
kernels of :mod:`.conv_bands`, so as not to spin against BLAS's threads.
Other arrays (CuPy) take the ``xp`` expressions, which are also the
reference the kernels are tested against.
"""
import numpy as np

from ..jit import njit
from ..backend import get_array_module
from ..checks import check_float_array

__all__ = ["relu_forward", "relu_backward"]


@njit(error_model="numpy")
def _relu_kernel(x, y):
    """y = max(x, 0) on flat arrays; NaN stays NaN, as with np.maximum."""
    for i in range(x.size):
        v = x[i]
        y[i] = 0 if v < 0 else v


@njit(error_model="numpy")
def _relu_backward_kernel(dy, y, dx):
    """dx = dy where y > 0, else 0, on flat arrays."""
    for i in range(dy.size):
        dx[i] = dy[i] if y[i] > 0 else 0


# The in-place versions take one array to write: called with the same array
# as input and output, the kernels above fail LLVM's run-time no-alias check
# and run unvectorised, 2-4x slower (benchmarks/README.md).
@njit(error_model="numpy")
def _relu_inplace_kernel(x):
    """x = max(x, 0) in place, on a flat array."""
    for i in range(x.size):
        v = x[i]
        x[i] = 0 if v < 0 else v


@njit(error_model="numpy")
def _relu_backward_inplace_kernel(dy, y):
    """dy = dy where y > 0, else 0, in place, on flat arrays."""
    for i in range(dy.size):
        dy[i] = dy[i] if y[i] > 0 else 0


def _flat_kernel(kernel, *arrays):
    """Run an elementwise kernel on contiguous flat views; the last array's
    shape and dtype are those of the first."""
    out = np.empty_like(arrays[0])
    flat = [np.ascontiguousarray(a).reshape(-1) for a in arrays]
    kernel(*flat, out.reshape(-1))
    return out


def relu_forward(x, inplace=False):
    """ReLU forward.

    Parameters
    ----------
    x : ndarray, any shape S, float32 or float64
    inplace : bool
        True writes ``max(x, 0)`` over x itself and returns x, as
        ``torch.nn.ReLU(inplace=True)`` does: no new array, for an x that
        nothing else reads afterwards (a conv's fresh output). A view that
        is not C-contiguous gets a new array all the same.

    Returns
    -------
    y : ndarray, shape S, dtype of x
        ``max(x, 0)`` (x itself when done in place).
    cache : ndarray, shape S, dtype of x
        ``y`` itself: ``y > 0`` is exactly where the gradient flows, and
        keeping ``y`` costs no memory that the next layer does not hold
        anyway.
    """
    check_float_array(x, "x")
    inplace = inplace and x.flags.c_contiguous
    if isinstance(x, np.ndarray):
        if inplace:
            _relu_inplace_kernel(x.reshape(-1))
            return x, x
        y = _flat_kernel(_relu_kernel, x)
        return y, y
    xp = get_array_module(x)
    y = xp.maximum(x, 0, out=x if inplace else None)
    return y, y


def relu_backward(dy, cache, inplace=False):
    """ReLU backward.

    Parameters
    ----------
    dy : ndarray, shape S, dtype of x
        Upstream gradient.
    cache : ndarray, shape S
        From :func:`relu_forward`.
    inplace : bool
        True writes dx over dy and returns dy: no new array, for a dy that
        nothing else reads afterwards (the fresh dx of the layer after).
        NumPy arrays only, and C-contiguous ones of y's dtype: others get
        a new array all the same.

    Returns
    -------
    dx : ndarray, shape S, dtype of dy
        ``dy`` where ``x > 0``, else 0 (the gradient at exactly 0 is taken
        as 0, as in PyTorch); dy itself when done in place.
    """
    y = cache
    check_float_array(dy, "dy", shape=y.shape)
    if isinstance(dy, np.ndarray) and isinstance(y, np.ndarray) and dy.dtype == y.dtype:
        if inplace and dy.flags.c_contiguous:
            _relu_backward_inplace_kernel(dy.reshape(-1), np.ascontiguousarray(y).reshape(-1))
            return dy
        return _flat_kernel(_relu_backward_kernel, dy, y)
    xp = get_array_module(dy)
    return xp.where(y > 0, dy, 0)
