"""Argument checks shared by every floor.

The house rule: bad input gets a ValueError or TypeError that names the
argument, what was expected and what was given. Nothing is broadcast,
clipped or dropped silently. These helpers keep those messages uniform.
"""
import numpy

from .backend import get_array_module

__all__ = ["check_array", "check_float_array", "check_same_dtype",
           "check_probability", "format_shape", "first_bad_row"]


def format_shape(shape):
    """Render an expected shape, ``None`` standing for any size: (N, 4)."""
    parts = ["*" if s is None else str(s) for s in shape]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def _is_array(x):
    return isinstance(x, numpy.ndarray) or hasattr(x, "__cuda_array_interface__")


def check_array(x, name, shape=None, ndim=None):
    """Check that ``x`` is an ndarray of the given rank and shape.

    Parameters
    ----------
    x : object
        The value to check.
    name : str
        The argument's name, used in the message.
    shape : tuple of (int or None), optional
        Expected shape; ``None`` entries match any size.
    ndim : int, optional
        Expected rank (implied by ``shape`` when that is given).

    Raises
    ------
    TypeError
        If ``x`` is not a numpy or cupy array.
    ValueError
        If its rank or shape differ from the expected ones.
    """
    if not _is_array(x):
        raise TypeError(f"{name} must be an ndarray, got {type(x).__name__}")
    if shape is not None:
        ndim = len(shape)
    if ndim is not None and x.ndim != ndim:
        want = format_shape(shape) if shape is not None else f"{ndim}-D"
        raise ValueError(
            f"{name} must have shape {want}, got {tuple(x.shape)}"
            if shape is not None else
            f"{name} must be {want}, got shape {tuple(x.shape)}")
    if shape is not None:
        for got, want in zip(x.shape, shape):
            if want is not None and got != want:
                raise ValueError(
                    f"{name} must have shape {format_shape(shape)}, "
                    f"got {tuple(x.shape)}")
    return x


def check_float_array(x, name, shape=None, ndim=None):
    """Like :func:`check_array`, and also require a floating dtype."""
    check_array(x, name, shape=shape, ndim=ndim)
    if x.dtype.kind != "f":
        raise TypeError(
            f"{name} must be a floating-point array (float32 or float64), "
            f"got dtype {x.dtype}")
    return x


def check_same_dtype(reference_name, reference, **others):
    """Require every array in ``others`` to share ``reference``'s dtype."""
    for name, x in others.items():
        if x.dtype != reference.dtype:
            raise TypeError(
                f"{name} must have the dtype of {reference_name} "
                f"({reference.dtype}), got {x.dtype}")


def check_probability(value, name):
    """Require a float threshold or fraction in [0, 1]."""
    if not isinstance(value, (int, float, numpy.floating, numpy.integer)) \
            or isinstance(value, bool):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    return float(value)


def first_bad_row(mask):
    """Index of the first True entry of a boolean (N,) mask, or None."""
    xp = get_array_module(mask)
    if not bool(mask.any()):
        return None
    return int(xp.argmax(mask))
