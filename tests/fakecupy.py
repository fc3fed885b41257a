"""A stand-in for CuPy on machines without a GPU, for testing the cupy paths.

``install()`` puts a module named ``cupy`` (and ``cupyx``: ``scatter_add``
and ``cupyx.scipy.sparse``) in
``sys.modules``. Its arrays wrap numpy arrays, and ``minirpn.backend`` takes
them for CuPy's. They behave like CuPy where it matters for finding bugs:

- ``numpy.asarray(x)`` and anything else that needs ``__array__`` raises
  TypeError, as CuPy does: code that quietly drags device data to the host,
  or hands it to a numba CPU kernel, fails;
- functions of the module refuse numpy arrays (CuPy's do), except
  ``asarray``/``array``, which copy them "to the device";
- numpy functions on these arrays dispatch back here (NEP 18, like CuPy).

``TRANSFERS`` counts device-to-host traffic: ``arrays`` (``get()``,
``tolist()`` of more than one element, ``asnumpy``) and ``scalars`` (0-d
conversions: ``bool``, ``int``, ``float``, ``item``, formatting);
``sizes``, results whose size depends on the data (``nonzero``,
``flatnonzero``, ``argwhere``, ``unique``, ``where`` with one argument,
indexing with a boolean mask), for which CuPy waits for the device to
learn the size; and ``to_device``, numpy arrays given to ``asarray``/``array``.

``MADE["arrays"]`` counts the arrays it makes: one per CuPy call (a view
included), the host work of a step on a real GPU, where each call costs
host time (tens of microseconds) whatever the size of its arrays.
"""
import sys
import types
from collections import Counter

import numpy as np
import scipy.sparse
from numpy.lib.mixins import NDArrayOperatorsMixin

TRANSFERS = Counter()
MADE = Counter()
_CONVERTERS = {"asarray", "array", "asanyarray"}
#: functions whose result's size depends on the values: a host wait in CuPy
_SIZED = {"nonzero", "flatnonzero", "argwhere", "unique", "extract", "compress"}


def _count_sized_call(name, args=()):
    """Count a call (function or method) whose result's size depends on the
    values: one of ``_SIZED``, or ``where`` with one argument."""
    if name in _SIZED or (name == "where" and len(args) == 1):
        TRANSFERS["sizes"] += 1


def _count_mask_index(key):
    """Count an index holding a boolean mask (its result's size is data-dependent)."""
    for k in key if isinstance(key, tuple) else (key,):
        k = k._a if isinstance(k, ndarray) else k
        if isinstance(k, np.ndarray) and k.dtype == bool:
            TRANSFERS["sizes"] += 1
            return


def _strict(value):
    """Unwrap fake arrays; refuse numpy arrays (CuPy takes none)."""
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, np.ndarray) and value.ndim > 0:
        raise TypeError(f"Unsupported type {type(value)} (a numpy array given to cupy)")
    if isinstance(value, (list, tuple)):
        return type(value)(_strict(v) for v in value)
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    return value


def _key(value):
    """Index keys: fake arrays unwrapped; numpy ones copied to the device."""
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, tuple):
        return tuple(_key(v) for v in value)
    if isinstance(value, np.ndarray) and value.ndim > 0:
        TRANSFERS["to_device"] += 1
    return value


def _wrap(value):
    if isinstance(value, np.ndarray):
        return ndarray(value)
    if isinstance(value, np.generic) and not isinstance(value, (np.str_, np.bytes_)):
        return ndarray(np.asarray(value))  # CuPy reductions give 0-d arrays
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    return value


def _scalar(x):
    TRANSFERS["scalars"] += 1
    return x._a


