"""The array backend: NumPy by default, CuPy when asked for.

Every layer and op in minirpn is written once against an array module
``xp``, which is either :mod:`numpy` or :mod:`cupy`. Code that receives an
array asks ``get_array_module(x)`` which module owns it; code that creates
arrays from nothing (initialisers, anchors) asks ``array_module()`` for the
module of the active backend.

CuPy is never imported unless it is asked for, either by
``set_backend("cupy")`` or by the environment variable
``MINIRPN_BACKEND=cupy`` read at import time. Asking for it on a machine
without CuPy or without a CUDA device raises a :class:`RuntimeError` that
says which of the two is missing.
"""
import os
import sys

import numpy

__all__ = [
    "set_backend",
    "get_backend",
    "array_module",
    "get_array_module",
    "to_numpy",
    "to_backend",
    "is_cupy_array",
    "import_cupy",
]

_BACKENDS = ("numpy", "cupy")
_state = {"name": "numpy", "xp": numpy}


def import_cupy():
    """Import and return :mod:`cupy`, making sure a CUDA device can be used.

    For code that needs the module itself, whatever the active backend
    (moving parameters to the GPU, benchmarks). ``import cupy`` succeeds on
    a machine without a GPU and fails only on first use, so the device is
    checked explicitly.

    Raises
    ------
    RuntimeError
        If CuPy is not installed, or no CUDA device is available.
    """
    try:
        import cupy
    except ImportError as exc:
        raise RuntimeError(
            "CuPy is not installed: pip install minirpn[gpu]") from exc
    try:
        available = cupy.cuda.is_available()
    except Exception:  # a broken driver raises instead of returning False
        available = False
    if not available:
        raise RuntimeError(
            "CuPy is installed but no CUDA device is available")
    return cupy


def set_backend(name):
    """Choose the array module used for new arrays.

    Parameters
    ----------
    name : str
        ``"numpy"`` or ``"cupy"``.

    Raises
    ------
    ValueError
        If ``name`` is not one of the two backends.
    RuntimeError
        If ``"cupy"`` is asked for and CuPy or a CUDA device is missing.
    """
    if name not in _BACKENDS:
        raise ValueError(
            f"backend must be one of {_BACKENDS}, got {name!r}")
    _state["xp"] = numpy if name == "numpy" else import_cupy()
    _state["name"] = name


def get_backend():
    """Return the name of the active backend, ``"numpy"`` or ``"cupy"``."""
    return _state["name"]


def array_module():
    """Return the module (numpy or cupy) of the active backend."""
    return _state["xp"]


def is_cupy_array(x):
    """True if ``x`` is a cupy array; never imports cupy to find out."""
    return type(x).__module__.split(".")[0] == "cupy"


def get_array_module(*arrays):
    """Return the module that owns the given arrays.

    Parameters
    ----------
    *arrays : array-like
        Any mix of numpy arrays, cupy arrays, scalars and ``None``.

    Returns
    -------
    module
        :mod:`cupy` if any argument is a cupy array, else :mod:`numpy`.
    """
    for x in arrays:
        if is_cupy_array(x):
            return sys.modules["cupy"]
    return numpy


def to_numpy(x):
    """Return ``x`` as a numpy array, copying from the GPU if needed."""
    if is_cupy_array(x):
        return x.get()
    return numpy.asarray(x)


def to_backend(x, dtype=None):
    """Return ``x`` as an array of the active backend (copying to the GPU
    when the backend is cupy), optionally cast to ``dtype``."""
    return array_module().asarray(x, dtype=dtype)


_env = os.environ.get("MINIRPN_BACKEND", "").strip().lower()
if _env:
    set_backend(_env)
