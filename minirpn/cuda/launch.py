"""Launching numba.cuda kernels on CuPy arrays, or on numpy arrays under
numba's CUDA simulator.

Nothing here imports numba.cuda until a kernel is first needed: ``import
minirpn`` never touches it. The simulator (``NUMBA_ENABLE_CUDASIM=1``, set
before numba.cuda is first imported) runs the very same kernel source on the
CPU, thread by thread, on numpy arrays; the tests use it to hold every kernel
to the CPU implementation without a GPU.
"""
import functools
import glob
import importlib.util
import os
import sys
import warnings

import numpy

from .compiled_launch import argument_key, launcher

__all__ = ["numba_cuda", "simulated", "launch", "blocks_for", "mul_rn",
           "float_floor", "float_ceil", "float_trunc", "contiguous",
           "THREADS", "GPU_INSTALL"]

#: What to install for the GPU backend (the ``gpu`` extra of setup.cfg).
GPU_INSTALL = 'pip install "minirpn[gpu]"'

#: Threads per block of the one-thread-per-element kernels.
THREADS = 256


def _use_pip_nvvm():
    """numba compiles kernels with NVVM and libdevice from a CUDA toolkit,
    which it looks for in conda, CUDA_HOME and /usr/local/cuda only. Where
    there is none of these but pip's ``nvidia-cuda-nvcc-cu12`` wheel is
    installed (the toolkit part that ``minirpn[gpu]`` needs), point
    CUDA_HOME at it; an explicit CUDA_HOME or a system toolkit wins."""
    if os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH") \
            or glob.glob("/usr/local/cuda/nvvm/lib64/libnvvm.so*"):
        return
    try:
        spec = importlib.util.find_spec("nvidia.cuda_nvcc")
    except ImportError:
        return
    for home in (spec.submodule_search_locations or []) if spec else []:
        if os.path.isdir(os.path.join(home, "nvvm")):
            os.environ["CUDA_HOME"] = home
            return


def _numpy_row_stack():
    """Give numpy back ``row_stack`` where it lacks it, before numba.cuda
    is first imported; return True if it had to.

    numba-cuda (up to 0.30.4 at least) registers ``overload(np.row_stack)``
    when it compiles its first kernel, and numpy 2.5 removed ``row_stack``,
    an alias of ``vstack`` deprecated since numpy 2.0 ("np.row_stack ...
    use np.vstack instead", numpy 2.0 release notes); numba itself guards
    the same line ("Numpy 2.5 removed np.row_stack, so only ... if it's
    present", numba/np/arrayobj.py). So the first launch dies with
    AttributeError. Defining the name as the very function it aliased
    changes no behaviour of numpy, is done only when the name is missing,
    and only on the GPU path (``import minirpn`` never gets here).
    """
    import numpy
    if hasattr(numpy, "row_stack"):
        return False
    numpy.row_stack = numpy.vstack
    return True


def _import_numba_cuda():
    """``numba.cuda``, or one RuntimeError naming what to install."""
    try:
        from numba import cuda
    except ImportError as exc:
        raise RuntimeError(
            "the CuPy backend's kernels need numba.cuda, which did not "
            f"import ({exc}): pip install \"numba-cuda[cu12]\" "
            f"(or {GPU_INSTALL})") from exc
    return cuda


def _check_nvvm(cuda):
    """numba compiles kernels with NVVM, and numba-cuda links them with
    NVRTC; without either every launch fails deep inside numba. Say so
    once, naming the package."""
    try:
        from numba.cuda.cudadrv import nvvm
        nvvm.NVVM()
    except Exception as exc:  # NvvmSupportError, OSError: no libnvvm
        raise RuntimeError(
            "numba.cuda cannot find NVVM (libnvvm, the CUDA compiler "
            f"library): {exc}. pip install nvidia-cuda-nvcc-cu12 (part of "
            f"{GPU_INSTALL}), or set CUDA_HOME to a CUDA toolkit") from exc
    try:
        from numba.cuda.cudadrv import nvrtc
        version = getattr(nvrtc, "_get_nvrtc_version", None)  # numba-cuda's
        if version is not None:
            version()
    except Exception as exc:  # cuda.pathfinder's DynamicLibNotFoundError
        raise RuntimeError(
            f"numba-cuda cannot find NVRTC (libnvrtc): {exc}. pip install "
            f"nvidia-cuda-nvrtc-cu12 (part of numba-cuda[cu12] and "
            f"{GPU_INSTALL})") from exc


@functools.cache
def numba_cuda():
    """The ``numba.cuda`` module, imported on first use (with the exact
    multiply of :func:`mul_rn` registered for real devices).

    Raises
    ------
    RuntimeError
        If numba.cuda cannot be imported, or (on a real device) NVVM is
        missing; the message names the package to install.
    """
    _numpy_row_stack()
    if not simulated():
        _use_pip_nvvm()
    cuda = _import_numba_cuda()
    if not simulated():
        _check_nvvm(cuda)
        _register_exact()
        # NMS walks its mask in one block, by design, and a bias or a few
        # boxes fill one block: numba's "grid size will likely result in GPU
        # under-utilization" says nothing new (its message starts with a
        # terminal's bold code, hence the leading .*)
        warnings.filterwarnings("ignore", message=".*Grid size .* under-utilization")
    return cuda


