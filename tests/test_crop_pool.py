import numpy as np
import pytest

from minirpn.nn.crop_pool import affine_grid, affine_theta, crop_pool_backward, crop_pool_forward
from minirpn.nn.gradcheck import gradcheck


def test_theta_of_the_whole_map_is_the_identity():
    rois = np.array([[0, 0, 0, 64, 32]], dtype=np.float64)   # image pixels
    theta = affine_theta(rois, 1 / 8, height=4, width=8)
    np.testing.assert_allclose(theta[0], [[1, 0, 0], [0, 1, 0]])


def test_grid_samples_pixel_centres_of_the_whole_map():
    theta = np.array([[[1.0, 0, 0], [0, 1.0, 0]]])
    ys, xs = affine_grid(theta, 4, 8, height=4, width=8)
    np.testing.assert_allclose(xs[0, 0], np.arange(8))
    np.testing.assert_allclose(ys[0, :, 0], np.arange(4))


def test_crop_of_the_whole_map_is_a_2x2_max_pool():
    feats = np.random.default_rng(0).normal(size=(1, 2, 4, 6))
    rois = np.array([[0, 0, 0, 6, 4]], dtype=np.float64)
    y, _ = crop_pool_forward(feats, rois, output_size=(2, 3), spatial_scale=1.0)
    expected = feats.reshape(1, 2, 2, 2, 3, 2).max(axis=(3, 5))
    np.testing.assert_allclose(y, expected)


def test_bilinear_sampling_of_a_ramp_is_exact():
    # f(y, x) = x: the crop of columns [1, 3] on a 4-wide grid samples the
    # pixel coordinates x1 + (j + 0.5) * 2 / 4 - 0.5 = 0.75, 1.25, 1.75, 2.25
    feats = np.tile(np.arange(6, dtype=np.float64), (1, 1, 4, 1))
    rois = np.array([[0, 1, 0, 3, 4]], dtype=np.float64)
    y, _ = crop_pool_forward(feats, rois, output_size=(1, 2), spatial_scale=1.0)
    # (pixel centres sit at integer coordinates), then the 2x2 max-pool
    np.testing.assert_allclose(y[0, 0, 0], [1.25, 2.25])


def test_outside_the_map_samples_zero():
    feats = np.ones((1, 1, 4, 4))
    rois = np.array([[0, 100, 100, 140, 140]], dtype=np.float64)
    y, _ = crop_pool_forward(feats, rois, output_size=2, spatial_scale=1.0)
    assert np.all(y == 0)


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    feats = rng.normal(size=(2, 3, 6, 7))
    rois = np.array([[0, 1.3, 2.2, 40.1, 30.7], [1, -8.0, 3.0, 20.0, 60.0],
                     [1, 10.5, 10.5, 11.5, 11.5]], dtype=np.float64)
    y, cache = crop_pool_forward(feats, rois, output_size=(2, 2), spatial_scale=1 / 8)
    dy = rng.normal(size=y.shape)
    dx = crop_pool_backward(dy, cache)
    report = gradcheck(lambda features: crop_pool_forward(features, rois, (2, 2), 1 / 8)[0],
                       {"features": feats}, {"features": dx}, dy=dy)
    assert report.passed, report


def test_bad_rois_are_named():
    feats = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError, match="rois"):
        crop_pool_forward(feats, np.zeros((1, 4)), 2, 1.0)
    with pytest.raises(TypeError, match="dtype"):
        crop_pool_forward(feats, np.zeros((1, 5), np.float32), 2, 1.0)
    with pytest.raises(ValueError, match="batch indices"):
        crop_pool_forward(feats, np.array([[1.0, 0, 0, 2, 2]]), 2, 1.0)
