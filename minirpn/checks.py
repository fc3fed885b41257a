"""Argument checks shared by every floor.

The house rule: bad input gets a ValueError or TypeError that names the
argument, what was expected and what was given. Nothing is broadcast,
clipped or dropped silently. These helpers keep those messages uniform.
"""
import contextlib
import functools
import math
import numbers
import threading

import numpy

from .backend import get_array_module, is_cupy_array

__all__ = ["check_array", "check_float_array", "check_same_dtype",
           "check_probability", "check_positive_int", "check_image_size",
           "check_non_negative_int", "check_positive_number",
           "check_non_negative_number", "check_index", "check_rng",
           "check_iou_thresholds",
           "check_class_labels", "format_shape", "first_bad_row", "passes",
           "deferrable", "deferred_device_checks", "check_finite_outputs"]


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
    """Like :func:`check_array`, and also require float32 or float64 in the
    machine's byte order: the numba kernels and the BLAS calls take nothing
    else (float16, or big-endian data read from a file, would fail inside
    them with a compiler's error instead of this one)."""
    check_array(x, name, shape=shape, ndim=ndim)
    if x.dtype.kind != "f" or x.dtype.itemsize not in (4, 8):
        raise TypeError(
            f"{name} must be a floating-point array (float32 or float64), "
            f"got dtype {x.dtype}")
    if not x.dtype.isnative:
        raise TypeError(
            f"{name} must be in the machine's byte order, got dtype {x.dtype} "
            f"('{x.dtype.str}'); convert it with .astype('{x.dtype.newbyteorder('=').str}')")
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


def check_positive_int(value, name):
    """Require an int > 0 (numpy integers too, bool refused); return it as int.

    TypeError for a value that is not an integer, ValueError for one <= 0.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive int, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def check_non_negative_int(value, name):
    """Require an int >= 0 (numpy integers too, bool refused); return it as int.

    TypeError for a value that is not an integer, ValueError for one < 0.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a non-negative int, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


def _check_real(value, name, expected, ok):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {expected}, got {value!r}")
    if not (math.isfinite(value) and ok(value)):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return float(value)


def check_positive_number(value, name):
    """Require a finite real number > 0 (bool refused); return it as float.

    TypeError for a value that is not a number, ValueError for one that is
    <= 0, inf or NaN.
    """
    return _check_real(value, name, "a finite number > 0", lambda v: v > 0)


def check_non_negative_number(value, name):
    """Require a finite real number >= 0 (bool refused); return it as float.

    TypeError for a value that is not a number, ValueError for one that is
    < 0, inf or NaN.
    """
    return _check_real(value, name, "a finite number >= 0", lambda v: v >= 0)


def check_index(index, length, name="index"):
    """Require an int in [0, length) (negative indices refused); return it.

    TypeError for a value that is not an integer, IndexError for one out
    of range.
    """
    if isinstance(index, bool) or not isinstance(index, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {index!r}")
    if not 0 <= index < length:
        raise IndexError(f"{name} must lie in [0, {length}), got {index}")
    return int(index)


def check_image_size(image_size, name="image_size"):
    """Require a pair (H, W) of finite numbers > 0; return it as two floats."""
    try:
        height, width = (float(v) for v in image_size)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (H, W) of numbers, "
                        f"got {image_size!r}") from None
    if not (math.isfinite(height) and math.isfinite(width)
            and height > 0 and width > 0):
        raise ValueError(f"{name} must be (H, W) with H > 0 and W > 0, "
                         f"got {tuple(image_size)!r}")
    return height, width


def check_rng(rng, name="rng"):
    """A numpy Generator, or a fresh unseeded one for None (TypeError else)."""
    if rng is None:
        return numpy.random.default_rng()
    if not isinstance(rng, numpy.random.Generator):
        raise TypeError(f"{name} must be a numpy.random.Generator or None, "
                        f"got {type(rng).__name__}")
    return rng


def first_bad_row(mask):
    """Index of the first True entry of a boolean (N,) mask, or None
    (always None for a CuPy mask whose check is deferred: see
    :func:`passes`)."""
    xp = get_array_module(mask)
    if passes(~mask.any()):
        return None
    return int(xp.argmax(mask))


# ---- value checks of CuPy arrays without waiting for the device -------------
# Reading a flag computed on the GPU makes the host wait until the GPU has
# caught up, and then the GPU idles while the host queues the next kernels.
# A training step checked its arrays some 50 times that way. Inside
# deferred_device_checks() (a training step, a detect), a check of a CuPy
# array queues its flag instead; leaving reads all flags with one transfer
# and, if one failed, repeats that check at once, so the error raised is the
# check's own (argument, row, value). numpy arrays are always checked at once.
class _Deferred(threading.local):
    depth = 0          # nesting of deferred_device_checks()
    recheck = None     # the running deferrable check, to repeat if it failed
    pending = ()       # (flag, recheck) pairs queued in this scope


