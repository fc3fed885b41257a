"""RoI Align (Mask R-CNN, He et al. 2017, section 3), as torchvision.

RoI Pool's two quantisations ("These quantizations introduce misalignments
between the RoI and the extracted features", He et al. 2017, section 3) are
dropped: the RoI keeps
its real-valued corners, each of the PH x PW bins is sampled on a regular
grid_h x grid_w grid of points, each point is read by bilinear interpolation,
and the bin outputs the mean. The numbers are those of
``torchvision.ops.roi_align``:

1. Corners scale by ``spatial_scale``; ``aligned=True`` then shifts by -0.5 so
   that a cell's centre sits at integer + 0.5 (pixel-exact boxes), while
   ``aligned=False`` (the original Mask R-CNN) forces the RoI to at least
   1 x 1 cell.
2. ``grid = sampling_ratio`` per axis, or when ``sampling_ratio <= 0``
   ``ceil(roi_h / PH)`` (about one sample per cell). Sample ``iy`` of bin
   ``ph`` sits at ``y1 + ph * bin_h + (iy + 0.5) * bin_h / grid_h``.
3. Bilinear rule per axis: a point more than one cell outside the map
   (``y < -1`` or ``y > H``) contributes 0; otherwise y <= 0 reads row 0 and
   y >= H - 1 reads row H - 1 (no interpolation there); the 4 taps carry
   weights ``hy*hx, hy*lx, ly*hx, ly*lx``.
4. ``y = sum of samples / max(grid_h * grid_w, 1)``; the backward pass hands
   ``dy * w / count`` back to each tap.

The slow, readable definition is
:func:`minirpn.nn.reference.roi_align_forward_reference` (and
``_backward``); the numba kernels here give the same results up to rounding
(tested in float32 and float64). Here, since the weights are separable, each RoI's per-row and
per-column taps are tabulated once (``_axis_taps``) in the input's dtype, and
numba kernels combine them: forward parallel over RoIs with the innermost loop
over contiguous channels, backward parallel over blocks of channels (threads
own disjoint channels: no atomics, and every element sums its terms in
torchvision's order).
CuPy arrays: one launch of :mod:`minirpn.cuda.roi_align_kernel` each way, each
thread computing its RoI's geometry with ``_geometry``'s rules (forward: the
numba result to the bit; backward: atomics, equal up to rounding).
"""
import numba
import numpy as np

from ..backend import get_array_module
from ..jit import njit
from ..checks import deferrable, passes
from .kernel_tools import kernel_threads, transpose_into
from .layer_checks import (check_aligned, check_backward_args, check_forward_args,
                           check_roi_values, check_sampling_ratio)

__all__ = ["roi_align_forward", "roi_align_backward"]

_MAX_GRID = 1 << 16  # adaptive grids beyond this are a bug upstream, not a RoI


@njit(error_model="numpy")
def _axis_taps(start, bin_size, grid, offsets, pooled, size, lo, hi, frac, comp, inside):
    """Tabulate, along one axis, the two taps of every sample coordinate.

    For RoI r, bin p, sample i the entry ``offsets[r] + p * grid[r] + i``
    gets the lower/upper cell (lo, hi), their weights (comp = 1 - frac, frac)
    and whether the point is inside [-1, size]. All float steps in T.
    """
    T = start.dtype.type
    for r in range(start.shape[0]):
        g = grid[r]
        for p in range(pooled):
            for i in range(g):
                j = offsets[r] + p * g + i
                v = start[r] + T(p) * bin_size[r] + T(i + 0.5) * bin_size[r] / T(g)
                inside[j] = v >= -1.0 and v <= size
                if not inside[j]:
                    lo[j], hi[j], frac[j], comp[j] = 0, 0, 0, 0
                    continue
                v = max(v, T(0))
                low = int(v)
                if low >= size - 1:  # at or past the last cell: no interpolation
                    low = size - 1
                    lo[j], hi[j], v = low, low, T(low)
                else:
                    lo[j], hi[j] = low, low + 1
                frac[j] = v - T(low)
                comp[j] = T(1) - frac[j]


def _axis_table(start, bin_size, grid, pooled, extent):
    """The taps of one axis for all RoIs: (offsets, lo, hi, frac, comp, inside),
    RoI r's entries starting at offsets[r] (grids differ when adaptive)."""
    offsets = np.concatenate([[0], np.cumsum(pooled * grid)])
    n, dtype = int(offsets[-1]), start.dtype
    table = (offsets, np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, dtype),
             np.empty(n, dtype), np.empty(n, np.bool_))
    _axis_taps(start, bin_size, grid, offsets[:-1], pooled, extent, *table[1:])
    return table


