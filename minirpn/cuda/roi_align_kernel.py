"""RoI Align on the GPU: one thread per output element, forward and backward.

Each RoI's geometry (start, bin size, samples per bin side, sample count;
:func:`minirpn.nn.roi_align._geometry`) is computed once per call with ``xp``
on the device. Thread (r, c, ph, pw) then walks its bin's grid_h x grid_w
samples, locating each one's two rows and two columns with ``_taps``, the
same steps as the CPU's tap tables (``roi_align._axis_taps``) in the input
dtype, every product rounded on its own (:func:`~.launch.mul_rn`).

Forward: the thread sums its samples' four weighted taps in the CPU order
and divides by the count: the CPU's result to the last bit.

Backward, with atomics (as torchvision's CUDA kernel): the thread hands
``dy * weight / count`` to each tap with ``cuda.atomic.add``. A gather would
have each feature element find every sample of every RoI that touches it,
which means searching all of the RoIs' sample grids per element (the
samples sit at real-valued points, clamped at the border), far more work
than the scatter. The price: float additions land in an order that varies
from run to run, so gradients match the CPU's to rounding, not to the bit.
"""
from .device import unravel4
from .launch import THREADS, blocks_for, launch, mul_rn, numba_cuda

__all__ = ["forward", "backward"]

cuda = numba_cuda()


@cuda.jit(device=True)
def _taps(starts, bins, grids, r, p, i, size):
    """Sample i of RoI r's bin p along one axis: (lower cell, upper cell,
    weight of the upper, weight of the lower, inside); the CPU's
    ``_axis_taps`` step for step, in the dtype T of ``starts``."""
    T = starts.dtype.type
    v = starts[r] + mul_rn(T(p), bins[r]) + mul_rn(T(i + 0.5), bins[r]) / T(grids[r])
    if not (v >= -1.0 and v <= size):  # more than a cell off the map: 0
        return 0, 0, T(0), T(0), False
    v = v if v > T(0) else T(0)  # (no 2-argument max on CUDA: numba issue 10753)
    low = int(v)
    if low >= size - 1:  # at or past the last cell: no interpolation
        low = size - 1
        return low, low, T(0), T(1), True
    frac = v - T(low)
    return low, low + 1, frac, T(1) - frac, True


@cuda.jit
def _forward_kernel(x, batch, y1, x1, bin_h, bin_w, grid_h, grid_w, count, y):
    k = cuda.grid(1)
    if k >= y.size:
        return
    r, c, ph, pw = unravel4(k, y.shape)
    b, height, width = batch[r], x.shape[2], x.shape[3]
    acc = y.dtype.type(0)
    for iy in range(grid_h[r]):
        y_lo, y_hi, ly, hy, y_in = _taps(y1, bin_h, grid_h, r, ph, iy, height)
        if not y_in:
            continue
        for ix in range(grid_w[r]):
            x_lo, x_hi, lx, hx, x_in = _taps(x1, bin_w, grid_w, r, pw, ix, width)
            if not x_in:
                continue
            w1, w2, w3, w4 = hy * hx, hy * lx, ly * hx, ly * lx
            acc += mul_rn(w1, x[b, c, y_lo, x_lo]) + mul_rn(w2, x[b, c, y_lo, x_hi]) \
                + mul_rn(w3, x[b, c, y_hi, x_lo]) + mul_rn(w4, x[b, c, y_hi, x_hi])
    y[r, c, ph, pw] = acc / count[r]  # the mean of the bin's samples


@cuda.jit
def _backward_kernel(dy, batch, y1, x1, bin_h, bin_w, grid_h, grid_w, dx):
    k = cuda.grid(1)
    if k >= dy.size:
        return
    r, c, ph, pw = unravel4(k, dy.shape)
    b, height, width = batch[r], dx.shape[2], dx.shape[3]
    g = dy[r, c, ph, pw]
    n_samples = dy.dtype.type(grid_h[r] * grid_w[r])
    for iy in range(grid_h[r]):
        y_lo, y_hi, ly, hy, y_in = _taps(y1, bin_h, grid_h, r, ph, iy, height)
        if not y_in:
            continue
        for ix in range(grid_w[r]):
            x_lo, x_hi, lx, hx, x_in = _taps(x1, bin_w, grid_w, r, pw, ix, width)
            if not x_in:
                continue
            # the CPU's (g * w) / count, one atomic add per tap
            cuda.atomic.add(dx, (b, c, y_lo, x_lo), g * (hy * hx) / n_samples)
            cuda.atomic.add(dx, (b, c, y_lo, x_hi), g * (hy * lx) / n_samples)
            cuda.atomic.add(dx, (b, c, y_hi, x_lo), g * (ly * hx) / n_samples)
            cuda.atomic.add(dx, (b, c, y_hi, x_hi), g * (ly * lx) / n_samples)


def forward(features, batch, geometry, y):
    """Fill ``y`` (R, C, PH, PW) from (N, C, H, W) ``features``.

    ``batch`` (R,) int64; ``geometry`` the dict of
    :func:`minirpn.nn.roi_align._geometry`: ``y1, x1, bin_h, bin_w, count``
    (R,) in the features' dtype and ``grid_h, grid_w`` (R,) int64. All
    arrays on one device, C-contiguous.
    """
    g = geometry
    launch(_forward_kernel, blocks_for(y.size), THREADS, features, batch, g["y1"],
           g["x1"], g["bin_h"], g["bin_w"], g["grid_h"], g["grid_w"], g["count"], y)


def backward(dy, batch, geometry, dx):
    """Add the gradient of :func:`forward` into ``dx`` (N, C, H, W), which
    must start at zero."""
    g = geometry
    launch(_backward_kernel, blocks_for(dy.size), THREADS, dy, batch, g["y1"],
           g["x1"], g["bin_h"], g["bin_w"], g["grid_h"], g["grid_w"], dx)
