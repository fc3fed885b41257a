"""The plain reference layers: read these first.

Conv2d, RoI Pool and RoI Align written to show the maths, one kernel offset,
RoI, bin or sample at a time, in the input's dtype. They are the definitions
that the fast layers of :mod:`minirpn.nn.functional` are tested to match
(``tests/test_fast_paths.py``, ``tests/test_roi_pool.py``,
``tests/test_roi_align.py``), as CS231n's ``layers.py`` (naive loops) sits
beside ``fast_layers.py``. They are slow: use them to read, step through or
check, not to train.

Each ``x_forward_reference(...)`` returns ``(out, cache)`` and each
``x_backward_reference(dout, cache)`` the gradients, with the arguments of
the fast layer of the same name.

**Conv2d** (CS231n assignment 2, ``conv_forward_naive``). For each kernel
offset (i, j), the (N, C, OH, OW) slice of the zero-padded input that this
tap sees is

    xs(i, j)[n, c, oh, ow] = xpad[n, c, oh*SH + i, ow*SW + j]

and the convolution (a cross-correlation, as in every framework) is a sum of
KH*KW per-pixel linear maps:

    y[n, f]         = b[f] + sum_{i,j,c} w[f, c, i, j] * xs(i, j)[n, c]
    dw[f, c, i, j]  = sum_{n,oh,ow} dy[n, f, oh, ow] * xs(i, j)[n, c, oh, ow]
    dxs(i, j)[n, c] = sum_f w[f, c, i, j] * dy[n, f]   (added onto dxpad)
    db[f]           = sum_{n,oh,ow} dy[n, f, oh, ow]

**RoI Pool** (Fast R-CNN, Girshick 2015, section 2.1) and **RoI Align**
(Mask R-CNN, He et al. 2017, section 3) reproduce torchvision's CPU kernels
(``torchvision/csrc/ops/cpu/roi_pool_kernel.cpp``, ``roi_align_kernel.cpp``
and ``roi_align_common.h``) rule for rule: plain loops over RoIs, bins and
samples, with the channel axis as a numpy vector; the rules are listed in
the docstrings of :mod:`minirpn.nn.roi_pool` and :mod:`minirpn.nn.roi_align`.
"""
import math
from collections import namedtuple

import numpy as np

from .layer_checks import (check_aligned, check_roi_inputs, check_sampling_ratio,
                           check_spatial_scale, check_upstream, int_pair)

__all__ = ["conv2d_forward_reference", "conv2d_backward_reference",
           "roi_pool_forward_reference", "roi_pool_backward_reference",
           "roi_align_forward_reference", "roi_align_backward_reference", "FLT_MAX"]

# torchvision starts every non-empty max at -FLT_MAX, for float64 input too.
FLT_MAX = float(np.finfo(np.float32).max)


# ----------------------------------------------------------------- Conv2d
def _tap(a, i, j, stride, out_size):
    """The strided (N, C, OH, OW) view of a padded array seen by tap (i, j)."""
    (sh, sw), (OH, OW) = stride, out_size
    return a[:, :, i:i + sh * OH:sh, j:j + sw * OW:sw]


