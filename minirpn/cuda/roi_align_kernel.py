"""RoI Align on the GPU: one thread per output element, forward and backward.

One launch each way and no other device work, as torchvision's CUDA RoI
Align: thread (r, c, ph, pw) reads RoI r's row and computes its geometry
itself (start, bin size, samples per bin side, count: the CPU's
:func:`minirpn.nn.roi_align._geometry`, in the input dtype, every product
rounded on its own with :func:`~.launch.mul_rn`), then walks its bin's
grid_h x grid_w samples, locating each one's two rows and two columns with
``_taps``, the same steps as the CPU's tap tables (``roi_align._axis_taps``).
An earlier version computed the geometry with a dozen CuPy operations per
call and checked the rows with two device reads.

A row that the CPU would refuse (non-finite, a batch index that is not an
integer in [0, N), an adaptive grid over ``max_grid`` samples per side) is
never read from: its outputs are 0 and the kernel sets ``bad[0] = 1`` so
that the caller raises the CPU's error.

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
from .device import roi_row_ok, unravel4
from .launch import THREADS, blocks_for, float_ceil, launch, mul_rn, numba_cuda

__all__ = ["forward", "backward"]

cuda = numba_cuda()


@cuda.jit(device=True)
def _axis(rois, r, k_lo, k_hi, scale, offset, pooled, ratio, aligned, max_grid):
    """RoI r's (start, bin size, samples per bin, ok) along one axis, its
    coordinates in columns k_lo and k_hi: the CPU's ``_geometry``."""
    T = rois.dtype.type
    lo = mul_rn(rois[r, k_lo], scale) - offset  # no rounding of the corners
    size = mul_rn(rois[r, k_hi], scale) - offset - lo
    if not aligned and size < T(1):  # malformed RoIs become 1 x 1 cell
        size = T(1)
    bin_size = size / T(pooled)
    if ratio > 0:
        return lo, bin_size, ratio, True
    grid = float_ceil(bin_size)  # adaptive: ceil(roi / pooled), in T
    if grid > max_grid:
        return lo, bin_size, 0, False
    if not (grid > 0):  # empty, inverted (or NaN): no samples, the bins stay 0
        return lo, bin_size, 0, True
    return lo, bin_size, int(grid), True


@cuda.jit(device=True)
def _taps(x, start, bin_size, grid, p, i, size):
    """Sample i of bin p along one axis: (lower cell, upper cell, weight of
    the upper, weight of the lower, inside); the CPU's ``_axis_taps`` step
    for step, in the dtype T of ``x``."""
    T = x.dtype.type
    v = start + mul_rn(T(p), bin_size) + mul_rn(T(i + 0.5), bin_size) / T(grid)
    if not (v >= -1.0 and v <= size):  # more than a cell off the map: 0
        return 0, 0, T(0), T(0), False
    v = v if v > T(0) else T(0)  # (no 2-argument max on CUDA: numba issue 10753)
    low = int(v)
    if low >= size - 1:  # at or past the last cell: no interpolation
        low = size - 1
        return low, low, T(0), T(1), True
    frac = v - T(low)
    return low, low + 1, frac, T(1) - frac, True


@cuda.jit(device=True)
def _geometry(x, rois, r, scale, offset, pooled_h, pooled_w, ratio, aligned, max_grid):
    """(y1, bin_h, grid_h, x1, bin_w, grid_w, ok) of RoI r."""
    y1, bin_h, grid_h, ok_h = _axis(rois, r, 2, 4, scale, offset, pooled_h, ratio,
                                    aligned, max_grid)
    x1, bin_w, grid_w, ok_w = _axis(rois, r, 1, 3, scale, offset, pooled_w, ratio,
                                    aligned, max_grid)
    ok = ok_h and ok_w and roi_row_ok(rois, r, x.shape[0])
    return y1, bin_h, grid_h, x1, bin_w, grid_w, ok