def _geometry(xp, rois, pooled, scale, sampling_ratio, aligned):
    """Per-RoI start, bin size, samples per bin side and sample count, with
    ``xp`` on the rois' device: dict of (R,) arrays ``y1, x1, bin_h, bin_w,
    count`` in the rois' dtype and ``grid_h, grid_w`` int64."""
    T = rois.dtype.type
    # 1. RoI corners in cells, in T and without rounding; aligned: -0.5
    x1, y1, x2, y2 = (rois[:, k] * T(scale) - T(0.5 if aligned else 0) for k in range(1, 5))
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:  # malformed RoIs become 1 x 1 cell
        roi_w, roi_h = xp.maximum(roi_w, T(1)), xp.maximum(roi_h, T(1))
    bin_w, bin_h = roi_w / T(pooled[1]), roi_h / T(pooled[0])
    # 2. samples per bin and axis: fixed, or adaptive ceil(roi / pooled)
    if sampling_ratio > 0:
        grid_w = grid_h = xp.full(rois.shape[0], sampling_ratio, np.int64)
    else:
        grid_w, grid_h = xp.ceil(bin_w), xp.ceil(bin_h)  # = ceil(roi_w / PW) in T
        too_big = xp.maximum(grid_w, grid_h) > _MAX_GRID
        if bool(too_big.any()):
            row = int(xp.argmax(too_big))
            raise ValueError(f"rois row {row} needs an adaptive sampling grid of "
                             f"{float(max(grid_w[row], grid_h[row])):.0f} points per bin "
                             f"side (limit {_MAX_GRID}): are rois in input pixels?")
        # an empty or inverted RoI gets no samples and its bins stay 0
        grid_w, grid_h = (xp.maximum(g, 0).astype(np.int64) for g in (grid_w, grid_h))
    return {"y1": y1, "x1": x1, "bin_h": bin_h, "bin_w": bin_w, "grid_h": grid_h,
            "grid_w": grid_w, "count": xp.maximum(grid_h * grid_w, 1).astype(rois.dtype)}


def _tables(rois, pooled, scale, sampling_ratio, aligned, height, width):
    """Per-RoI sample grid and count, and the row and column tap tables."""
    g = _geometry(np, rois, pooled, scale, sampling_ratio, aligned)
    # 3. the bilinear taps of every sample row and column
    return {"grid_h": g["grid_h"], "grid_w": g["grid_w"], "count": g["count"],
            "y": _axis_table(g["y1"], g["bin_h"], g["grid_h"], pooled[0], height),
            "x": _axis_table(g["x1"], g["bin_w"], g["grid_w"], pooled[1], width)}


@njit(parallel=True, error_model="numpy")
def _align_forward_kernel(x_nhwc, batch, grid_h, grid_w, count, ytab, xtab, y):
    """Mean of bilinear samples per bin; parallel over RoIs, inner loop over C."""
    n_rois, channels, pooled_h, pooled_w = y.shape
    y_off, y_lo, y_hi, ly, hy, y_in = ytab
    x_off, x_lo, x_hi, lx, hx, x_in = xtab
    for r in numba.prange(n_rois):
        acc = np.zeros((pooled_h * pooled_w, channels), x_nhwc.dtype)
        fmap = x_nhwc[batch[r]]
        for ph in range(pooled_h):
            for pw in range(pooled_w):
                a = acc[ph * pooled_w + pw]
                for iy in range(grid_h[r]):
                    j = y_off[r] + ph * grid_h[r] + iy
                    if not y_in[j]:
                        continue
                    for ix in range(grid_w[r]):
                        k = x_off[r] + pw * grid_w[r] + ix
                        if not x_in[k]:
                            continue
                        w1, w2 = hy[j] * hx[k], hy[j] * lx[k]
                        w3, w4 = ly[j] * hx[k], ly[j] * lx[k]
                        v1, v2 = fmap[y_lo[j], x_lo[k]], fmap[y_lo[j], x_hi[k]]
                        v3, v4 = fmap[y_hi[j], x_lo[k]], fmap[y_hi[j], x_hi[k]]
                        for c in range(channels):
                            a[c] += w1 * v1[c] + w2 * v2[c] + w3 * v3[c] + w4 * v4[c]
        acc /= count[r]  # the mean of the bin's samples
        transpose_into(acc, y[r].reshape(channels, pooled_h * pooled_w))