def conv2d_forward_reference(x, w, b, stride=1, padding=0):
    """Reference conv2d forward (a loop over the KH*KW kernel offsets); the
    definition :func:`minirpn.nn.conv.conv2d_forward` matches.

    Parameters
    ----------
    x : numpy.ndarray, (N, C, H, W) float32 or float64
    w : numpy.ndarray, (F, C, KH, KW), dtype of x
    b : numpy.ndarray, (F,), dtype of x
    stride : int or (int, int)
        >= 1.
    padding : int or (int, int)
        Zeros on each side of H and W, >= 0.

    Returns
    -------
    y : numpy.ndarray, (N, F, OH, OW), dtype of x
        OH = (H + 2*pad_h - KH) // stride_h + 1, OW likewise.
    cache : tuple
        ``(x, w, stride, padding)`` for :func:`conv2d_backward_reference`.
    """
    stride, padding = int_pair(stride, "stride", 1), int_pair(padding, "padding", 0)
    (sh, sw), (ph, pw) = stride, padding
    F, _, KH, KW = w.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out_size = ((xpad.shape[2] - KH) // sh + 1, (xpad.shape[3] - KW) // sw + 1)
    y = np.zeros((x.shape[0], F) + out_size, dtype=x.dtype)
    for i in range(KH):
        for j in range(KW):
            y += np.einsum("fc,nchw->nfhw", w[:, :, i, j],
                           _tap(xpad, i, j, stride, out_size))
    y += b[:, None, None]
    return y, (x, w, stride, padding)


def conv2d_backward_reference(dy, cache):
    """Reference conv2d backward; the definition
    :func:`minirpn.nn.conv.conv2d_backward` matches.

    Parameters
    ----------
    dy : numpy.ndarray, (N, F, OH, OW), dtype of x
        Upstream gradient.
    cache : tuple
        From :func:`conv2d_forward_reference`.

    Returns
    -------
    dx, dw, db : numpy.ndarray
        Shaped like x (N, C, H, W), w (F, C, KH, KW) and b (F,), dtype of x.
    """
    x, w, stride, padding = cache
    (ph, pw), (H, W) = padding, x.shape[2:]
    KH, KW = w.shape[2:]
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxpad = np.zeros_like(xpad)
    dw = np.zeros_like(w)
    out_size = dy.shape[2:]
    for i in range(KH):
        for j in range(KW):
            dw[:, :, i, j] = np.einsum("nfhw,nchw->fc", dy,
                                       _tap(xpad, i, j, stride, out_size))
            _tap(dxpad, i, j, stride, out_size)[...] += np.einsum(
                "fc,nfhw->nchw", w[:, :, i, j], dy)
    dx = dxpad[:, :, ph:ph + H, pw:pw + W]
    return np.ascontiguousarray(dx), dw, dy.sum(axis=(0, 2, 3))


def _round_half_away(v):
    """C's ``round``: to the nearest integer, halves away from zero (exact)."""
    t = int(v)  # truncates; v - t is exact, unlike floor(v + 0.5)
    return t + (int(math.copysign(1, v)) if abs(v - t) >= 0.5 else 0)


# --------------------------------------------------------------- RoI Pool
def roi_pool_forward_reference(features, rois, output_size=(7, 7), spatial_scale=1 / 16):
    """Reference RoI max pooling (Fast R-CNN, section 2.1; the rules of
    torchvision's ``roi_pool_kernel.cpp``), in slow loops: the definition
    :func:`minirpn.nn.roi_pool.roi_pool_forward` matches, with the same
    arguments.

    Returns
    -------
    y : numpy.ndarray, (R, C, PH, PW), features' dtype
    cache : dict
        For :func:`roi_pool_backward_reference`: ``argmax`` (R, C, PH, PW)
        int32 (flat index ``h * W + w`` of each maximum, -1 for an empty
        bin), ``batch`` (R,) int64, ``features_shape`` and ``dtype``.
    """
    n, c, h, w = check_roi_inputs(features, rois)
    ph_n, pw_n = int_pair(output_size, "output_size", 1)
    T = features.dtype.type  # every float step in the input dtype, as torchvision
    scale = T(check_spatial_scale(spatial_scale))
    y = np.zeros((len(rois), c, ph_n, pw_n), features.dtype)
    argmax = np.full(y.shape, -1, np.int32)  # -1: empty bin, no gradient
    for r, (b, x1, y1, x2, y2) in enumerate(rois):
        fmap = features[int(b)]
        # 1. first quantisation: corners snap to cells (Caffe's round), and the
        #    RoI spans cells start..end inclusive, so +1; malformed ones are 1x1
        start_w, start_h = _round_half_away(x1 * scale), _round_half_away(y1 * scale)
        end_w, end_h = _round_half_away(x2 * scale), _round_half_away(y2 * scale)
        bin_h = T(max(end_h - start_h + 1, 1)) / T(ph_n)
        bin_w = T(max(end_w - start_w + 1, 1)) / T(pw_n)
        for ph in range(ph_n):
            # 2. second quantisation: bin edges floor/ceil outward, then clip
            h0 = min(max(math.floor(T(ph) * bin_h) + start_h, 0), h)
            h1 = min(max(math.ceil(T(ph + 1) * bin_h) + start_h, 0), h)
            for pw in range(pw_n):
                w0 = min(max(math.floor(T(pw) * bin_w) + start_w, 0), w)
                w1 = min(max(math.ceil(T(pw + 1) * bin_w) + start_w, 0), w)
                if h1 <= h0 or w1 <= w0:
                    continue  # empty bin: output 0, argmax -1
                # 3. max over the bin in row-major order; strict > keeps the
                #    first of equal values (torchvision's tie rule)
                best = np.full(c, -FLT_MAX, features.dtype)
                where = np.full(c, -1, np.int32)
                for hh in range(h0, h1):
                    for ww in range(w0, w1):
                        v = fmap[:, hh, ww]
                        better = v > best
                        best[better], where[better] = v[better], hh * w + ww
                y[r, :, ph, pw], argmax[r, :, ph, pw] = best, where
    cache = {"argmax": argmax, "batch": rois[:, 0].astype(np.int64),
             "features_shape": features.shape, "dtype": features.dtype}
    return y, cache


def roi_pool_backward_reference(dy, cache):
    """Reference RoI pool backward: each output's gradient goes to the
    element its maximum came from; the definition
    :func:`minirpn.nn.roi_pool.roi_pool_backward` matches.

    dy (R, C, PH, PW) float32 or float64, the forward output's dtype; cache
    from :func:`roi_pool_forward_reference`. Returns dfeatures (N, C, H, W),
    dy's dtype."""
    argmax, batch = cache["argmax"], cache["batch"]
    check_upstream(dy, argmax.shape, cache["dtype"])
    n, c, h, w = cache["features_shape"]
    dx = np.zeros((n, c, h * w), dy.dtype)
    for r, ch, ph, pw in np.ndindex(*argmax.shape):
        k = argmax[r, ch, ph, pw]
        if k >= 0:
            dx[batch[r], ch, k] += dy[r, ch, ph, pw]
    return dx.reshape(n, c, h, w)


# -------------------------------------------------------------- RoI Align
Geometry = namedtuple("Geometry", "y1 x1 bin_h bin_w grid_h grid_w count")


def _align_geometry(roi, T, scale, pooled, sampling_ratio, aligned):
    """One RoI's start, bin size, samples per bin side and count, in T."""
    offset = T(0.5) if aligned else T(0)  # aligned: cell centres at integer + 0.5
    x1, y1, x2, y2 = (v * scale - offset for v in roi[1:])  # no rounding here
    roi_h, roi_w = y2 - y1, x2 - x1
    if not aligned:
        roi_h, roi_w = max(roi_h, T(1)), max(roi_w, T(1))  # malformed -> 1x1
    bin_h, bin_w = roi_h / T(pooled[0]), roi_w / T(pooled[1])
    # sampling_ratio <= 0: adaptive, about one sample per feature cell
    grid_h = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_h / T(pooled[0])))
    grid_w = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_w / T(pooled[1])))
    return Geometry(y1, x1, bin_h, bin_w, grid_h, grid_w, T(max(grid_h * grid_w, 1)))