class ndarray(NDArrayOperatorsMixin):
    """A numpy array posing as a CuPy one."""

    __module__ = "cupy._core.core"   # what minirpn.backend.is_cupy_array reads
    __slots__ = ("_a",)

    def __init__(self, a):
        MADE["arrays"] += 1
        self._a = a

    # -- what crosses to the host, counted ----------------------------------
    def get(self):
        TRANSFERS["arrays"] += 1
        return self._a.copy()

    def tolist(self):
        TRANSFERS["arrays" if self._a.size > 1 else "scalars"] += 1
        return self._a.tolist()

    def item(self):
        return _scalar(self).item()

    def __bool__(self):
        return bool(_scalar(self))

    def __int__(self):
        return int(_scalar(self))

    def __float__(self):
        return float(_scalar(self))

    def __index__(self):
        return _scalar(self).__index__()

    def __format__(self, spec):
        return format(_scalar(self).item(), spec)

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    # -- array protocol --------------------------------------------------------
    @property
    def __cuda_array_interface__(self):
        return {"shape": self._a.shape, "typestr": self._a.dtype.str,
                "data": (self._a.ctypes.data, False), "strides": None, "version": 3}

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _wrap(getattr(ufunc, method)(*_strict(inputs), **_strict(kwargs)))

    def __array_function__(self, func, types_, args, kwargs):
        _count_sized_call(func.__name__, args)
        return _wrap(func(*_strict(args), **_strict(kwargs)))

    def __getattr__(self, name):
        if name.startswith("__"):  # no __array_interface__ etc.: numpy must not see in
            raise AttributeError(name)
        _count_sized_call(name)  # a method: x.nonzero(), x.compress(...)
        value = getattr(self._a, name)
        if callable(value):
            return lambda *a, **k: _wrap(value(*_strict(a), **_strict(k)))
        return _wrap(value)

    def __getitem__(self, key):
        _count_mask_index(key)
        return _wrap(self._a[_key(key)])

    def __setitem__(self, key, value):
        self._a[_key(key)] = _strict(value)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(row) for row in self._a)

    def __repr__(self):
        return f"fakecupy.ndarray({self._a!r})"

    @property
    def T(self):
        return ndarray(self._a.T)

    @property
    def shape(self):
        return self._a.shape

    @property
    def dtype(self):
        return self._a.dtype


def _to_device(a, *args, copy=False, **kwargs):
    """cupy.asarray / cupy.array: numpy data is copied "to the device"."""
    if isinstance(a, np.ndarray) and a.ndim > 0:
        TRANSFERS["to_device"] += 1
    a = a._a if isinstance(a, ndarray) else a
    out = np.array(a, *args, **kwargs) if copy else np.asarray(a, *args, **kwargs)
    return ndarray(out)


def _function(name):
    if name in _CONVERTERS:
        return lambda a, *args, **kw: _to_device(a, *args, copy=name == "array", **kw)
    fn = getattr(np, name)

    def call(*a, **k):
        _count_sized_call(name, a)
        return _wrap(fn(*_strict(a), **_strict(k)))
    return call


class _Sparse:
    """cupyx.scipy.sparse matrices: scipy's, over fake arrays, except that
    a product adds each row's entries in reverse order. cuSPARSE promises
    no order, and on the H200 its SpMM differed from SciPy's in the last
    bit: the reversed order reproduces the float64 crop_pool error of that
    run exactly. Code that must equal the CPU bit for bit cannot rest on it.
    """

    def __init__(self, m):
        self._m = m

    @property
    def T(self):
        return _Sparse(self._m.T)

    def tocsr(self):
        return _Sparse(self._m.tocsr())

    def __matmul__(self, dense):
        m, x = self._m.tocsr(), _strict(dense)
        out = np.zeros((m.shape[0],) + x.shape[1:], np.result_type(m.dtype, x.dtype))
        for i in range(m.shape[0]):
            for k in range(m.indptr[i + 1] - 1, m.indptr[i] - 1, -1):
                out[i] += m.data[k] * x[m.indices[k]]
        return _wrap(out)


def _module():
    cupy = types.ModuleType("cupy")
    cupy.__getattr__ = lambda name: (getattr(np, name) if isinstance(getattr(np, name), type)
                                     or not callable(getattr(np, name)) else _function(name))
    cupy.ndarray = ndarray
    cupy.asnumpy = lambda x: x.get() if isinstance(x, ndarray) else np.asarray(x)
    cupy.cuda = types.SimpleNamespace(
        is_available=lambda: True,
        get_current_stream=lambda: types.SimpleNamespace(ptr=0),
        Device=lambda *a: types.SimpleNamespace(synchronize=lambda: None))
    sparse = types.ModuleType("cupyx.scipy.sparse")
    sparse.coo_matrix = lambda arg, shape=None, dtype=None: _Sparse(
        scipy.sparse.coo_matrix((_strict(arg[0]), tuple(_strict(arg[1]))),
                                shape=shape, dtype=dtype))
    cupyx = types.ModuleType("cupyx")
    cupyx.scatter_add = lambda a, index, value: np.add.at(a._a, _strict(index), _strict(value))
    cupyx.scipy = types.ModuleType("cupyx.scipy")
    cupyx.scipy.sparse = sparse
    return {"cupy": cupy, "cupyx": cupyx, "cupyx.scipy": cupyx.scipy,
            "cupyx.scipy.sparse": sparse}


def install():
    """Put the fake modules in sys.modules; returns a function that removes
    them again."""
    modules = _module()
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)

    def uninstall():
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return uninstall


def unwrap(x):
    """The numpy array inside a fake one (no transfer counted)."""
    return x._a if isinstance(x, ndarray) else x