@cuda.jit
def _forward_kernel(x, rois, scale, offset, ratio, aligned, max_grid, y, bad):
    k = cuda.grid(1)
    if k >= y.size:
        return
    r, c, ph, pw = unravel4(k, y.shape)
    y1, bin_h, grid_h, x1, bin_w, grid_w, ok = _geometry(
        x, rois, r, scale, offset, y.shape[2], y.shape[3], ratio, aligned, max_grid)
    if not ok:  # never read with it; the caller raises
        bad[0] = 1
        y[r, c, ph, pw] = 0
        return
    b, height, width = int(rois[r, 0]), x.shape[2], x.shape[3]
    acc = y.dtype.type(0)
    for iy in range(grid_h):
        y_lo, y_hi, ly, hy, y_in = _taps(x, y1, bin_h, grid_h, ph, iy, height)
        if not y_in:
            continue
        for ix in range(grid_w):
            x_lo, x_hi, lx, hx, x_in = _taps(x, x1, bin_w, grid_w, pw, ix, width)
            if not x_in:
                continue
            w1, w2, w3, w4 = hy * hx, hy * lx, ly * hx, ly * lx
            acc += mul_rn(w1, x[b, c, y_lo, x_lo]) + mul_rn(w2, x[b, c, y_lo, x_hi]) \
                + mul_rn(w3, x[b, c, y_hi, x_lo]) + mul_rn(w4, x[b, c, y_hi, x_hi])
    count = grid_h * grid_w
    y[r, c, ph, pw] = acc / y.dtype.type(count if count > 1 else 1)  # the bin's mean


@cuda.jit
def _backward_kernel(dy, rois, scale, offset, ratio, aligned, max_grid, dx):
    k = cuda.grid(1)
    if k >= dy.size:
        return
    r, c, ph, pw = unravel4(k, dy.shape)
    y1, bin_h, grid_h, x1, bin_w, grid_w, ok = _geometry(
        dx, rois, r, scale, offset, dy.shape[2], dy.shape[3], ratio, aligned, max_grid)
    if not ok:  # the forward refused the row: no gradient
        return
    b, height, width = int(rois[r, 0]), dx.shape[2], dx.shape[3]
    g = dy[r, c, ph, pw]
    n_samples = dy.dtype.type(grid_h * grid_w)
    for iy in range(grid_h):
        y_lo, y_hi, ly, hy, y_in = _taps(dx, y1, bin_h, grid_h, ph, iy, height)
        if not y_in:
            continue
        for ix in range(grid_w):
            x_lo, x_hi, lx, hx, x_in = _taps(dx, x1, bin_w, grid_w, pw, ix, width)
            if not x_in:
                continue
            # the CPU's (g * w) / count, one atomic add per tap
            cuda.atomic.add(dx, (b, c, y_lo, x_lo), g * (hy * hx) / n_samples)
            cuda.atomic.add(dx, (b, c, y_lo, x_hi), g * (hy * lx) / n_samples)
            cuda.atomic.add(dx, (b, c, y_hi, x_lo), g * (ly * hx) / n_samples)
            cuda.atomic.add(dx, (b, c, y_hi, x_hi), g * (ly * lx) / n_samples)


def _params(dtype, scale, sampling_ratio, aligned, max_grid):
    T = dtype.type
    return (T(scale), T(0.5 if aligned else 0), int(sampling_ratio), bool(aligned),
            T(max_grid))


def forward(features, rois, scale, sampling_ratio, aligned, max_grid, y, bad):
    """Fill ``y`` (R, C, PH, PW) from (N, C, H, W) ``features``.

    ``rois`` (R, 5) in the features' dtype; ``scale``, ``sampling_ratio``,
    ``aligned`` as :func:`minirpn.nn.roi_align.roi_align_forward` takes them;
    ``max_grid`` the most adaptive samples per bin side; ``bad`` (1,) int32,
    set to 1 if a row fails the CPU's checks. All arrays on one device,
    ``features`` and ``y`` C-contiguous.
    """
    launch(_forward_kernel, blocks_for(y.size), THREADS, features, rois,
           *_params(features.dtype, scale, sampling_ratio, aligned, max_grid), y, bad)


def backward(dy, rois, scale, sampling_ratio, aligned, max_grid, dx):
    """Add the gradient of :func:`forward` into ``dx`` (N, C, H, W), which
    must start at zero."""
    launch(_backward_kernel, blocks_for(dy.size), THREADS, dy, rois,
           *_params(dy.dtype, scale, sampling_ratio, aligned, max_grid), dx)
