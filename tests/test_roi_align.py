"""RoI Align: torchvision's rules worked by hand, numba == reference,
gradient checks, bad input."""
import numpy as np
import pytest

from minirpn.nn.reference import roi_align_backward_reference, roi_align_forward_reference
from minirpn.nn.gradcheck import gradcheck
from minirpn.nn.roi_align import roi_align_backward, roi_align_forward

from roi_helpers import F, R, assert_numpy_and_cupy_do_not_mix, random_rois

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-6, atol=1e-12)}


def columns(values, h=4):
    """(1, 1, h, W) map whose column x holds values[x] on every row."""
    return np.tile(np.asarray(values, np.float64), (1, 1, h, 1))


def align(f, box, size, sampling_ratio, aligned, scale=1.0):
    """RoI Align of one box [x1, y1, x2, y2] on image 0; returns y[0, 0]."""
    rois = np.array([[0.0] + list(box)], f.dtype)
    return roi_align_forward(f, rois, size, scale, sampling_ratio, aligned)[0][0, 0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling_ratio", [2, 1, 3, 0, -1])
def test_constant_map_gives_the_constant(rng, dtype, aligned, sampling_ratio):
    f = np.full((2, 3, 7, 7), 3.25, dtype)
    xy = rng.uniform(0, 12, (20, 4))  # scale 0.5: samples inside the 7 x 7 map
    lo, hi = np.minimum(xy[:, :2], xy[:, 2:]), np.maximum(xy[:, :2], xy[:, 2:])
    boxes = np.concatenate([lo, hi + 1], 1)
    rois = np.concatenate([rng.integers(0, 2, (20, 1)), boxes], 1).astype(dtype)
    y, _ = roi_align_forward(f, rois, (3, 2), 0.5, sampling_ratio, aligned)
    np.testing.assert_allclose(y, 3.25, rtol=1e-6)
    assert y.dtype == dtype


@pytest.mark.parametrize("aligned,centres",
                         [(True, [2, 3, 4, 5]), (False, [2.5, 3.5, 4.5, 5.5])])
def test_linear_ramp_gives_bin_centres(aligned, centres):
    # f(y, x) = x: bilinear is exact and the samples are symmetric in a bin;
    # aligned shifts the RoI x 2..6 by half a cell to 1.5..5.5
    f = columns(np.arange(10.0))
    for sr in (1, 2, 3, 0):
        np.testing.assert_allclose(align(f, [2, 1, 6, 2], (1, 4), sr, aligned)[0], centres)


def test_sampling_ratio_1_reads_bin_centres_2_reads_quarter_points():
    # f = x^2, interpolated linearly between columns; RoI 1.5..5.5, bins 1 wide
    f = columns(np.arange(10.0) ** 2)
    np.testing.assert_allclose(align(f, [1.5, 1, 5.5, 2], (1, 4), 1, False)[0], [4, 9, 16, 25])
    # n - 1/4 and n + 1/4: ((n-1)^2 + 3/4 (2n-1) + n^2 + 1/4 (2n+1)) / 2 = n^2 + 1/4
    np.testing.assert_allclose(align(f, [1.5, 1, 5.5, 2], (1, 4), 2, False)[0],
                               [4.25, 9.25, 16.25, 25.25])


def test_adaptive_grid_is_ceil_of_bin_size():
    # RoI x 0..6 in 2 bins of 3 cells: ceil(3) = 3 samples per bin at
    # 0.5, 1.5, 2.5 and 3.5, 4.5, 5.5; f = x^2 interpolated: k^2 + k + 1/2
    f = columns(np.arange(10.0) ** 2)
    for sr in (0, -1):
        np.testing.assert_allclose(align(f, [0, 0, 6, 1], (1, 2), sr, False)[0],
                                   [9.5 / 3, 63.5 / 3])
    # sampling_ratio 2 samples 0.75, 2.25 and 3.75, 5.25 instead
    np.testing.assert_allclose(align(f, [0, 0, 6, 1], (1, 2), 2, False)[0], [3.0, 21.0])


def test_border_rules():
    f = columns([1.0, 2.0, 3.0], h=3)  # f = x + 1 on a 3 x 3 map
    # samples at x = -1.25 (beyond -1: contributes 0) and -0.75 (reads col 0)
    assert align(f, [-1.5, 0.5, -0.5, 1.5], 1, 2, False)[0, 0] == pytest.approx(0.5)
    # x = 2.75 (past W - 1: reads col 2, no interpolation) and 3.25 (beyond W)
    assert align(f, [2.5, 0.5, 3.5, 1.5], 1, 2, False)[0, 0] == pytest.approx(1.5)
    # -1 and W themselves are still inside
    assert align(f, [-1.5, 0.5, -0.5, 1.5], 1, 1, False)[0, 0] == 1.0
    assert align(f, [2.5, 0.5, 3.5, 1.5], 1, 1, False)[0, 0] == 3.0
    # the same along y: rows 3.25 (out) and 2.75 (row 2) of a map f = y + 1
    assert align(f.transpose(0, 1, 3, 2).copy(), [0.5, 2.5, 1.5, 3.5], 1, 2, False)[0, 0] \
        == pytest.approx(1.5)


def test_small_rois_aligned_vs_not():
    f = columns(np.arange(10.0))
    # aligned=False stretches the empty RoI at x = 4 to one cell: 4.25, 4.75
    assert align(f, [4, 1, 4, 1], 1, 2, False)[0, 0] == pytest.approx(4.5)
    # aligned=True keeps it empty: every sample at 4 - 0.5
    assert align(f, [4, 1, 4, 1], 1, 2, True)[0, 0] == pytest.approx(3.5)
    # ... and an adaptive grid of ceil(0) = 0 samples outputs 0
    assert align(f + 1, [4, 1, 4, 1], 1, 0, True)[0, 0] == 0


CASES = [((7, 7), 1 / 16, 2, True), ((3, 5), 1 / 8, 0, True), ((2, 3), 0.37, -1, False),
         ((4, 2), 1 / 8, 1, False), (3, 0.25, 3, True), ((2, 2), 1 / 16, 0, False)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size,scale,sampling_ratio,aligned", CASES)
def test_numba_matches_reference(rng, dtype, size, scale, sampling_ratio, aligned):
    f = rng.standard_normal((3, 4, 9, 13)).astype(dtype)
    rois = random_rois(rng, 30, 3, 13 / scale, dtype, zero_size=True)
    args = (size, scale, sampling_ratio, aligned)
    y, cache = roi_align_forward(f, rois, *args)
    y_ref, cache_ref = roi_align_forward_reference(f, rois, *args)
    np.testing.assert_allclose(y, y_ref, **TOL[dtype])
    assert (y == 0).any() and (y != 0).any()  # off-map RoIs are among the cases
    dy = rng.standard_normal(y.shape).astype(dtype)
    np.testing.assert_allclose(roi_align_backward(dy, cache),
                               roi_align_backward_reference(dy, cache_ref), **TOL[dtype])


@pytest.mark.parametrize("sampling_ratio,aligned",
                         [(2, True), (0, True), (3, False), (-1, False)])
def test_gradcheck_float64(rng, sampling_ratio, aligned):
    f = rng.standard_normal((2, 3, 8, 10))
    rois = np.array([[0, 3.3, 7.9, 70.2, 50.6], [1, -20, -9.5, 30.1, 200],
                     [1, 60, 3, 95, 12], [0, 40.5, 40.5, 40.7, 41.9], [1, 77, 60, 79.5, 63.9]])
    args = ((3, 2), 0.125, sampling_ratio, aligned)
    y, cache = roi_align_forward(f, rois, *args)
    dy = rng.standard_normal(y.shape)
    grads = {"features": roi_align_backward(dy, cache)}
    report = gradcheck(lambda features: roi_align_forward(features, rois, *args)[0],
                       {"features": f}, grads, dy=dy)
    assert report.passed and report.errors["features"] < 1e-6, str(report)
    assert np.abs(grads["features"]).sum() > 0


def test_backward_is_adjoint_of_forward(rng):
    # the layer is linear in the features: <dy, A x> = <A^T dy, x>
    f = rng.standard_normal((2, 5, 11, 7))
    rois = random_rois(rng, 30, 2, 100, np.float64, zero_size=True)
    for sr, aligned in [(2, True), (0, False)]:
        y, cache = roi_align_forward(f, rois, (4, 3), 1 / 8, sr, aligned)
        dy = rng.standard_normal(y.shape)
        np.testing.assert_allclose((dy * y).sum(), (roi_align_backward(dy, cache) * f).sum(),
                                   rtol=1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_follows_input_and_no_rois(dtype):
    f = np.ones((2, 3, 4, 5), dtype)
    y, cache = roi_align_forward(f, np.zeros((0, 5), dtype), (2, 3))
    assert y.shape == (0, 3, 2, 3) and y.dtype == dtype
    dx = roi_align_backward(y, cache)
    assert dx.shape == f.shape and dx.dtype == dtype and not dx.any()
    y, cache = roi_align_forward(f, np.array([[1, 0, 0, 50, 50]], dtype))
    assert y.shape == (1, 3, 7, 7) and y.dtype == dtype
    assert roi_align_backward(y, cache).dtype == dtype


@pytest.mark.parametrize("args,kwargs,error,match", [
    ((F[0], R), {}, ValueError, "features must be 4-D"),
    ((F.astype(np.int64), R), {}, TypeError, "features must be a floating"),
    ((F, R[:, 1:]), {}, ValueError, r"rois must have shape \(\*, 5\)"),
    ((F, R.astype(np.float64)), {}, TypeError, "rois must have the dtype of features"),
    ((F, np.array([[0, 1, 1, 3, 3], [0, 1, np.nan, 3, 3]], np.float32)), {}, ValueError,
     "finite; row 1"),
    ((F, np.array([[2, 1, 1, 3, 3]], np.float32)), {}, ValueError, r"\[0, 2\); row 0"),
    ((F, R), {"output_size": (0, 2)}, ValueError, "output_size must be >= 1"),
    ((F, R), {"output_size": True}, TypeError, "output_size"),
    ((F, R), {"spatial_scale": 0.0}, ValueError, "spatial_scale"),
    ((F, R), {"sampling_ratio": 2.0}, TypeError, "sampling_ratio must be an int"),
    ((F, R), {"sampling_ratio": True}, TypeError, "sampling_ratio"),
    ((F, R), {"aligned": 1}, TypeError, "aligned must be a bool"),
    ((F, np.array([[0, 0, 0, 1e9, 3]], np.float32)), {"sampling_ratio": 0}, ValueError,
     "rois row 0 needs a"),
])
def test_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        roi_align_forward(*args, **kwargs)


def test_bad_upstream_gradient():
    y, cache = roi_align_forward(F, R, 2)
    with pytest.raises(ValueError, match=r"dy must have shape \(1, 3, 2, 2\)"):
        roi_align_backward(y[..., :1], cache)
    with pytest.raises(TypeError, match="dy must have the dtype of the forward output"):
        roi_align_backward(y.astype(np.float64), cache)


def test_numpy_and_cupy_arrays_do_not_mix():
    # All-CuPy inputs run the GPU kernels (tests/test_cuda_sim.py, tests/gpu/);
    # a mix is refused up front, naming the host array.
    assert_numpy_and_cupy_do_not_mix(roi_align_forward, roi_align_backward)
