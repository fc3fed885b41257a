"""Dense layers: conv2d, ReLU, max-pool, linear, dropout.

Gradient checks in float64 against central differences, hand-worked small
cases, a loop-by-loop reference convolution, dtype rules and bad input.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minirpn.nn.functional import (
    conv2d_forward, conv2d_backward, relu_forward, relu_backward,
    max_pool2d_forward, max_pool2d_backward, linear_forward, linear_backward,
    dropout_forward, dropout_backward)
from minirpn.nn.gradcheck import gradcheck


def conv_loops(x, w, b, stride, padding):
    """Reference convolution, one output pixel at a time."""
    (sh, sw), (ph, pw) = stride, padding
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    OH, OW = (H + 2 * ph - KH) // sh + 1, (W + 2 * pw - KW) // sw + 1
    y = np.zeros((N, F, OH, OW))
    for n, f, i, j in np.ndindex(y.shape):
        patch = xpad[n, :, i * sh:i * sh + KH, j * sw:j * sw + KW]
        y[n, f, i, j] = np.sum(patch * w[f]) + b[f]
    return y


def check_grads(forward, backward, inputs, rng, **kwargs):
    """gradcheck a layer for a random upstream gradient; return the report."""
    y = forward(**inputs)[0]
    dy = rng.standard_normal(y.shape)
    grads = backward(dy, forward(**inputs)[1])
    grads = grads if isinstance(grads, tuple) else (grads,)
    report = gradcheck(lambda **kw: forward(**kw)[0], inputs,
                       dict(zip(inputs, grads)), dy=dy, **kwargs)
    assert report.passed, f"\n{report}"
    return report


# ---------------------------------------------------------------- conv2d

CONV_CASES = [  # x shape, w shape, stride, padding
    ((2, 3, 7, 6), (4, 3, 3, 3), 1, 1),
    ((2, 3, 7, 6), (4, 3, 3, 3), 2, 0),
    ((1, 2, 8, 7), (3, 2, 3, 3), 2, 1),
    ((1, 2, 5, 5), (3, 2, 3, 3), 1, 2),
    ((2, 2, 6, 7), (3, 2, 2, 4), (2, 1), (1, 2)),  # non-square everything
    ((2, 2, 6, 7), (3, 2, 2, 4), 1, (0, 1)),       # non-square, stride 1
    ((2, 4, 5, 6), (3, 4, 1, 1), 1, 0),            # 1x1 fast path
    ((1, 4, 5, 6), (3, 4, 1, 1), 2, 1),            # 1x1 through im2col
    ((1, 1, 4, 4), (2, 1, 4, 4), 1, 0),            # kernel = whole input
]


@pytest.mark.parametrize("xs, ws, stride, padding", CONV_CASES)
def test_conv_matches_loops_and_gradcheck(xs, ws, stride, padding, rng):
    inputs = dict(x=rng.standard_normal(xs), w=rng.standard_normal(ws),
                  b=rng.standard_normal(ws[0]))
    pair = lambda v: v if isinstance(v, tuple) else (v, v)
    y, _ = conv2d_forward(**inputs, stride=stride, padding=padding)
    np.testing.assert_allclose(y, conv_loops(*inputs.values(), pair(stride), pair(padding)),
                               rtol=1e-12, atol=1e-12)
    check_grads(lambda x, w, b: conv2d_forward(x, w, b, stride, padding),
                conv2d_backward, inputs, rng)


def test_conv_hand_worked_3x3_on_4x4():
    # A box filter over 0..15: each output is the sum of a 3x3 block,
    # e.g. 0+1+2+4+5+6+8+9+10 = 45 at the top left.
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w, b = np.ones((1, 1, 3, 3)), np.array([0.5])
    y, cache = conv2d_forward(x, w, b)
    np.testing.assert_array_equal(y[0, 0], [[45.5, 54.5], [81.5, 90.5]])
    dx, dw, db = conv2d_backward(np.ones((1, 1, 2, 2)), cache)
    # dx counts the windows covering each pixel; dw[a, b] sums the 2x2
    # block of x at (a, b), e.g. 0 + 1 + 4 + 5 = 10.
    np.testing.assert_array_equal(dx[0, 0], [[1, 2, 2, 1], [2, 4, 4, 2],
                                             [2, 4, 4, 2], [1, 2, 2, 1]])
    np.testing.assert_array_equal(dw[0, 0], [[10, 14, 18], [26, 30, 34],
                                             [42, 46, 50]])
    np.testing.assert_array_equal(db, [4.0])


def test_conv_hand_worked_stride2_pad1():
    # Centre tap only (weight 2): output (i, j) reads padded pixel
    # (2i + 1, 2j + 1) = input pixel (2i, 2j), so y = 2 * x[::2, ::2].
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.zeros((1, 1, 3, 3))
    w[0, 0, 1, 1] = 2.0
    y, _ = conv2d_forward(x, w, np.zeros(1), stride=2, padding=1)
    np.testing.assert_array_equal(y[0, 0], [[0, 4], [16, 20]])


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 3), f=st.integers(1, 3),
       h=st.integers(3, 8), w=st.integers(3, 8), kh=st.integers(1, 3),
       kw=st.integers(1, 3), s=st.integers(1, 3), p=st.integers(0, 2),
       seed=st.integers(0, 2**16))
def test_conv_backward_is_adjoint(n, c, f, h, w, kh, kw, s, p, seed):
    # y - b is linear in x and in w, so <dy, y - b> = <dx, x> = <dw, w>.
    rng = np.random.default_rng(seed)
    x, wt = rng.standard_normal((n, c, h, w)), rng.standard_normal((f, c, kh, kw))
    b = rng.standard_normal(f)
    y, cache = conv2d_forward(x, wt, b, s, p)
    np.testing.assert_allclose(y, conv_loops(x, wt, b, (s, s), (p, p)), atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = conv2d_backward(dy, cache)
    inner = np.sum(dy * (y - b[:, None, None]))
    np.testing.assert_allclose([np.sum(dx * x), np.sum(dw * wt)], [inner, inner],
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(db, dy.sum(axis=(0, 2, 3)))


@pytest.mark.parametrize("ws, stride, padding", [((4, 3, 3, 3), 1, 1),
                                                 ((4, 3, 1, 1), 1, 0)])
def test_conv_float32_stays_float32(ws, stride, padding, rng):
    x = rng.standard_normal((2, 3, 6, 5), dtype=np.float32)
    w = rng.standard_normal(ws, dtype=np.float32)
    b = rng.standard_normal(ws[0], dtype=np.float32)
    y, cache = conv2d_forward(x, w, b, stride, padding)
    assert y.dtype == np.float32 and y.flags.c_contiguous
    grads = conv2d_backward(np.ones_like(y), cache)
    assert [g.dtype for g in grads] == [np.float32] * 3
    assert [g.shape for g in grads] == [x.shape, w.shape, b.shape]
    ref = conv_loops(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                     (stride, stride), (padding, padding))
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def conv_args(rng, **override):
    args = dict(x=rng.standard_normal((1, 3, 5, 5)), w=rng.standard_normal((2, 3, 3, 3)),
                b=np.zeros(2), stride=1, padding=0)
    args.update(override)
    return args


@pytest.mark.parametrize("override, error, words", [
    (dict(x=np.zeros((3, 5, 5))), ValueError, ["x", "(N, C, H, W)", "(3, 5, 5)"]),
    (dict(x=[[[[1.0]]]]), TypeError, ["x", "list"]),
    (dict(x=np.zeros((1, 3, 5, 5), dtype=np.int64)), TypeError, ["x", "int64"]),
    (dict(w=np.zeros((2, 4, 3, 3))), ValueError, ["w", "(F, 3, KH, KW)", "(2, 4, 3, 3)"]),
    (dict(w=np.zeros((2, 3, 3))), ValueError, ["w", "(F, C, KH, KW)", "(2, 3, 3)"]),
    (dict(w=np.zeros((2, 3, 3, 3), np.float32)), TypeError, ["w", "float64", "float32"]),
    (dict(b=np.zeros(3)), ValueError, ["b", "(2,)", "(3,)"]),
    (dict(b=np.zeros((2, 1))), ValueError, ["b", "(2,)", "(2, 1)"]),
    (dict(b=np.zeros(2, np.float32)), TypeError, ["b", "float64", "float32"]),
    (dict(padding=-1), ValueError, ["padding", ">= 0", "-1"]),
    (dict(stride=0), ValueError, ["stride", ">= 1", "0"]),
    (dict(stride=1.5), TypeError, ["stride", "1.5"]),
    (dict(w=np.zeros((2, 3, 6, 3))), ValueError, ["kernel", "(6, 3)", "(5, 5)"]),
    (dict(w=np.zeros((2, 3, 8, 8)), padding=1), ValueError, ["kernel", "(8, 8)", "(7, 7)"]),
])
def test_conv_bad_input(override, error, words, rng):
    with pytest.raises(error) as info:
        conv2d_forward(**conv_args(rng, **override))
    for word in words:
        assert word in str(info.value)


def test_conv_backward_rejects_wrong_dy(rng):
    y, cache = conv2d_forward(**conv_args(rng))
    with pytest.raises(ValueError, match=r"dy must have shape \(1, 2, 3, 3\), got \(1, 2, 3, 4\)"):
        conv2d_backward(np.zeros((1, 2, 3, 4)), cache)
    with pytest.raises(TypeError, match=r"dy must have the dtype of w \(float64\), got float32"):
        conv2d_backward(y.astype(np.float32), cache)


# ------------------------------------------------------------------ ReLU

def test_relu_values_and_gradient(rng):
    x = np.array([[-2.0, -0.0, 0.0, 3.0]])
    y, cache = relu_forward(x)
    np.testing.assert_array_equal(y, [[0, 0, 0, 3]])
    # The gradient at exactly 0 is 0, as in PyTorch.
    np.testing.assert_array_equal(relu_backward(np.full((1, 4), 5.0), cache), [[0, 0, 0, 5]])
    # Keep entries away from the kink so finite differences are exact.
    x = rng.standard_normal((3, 4, 5))
    x += np.sign(x) * 0.01
    check_grads(relu_forward, relu_backward, dict(x=x), rng)


def test_relu_in_place_overwrites_x_and_keeps_the_gradient(rng):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    expected, _ = relu_forward(x)
    y, cache = relu_forward(x, inplace=True)
    assert y is x and cache is x  # no new array: x now holds max(x, 0)
    np.testing.assert_array_equal(x, expected)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    dx = np.where(expected > 0, dy, 0)
    np.testing.assert_array_equal(relu_backward(dy, cache), dx)
    dx_in_place = relu_backward(dy, cache, inplace=True)
    assert dx_in_place is dy  # no new array: dy now holds dx
    np.testing.assert_array_equal(dy, dx)
    view = rng.standard_normal((4, 6))[:, ::2]  # not contiguous: a new array
    y, cache = relu_forward(view, inplace=True)
    assert y is not view and (view < 0).any() and (y >= 0).all()
    dview = rng.standard_normal((4, 6))[:, ::2]
    before = dview.copy()
    assert relu_backward(dview, cache, inplace=True) is not dview
    np.testing.assert_array_equal(dview, before)


def test_relu_dtype_and_bad_input():
    y, cache = relu_forward(np.ones((2, 3), np.float32))
    assert y.dtype == np.float32
    assert relu_backward(np.ones((2, 3), np.float32), cache).dtype == np.float32
    with pytest.raises(TypeError, match="x must be a floating-point"):
        relu_forward(np.ones(3, dtype=np.int32))
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 3\), got \(3,\)"):
        relu_backward(np.ones(3, np.float32), cache)


# -------------------------------------------------------------- max-pool

def pool_loops(x, k, s):
    """Reference max-pool with the first-arg-max gradient rule."""
    N, C, H, W = x.shape
    OH, OW = (H - k) // s + 1, (W - k) // s + 1
    y, arg = np.zeros((N, C, OH, OW)), np.zeros((N, C, OH, OW, 2), int)
    for n, c, i, j in np.ndindex(N, C, OH, OW):
        win = x[n, c, i * s:i * s + k, j * s:j * s + k]
        a, b = np.unravel_index(np.argmax(win), win.shape)
        y[n, c, i, j], arg[n, c, i, j] = win[a, b], (i * s + a, j * s + b)
    return y, arg


@pytest.mark.parametrize("shape, k, s", [((2, 3, 8, 8), 2, 2), ((1, 2, 7, 9), 2, 2),
                                         ((2, 2, 9, 11), 3, 2), ((1, 2, 6, 5), 3, 1),
                                         ((1, 1, 7, 7), 2, 3)])
def test_max_pool_matches_loops_and_gradcheck(shape, k, s, rng):
    # Distinct values spaced far beyond eps: no ties, so gradcheck is exact.
    x = rng.permutation(np.prod(shape)).reshape(shape) * 0.1
    y, cache = max_pool2d_forward(x, k, s)
    y_ref, arg = pool_loops(x, k, s)
    np.testing.assert_array_equal(y, y_ref)
    dy = rng.standard_normal(y.shape)
    dx_ref = np.zeros(shape)
    for idx in np.ndindex(y.shape):
        dx_ref[idx[0], idx[1], arg[idx][0], arg[idx][1]] += dy[idx]
    np.testing.assert_allclose(max_pool2d_backward(dy, cache), dx_ref, atol=1e-15)
    check_grads(lambda x: max_pool2d_forward(x, k, s), max_pool2d_backward, dict(x=x), rng)


def test_max_pool_ties_go_to_first_arg_max():
    x = np.array([[[[1.0, 1.0, 0.0, 2.0],
                    [1.0, 1.0, 2.0, 1.0],
                    [5.0, 3.0, 3.0, 3.0],
                    [5.0, 5.0, 3.0, 3.0]]]])
    y, cache = max_pool2d_forward(x, 2, 2)
    np.testing.assert_array_equal(y[0, 0], [[1, 2], [5, 3]])
    dx = max_pool2d_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), cache)
    np.testing.assert_array_equal(dx[0, 0], [[1, 0, 0, 2],
                                             [0, 0, 0, 0],
                                             [3, 0, 4, 0],
                                             [0, 0, 0, 0]])


def test_max_pool_overlapping_windows_sum_and_floor_size():
    # 3x3 windows, stride 2, on 6x6: floor((6 - 3) / 2) + 1 = 2 per side; the
    # last row and column are in no window. The 9 at (2, 2) is the max of
    # all four windows, so it collects all four gradients.
    x = np.zeros((1, 1, 6, 6))
    x[0, 0, 2, 2], x[0, 0, 5, 5] = 9.0, 100.0
    y, cache = max_pool2d_forward(x, 3, 2)
    np.testing.assert_array_equal(y[0, 0], [[9, 9], [9, 9]])
    dx = max_pool2d_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), cache)
    expected = np.zeros((6, 6))
    expected[2, 2] = 10.0
    np.testing.assert_array_equal(dx[0, 0], expected)


def test_max_pool_nan_propagates_and_float32():
    x = np.zeros((1, 1, 4, 4), np.float32)
    x[0, 0, 1, 1] = np.nan
    y, cache = max_pool2d_forward(x, 2, 2)
    assert y.dtype == np.float32 and np.isnan(y[0, 0, 0, 0]) and not np.isnan(y[0, 0, 1, 1])
    dx = max_pool2d_backward(np.full_like(y, 2.0), cache)
    assert dx.dtype == np.float32 and dx[0, 0, 1, 1] == 2.0 and dx[0, 0, :2, :2].sum() == 2.0


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(x=np.zeros((4, 4))), ValueError, ["x", "(N, C, H, W)", "(4, 4)"]),
    (dict(x=np.zeros((1, 1, 4, 4), int)), TypeError, ["x", "int"]),
    (dict(kernel_size=0), ValueError, ["kernel_size", ">= 1", "0"]),
    (dict(stride=0), ValueError, ["stride", ">= 1", "0"]),
    (dict(stride=-2), ValueError, ["stride", ">= 1", "-2"]),
    (dict(kernel_size=2.0), TypeError, ["kernel_size", "2.0"]),
    (dict(kernel_size=5), ValueError, ["kernel_size", "(5, 5)", "(4, 4)"]),
])
def test_max_pool_bad_input(kwargs, error, words):
    args = dict(x=np.zeros((1, 1, 4, 4)), kernel_size=2, stride=2)
    args.update(kwargs)
    with pytest.raises(error) as info:
        max_pool2d_forward(**args)
    for word in words:
        assert word in str(info.value)


# ---------------------------------------------------------------- linear

def test_linear_hand_worked_and_gradients(rng):
    x = np.array([[1.0, 2.0]])
    w = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.5]])
    y, cache = linear_forward(x, w, np.array([0.0, 1.0, 2.0]))
    np.testing.assert_array_equal(y, [[5.0, 3.0, 2.0]])
    dx, dw, db = linear_backward(np.array([[1.0, 0.0, 2.0]]), cache)
    np.testing.assert_array_equal(dx, [[-1.0, 3.0]])
    np.testing.assert_array_equal(dw, [[1.0, 0.0, 2.0], [2.0, 0.0, 4.0]])
    np.testing.assert_array_equal(db, [1.0, 0.0, 2.0])
    inputs = dict(x=rng.standard_normal((5, 7)), w=rng.standard_normal((7, 3)),
                  b=rng.standard_normal(3))
    check_grads(linear_forward, linear_backward, inputs, rng)


def test_linear_float32_and_bad_input(rng):
    x, w, b = np.ones((4, 3), np.float32), np.ones((3, 2), np.float32), np.ones(2, np.float32)
    y, cache = linear_forward(x, w, b)
    assert y.dtype == np.float32
    assert all(g.dtype == np.float32 for g in linear_backward(y, cache))
    f32 = np.float32
    bad = [(dict(x=np.ones((4, 3, 1), f32)), ValueError,
            r"x must have shape \(N, D\), got \(4, 3, 1\)"),
           (dict(w=np.ones((4, 2), f32)), ValueError, r"w must have shape \(3, M\).*got \(4, 2\)"),
           (dict(b=np.ones((1, 2), f32)), ValueError, r"b must have shape \(2,\), got \(1, 2\)"),
           (dict(b=np.ones(2)), TypeError, r"b must have the dtype of x \(float32\), got float64"),
           (dict(x=np.ones((4, 3), int)), TypeError, "x must be a floating-point")]
    for override, error, pattern in bad:
        args = dict(x=x, w=w, b=b)
        args.update(override)
        with pytest.raises(error, match=pattern):
            linear_forward(**args)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_backward_adds_dw_into_a_given_array(dtype, rng):
    """add_dw_to: dw is added in place (a module's gradient), not returned new."""
    x = rng.standard_normal((6, 10)).astype(dtype)[:, ::2]   # a strided view
    w, b = rng.standard_normal((5, 3)).astype(dtype), np.zeros(3, dtype)
    y, cache = linear_forward(x, w, b)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = linear_backward(dy, cache)
    grad = np.ones_like(w)
    dx2, dw2, db2 = linear_backward(dy, cache, add_dw_to=grad)
    assert dw2 is grad
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(grad, 1 + dw, rtol=tol, atol=tol)
    np.testing.assert_array_equal(dx2, dx)
    np.testing.assert_array_equal(db2, db)
    with pytest.raises(ValueError, match=r"add_dw_to must have shape \(5, 3\)"):
        linear_backward(dy, cache, add_dw_to=np.ones((3, 5), dtype))


# --------------------------------------------------------------- dropout

def test_dropout_statistics_and_scaling():
    x = np.ones((200, 500), np.float32)
    y, mask = dropout_forward(x, 0.3, np.random.default_rng(1))
    kept = y != 0
    assert y.dtype == np.float32
    assert abs(kept.mean() - 0.7) < 0.01            # 100k draws: sd 0.0015
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    np.testing.assert_array_equal(dropout_backward(x, mask), y)


def test_dropout_seed_reproduces_and_identity_cases(rng):
    x = rng.standard_normal((3, 4))
    y1, _ = dropout_forward(x, 0.5, np.random.default_rng(7))
    y2, _ = dropout_forward(x, 0.5, np.random.default_rng(7))
    np.testing.assert_array_equal(y1, y2)
    for p, train in [(0.5, False), (0.0, True)]:
        y, cache = dropout_forward(x, p, rng, train=train)
        assert y is x and dropout_backward(x, cache) is x


def test_dropout_gradient(rng):
    x = rng.standard_normal((4, 6))
    check_grads(lambda x: dropout_forward(x, 0.4, np.random.default_rng(3)),
                dropout_backward, dict(x=x), rng)


@pytest.mark.parametrize("p, rng_arg, error, pattern", [
    (1.0, None, ValueError, r"p must lie in \[0, 1\), got 1\.0"),
    (-0.1, None, ValueError, r"p must lie in \[0, 1\), got -0\.1"),
    (1.5, None, ValueError, r"p must lie in \[0, 1\), got 1\.5"),
    (float("nan"), None, ValueError, r"p must lie in \[0, 1\), got nan"),
    ("0.5", None, TypeError, "p must be a number"),
    (0.5, 3, TypeError, "rng must be a numpy.random.Generator or None, got int"),
])
def test_dropout_bad_input(p, rng_arg, error, pattern):
    with pytest.raises(error, match=pattern):
        dropout_forward(np.ones(3), p, rng_arg)
    with pytest.raises(TypeError, match="x must be a floating-point"):
        dropout_forward(np.ones(3, int), 0.5, None)