def _bilinear_taps(yy, xx, h, w, T):
    """The 4 (row, col, weight) taps of one sample, [] if it lies outside."""
    if not (-1.0 <= yy <= h and -1.0 <= xx <= w):
        return []  # more than a cell outside the map: contributes 0
    yy, xx = max(yy, T(0)), max(xx, T(0))
    y_lo, x_lo = int(yy), int(xx)
    if y_lo >= h - 1:  # on/after the last row: clamp, no interpolation
        y_lo = y_hi = h - 1
        yy = T(y_lo)
    else:
        y_hi = y_lo + 1
    if x_lo >= w - 1:
        x_lo = x_hi = w - 1
        xx = T(x_lo)
    else:
        x_hi = x_lo + 1
    ly, lx = yy - T(y_lo), xx - T(x_lo)
    hy, hx = T(1) - ly, T(1) - lx
    return [(y_lo, x_lo, hy * hx), (y_lo, x_hi, hy * lx),
            (y_hi, x_lo, ly * hx), (y_hi, x_hi, ly * lx)]


def _align_samples(g, T, pooled, h, w):
    """Yield (ph, pw, taps) for every sample point of one RoI's geometry g."""
    for ph in range(pooled[0]):
        for pw in range(pooled[1]):
            for iy in range(g.grid_h):  # centres of a grid_h x grid_w split of the bin
                yy = g.y1 + T(ph) * g.bin_h + T(iy + 0.5) * g.bin_h / T(g.grid_h)
                for ix in range(g.grid_w):
                    xx = g.x1 + T(pw) * g.bin_w + T(ix + 0.5) * g.bin_w / T(g.grid_w)
                    yield ph, pw, _bilinear_taps(yy, xx, h, w, T)


