"""Crop pooling: an affine sampling grid plus bilinear sampling, then max-pool.

The "crop" pooling mode of faster-rcnn.pytorch (jwyang; ``_affine_theta`` in
lib/model/utils/net_utils.py), after Spatial Transformer Networks (Jaderberg
et al. 2015): for each
RoI an affine matrix ``theta`` (2 x 3) maps normalised output coordinates
``(x_t, y_t)`` in [-1, 1] to normalised input coordinates

    [x_s]   [theta_11  0         theta_13] [x_t]
    [y_s] = [0         theta_22  theta_23] [y_t]
                                           [ 1 ]

with ``theta_11 = (x2 - x1) / W``, ``theta_13 = (x1 + x2) / W - 1`` (and the
same in y), the RoI given in feature-map pixels. The input is sampled
bilinearly at those points on a grid of ``2 PH x 2 PW`` (zero outside the
map, as ``grid_sample(padding_mode="zeros", align_corners=False)``), and a
2x2 max-pool brings it to ``PH x PW`` (tf-faster-rcnn's ``_crop_pool_layer``
crops to 14x14 and max-pools to 7x7).

Bilinear sampling is linear in the features: with the features laid out as a
``(N*H*W, C)`` matrix ``F``, the samples are ``S @ F`` for a sparse matrix
``S`` with four weights per sample. The backward pass is ``S.T @ dY``, so no
scatter loop and no atomics are needed. Gradients flow to the features only:
the RoI coordinates are constants (Ren et al. 2015, section 3.2: approximate
joint training ignores the derivative with respect to the proposal boxes'
coordinates).

On CuPy the same four taps per sample are computed with ``xp``, and the two
products are written out as a gather (forward) and a scatter-add (backward)
that add in the order SciPy's CSR/CSC products do: cuSPARSE's SpMM adds a
row's entries in an order of its own, and the 2x2 max-pool after the
sampling turns those last-bit differences into different arg-maxes, so a
different gradient (the first GPU run measured 6% of it in float64).
"""
import numpy as np
import scipy.sparse

from ..backend import get_array_module
from ..checks import check_float_array, check_array
from .pooling import max_pool2d_backward, max_pool2d_forward

__all__ = ["crop_pool_forward", "crop_pool_backward", "affine_theta",
           "affine_grid"]


def affine_theta(rois, spatial_scale, height, width):
    """Per-RoI affine matrices (faster-rcnn.pytorch's ``_affine_theta``).

    Parameters
    ----------
    rois : (R, 5) float
        Rows ``[batch_index, x1, y1, x2, y2]`` in input-image pixels.
    spatial_scale : float
        Feature pixels per image pixel (1 / stride).
    height, width : int
        Feature map size H, W.

    Returns
    -------
    (R, 2, 3) float, the dtype of ``rois``
    """
    xp = get_array_module(rois)
    x1, y1, x2, y2 = (rois[:, k] * spatial_scale for k in range(1, 5))
    theta = xp.zeros((rois.shape[0], 2, 3), dtype=rois.dtype)
    theta[:, 0, 0] = (x2 - x1) / width
    theta[:, 0, 2] = (x1 + x2) / width - 1
    theta[:, 1, 1] = (y2 - y1) / height
    theta[:, 1, 2] = (y1 + y2) / height - 1
    return theta


def affine_grid(theta, grid_h, grid_w, height, width):
    """Source pixel coordinates of a ``grid_h x grid_w`` output grid.

    Output pixel (i, j) sits at the normalised centre
    ``x_t = (2 j + 1) / grid_w - 1``; ``theta`` maps it to ``x_s``, which
    becomes the pixel coordinate ``((x_s + 1) W - 1) / 2`` (align_corners
    False: -1 and 1 are the outer edges of the map).

    Returns
    -------
    ys, xs : (R, grid_h, grid_w) float
    """
    xp = get_array_module(theta)
    xt = (2 * xp.arange(grid_w, dtype=theta.dtype) + 1) / grid_w - 1
    yt = (2 * xp.arange(grid_h, dtype=theta.dtype) + 1) / grid_h - 1
    xs = theta[:, 0, 0, None] * xt + theta[:, 0, 2, None]        # (R, GW)
    ys = theta[:, 1, 1, None] * yt + theta[:, 1, 2, None]        # (R, GH)
    xs = ((xs + 1) * width - 1) / 2
    ys = ((ys + 1) * height - 1) / 2
    R = theta.shape[0]
    return (xp.broadcast_to(ys[:, :, None], (R, grid_h, grid_w)),
            xp.broadcast_to(xs[:, None, :], (R, grid_h, grid_w)))


