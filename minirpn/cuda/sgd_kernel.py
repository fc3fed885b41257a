"""One SGD step of one parameter on the GPU: the update of
:mod:`minirpn.nn.optim` in one launch.

Written with CuPy calls the update is five or six kernels and two
temporaries per parameter, each call costing host time; a small network's
optimizer step then ran at the host's pace. One thread per element does
the three lines of ``optim._sgd_kernel`` (the CPU's) in their order, each
product rounded on its own (:func:`~.launch.mul_rn`, no fused
multiply-add), so both devices make the same update to the bit.
"""
from .launch import THREADS, blocks_for, launch, mul_rn, numba_cuda

__all__ = ["sgd_step"]

cuda = numba_cuda()


@cuda.jit
def _sgd_kernel(p, g, v, lr, momentum, weight_decay, decay):
    i = cuda.grid(1)
    if i >= p.size:
        return
    grad = g[i] + mul_rn(weight_decay, p[i]) if decay else g[i]
    vi = mul_rn(v[i], momentum) + grad
    v[i] = vi
    p[i] -= mul_rn(lr, vi)


def sgd_step(p, g, v, lr, momentum, weight_decay, decay):
    """Update p and v in place from g: flat (n,) C-contiguous arrays of one
    float dtype; the scalars in that dtype, ``decay`` a bool."""
    if p.size:
        launch(_sgd_kernel, blocks_for(p.size), THREADS, p, g, v, lr, momentum,
               weight_decay, decay)
