"""Launching an already compiled numba.cuda kernel without numba's per-call
work.

``kernel[blocks, threads, stream](*args)`` types every argument again on
every call (for a CuPy array: read ``__cuda_array_interface__``, build a
numba device array, pick the overload), then converts each one. On an
H100 that took about 107 us per launch against 6 us for a CuPy
``RawKernel`` (CuPy 14.2, numba-cuda 0.30.4), so a RoI pool forward and
backward spent more time launching than computing.

The first launch for a given kernel and kind of arguments goes through
numba, which compiles. After that, :func:`launcher` returns a function that
lays out the same kernel parameters as numba's own
``_Kernel._prepare_args`` (numba-cuda's ``dispatcher.py``) and calls the
same cuda.core ``launch``:

- an array of ndim d becomes 5 + 2d parameters: meminfo (0), parent (0),
  element count, item size, data pointer, its d extents, its d strides in
  bytes (numba's array data model);
- an integer or float scalar becomes the ctypes value of the type numba
  compiled the kernel for.

Anything else (a numba version without these internals, a debug kernel, an
argument of another kind) makes :func:`launcher` return None, and the
caller keeps using numba's own launch: slower, never different.
"""
import ctypes

__all__ = ["argument_key", "launcher", "kernel_parameters"]

#: numba scalar type name -> ctypes constructor, as numba's _prepare_args
_SCALARS = {"int8": ctypes.c_int8, "int16": ctypes.c_int16, "int32": ctypes.c_int32,
            "int64": ctypes.c_int64, "uint8": ctypes.c_uint8, "uint16": ctypes.c_uint16,
            "uint32": ctypes.c_uint32, "uint64": ctypes.c_uint64,
            "float32": ctypes.c_float, "float64": ctypes.c_double,
            "bool": bool}  # numba passes a boolean as the Python value itself


def argument_key(args):
    """What a compiled kernel depends on, per argument: (dtype, ndim,
    layout) of an array, the type of a scalar. Cheap: no device call."""
    key = []
    for a in args:
        flags = getattr(a, "flags", None)
        if flags is None:
            key.append(type(a))
        else:
            layout = "C" if flags.c_contiguous else "F" if flags.f_contiguous else "A"
            key.append((a.dtype.char, a.ndim, layout))
    return tuple(key)


def kernel_parameters(args, converters):
    """The flat parameter list of numba's kernel ABI for ``args``:
    ``converters[i]`` is None for an array, else the ctypes type of scalar i.
    Arrays need ``size``, ``itemsize``, ``shape``, ``strides`` (bytes) and
    ``data.ptr`` (CuPy's)."""
    params = []
    for a, convert in zip(args, converters):
        if convert is None:
            params += [0, 0, a.size, a.itemsize, a.data.ptr]
            params += a.shape
            params += a.strides
        else:
            params.append(convert(a))
    return params


def launcher(dispatcher, numba_args, numba_stream):
    """A function ``run(blocks, threads, stream_ptr, shared_bytes, args)``
    that launches the overload of ``dispatcher`` that numba compiled for
    ``numba_args`` (launched through numba once already; CuPy arrays as
    numba device arrays), or None where that cannot be done exactly as
    numba would. ``numba_stream(ptr)`` is numba's stream for a handle."""
    try:
        from numba.cuda import dispatcher as numba_dispatcher
        from numba.cuda.cudadrv.driver import _to_core_stream
        kernel = dispatcher.overloads[tuple(dispatcher.typeof_pyval(a) for a in numba_args)]
        if getattr(kernel, "debug", False):
            return None
        converters = [_converter(t) for t in kernel.argument_types]
        function = kernel._codelibrary.get_cufunc().kernel
        core_launch, config_type = numba_dispatcher.launch, numba_dispatcher.LaunchConfig
    except (ImportError, AttributeError, KeyError, TypeError, ValueError):
        return None
    configs, streams = {}, {}

    def run(blocks, threads, stream_ptr, shared_bytes, args):
        config = configs.get((blocks, threads, shared_bytes))
        if config is None:
            config = configs[blocks, threads, shared_bytes] = config_type(
                grid=blocks, block=threads, shmem_size=shared_bytes)
        stream = streams.get(stream_ptr)
        if stream is None:
            stream = streams[stream_ptr] = _to_core_stream(numba_stream(stream_ptr))
        core_launch(stream, config, function, *kernel_parameters(args, converters))
    return run


def _converter(numba_type):
    """None for an array type, the ctypes type of a scalar; TypeError for
    anything else (records, tuples: no kernel here takes one)."""
    if hasattr(numba_type, "ndim") and hasattr(numba_type, "layout"):
        return None
    try:
        return _SCALARS[str(numba_type)]
    except KeyError:
        raise TypeError(f"no fast launch for a {numba_type} argument") from None
