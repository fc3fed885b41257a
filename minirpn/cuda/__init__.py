"""GPU kernels of the CuPy backend, written with numba.cuda.

Most of minirpn runs on the GPU without a line of its own: the layers, the
losses and the detection stages are written once against ``xp``, and CuPy
runs them. Some ops need kernels, because a few xp expressions cannot say
them efficiently, or because a dozen small CuPy calls cost more host time
than the GPU spends on the work:

- :mod:`.nms_kernel`: greedy NMS as torchvision's bitmask algorithm;
- :mod:`.roi_pool_kernel`: RoI max pooling, forward and backward (atomics),
  each thread computing its bin from the RoI row as torchvision's kernel;
- :mod:`.roi_align_kernel`: RoI Align, forward and backward (atomics), the
  same way; both flag rows the CPU would refuse instead of reading them;
- :mod:`.max_pool_kernel`: 2-D max pooling, forward and (gather) backward,
  one launch each instead of a dozen CuPy ops and a host wait;
- :mod:`.winograd_kernel`: the transforms of the 3x3 convs' Winograd path,
  around one batched cuBLAS product;
- :mod:`.box_kernels`: box IoU, box coding and the box checks, one launch
  each, to the bit of the CPU's;
- :mod:`.sgd_kernel`: the SGD update of one parameter in one launch.

Why numba.cuda (and not CuPy's RawKernel): the kernels are Python, in the
style of the CPU numba kernels beside them, one readable source per op; they
take CuPy arrays directly through the CUDA array interface; and numba's CUDA
simulator (``NUMBA_ENABLE_CUDASIM=1``) runs the very same source on the CPU
on numpy arrays, so the tests check every kernel against the CPU path on a
machine without a GPU. :mod:`.launch` launches them on CuPy's current stream.
Keeping numba.cuda has one cost: numba-cuda (up to 0.30.4) still asks numpy
for ``row_stack``, which numpy 2.5 removed; :mod:`.launch` restores that
alias of ``vstack`` before numba.cuda is first imported, where it is missing.

What crosses to the host: nothing in these kernels. (The RoI layers and
the box checks read their kernels' one-element flags: at once outside a
training step, with the step's other checks inside one.) NMS keeps its mask and
its sequential walk on the device; the callers read a few scalars (sizes of
index sets; the validation flags of a training step are read once, at its
end: :func:`minirpn.checks.deferred_device_checks`), never arrays.

Nothing here is imported by ``import minirpn``: the ops import these modules
the first time they see a CuPy array, which is when numba.cuda is imported.
"""