_deferred = _Deferred()


def passes(ok):
    """``bool(ok)`` for a 0-d bool array ``ok`` (True: the values are
    valid); True at once, with ``ok`` queued, when ``ok`` is a CuPy array
    and a :func:`deferrable` check runs inside
    :func:`deferred_device_checks`."""
    if _deferred.recheck is not None and is_cupy_array(ok):
        _deferred.pending.append((ok, _deferred.recheck))
        return True
    return bool(ok)


def deferrable(check):
    """Decorator for a function whose checks may be deferred on CuPy: one
    without side effects, so that repeating it (only after a queued flag
    failed) raises the error it would have raised."""
    @functools.wraps(check)
    def run(*args, **kwargs):
        if not _deferred.depth or _deferred.recheck is not None:
            return check(*args, **kwargs)
        _deferred.recheck = functools.partial(check, *args, **kwargs)
        try:
            return check(*args, **kwargs)
        finally:
            _deferred.recheck = None
    return run


def _flush(pending):
    """Read the queued flags with one transfer; repeat a failed check."""
    if not pending:
        return
    xp = get_array_module(pending[0][0])
    if bool(xp.stack([ok for ok, _ in pending]).all()):
        return
    for ok, recheck in pending:
        if not bool(ok):
            recheck()  # raises the check's own error
            raise ValueError(f"{recheck.func.__qualname__} found invalid values on the "
                             "device that were changed before they could be reported")


@contextlib.contextmanager
def deferred_device_checks():
    """Within this context, :func:`deferrable` checks of CuPy arrays do not
    wait for the device; leaving it checks them all at once (one host
    wait) and raises the first failure's own error. Nests."""
    if _deferred.depth == 0:
        _deferred.pending = []
    _deferred.depth += 1
    try:
        yield
    except Exception as exc:
        # a deferred check that failed is the likelier cause: raise its own
        # error (as the CPU would have, earlier), chained to this one
        _deferred.depth -= 1
        if _deferred.depth == 0:
            pending, _deferred.pending = _deferred.pending, ()
            try:
                _flush(pending)
            except (ValueError, TypeError, FloatingPointError) as check_error:
                raise check_error from exc
        raise
    except BaseException:  # KeyboardInterrupt: just leave
        _deferred.depth -= 1
        if _deferred.depth == 0:
            _deferred.pending = ()
        raise
    _deferred.depth -= 1
    if _deferred.depth == 0:
        pending, _deferred.pending = _deferred.pending, ()
        _flush(pending)


@deferrable
def check_finite_outputs(loss_name, outputs):
    """Raise FloatingPointError naming ``loss_name`` if its network
    ``outputs`` (any shape, float) hold NaN or inf: before any gradient
    exists, so a diverged run stops with the loss that broke."""
    xp = get_array_module(outputs)
    if not passes(xp.isfinite(outputs).all()):
        raise FloatingPointError(
            f"loss {loss_name} is not finite: its network outputs contain NaN or inf")


# ---- settings of the stages ---------------------------------------------------
def check_iou_thresholds(positive_iou, negative_iou, negative_iou_floor=None):
    """IoU thresholds in [0, 1] with floor <= negative_iou <= positive_iou.

    Returns (positive_iou, negative_iou), plus the floor when one is given.
    """
    positive = check_probability(positive_iou, "positive_iou")
    negative = check_probability(negative_iou, "negative_iou")
    if negative > positive:
        # A box could then be positive and negative at once.
        raise ValueError(f"negative_iou must be <= positive_iou, got "
                         f"negative_iou={negative} > positive_iou={positive}")
    if negative_iou_floor is None:
        return positive, negative
    floor = check_probability(negative_iou_floor, "negative_iou_floor")
    if floor > negative:
        raise ValueError(f"negative_iou_floor must be <= negative_iou, got "
                         f"negative_iou_floor={floor} > negative_iou={negative}")
    return positive, negative, floor


@deferrable
def check_class_labels(labels, name, num_classes, num_boxes):
    """Require (K,) integer class labels in 1..C, one per box."""
    check_array(labels, name, ndim=1)
    if labels.shape[0] != num_boxes:
        raise ValueError(f"{name} must have one entry per box: the boxes have "
                         f"{num_boxes} rows, {name} has {labels.shape[0]}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got dtype {labels.dtype}")
    row = first_bad_row((labels < 1) | (labels > num_classes))
    if row is not None:
        raise ValueError(f"{name} must lie in 1..{num_classes} (0 is background), "
                         f"got {int(labels[row])} at row {row}")
