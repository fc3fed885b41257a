"""RoI max pooling: torchvision's rules worked by hand, numba == reference,
gradient checks, bad input."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minirpn.nn.reference import roi_pool_backward_reference, roi_pool_forward_reference
from minirpn.nn.gradcheck import gradcheck
from minirpn.nn.roi_pool import roi_pool_backward, roi_pool_forward

from roi_helpers import F, R, assert_numpy_and_cupy_do_not_mix, random_rois

DTYPES = [np.float32, np.float64]


def ramp(h, w, dtype=np.float64, c=1):
    """(1, c, h, w) features f = h * W + w (+ 1000 * channel): each bin's max is
    its bottom-right cell and the argmax is the flat index."""
    f = np.arange(h * w, dtype=dtype).reshape(1, 1, h, w)
    return f + 1000 * np.arange(c, dtype=dtype).reshape(1, c, 1, 1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_box_665_at_stride_32_rounds_to_21(dtype):
    # An 800x800 image, stride 32 -> 25x25 map, a 665x665 box. 665/32 =
    # 20.78; a floor gives 20, torchvision rounds to 21, and the RoI
    # covers cells 0..21 inclusive: 22 cells, bins of 22/7 = 3.14 cells.
    f = ramp(25, 25, dtype)
    y, cache = roi_pool_forward(f, np.array([[0, 0, 0, 665, 665]], dtype), 7, 1 / 32)
    starts = [0, 3, 6, 9, 12, 15, 18]  # floor(k * 22/7)
    ends = [4, 7, 10, 13, 16, 19, 22]  # ceil((k + 1) * 22/7): bins overlap
    expect = np.array([[(e_h - 1) * 25 + (e_w - 1) for e_w in ends] for e_h in ends])
    np.testing.assert_array_equal(y[0, 0], expect)
    np.testing.assert_array_equal(cache["argmax"][0, 0], expect)
    assert y[0, 0, 6, 6] == 21 * 25 + 21  # row/col 21 reached: round, not floor
    # a constant map shows the bins' first cells (ties go to the first)
    roi = np.array([[0, 0, 0, 665, 665]], dtype)
    _, cache = roi_pool_forward(np.ones_like(f), roi, 7, 1 / 32)
    np.testing.assert_array_equal(cache["argmax"][0, 0], [[s_h * 25 + s_w for s_w in starts]
                                                          for s_h in starts])


@pytest.mark.parametrize("dtype", DTYPES)
def test_box_640_makes_21_cell_roi_of_3_cell_bins(dtype):
    # 640/32 = 20 exactly: cells 0..20, 21 cells, bins [3k, 3k + 3)
    roi = np.array([[0, 0, 0, 640, 640]], dtype)
    y, _ = roi_pool_forward(ramp(25, 25, dtype), roi, 7, 1 / 32)
    ends = np.arange(3, 22, 3)
    np.testing.assert_array_equal(y[0, 0], (ends[:, None] - 1) * 25 + ends[None, :] - 1)


def test_corners_round_half_away_from_zero():
    # C's round(): 2.5 -> 3, 4.5 -> 5, 0.5 -> 1, 1.5 -> 2 (numpy's banker's
    # rounding would give 2, 4, 0, 2 and another bin)
    y, cache = roi_pool_forward(ramp(6, 8), np.array([[0, 2.5, 0.5, 4.5, 1.5]]), 1, 1.0)
    assert cache["argmax"][0, 0, 0, 0] == 2 * 8 + 5
    # negative halves round away from zero too: -0.5 -> -1, then clip to 0
    roi = np.array([[0, -0.5, -0.5, 0.4, 0.4]])
    y, cache = roi_pool_forward(ramp(6, 8) + 1, roi, (2, 2), 1.0)
    # cells -1..0 split 2 ways: bin 0 is cell -1 (off the map, empty), bin 1 cell 0
    np.testing.assert_array_equal(cache["argmax"][0, 0], [[-1, -1], [-1, 0]])
    np.testing.assert_array_equal(y[0, 0], [[0, 0], [0, 1]])


def test_empty_bins_give_zero_and_no_gradient():
    f = -5 - ramp(4, 4)  # all negative: an empty bin's 0 is not a max
    rois = np.array([[0, 100, 100, 120, 120],   # off the map: all bins empty
                     [0, 2, 2, 5, 5]], float)   # cells 2..5 of a 4-wide map
    y, cache = roi_pool_forward(f, rois, 2, 1.0)
    np.testing.assert_array_equal(y[0], 0)
    np.testing.assert_array_equal(cache["argmax"][0], -1)
    np.testing.assert_array_equal(y[1, 0], [[f[0, 0, 2, 2], 0], [0, 0]])
    dx = roi_pool_backward(np.ones_like(y), cache)
    expect = np.zeros_like(f)
    expect[0, 0, 2, 2] = 1
    np.testing.assert_array_equal(dx, expect)


def test_malformed_roi_is_one_cell():
    # x2 < x1: width max(end - start + 1, 1) = 1, every bin is column start
    y, _ = roi_pool_forward(ramp(5, 6), np.array([[0, 4, 1, 1, 3]], float), (3, 3), 1.0)
    np.testing.assert_array_equal(y[0, 0], np.tile(np.array([[1], [2], [3]]) * 6 + 4, (1, 3)))


def test_overlapping_bins_sum_their_gradients():
    # cells 0..2, two bins of 1.5 cells: [0, 2) and [1, 3) share cell 1
    f = np.array([[[[0.0, 5.0, 1.0]]]])
    y, cache = roi_pool_forward(f, np.array([[0, 0, 0, 2, 0]], float), (1, 2), 1.0)
    np.testing.assert_array_equal(y[0, 0], [[5, 5]])
    dx = roi_pool_backward(np.array([[[[2.0, 3.0]]]]), cache)
    np.testing.assert_array_equal(dx, [[[[0, 5, 0]]]])


def test_ties_first_in_row_major_order():
    f = np.zeros((1, 2, 3, 3))
    f[0, 1, 2, 0] = f[0, 1, 1, 2] = 7  # equal maxima: (1, 2) comes first
    y, cache = roi_pool_forward(f, np.array([[0, 0, 0, 2, 2]], float), 1, 1.0)
    assert cache["argmax"][0, 0, 0, 0] == 0 and cache["argmax"][0, 1, 0, 0] == 5


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size,scale", [((7, 7), 1 / 16), ((3, 5), 1 / 8), (2, 0.37)])
def test_numba_matches_reference(rng, dtype, size, scale):
    f = rng.standard_normal((3, 4, 9, 13)).astype(dtype)
    rois = random_rois(rng, 40, 3, 13 / scale, dtype)
    y, cache = roi_pool_forward(f, rois, size, scale)
    y_ref, cache_ref = roi_pool_forward_reference(f, rois, size, scale)
    np.testing.assert_array_equal(y, y_ref)  # a max is exact
    np.testing.assert_array_equal(cache["argmax"], cache_ref["argmax"])
    assert 0 < (cache["argmax"] < 0).mean() < 0.9  # the cases include empty bins
    dy = rng.standard_normal(y.shape).astype(dtype)
    rtol = 1e-6 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(roi_pool_backward(dy, cache),
                               roi_pool_backward_reference(dy, cache_ref), rtol=rtol)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-40, 140), min_size=4, max_size=4), st.integers(1, 4),
       st.integers(1, 4), st.sampled_from([0.25, 0.5, 1 / 3]))
def test_numba_matches_reference_property(coords, ph, pw, scale):
    f = np.random.default_rng(1).permutation(2 * 7 * 9).reshape(1, 2, 7, 9).astype(np.float32)
    rois = np.array([[0] + coords], np.float32)
    y, cache = roi_pool_forward(f, rois, (ph, pw), scale)
    y_ref, cache_ref = roi_pool_forward_reference(f, rois, (ph, pw), scale)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(cache["argmax"], cache_ref["argmax"])


def test_gradcheck_float64(rng):
    # distinct values 1 apart: a 1e-6 step never changes an argmax
    f = rng.permutation(2 * 3 * 8 * 10).reshape(2, 3, 8, 10).astype(np.float64)
    rois = np.array([[0, 3.3, 7.9, 70.2, 50.6], [1, -20, -9.5, 30.1, 200],
                     [1, 150, 3, 190, 12], [0, 40.5, 40.5, 40.7, 41.9]])
    dy = rng.standard_normal((4, 3, 3, 2))
    _, cache = roi_pool_forward(f, rois, (3, 2), 0.125)
    grads = {"features": roi_pool_backward(dy, cache)}
    report = gradcheck(lambda features: roi_pool_forward(features, rois, (3, 2), 0.125)[0],
                       {"features": f}, grads, dy=dy)
    assert report.passed and report.errors["features"] < 1e-6, str(report)
    assert np.abs(grads["features"]).sum() > 0


def test_backward_is_adjoint_of_forward(rng):
    # y picks entries of x, so <dy, y> = <dx, x> exactly
    f = rng.standard_normal((2, 5, 11, 7))
    rois = random_rois(rng, 30, 2, 100, np.float64)
    y, cache = roi_pool_forward(f, rois, (4, 3), 1 / 8)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose((dy * y).sum(), (roi_pool_backward(dy, cache) * f).sum(),
                               rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_follows_input_and_no_rois(dtype):
    f = np.ones((2, 3, 4, 5), dtype)
    y, cache = roi_pool_forward(f, np.zeros((0, 5), dtype), (2, 3))
    assert y.shape == (0, 3, 2, 3) and y.dtype == dtype
    dx = roi_pool_backward(y, cache)
    assert dx.shape == f.shape and dx.dtype == dtype and not dx.any()
    y, _ = roi_pool_forward(f, np.array([[1, 0, 0, 50, 50]], dtype))
    assert y.shape == (1, 3, 7, 7) and y.dtype == dtype


@pytest.mark.parametrize("args,kwargs,error,match", [
    ((F[0], R), {}, ValueError, "features must be 4-D"),
    ((F.astype(np.int32), R), {}, TypeError, "features must be a floating"),
    ((F.astype(np.float16), R), {}, TypeError, r"features must be a floating-point array \(float32 or float64\)"),
    ((F[:, :, :0], R), {}, ValueError, "H >= 1"),
    ((F, R[:, :4]), {}, ValueError, r"rois must have shape \(\*, 5\)"),
    ((F, R.astype(np.float64)), {}, TypeError, "rois must have the dtype of features"),
    ((F, [[0, 1, 1, 3, 3]]), {}, TypeError, "rois must be an ndarray"),
    ((F, np.array([[0, 1, 1, 3, 3], [0, np.nan, 1, 3, 3]], np.float32)), {}, ValueError,
     "row 1"),
    ((F, np.array([[0, 1, 1, 3, 3], [0, 1, 1, np.inf, 3]], np.float32)), {}, ValueError,
     "finite; row 1"),
    ((F, np.array([[0.5, 1, 1, 3, 3]], np.float32)), {}, ValueError,
     r"integral batch index in \[0, 2\); row 0"),
    ((F, np.array([[0, 1, 1, 3, 3], [2, 1, 1, 3, 3]], np.float32)), {}, ValueError, "row 1"),
    ((F, np.array([[-1, 1, 1, 3, 3]], np.float32)), {}, ValueError, "batch index"),
    ((F, R), {"output_size": 0}, ValueError, "output_size must be >= 1"),
    ((F, R), {"output_size": (3, 0)}, ValueError, "output_size"),
    ((F, R), {"output_size": 2.0}, TypeError, "output_size must be an int or a pair"),
    ((F, R), {"output_size": (1, 2, 3)}, TypeError, "output_size"),
    ((F, R), {"spatial_scale": 0}, ValueError, "spatial_scale must be finite and > 0"),
    ((F, R), {"spatial_scale": -0.5}, ValueError, "spatial_scale"),
    ((F, R), {"spatial_scale": float("nan")}, ValueError, "spatial_scale"),
    ((F, R), {"spatial_scale": "1/16"}, TypeError, "spatial_scale must be a number"),
])
def test_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        roi_pool_forward(*args, **kwargs)


def test_bad_upstream_gradient():
    y, cache = roi_pool_forward(F, R, 2)
    with pytest.raises(ValueError, match=r"dy must have shape \(1, 3, 2, 2\)"):
        roi_pool_backward(y[:, :2], cache)
    with pytest.raises(TypeError, match="dy must have the dtype of the forward output"):
        roi_pool_backward(y.astype(np.float64), cache)


def test_numpy_and_cupy_arrays_do_not_mix():
    # All-CuPy inputs run the GPU kernels (tests/test_cuda_sim.py, tests/gpu/);
    # a mix is refused up front, naming the host array.
    assert_numpy_and_cupy_do_not_mix(roi_pool_forward, roi_pool_backward)