@njit(parallel=True, error_model="numpy")
def _align_backward_kernel(dy, batch, grid_h, grid_w, ytab, xtab, block, dx_nhwc):
    """Send dy * w / count to each tap; dx_nhwc (N, H, W, C) starts at zero.

    Parallel over blocks of ``block`` channels, RoIs in order inside, so no
    two threads touch the same element and each element's terms are added in
    torchvision's order; the inner loops run over the block's contiguous
    channels, one tap at a time (the taps may coincide at the border).
    """
    n_rois, channels, pooled_h, pooled_w = dy.shape
    y_off, y_lo, y_hi, ly, hy, y_in = ytab
    x_off, x_lo, x_hi, lx, hx, x_in = xtab
    for blk in numba.prange((channels + block - 1) // block):
        c0, c1 = blk * block, min(blk * block + block, channels)
        for r in range(n_rois):
            grad = dx_nhwc[batch[r]]
            n_samples = dy.dtype.type(grid_h[r] * grid_w[r])
            for ph in range(pooled_h):
                for pw in range(pooled_w):
                    g = dy[r, c0:c1, ph, pw].copy()  # contiguous: SIMD below
                    for iy in range(grid_h[r]):
                        j = y_off[r] + ph * grid_h[r] + iy
                        if not y_in[j]:
                            continue
                        for ix in range(grid_w[r]):
                            k = x_off[r] + pw * grid_w[r] + ix
                            if not x_in[k]:
                                continue
                            w1, w2 = hy[j] * hx[k], hy[j] * lx[k]
                            w3, w4 = ly[j] * hx[k], ly[j] * lx[k]
                            _add_tap(grad[y_lo[j], x_lo[k], c0:c1], g, w1, n_samples)
                            _add_tap(grad[y_lo[j], x_hi[k], c0:c1], g, w2, n_samples)
                            _add_tap(grad[y_hi[j], x_lo[k], c0:c1], g, w3, n_samples)
                            _add_tap(grad[y_hi[j], x_hi[k], c0:c1], g, w4, n_samples)


@njit(error_model="numpy", inline="always")
def _add_tap(dst, g, weight, n_samples):
    for c in range(dst.shape[0]):
        dst[c] += g[c] * weight / n_samples  # torchvision's (g * w) / count


def _forward_gpu(features, rois, pooled, scale, sampling_ratio, aligned):
    """roi_align_forward on CuPy arrays: one kernel, which computes each
    RoI's geometry itself (``_geometry``'s rules, bit for bit) and flags
    rows the CPU would refuse; no other device work but two allocations
    and the flag's check."""
    from ..cuda import roi_align_kernel  # imports numba.cuda: GPU path only
    from ..cuda.launch import contiguous
    xp = get_array_module(features)
    y = xp.empty((rois.shape[0], features.shape[1]) + pooled, features.dtype)
    params = (scale, sampling_ratio, aligned, _MAX_GRID)
    if y.size:
        bad = xp.zeros(1, np.int32)
        roi_align_kernel.forward(contiguous(xp, features), rois, *params, y, bad)
        _check_gpu_rows(rois, features.shape[0], pooled, scale, sampling_ratio, aligned, bad)
    else:
        check_roi_values(rois, features.shape[0])
        _geometry(xp, rois, pooled, scale, sampling_ratio, aligned)  # the grid check
    cache = {"rois": rois, "params": params, "features_shape": features.shape,
             "output_shape": y.shape, "dtype": features.dtype}
    return y, cache


@deferrable
def _check_gpu_rows(rois, n, pooled, scale, sampling_ratio, aligned, flag):
    """Raise the CPU's error for the rows the kernel refused (``flag`` (1,)
    int32 nonzero), in the CPU's order: values, then the adaptive grid."""
    if passes(flag[0] == 0):
        return
    check_roi_values(rois, n)
    _geometry(get_array_module(rois), rois, pooled, scale, sampling_ratio, aligned)
    raise ValueError("rois: the GPU kernel refused a row that passes the checks")


def roi_align_forward(features, rois, output_size=(7, 7), spatial_scale=1 / 16,
                      sampling_ratio=2, aligned=True):
    """RoI Align, identical to ``torchvision.ops.roi_align`` and (up to
    rounding) to :func:`minirpn.nn.reference.roi_align_forward_reference`.

    Shapes: N images, C channels, H x W feature map, R RoIs, PH x PW output.

    Parameters
    ----------
    features : ndarray, (N, C, H, W) float32 or float64
        Feature maps.
    rois : ndarray, (R, 5), features' dtype
        Rows ``[batch_index, x1, y1, x2, y2]`` in input-image pixels; the
        batch index must be integral in [0, N). R may be 0.
    output_size : int or (int, int)
        (PH, PW), each >= 1.
    spatial_scale : float
        Feature cells per input pixel, > 0.
    sampling_ratio : int
        Sample points per bin along each axis; <= 0 for adaptive
        (``ceil(roi_size / output_size)``).
    aligned : bool
        Shift the RoI by -0.5 cell (pixel-exact); False is Mask R-CNN's
        original rule, which also forces RoIs to at least 1 x 1 cell.

    Returns
    -------
    y : ndarray, (R, C, PH, PW), features' dtype
        Mean of each bin's bilinear samples.
    cache : dict
        For :func:`roi_align_backward`: ``features_shape``, ``output_shape``
        and ``dtype``; on numpy ``batch`` (R,) int64 and ``tables`` (the
        per-RoI grid, count and row/column taps), on CuPy ``rois`` (the
        input) and ``params`` (scale, sampling ratio, aligned, grid limit).

    Raises
    ------
    TypeError, ValueError
        On bad arguments (see :mod:`minirpn.nn.layer_checks`), or numpy and
        CuPy arrays mixed.
    """
    gpu, (n, c, h, w), pooled, scale = check_forward_args(features, rois, output_size,
                                                          spatial_scale)
    sampling_ratio = check_sampling_ratio(sampling_ratio)
    aligned = check_aligned(aligned)
    if gpu:
        return _forward_gpu(features, rois, pooled, scale, sampling_ratio, aligned)
    batch = rois[:, 0].astype(np.int64)
    tabs = _tables(rois, pooled, scale, sampling_ratio, aligned, h, w)
    y = np.empty((len(rois), c) + pooled, features.dtype)  # the kernel sets all
    if y.size:
        # channels-last once per call, so the kernel's inner loop is contiguous
        x_nhwc = np.ascontiguousarray(features.transpose(0, 2, 3, 1))
        with kernel_threads(y.size):
            _align_forward_kernel(x_nhwc, batch, tabs["grid_h"], tabs["grid_w"],
                                  tabs["count"], tabs["y"], tabs["x"], y)
    cache = {"batch": batch, "tables": tabs, "features_shape": features.shape,
             "output_shape": y.shape, "dtype": features.dtype}
    return y, cache


def roi_align_backward(dy, cache):
    """Gradient of :func:`roi_align_forward` with respect to the features.

    Parameters
    ----------
    dy : ndarray, (R, C, PH, PW) float32 or float64
        Upstream gradient, the forward output's dtype.
    cache : dict
        From :func:`roi_align_forward`.

    Returns
    -------
    dfeatures : ndarray, (N, C, H, W), dy's dtype
        Each sample's share ``dy * w / count`` summed onto its 4 taps.
    """
    n, c, h, w = cache["features_shape"]
    gpu = check_backward_args(dy, cache["rois"] if "rois" in cache else cache["batch"],
                              cache["output_shape"], cache["dtype"])
    if gpu:
        from ..cuda import roi_align_kernel
        from ..cuda.launch import contiguous
        xp = get_array_module(dy)
        dx = xp.zeros((n, c, h, w), dy.dtype)  # the atomics add into it
        if dy.size:
            roi_align_kernel.backward(contiguous(xp, dy), cache["rois"], *cache["params"], dx)
        return dx
    tabs, batch = cache["tables"], cache["batch"]
    dx = np.zeros((n, h, w, c), dy.dtype)
    if dy.size:
        with kernel_threads(dy.size):
            # a block of channels per thread, in multiples of 16: whole cache lines
            block = -(-c // (16 * numba.get_num_threads())) * 16
            _align_backward_kernel(np.ascontiguousarray(dy), batch, tabs["grid_h"],
                                   tabs["grid_w"], tabs["y"], tabs["x"], block, dx)
    return np.ascontiguousarray(dx.transpose(0, 3, 1, 2))
