import numpy as np

from minirpn.detection_losses import head_losses, head_losses_backward, rpn_losses, rpn_losses_backward
from minirpn.nn.gradcheck import gradcheck


def test_rpn_losses_ignore_dont_care_and_normalise_by_sampled_anchors():
    scores = np.zeros((4, 2))
    deltas = np.array([[0.5, 0, 0, 0], [9.0, 9, 9, 9], [0.0, 0, 0, 0], [7.0, 0, 0, 0]])
    labels = np.array([1, 0, 1, -1])
    targets = np.zeros((4, 4))
    cls, box, _ = rpn_losses(scores, deltas, labels, targets, sigma=3.0)
    assert float(cls) == np.log(2)              # three sampled rows, uniform logits
    # only positives regress: row 0 has |d| = 0.5 >= 1/9 -> 0.5 - 0.5/9
    np.testing.assert_allclose(float(box), (0.5 - 0.5 / 9) / 3)


def test_head_box_loss_uses_only_the_true_class_columns():
    R, K = 2, 3
    scores = np.zeros((R, K))
    deltas = np.ones((R, 4 * K)) * 0.5
    labels = np.array([2, 0])
    weights = np.zeros((R, 4 * K))
    weights[0, 8:12] = 1
    cls, box, _ = head_losses(scores, deltas, labels, np.zeros((R, 4 * K)), weights, sigma=1.0)
    np.testing.assert_allclose(float(cls), np.log(3))
    np.testing.assert_allclose(float(box), 4 * 0.5 * 0.25 / R)


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    scores, deltas = rng.normal(size=(6, 2)), rng.normal(size=(6, 4))
    labels, targets = np.array([1, 0, -1, 1, 0, -1]), rng.normal(size=(6, 4))

    def total(scores, deltas):
        c, b, _ = rpn_losses(scores, deltas, labels, targets)
        return float(c) + float(b)

    _, _, cache = rpn_losses(scores, deltas, labels, targets)
    ds, dd = rpn_losses_backward(cache)
    report = gradcheck(total, {"scores": scores, "deltas": deltas}, {"scores": ds, "deltas": dd})
    assert report.passed, report

    K = 3
    cs, bd = rng.normal(size=(4, K)), rng.normal(size=(4, 4 * K))
    hl, ht = np.array([0, 1, 2, 2]), rng.normal(size=(4, 4 * K))
    hw = np.zeros((4, 4 * K))
    for r, c in enumerate(hl):
        if c:
            hw[r, 4 * c:4 * c + 4] = 1

    def head_total(cs, bd):
        c, b, _ = head_losses(cs, bd, hl, ht, hw)
        return float(c) + float(b)

    _, _, cache = head_losses(cs, bd, hl, ht, hw)
    dc, db = head_losses_backward(cache)
    report = gradcheck(head_total, {"cs": cs, "bd": bd}, {"cs": dc, "bd": db})
    assert report.passed, report