def roi_align_forward_reference(features, rois, output_size=(7, 7), spatial_scale=1 / 16,
                                sampling_ratio=2, aligned=True):
    """Reference RoI Align (Mask R-CNN, section 3; the rules of torchvision's
    ``roi_align_kernel.cpp``), in slow loops: the definition
    :func:`minirpn.nn.roi_align.roi_align_forward` matches, with the same
    arguments.

    Returns
    -------
    y : numpy.ndarray, (R, C, PH, PW), features' dtype
        The mean of each bin's bilinear samples.
    cache : dict
        For :func:`roi_align_backward_reference`: ``rois``, ``params``,
        ``features_shape`` and ``dtype``.
    """
    n, c, h, w = check_roi_inputs(features, rois)
    pooled = int_pair(output_size, "output_size", 1)
    T = features.dtype.type  # every float step in the input dtype, as torchvision
    params = (T, T(check_spatial_scale(spatial_scale)), pooled,
              check_sampling_ratio(sampling_ratio), check_aligned(aligned))
    y = np.zeros((len(rois), c) + pooled, features.dtype)
    for r, roi in enumerate(rois):
        fmap, g = features[int(roi[0])], _align_geometry(roi, *params)
        for ph, pw, taps in _align_samples(g, T, pooled, h, w):
            # add the sample's 4 weighted taps (torchvision's order of sums)
            y[r, :, ph, pw] += sum(weight * fmap[:, row, col] for row, col, weight in taps)
        y[r] /= g.count  # the bin's value is the mean of its samples
    cache = {"rois": rois, "params": params, "features_shape": features.shape,
             "dtype": features.dtype}
    return y, cache


def roi_align_backward_reference(dy, cache):
    """Reference RoI Align backward: each sample hands dy * weight / count
    back to its 4 taps; the definition
    :func:`minirpn.nn.roi_align.roi_align_backward` matches.

    dy (R, C, PH, PW) float32 or float64, the forward output's dtype; cache
    from :func:`roi_align_forward_reference`. Returns dfeatures
    (N, C, H, W), dy's dtype."""
    rois, params = cache["rois"], cache["params"]
    n, c, h, w = cache["features_shape"]
    T, pooled = params[0], params[2]
    check_upstream(dy, (len(rois), c) + pooled, cache["dtype"])
    dx = np.zeros((n, c, h, w), dy.dtype)
    for r, roi in enumerate(rois):
        g = _align_geometry(roi, *params)
        for ph, pw, taps in _align_samples(g, T, pooled, h, w):
            for row, col, weight in taps:
                dx[int(roi[0]), :, row, col] += dy[r, :, ph, pw] * weight / g.count
    return dx