def simulated():
    """True when numba's CUDA simulator is on (kernels run on the CPU)."""
    from numba.core import config
    return bool(config.ENABLE_CUDASIM)


def blocks_for(n, threads=THREADS):
    """Blocks of ``threads`` needed to give each of ``n`` elements a thread."""
    return max(1, -(-int(n) // threads))


def _kernel_arg(x):
    """A CuPy array becomes a numba device array WITHOUT the stream sync of
    the CUDA array interface (numba synchronises the exporting stream on
    every import by default, i.e. once per argument per launch: a hidden
    host wait). It is safe to skip because the kernels run on CuPy's current
    stream, after whatever CuPy queued there. Scalars pass through."""
    if hasattr(x, "__cuda_array_interface__"):
        return numba_cuda().as_cuda_array(x, sync=False)
    return x


def _device_and_stream(args):
    """CuPy's current device and the handle of its current stream (0 for
    the default stream, which is also CuPy's unless the caller chose
    another); (None, 0) when no argument is a CuPy array."""
    for x in args:
        if type(x).__module__.split(".")[0] == "cupy":
            cuda = sys.modules["cupy"].cuda
            return cuda.runtime.getDevice(), cuda.get_current_stream().ptr
    return None, 0


def _numba_stream(ptr):
    """numba's stream for a CUDA stream handle (0: the default stream)."""
    return numba_cuda().external_stream(ptr) if ptr else 0


def launch(kernel, blocks, threads, *args, shared_bytes=0):
    """Run ``kernel[blocks, threads](*args)`` on CuPy's current stream.

    The first launch for a kernel and kind of arguments goes through numba
    (which compiles it); later ones through
    :func:`.compiled_launch.launcher`, without numba's per-call typing:
    14 us of host time per launch instead of 108 us on an H100. Under the
    simulator every launch is numba's.

    Parameters
    ----------
    kernel : numba.cuda dispatcher
    blocks, threads : int or tuple
        Grid and block shape.
    *args : arrays (cupy, or numpy under the simulator) and scalars
    shared_bytes : int
        Dynamic shared memory per block.
    """
    if simulated():
        kernel[blocks, threads, 0, shared_bytes](*args)
        return
    device, stream = _device_and_stream(args)
    # a compiled kernel belongs to one device's context: the device is in the key
    key = (kernel, device, argument_key(args))
    fast = _launchers.get(key)
    if fast is not None:
        fast(blocks, threads, stream, shared_bytes, args)
        return
    numba_args = [_kernel_arg(a) for a in args]
    kernel[blocks, threads, _numba_stream(stream), shared_bytes](*numba_args)
    if key not in _launchers:  # numba has compiled it now: the next call is fast
        _launchers[key] = launcher(kernel, numba_args, _numba_stream)


#: (kernel, device, argument_key) -> the launch of compiled_launch.launcher,
#: or None where numba's own launch must be used
_launchers = {}


def mul_rn(a, b):
    """``a * b`` rounded once and never fused into an FMA.

    The GPU compiler contracts ``a * b + c`` into one fused multiply-add by
    default, which rounds once instead of twice; the CPU kernels round
    twice. Every product that feeds a sum goes through this function so
    that the GPU does the CPU's arithmetic bit for bit (identical IoUs for
    NMS, identical sample points for RoI Align). On a device it compiles to
    ``mul.rn`` (libdevice ``fmul_rn``/``dmul_rn``); under the simulator it
    is this plain product (numpy never fuses).
    """
    return a * b


def float_floor(v):
    """``floor(v)`` in v's own float dtype (NaN, inf and values beyond
    int64 included), as numpy's ``floor``; on a device libdevice's
    ``floorf``/``floor``. numba's ``math.floor`` returns an int64 instead,
    which would not round like the CPU's float arithmetic at the extremes."""
    return type(v)(numpy.floor(v))


def float_ceil(v):
    """``ceil(v)`` in v's own float dtype: see :func:`float_floor`."""
    return type(v)(numpy.ceil(v))


def float_trunc(v):
    """``trunc(v)`` (towards zero) in v's own float dtype: see :func:`float_floor`."""
    return type(v)(numpy.trunc(v))


def contiguous(xp, x):
    """``x`` itself when C-contiguous (no CuPy call), else a contiguous copy."""
    return x if x.flags.c_contiguous else xp.ascontiguousarray(x)


def _register_exact():
    from numba.core import types
    from numba.core.extending import overload
    from numba.cuda import libdevice

    for fn, single, double in ((float_floor, libdevice.floorf, libdevice.floor),
                               (float_ceil, libdevice.ceilf, libdevice.ceil),
                               (float_trunc, libdevice.truncf, libdevice.trunc)):
        _overload_unary(overload, types, fn, single, double)

    @overload(mul_rn, target="cuda")
    def _mul_rn_cuda(a, b):
        if a == types.float32 and b == types.float32:
            return lambda a, b: libdevice.fmul_rn(a, b)
        if a == types.float64 and b == types.float64:
            return lambda a, b: libdevice.dmul_rn(a, b)
        return None  # mixed or integer operands: a typing error, by design


def _overload_unary(overload, types, fn, single, double):
    @overload(fn, target="cuda")
    def _on_device(v):
        if v == types.float32:
            return lambda v: single(v)
        if v == types.float64:
            return lambda v: double(v)
        return None
