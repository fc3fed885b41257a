"""Module machinery, layer modules, initialisers and SGD."""
import numpy as np
import pytest

from minirpn.nn import (SGD, Conv2d, Dropout, Flatten, Linear, MaxPool2d,
                        Module, ReLU, Sequential, init)
from minirpn.nn.gradcheck import gradcheck


class Affine(Module):
    """y = x * a + c over (N, D): a test module with a hand-written backward
    that does not depend on the functional layers."""

    def __init__(self, d, dtype=np.float64):
        super().__init__()
        self.add_parameter("a", np.arange(1.0, d + 1, dtype=dtype))
        self.add_parameter("c", np.zeros(d, dtype=dtype))

    def forward(self, x):
        self._cache = x
        return x * self._params["a"] + self._params["c"]

    def backward(self, dout):
        x = self._last_cache()
        self._accumulate(a=(dout * x).sum(axis=0), c=dout.sum(axis=0))
        return dout * self._params["a"]


class Net(Module):
    def __init__(self):
        super().__init__()
        self.add_module("features", Sequential(Affine(3), Affine(3)))
        self.add_module("head", Affine(3))

    def forward(self, x):
        return self._children["head"](self._children["features"](x))

    def backward(self, dout):
        return self._children["features"].backward(self._children["head"].backward(dout))


KEYS = ["features.0.a", "features.0.c", "features.1.a", "features.1.c",
        "head.a", "head.c"]


def test_dotted_keys_and_same_keys_in_gradients():
    net = Net()
    assert list(net.parameters()) == KEYS
    assert list(net.gradients()) == KEYS
    assert [name for name, _ in net.named_children()] == ["features", "head"]


def test_parameters_are_live_arrays():
    net = Net()
    x = np.ones((1, 3))
    before = net(x).copy()
    net.parameters()["head.c"][1] += 5.0       # visible to the module
    assert net(x)[0, 1] == before[0, 1] + 5.0
    assert net.parameters()["head.a"] is net.parameters()["head.a"]
    net.backward(np.ones((1, 3)))
    assert np.all(net.gradients()["head.c"] == 1.0)


def test_backward_accumulates_until_zero_grad():
    net = Net()
    grads = net.gradients()
    x, dy = np.array([[1.0, 2.0, 3.0]]), np.array([[1.0, 1.0, 1.0]])
    net(x)
    net.backward(dy)
    once = {k: g.copy() for k, g in grads.items()}
    net(x)
    net.backward(dy)
    for k in KEYS:
        np.testing.assert_allclose(grads[k], 2 * once[k])
    net.zero_grad()
    assert all(np.all(g == 0) for g in grads.values())
    assert net.gradients()["head.a"] is grads["head.a"]   # zeroed in place


def test_freeze_keeps_input_gradient_but_not_parameter_gradients():
    net = Net()
    x, dy = np.array([[1.0, -2.0, 0.5]]), np.array([[0.3, 1.0, -1.0]])
    net(x)
    dx_free = net.backward(dy)
    net.zero_grad()
    net._children["features"].freeze()
    assert all(m.frozen for m in net._children["features"].modules())
    net(x)
    np.testing.assert_allclose(net.backward(dy), dx_free)
    grads = net.gradients()
    assert all(np.all(grads[k] == 0) for k in KEYS[:4])
    assert np.any(grads["head.a"] != 0)
    assert list(net.parameters(trainable_only=True)) == ["head.a", "head.c"]
    assert list(net.gradients(trainable_only=True)) == ["head.a", "head.c"]
    net.unfreeze()
    assert list(net.parameters(trainable_only=True)) == KEYS


def test_linear_adds_into_its_live_gradient_unless_frozen(rng):
    """Linear.backward adds dw into the live gradient array in place."""
    lin = Linear(5, 3, std=0.5, rng=rng, dtype="float64")
    grads = lin.gradients()
    x, dy = rng.standard_normal((4, 5)), rng.standard_normal((4, 3))
    for _ in range(2):
        lin(x)
        lin.backward(dy)
    assert lin.gradients()["weight"] is grads["weight"]
    np.testing.assert_allclose(grads["weight"], 2 * x.T @ dy, rtol=1e-12)
    np.testing.assert_allclose(grads["bias"], 2 * dy.sum(axis=0), rtol=1e-12)
    lin.zero_grad()
    lin.freeze()
    lin(x)
    np.testing.assert_allclose(lin.backward(dy), dy @ lin.weight.T, rtol=1e-12)
    assert not grads["weight"].any() and not grads["bias"].any()


def test_train_eval_propagate():
    net = Net().eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_backward_before_forward_is_an_error():
    with pytest.raises(RuntimeError, match="before forward"):
        Affine(2).backward(np.ones((1, 2)))


