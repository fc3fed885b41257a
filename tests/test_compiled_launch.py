"""The fast launch of compiled numba.cuda kernels (minirpn.cuda.compiled_launch),
checked without a GPU: the parameter layout of numba's kernel ABI, the key
that picks a compiled kernel, and that launch() uses numba's own launch
first and the fast one after. tests/gpu runs every kernel through it on a
device, against the CPU."""
import ctypes
from types import SimpleNamespace

import numpy as np

from minirpn.cuda import compiled_launch, launch


class FakeDeviceArray:
    """What kernel_parameters and argument_key read of a CuPy array."""

    def __init__(self, host, ptr=0x7000):
        self.host, self.data = host, SimpleNamespace(ptr=ptr)
        for name in ("size", "itemsize", "shape", "strides", "flags", "dtype", "ndim"):
            setattr(self, name, getattr(host, name))


def test_an_array_becomes_numbas_five_plus_two_d_parameters():
    x = FakeDeviceArray(np.zeros((2, 3, 4), np.float32), ptr=1234)
    params = compiled_launch.kernel_parameters([x], [None])
    # meminfo, parent, count, item size, data, then extents and byte strides
    assert params == [0, 0, 24, 4, 1234, 2, 3, 4, 48, 16, 4]


def test_a_strided_view_passes_its_own_strides():
    view = np.zeros((6, 10), np.float64)[::2, 1:5]
    params = compiled_launch.kernel_parameters([FakeDeviceArray(view, ptr=8)], [None])
    assert params == [0, 0, 12, 8, 8, 3, 4, 160, 8]


def test_scalars_become_the_compiled_types_ctypes_value():
    params = compiled_launch.kernel_parameters(
        [3, 0.5, np.float32(2.5), True], [ctypes.c_int64, ctypes.c_double, ctypes.c_float, bool])
    assert [type(p) for p in params] == [ctypes.c_int64, ctypes.c_double, ctypes.c_float, bool]
    assert [getattr(p, "value", p) for p in params] == [3, 0.5, 2.5, True]


def test_the_key_tells_dtype_ndim_layout_and_scalar_type_apart():
    key = compiled_launch.argument_key
    c = FakeDeviceArray(np.zeros((3, 4), np.float32))
    f = FakeDeviceArray(np.zeros((3, 4), np.float32, order="F"))
    a = FakeDeviceArray(np.zeros((3, 4), np.float32)[:, ::2])
    d = FakeDeviceArray(np.zeros((3, 4), np.float64))
    assert len({key([c]), key([f]), key([a]), key([d])}) == 4
    assert key([c, 1]) != key([c, 1.0]) != key([c, np.float32(1)])
    # the extents do not matter: one compiled kernel serves every size
    assert key([c]) == key([FakeDeviceArray(np.zeros((7, 9), np.float32))])


def test_launcher_declines_what_it_cannot_launch_as_numba_would():
    # no overloads table (another numba), or no overload for these types
    assert compiled_launch.launcher(object(), [1], lambda ptr: 0) is None
    no_overload = SimpleNamespace(overloads={}, typeof_pyval=lambda a: type(a).__name__)
    assert compiled_launch.launcher(no_overload, [1], lambda ptr: 0) is None


def test_launch_goes_through_numba_once_then_the_fast_path(monkeypatch):
    calls = []

    class Kernel:
        def __getitem__(self, config):
            return lambda *args: calls.append(("numba", args))

    fast = []
    monkeypatch.setattr(launch, "simulated", lambda: False)
    monkeypatch.setattr(launch, "_launchers", {})
    monkeypatch.setattr(launch, "launcher", lambda kernel, args, stream: (
        lambda *a: fast.append(a)))
    kernel, x = Kernel(), np.zeros(3, np.float32)
    launch.launch(kernel, 1, 32, x, 2)
    launch.launch(kernel, 1, 32, x, 5)
    launch.launch(kernel, 1, 32, x.astype(np.float64), 5)  # another key: numba again
    assert [c[0] for c in calls] == ["numba", "numba"]
    assert len(fast) == 1 and fast[0][4][1] == 5


def test_a_declined_kernel_keeps_numbas_launch(monkeypatch):
    calls = []

    class Kernel:
        def __getitem__(self, config):
            return lambda *args: calls.append(args)

    monkeypatch.setattr(launch, "simulated", lambda: False)
    monkeypatch.setattr(launch, "_launchers", {})
    monkeypatch.setattr(launch, "launcher", lambda kernel, args, stream: None)
    kernel = Kernel()
    for _ in range(3):
        launch.launch(kernel, 1, 32, np.zeros(2, np.int32))
    assert len(calls) == 3
