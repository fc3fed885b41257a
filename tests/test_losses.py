"""Softmax cross-entropy and smooth L1: hand-worked values, gradients, errors."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minirpn.nn.gradcheck import gradcheck
from minirpn.nn.losses import (smooth_l1_backward, smooth_l1_forward,
                               softmax_cross_entropy_backward,
                               softmax_cross_entropy_forward)


# -- softmax cross-entropy ----------------------------------------------
def test_uniform_logits_give_log_k():
    loss, _ = softmax_cross_entropy_forward(np.zeros((3, 5)), np.array([0, 4, 2]))
    assert float(loss) == pytest.approx(math.log(5), abs=1e-12)


def test_hand_worked_row_and_its_gradient():
    # -log(e^3 / (e + e^2 + e^3)) = log(1 + e^-1 + e^-2)
    logits = np.array([[1.0, 2.0, 3.0]])
    loss, cache = softmax_cross_entropy_forward(logits, np.array([2]))
    assert float(loss) == pytest.approx(math.log(1 + math.exp(-1) + math.exp(-2)))
    z = math.exp(1) + math.exp(2) + math.exp(3)
    expected = np.array([[math.exp(1) / z, math.exp(2) / z, math.exp(3) / z - 1]])
    np.testing.assert_allclose(softmax_cross_entropy_backward(1.0, cache), expected)


def test_mean_is_over_rows_not_ignored():
    # Two uniform rows kept, one ignored: the ignored row neither adds to
    # the loss nor to the count; each kept row's gradient is (1/4 - onehot)/2.
    logits = np.array([[0.0] * 4, [9.0, -3.0, 1.0, 2.0], [0.0] * 4])
    loss, cache = softmax_cross_entropy_forward(logits, np.array([0, -1, 3]))
    assert float(loss) == pytest.approx(math.log(4))
    d = softmax_cross_entropy_backward(1.0, cache)
    np.testing.assert_allclose(d[0], [-0.375, 0.125, 0.125, 0.125])
    np.testing.assert_allclose(d[1], 0.0)
    np.testing.assert_allclose(d[2], [0.125, 0.125, 0.125, -0.375])


def test_custom_ignore_index():
    logits = np.zeros((2, 3))
    loss, cache = softmax_cross_entropy_forward(logits, np.array([255, 1]),
                                                ignore_index=255)
    assert float(loss) == pytest.approx(math.log(3))
    assert np.all(softmax_cross_entropy_backward(1.0, cache)[0] == 0)


@pytest.mark.parametrize("n", [0, 3])
def test_all_ignored_gives_zero_loss_and_zero_gradient(n):
    logits = np.arange(4.0 * n).reshape(n, 4)
    loss, cache = softmax_cross_entropy_forward(logits, -np.ones(n, dtype=np.int64))
    assert float(loss) == 0.0
    d = softmax_cross_entropy_backward(1.0, cache)
    assert d.shape == (n, 4) and np.all(d == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_logits_stay_finite(dtype):
    logits = np.array([[1e4, 0.0], [0.0, 1e4], [1e4, 1e4]], dtype=dtype)
    loss, cache = softmax_cross_entropy_forward(logits, np.array([1, 1, 0]))
    # rows: -log softmax = 1e4, 0, log 2
    assert float(loss) == pytest.approx((1e4 + math.log(2)) / 3, rel=1e-6)
    assert np.all(np.isfinite(softmax_cross_entropy_backward(1.0, cache)))


def test_float32_in_float32_out():
    logits = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    loss, cache = softmax_cross_entropy_forward(logits, np.array([0, 1, 2, -1, 0]))
    assert loss.dtype == np.float32 and loss.shape == ()
    # a float64 numpy scalar upstream must not upcast the gradient
    d = softmax_cross_entropy_backward(np.float64(2.0), cache)
    assert d.dtype == np.float32


def test_dout_scales_the_gradient():
    logits = np.random.default_rng(1).standard_normal((4, 3))
    _, cache = softmax_cross_entropy_forward(logits, np.array([0, 2, 1, 1]))
    np.testing.assert_allclose(softmax_cross_entropy_backward(2.5, cache),
                               2.5 * softmax_cross_entropy_backward(1.0, cache))


def test_cross_entropy_gradcheck(rng):
    logits = 3 * rng.standard_normal((7, 5))
    labels = np.array([0, 4, -1, 2, 1, -1, 3])
    _, cache = softmax_cross_entropy_forward(logits, labels)
    grad = softmax_cross_entropy_backward(0.7, cache)
    report = gradcheck(lambda logits: softmax_cross_entropy_forward(logits, labels)[0],
                       {"logits": logits}, {"logits": grad}, dy=np.float64(0.7))
    assert report.errors["logits"] < 1e-6


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_shift_invariance_and_gradient_rows_sum_to_zero(n, k, seed):
    rng = np.random.default_rng(seed)
    logits = 10 * rng.standard_normal((n, k))
    labels = rng.integers(-1, k, size=n)
    loss, cache = softmax_cross_entropy_forward(logits, labels)
    shifted, _ = softmax_cross_entropy_forward(
        logits + rng.standard_normal((n, 1)) * 100, labels)
    assert float(loss) >= 0.0
    assert float(shifted) == pytest.approx(float(loss), rel=1e-9, abs=1e-9)
    np.testing.assert_allclose(softmax_cross_entropy_backward(1.0, cache).sum(axis=1),
                               0.0, atol=1e-12)


@pytest.mark.parametrize("bad, row", [(4, 2), (-2, 2)])
def test_label_out_of_range_names_first_bad_row(bad, row):
    labels = np.array([0, -1, bad, 7])
    with pytest.raises(ValueError, match=f"row {row} is {bad}"):
        softmax_cross_entropy_forward(np.zeros((4, 4)), labels)


def test_cross_entropy_bad_arguments():
    with pytest.raises(TypeError, match="labels must be an integer"):
        softmax_cross_entropy_forward(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="labels must have shape"):
        softmax_cross_entropy_forward(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="logits must be a floating"):
        softmax_cross_entropy_forward(np.zeros((2, 3), dtype=int), np.array([0, 1]))
    with pytest.raises(ValueError, match="logits must be 2-D"):
        softmax_cross_entropy_forward(np.zeros(3), np.array([0]))


# -- smooth L1 ------------------------------------------------------------
def _sl1(d, sigma, weights=None, normalizer=1.0):
    d = np.asarray(d, dtype=np.float64)
    w = np.ones_like(d) if weights is None else np.asarray(weights, dtype=np.float64)
    return smooth_l1_forward(d, np.zeros_like(d), w, sigma=sigma,
                             normalizer=normalizer)


def test_smooth_l1_sigma_one_values():
    # f(0.5) = 0.125 (quadratic), f(+-2) = 1.5 (linear)
    loss, _ = _sl1([[0.5, 2.0, -2.0, 0.0]], 1.0)
    assert float(loss) == pytest.approx(0.125 + 1.5 + 1.5)


def test_smooth_l1_sigma_three_either_side_of_the_joint():
    # joint at |d| = 1/9: just below, 0.5 * 9 * d^2; just above, |d| - 1/18
    below, above = 1 / 9 - 1e-3, 1 / 9 + 1e-3
    assert float(_sl1([below], 3.0)[0]) == pytest.approx(4.5 * below ** 2)
    assert float(_sl1([-above], 3.0)[0]) == pytest.approx(above - 1 / 18)
    # continuous: both branches give 1/18 at the joint
    assert float(_sl1([1 / 9], 3.0)[0]) == pytest.approx(1 / 18)
    _, cache = _sl1([below, -below, above, -above], 3.0)
    np.testing.assert_allclose(smooth_l1_backward(1.0, cache),
                               [9 * below, -9 * below, 1.0, -1.0])


def test_smooth_l1_weights_and_normalizer():
    loss, cache = _sl1([[2.0, 3.0], [0.5, -4.0]], 1.0,
                       weights=[[1.0, 0.0], [2.0, 1.0]], normalizer=4.0)
    # (1.5 * 1 + 0.125 * 2 + 3.5 * 1) / 4
    assert float(loss) == pytest.approx(5.25 / 4)
    np.testing.assert_allclose(smooth_l1_backward(2.0, cache),
                               [[0.5, 0.0], [0.5, -0.5]])


def test_smooth_l1_float32_in_float32_out():
    pred = np.array([[0.05, 1.0]], dtype=np.float32)
    loss, cache = smooth_l1_forward(pred, np.zeros_like(pred), np.ones_like(pred),
                                    sigma=3.0)
    assert loss.dtype == np.float32 and loss.shape == ()
    assert smooth_l1_backward(np.float64(1.0), cache).dtype == np.float32


def test_smooth_l1_gradcheck(rng):
    target = rng.standard_normal((6, 4))
    step = rng.choice([0.03, 0.08, 0.2, 0.9, 1.7], size=(6, 4))
    pred = target + step * rng.choice([-1.0, 1.0], size=(6, 4))
    weights = (rng.random((6, 4)) < 0.6).astype(np.float64)
    fwd = lambda pred: smooth_l1_forward(pred, target, weights, 3.0, 5.0)[0]
    _, cache = smooth_l1_forward(pred, target, weights, 3.0, 5.0)
    report = gradcheck(fwd, {"pred": pred}, {"pred": smooth_l1_backward(1.3, cache)},
                       dy=np.float64(1.3))
    assert report.errors["pred"] < 1e-6


def test_smooth_l1_bad_arguments():
    p = np.zeros((3, 4))
    with pytest.raises(ValueError, match="weights must have shape"):
        smooth_l1_forward(p, p, np.ones(4))
    with pytest.raises(ValueError, match="target must have shape"):
        smooth_l1_forward(p, np.zeros((4, 3)), p)
    with pytest.raises(TypeError, match="weights must have the dtype of pred"):
        smooth_l1_forward(p, p, np.ones((3, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="normalizer"):
        smooth_l1_forward(p, p, p, normalizer=0)
    with pytest.raises(ValueError, match="sigma"):
        smooth_l1_forward(p, p, p, sigma=-1.0)
    with pytest.raises(TypeError, match="pred must be a floating"):
        smooth_l1_forward(np.zeros((3, 4), dtype=int), p, p)


def test_backward_takes_dout_then_cache():
    """x_backward(dout, cache), as every other layer: dout scales the gradient."""
    _, cache = smooth_l1_forward(np.array([0.5, -2.0]), np.zeros(2), np.ones(2))
    np.testing.assert_allclose(smooth_l1_backward(2.0, cache), [1.0, -2.0])
    _, cache = softmax_cross_entropy_forward(np.zeros((2, 3)), np.array([0, -1]))
    np.testing.assert_allclose(softmax_cross_entropy_backward(3.0, cache),
                               3.0 * softmax_cross_entropy_backward(1.0, cache))