def test_load_parameters_copies_into_live_arrays():
    src, dst = Net(), Net()
    for v in src.parameters().values():
        v += np.random.default_rng(0).standard_normal(v.shape)
    live = dst.parameters()["head.a"]
    dst.load_parameters({k: v.copy() for k, v in src.parameters().items()})
    assert dst.parameters()["head.a"] is live
    for k in KEYS:
        np.testing.assert_array_equal(dst.parameters()[k], src.parameters()[k])


def test_load_parameters_errors_name_the_key():
    net = Net()
    values = {k: v.copy() for k, v in net.parameters().items()}
    with pytest.raises(ValueError, match="head.c"):
        net.load_parameters({k: v for k, v in values.items() if k != "head.c"})
    with pytest.raises(ValueError, match="unknown keys \\['extra'\\]"):
        net.load_parameters({**values, "extra": np.zeros(1)})
    with pytest.raises(ValueError, match="features.1.a must have shape \\(3,\\)"):
        net.load_parameters({**values, "features.1.a": np.zeros(4)})
    with pytest.raises(TypeError, match="head.a must have dtype float64"):
        net.load_parameters({**values, "head.a": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match="unknown keys \\['extra'\\]"):
        net.load_parameters({"extra": np.zeros(1)}, strict=False)
    # every key is checked before any is written: no half-loaded module
    shifted = {k: v + 7 for k, v in values.items()}
    shifted["head.c"] = np.zeros(4)
    with pytest.raises(ValueError, match="head.c"):
        net.load_parameters(shifted)
    np.testing.assert_array_equal(net.parameters()["features.0.a"], [1, 2, 3])
    net.load_parameters({"head.c": np.ones(3)}, strict=False)
    assert np.all(net.parameters()["head.c"] == 1)


def test_astype_and_to_numpy():
    net = Net().astype(np.float32)
    assert all(v.dtype == np.float32 for v in net.parameters().values())
    assert all(v.dtype == np.float32 for v in net.gradients().values())
    assert net.to("numpy") is net
    with pytest.raises(ValueError, match="'torch'"):
        net.to("torch")


# -- layer modules (need the functional layers) --------------------------
def test_sequential_conv_net_gradcheck_through_parameters():
    rng = np.random.default_rng(3)
    # an in-place ReLU after a conv, as in the backbone: the gradients hold
    net = Sequential(Conv2d(2, 3, 3, padding=1, rng=rng, dtype="float64"),
                     ReLU(inplace=True), MaxPool2d(2, 2), Flatten(),
                     Linear(3 * 2 * 2, 4, std=0.5, rng=rng, dtype="float64"))
    assert list(net.parameters()) == ["0.weight", "0.bias", "4.weight", "4.bias"]
    x = rng.standard_normal((2, 2, 4, 4))
    dy = rng.standard_normal((2, 4))
    y = net(x)
    assert y.shape == (2, 4) and y.dtype == np.float64
    dx = net.backward(dy)
    grads = {k: g.copy() for k, g in net.gradients().items()}
    # perturb the LIVE parameters through the parameters() dict
    report = gradcheck(lambda **_: net(x), net.parameters(), grads, dy=dy)
    assert report.passed, str(report)
    report = gradcheck(lambda x: net(x), {"x": x}, {"x": dx}, dy=dy)
    assert report.passed, str(report)


def test_conv_and_linear_shapes_and_init():
    conv = Conv2d(3, 8, 3, stride=2, padding=1, rng=np.random.default_rng(0))
    assert conv.weight.shape == (8, 3, 3, 3) and conv.weight.dtype == np.float32
    assert np.all(conv.bias == 0)
    assert conv(np.zeros((1, 3, 9, 9), np.float32)).shape == (1, 8, 5, 5)
    lin = Linear(10, 4, std=0.01, rng=np.random.default_rng(0))
    assert lin.weight.shape == (10, 4)
    assert lin(np.zeros((2, 10), np.float32)).shape == (2, 4)


def test_dropout_module_eval_is_identity_and_rng_reproduces():
    x = np.ones((50, 40), np.float32)
    drop = Dropout(0.5, rng=np.random.default_rng(1))
    a = drop(x, rng=np.random.default_rng(9))
    b = drop(x, rng=np.random.default_rng(9))
    np.testing.assert_array_equal(a, b)
    assert 0 < np.mean(a == 0) < 1
    np.testing.assert_array_equal(drop.backward(x), a)   # same mask, same scale
    drop.eval()
    np.testing.assert_array_equal(drop(x), x)


# -- init ---------------------------------------------------------------
def test_init_seed_reproduces_and_he_std():
    a = init.normal((3, 4), 0.01, np.random.default_rng(5))
    b = init.normal((3, 4), 0.01, np.random.default_rng(5), dtype="float64")
    assert a.dtype == np.float32 and b.dtype == np.float64
    np.testing.assert_allclose(a, b, rtol=1e-6)
    w = init.he_normal((64, 32, 3, 3), np.random.default_rng(0))
    assert init.fan_in(w.shape) == 288
    assert np.std(w) == pytest.approx(np.sqrt(2 / 288), rel=0.03)
    assert init.fan_in((100, 7)) == 100
    assert np.all(init.zeros((2, 3)) == 0)
    with pytest.raises(ValueError, match="fan_in"):
        init.he_normal((5,))
    with pytest.raises(ValueError, match="std"):
        init.normal((2,), -1.0)


# -- SGD ----------------------------------------------------------------
def _sgd_setup(**kwargs):
    params = {"w": np.array([1.0, -2.0]), "b": np.array([1.0])}
    grads = {"w": np.array([0.5, 0.5]), "b": np.array([0.5])}
    return params, grads, SGD(params, grads, lr=0.1, momentum=0.9,
                              weight_decay=0.01, **kwargs)


def test_sgd_two_hand_computed_steps():
    params, grads, opt = _sgd_setup(no_weight_decay={"b"})
    w = params["w"]
    opt.step()   # v = g + wd p = [0.51, 0.48]; p -= 0.1 v
    np.testing.assert_allclose(w, [0.949, -2.048])
    np.testing.assert_allclose(params["b"], [0.95])        # no decay on b
    opt.step()   # v = 0.9 v + g + wd p = [0.96849, 0.91152]
    np.testing.assert_allclose(w, [0.852151, -2.139152])
    assert params["w"] is w                                   # in place
    opt.lr = 0.0
    opt.step()
    np.testing.assert_allclose(w, [0.852151, -2.139152])
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_one_pass_kernel_matches_the_xp_update_bit_for_bit(dtype):
    """NumPy arrays take optim._sgd_kernel; CuPy arrays the xp operations."""
    from minirpn.nn import optim
    rng = np.random.default_rng(0)
    p = rng.standard_normal((2, 3, 50)).astype(dtype)
    p_xp, v, v_xp = p.copy(), np.zeros_like(p), np.zeros_like(p)
    for decay in (True, False, True):
        g = rng.standard_normal(p.shape).astype(dtype)
        optim._sgd_kernel(p.reshape(-1), g.reshape(-1), v.reshape(-1), dtype(0.1),
                          dtype(0.9), dtype(5e-4), decay)
        optim._sgd_xp(p_xp, g, v_xp, 0.1, 0.9, 5e-4, decay)
        np.testing.assert_array_equal(p, p_xp)
        np.testing.assert_array_equal(v, v_xp)
    assert p.dtype == dtype


def test_sgd_state_round_trip_resumes_exactly():
    params, grads, opt = _sgd_setup()
    opt.step()
    saved = opt.state()
    copy = {k: v.copy() for k, v in params.items()}
    other = SGD(copy, grads, lr=0.5, momentum=0.9, weight_decay=0.01)
    other.load_state(saved)
    assert other.lr == 0.1
    opt.step()
    other.step()
    for k in params:
        np.testing.assert_array_equal(params[k], copy[k])
    with pytest.raises(ValueError, match="velocity"):
        other.load_state({"velocity": {"w": np.zeros(2)}})


def test_sgd_key_mismatch_names_the_key():
    with pytest.raises(ValueError, match="'b'"):
        SGD({"w": np.zeros(2), "b": np.zeros(1)}, {"w": np.zeros(2)}, lr=0.1)
    with pytest.raises(ValueError, match="'x'"):
        SGD({"w": np.zeros(2)}, {"w": np.zeros(2), "x": np.zeros(1)}, lr=0.1)
    with pytest.raises(ValueError, match="'w'"):
        SGD({"w": np.zeros(2)}, {"w": np.zeros(3)}, lr=0.1)


def test_sgd_trains_the_module_through_live_dicts():
    net = Net()
    opt = SGD(net.parameters(trainable_only=True), net.gradients(trainable_only=True),
              lr=0.01, momentum=0.0, weight_decay=0.0)
    x = np.random.default_rng(0).standard_normal((8, 3))
    target = 2.0 * x + 1.0
    losses = []
    for _ in range(50):
        opt.zero_grad()
        y = net(x)
        losses.append(float(((y - target) ** 2).mean()))
        net.backward(2 * (y - target) / y.size)
        opt.step()
    assert losses[-1] < 0.1 * losses[0]
