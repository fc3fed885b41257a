"""The RPN head's reshape must line up row i with anchor i of grid_anchors."""
import numpy as np

from minirpn.anchors import base_anchors, grid_anchors
from minirpn.nn.gradcheck import gradcheck
from minirpn.rpn import RPNHead, foreground_probability


def _head(A=3, C=4, width=6, dtype="float64"):
    return RPNHead(C, width, A, rng=np.random.default_rng(0), dtype=dtype)


def test_rows_follow_the_anchor_order_h_w_a():
    A, H, W = 3, 4, 5
    head = _head(A)
    # Make every output channel a constant that encodes (channel) and add a
    # spatial code through the input: zero weights, bias = channel id.
    for conv, per in ((head.cls, 2), (head.bbox, 4)):
        conv.weight[...] = 0
        conv.bias[...] = np.arange(per * A)
    scores, deltas = head.forward(np.zeros((1, 4, H, W)))
    assert scores.shape == (1, H * W * A, 2) and deltas.shape == (1, H * W * A, 4)
    for i in range(H * W * A):
        a = i % A
        np.testing.assert_array_equal(scores[0, i], [2 * a, 2 * a + 1])
        np.testing.assert_array_equal(deltas[0, i], 4 * a + np.arange(4))


def test_row_index_maps_to_the_anchor_at_the_same_cell():
    """A signal at feature cell (y, x) shows up in exactly the rows whose
    anchors are centred on that cell."""
    A, H, W, stride = 9, 3, 4, 16
    head = _head(A, C=1, width=1)
    head.conv.weight[...] = 1.0
    head.conv.bias[...] = 0
    head.cls.weight[...] = 1.0
    head.cls.bias[...] = 0
    feats = np.zeros((1, 1, H, W))
    # 3x3 conv spreads one hot cell to neighbours, so use a 1x1-like kernel.
    head.conv.weight[...] = 0
    head.conv.weight[0, 0, 1, 1] = 1.0
    feats[0, 0, 2, 1] = 1.0
    scores, _ = head.forward(feats)
    hot = np.flatnonzero(scores[0, :, 0] != 0)
    anchors = grid_anchors(H, W, stride, base_anchors(stride))
    centres = (anchors[hot, :2] + anchors[hot, 2:]) / 2
    assert len(hot) == A
    np.testing.assert_allclose(centres, [[1 * stride + stride / 2, 2 * stride + stride / 2]] * A)


def test_foreground_probability_is_a_stable_softmax():
    scores = np.array([[0.0, 0.0], [1000.0, -1000.0], [-1000.0, 1000.0], [1.0, 2.0]])
    p = foreground_probability(scores)
    np.testing.assert_allclose(p, [0.5, 0.0, 1.0, 1 / (1 + np.exp(-1))])
    assert foreground_probability(scores.astype(np.float32)).dtype == np.float32


def test_backward_matches_finite_differences():
    head = _head()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 4, 3, 3))
    ds, dd = rng.normal(size=(2, 27, 2)), rng.normal(size=(2, 27, 4))

    def f(x):
        s, d = head.forward(x)
        return (s * ds).sum() + (d * dd).sum()

    head.forward(x)
    head.zero_grad()
    dx = head.backward(ds, dd)
    report = gradcheck(f, {"x": x}, {"x": dx})
    assert report.passed, report
    params = head.parameters()
    grads = {k: v.copy() for k, v in head.gradients().items()}
    report = gradcheck(lambda **_: f(x), params, grads, max_probes=20)
    assert report.passed, report