def _taps(batch_index, ys, xs, N, H, W, dtype):
    """The four bilinear taps of every sample, in row-major tap order
    (y0 x0, y0 x1, y1 x0, y1 x1): each a (S,) flat row index into the
    ``(N*H*W, C)`` feature matrix (clipped into the map), its (S,) weight of
    ``dtype`` and its (S,) ``inside`` flag (taps outside the map read zero)."""
    xp = get_array_module(ys)
    b = xp.repeat(batch_index, ys.shape[1] * ys.shape[2])  # R may be 0
    y, x = ys.reshape(-1), xs.reshape(-1)
    y0, x0 = xp.floor(y).astype(np.int64), xp.floor(x).astype(np.int64)
    ly, lx = (y - y0).astype(dtype), (x - x0).astype(dtype)
    taps = []
    for dy_, wy in ((0, 1 - ly), (1, ly)):
        for dx_, wx in ((0, 1 - lx), (1, lx)):
            yy, xx = y0 + dy_, x0 + dx_
            inside = (yy >= 0) & (yy < H) & (xx >= 0) & (xx < W)
            index = (b * H + xp.clip(yy, 0, H - 1)) * W + xp.clip(xx, 0, W - 1)
            taps.append((index, wy * wx, inside))
    return taps


def _sampling_matrix(taps, N, H, W, dtype):
    """The sparse (S, N*H*W) bilinear sampling matrix (scipy, CPU), zero
    padding. Each row holds its inside taps in tap order: the order in
    which ``S @ F`` adds them up, and :func:`_sample_on_device` too."""
    rows = [np.flatnonzero(inside) for _, _, inside in taps]
    cols = [index[inside] for index, _, inside in taps]
    vals = [weight[inside] for _, weight, inside in taps]
    # COO (the four taps of a sample never coincide) converted to CSR
    return scipy.sparse.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(taps[0][0].size, N * H * W), dtype=dtype).tocsr()


def _sample_on_device(taps, flat):
    """``S @ flat`` on CuPy without a sparse library: the samples' taps
    gathered and added in tap order, each product and sum rounded on its
    own (one CuPy kernel each, never fused), which is the arithmetic of
    SciPy's CSR product, bit for bit. cuSPARSE adds a row's entries in an
    order of its own: 1-ulp differences that flip the 2x2 max-pool's
    arg-max between near-equal samples (a flat feature map makes every
    window such a tie) and send the gradient to other features."""
    xp = get_array_module(flat)
    total = None
    for index, weight, inside in taps:
        term = xp.where(inside[:, None], weight[:, None] * flat[index], 0)
        total = term if total is None else total + term
    return total.astype(flat.dtype, copy=False)


def _sample_on_device_backward(taps, dflat, rows):
    """``S.T @ dflat`` on CuPy: every sample's tap products scattered into
    its (up to) four feature rows (``cupyx.scatter_add``, atomics; sample
    by sample, tap by tap, the order of SciPy's CSC product)."""
    xp = get_array_module(dflat)
    index = xp.stack([t[0] for t in taps], axis=1).reshape(-1)          # (S*4,)
    weight = xp.stack([t[1] for t in taps], axis=1)                     # (S, 4)
    inside = xp.stack([t[2] for t in taps], axis=1)
    values = xp.where(inside[:, :, None], weight[:, :, None] * dflat[:, None, :], 0)
    out = xp.zeros((rows, dflat.shape[1]), dtype=dflat.dtype)
    _scatter_add(xp, out, index, values.reshape(-1, dflat.shape[1]).astype(dflat.dtype))
    return out


def _scatter_add(xp, out, index, values):
    """``numpy.add.at(out, index, values)``, on CuPy as cupyx.scatter_add."""
    import cupyx  # only reached with CuPy arrays
    cupyx.scatter_add(out, index, values)


def crop_pool_forward(features, rois, output_size=(7, 7), spatial_scale=1 / 16):
    """Crop pooling forward (bilinear crop to 2 PH x 2 PW, 2x2 max-pool).

    Shapes: N images, C channels, H x W feature map, R RoIs, PH x PW output.

    Parameters
    ----------
    features : (N, C, H, W) float32 or float64
    rois : (R, 5) same dtype as features
        Rows ``[batch_index, x1, y1, x2, y2]`` in input-image pixels.
    output_size : int or (int, int)
        (PH, PW); the sampling grid is (2 PH, 2 PW).
    spatial_scale : float
        Feature pixels per image pixel.

    Returns
    -------
    y : (R, C, PH, PW), the dtype of ``features``
    cache : tuple
    """
    check_float_array(features, "features", ndim=4)
    check_array(rois, "rois", shape=(None, 5))
    if rois.dtype != features.dtype:
        raise TypeError(f"rois must have the dtype of features "
                        f"({features.dtype}), got {rois.dtype}")
    ph, pw = (output_size, output_size) if np.isscalar(output_size) else output_size
    if ph < 1 or pw < 1:
        raise ValueError(f"output_size must be >= 1, got {output_size!r}")
    xp = get_array_module(features)
    if get_array_module(rois) is not xp:
        raise TypeError(f"rois must be a {xp.__name__} array like features "
                        f"(all on one device), got {type(rois).__name__}")
    N, C, H, W = features.shape
    batch_index = rois[:, 0].astype(np.int64)
    if rois.shape[0] and (batch_index.min() < 0 or batch_index.max() >= N):
        raise ValueError(f"rois batch indices must lie in [0, {N}), got "
                         f"{batch_index.min()}..{batch_index.max()}")
    theta = affine_theta(rois, spatial_scale, H, W)
    ys, xs = affine_grid(theta, 2 * ph, 2 * pw, H, W)
    taps = _taps(batch_index, ys, xs, N, H, W, features.dtype)
    flat = features.transpose(0, 2, 3, 1).reshape(N * H * W, C)
    if xp is np:
        S = _sampling_matrix(taps, N, H, W, features.dtype)
        sampled = S @ flat
    else:
        S = taps  # the device path keeps the taps, not a matrix
        sampled = _sample_on_device(taps, flat)
    sampled = sampled.reshape(rois.shape[0], 2 * ph, 2 * pw, C)
    sampled = xp.ascontiguousarray(sampled.transpose(0, 3, 1, 2))
    y, pool_cache = max_pool2d_forward(sampled, kernel_size=2, stride=2)
    return y, (S, features.shape, pool_cache)


def crop_pool_backward(dy, cache):
    """Gradient of :func:`crop_pool_forward` with respect to the features.

    Parameters
    ----------
    dy : (R, C, PH, PW) float
    cache : tuple from :func:`crop_pool_forward`

    Returns
    -------
    dfeatures : (N, C, H, W), the dtype of ``dy``
    """
    S, (N, C, H, W), pool_cache = cache
    dsampled = max_pool2d_backward(dy, pool_cache)        # (R, C, 2PH, 2PW)
    dflat = dsampled.transpose(0, 2, 3, 1).reshape(-1, C)
    xp = get_array_module(dflat)
    if xp is np:
        dfeatures = S.T @ dflat                            # (N*H*W, C)
    else:
        dfeatures = _sample_on_device_backward(S, dflat, N * H * W)
    return xp.ascontiguousarray(
        xp.asarray(dfeatures).reshape(N, H, W, C).transpose(0, 3, 1, 2))
