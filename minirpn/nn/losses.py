"""The two losses of Faster R-CNN: softmax cross-entropy and smooth L1.

Both the RPN and the detection head are trained with a classification term
(softmax cross-entropy over sampled anchors or RoIs, the ignored ones
labelled -1 and left out, as py-faster-rcnn's ``SoftmaxWithLoss`` with
``ignore_label: -1``) and a box-regression term (smooth L1 on the deltas of
foreground samples only, selected by a weight mask; Ren et al. 2015, eq. 1).

Losses are returned as a 0-d array of the input's dtype and array module
rather than a Python float: turning it into a float forces a device-to-host
copy on the GPU, so callers write ``float(loss)`` only when they want to
print it.

Like every other layer, each backward takes ``(dout, cache)``: ``dout`` is
the upstream gradient of the scalar loss (1.0 when the loss is the
objective itself; ``minirpn.detection_losses`` passes each term's weight).
"""

from ..backend import get_array_module
from ..checks import (check_array, check_float_array, check_positive_number,
                      check_same_dtype, deferrable, first_bad_row)

__all__ = ['softmax_cross_entropy_forward', 'softmax_cross_entropy_backward',
           'smooth_l1_forward', 'smooth_l1_backward']


def _upstream(dout, dtype, xp):
    """The upstream scalar as a 0-d array of ``dtype``: multiplying by a
    numpy float64 scalar would upcast float32 gradients (NEP 50)."""
    return xp.asarray(dout, dtype=dtype)


@deferrable  # pure: repeated only to report a bad label
def softmax_cross_entropy_forward(logits, labels, ignore_index=-1):
    """Mean softmax cross-entropy over the rows that are not ignored.

    N samples (anchors or RoIs), K classes::

        loss = -1/M * sum_{i : labels[i] != ignore_index} log softmax(logits[i])[labels[i]]

    where M is the number of rows not ignored. When every row is ignored
    (or N = 0) the loss is 0 and the gradient is zero: there is nothing to
    learn from, and dividing by M = 0 would give NaN.

    Parameters
    ----------
    logits : (N, K) float32 or float64
        Unnormalised class scores. Must be finite.
    labels : (N,) integer
        Class index in [0, K) per row, or ``ignore_index``.
    ignore_index : int
        Label of rows left out of the loss (default -1, py-faster-rcnn's
        "don't care").

    Returns
    -------
    loss : 0-d array, dtype of ``logits``
        On the array module of ``logits``; ``float(loss)`` for a number.
    cache : tuple
        For :func:`softmax_cross_entropy_backward`.

    Raises
    ------
    TypeError
        If ``logits`` is not a float array or ``labels`` not an integer one.
    ValueError
        On shape mismatch, K = 0, or a label outside [0, K) that is not
        ``ignore_index`` (the first such row is named).
    """
    check_float_array(logits, "logits", ndim=2)
    n, k = logits.shape
    check_array(labels, "labels", shape=(n,))
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be an integer array, got dtype {labels.dtype}")
    if k == 0:
        raise ValueError("logits must have at least one class column, got shape "
                         f"{tuple(logits.shape)}")
    xp = get_array_module(logits, labels)
    valid = labels != ignore_index
    bad = first_bad_row(valid & ((labels < 0) | (labels >= k)))
    if bad is not None:
        raise ValueError(
            f"labels must lie in [0, {k}) or equal ignore_index={ignore_index}; "
            f"row {bad} is {int(labels[bad])}")

    # 1. log-sum-exp with the row max subtracted: exp never overflows, and
    #    the largest shifted logit is exactly 0 so the sum is >= 1.
    shifted = logits - logits.max(axis=1, keepdims=True)
    lse = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    log_probs = shifted - lse
    # 2. pick the log-probability of the true class; ignored rows point at
    #    class 0 and are masked out of the sum.
    safe = xp.where(valid, labels, 0)
    picked = log_probs[xp.arange(n), safe]
    count = valid.sum()
    denominator = xp.maximum(count, 1).astype(logits.dtype)
    # Negated before the sum (exactly the same value) so that no valid row
    # gives +0.0 rather than -0.0.
    loss = (-picked * valid).sum() / denominator
    cache = (xp.exp(log_probs), safe, valid, denominator)
    return xp.asarray(loss, dtype=logits.dtype), cache


def softmax_cross_entropy_backward(dout, cache):
    """Gradient of :func:`softmax_cross_entropy_forward` w.r.t. the logits.

    ``d loss / d logits[i] = dout * (softmax(logits[i]) - onehot(labels[i])) / M``
    for rows not ignored, 0 for ignored rows.

    Parameters
    ----------
    dout : float or 0-d array
        Upstream gradient of the scalar loss (1.0 for the loss itself).
    cache : tuple
        From the forward pass.

    Returns
    -------
    dlogits : (N, K) array, dtype of the logits
    """
    probs, safe, valid, denominator = cache
    xp = get_array_module(probs)
    dlogits = probs.copy()
    dlogits[xp.arange(probs.shape[0]), safe] -= 1
    scale = _upstream(dout, probs.dtype, xp) / denominator
    dlogits *= valid[:, None].astype(probs.dtype) * scale
    return dlogits


def smooth_l1_forward(pred, target, weights, sigma=1.0, normalizer=1.0):
    """Weighted smooth L1 loss in py-faster-rcnn's sigma form.

    With d = pred - target and s = sigma**2 (Girshick 2015, Fast R-CNN
    eq. 3 for sigma = 1; py-faster-rcnn uses sigma = 3 in the RPN)::

        f(d) = 0.5 * s * d**2      if |d| < 1 / s
               |d| - 0.5 / s       otherwise
        loss = sum(weights * f(d)) / normalizer

    ``weights`` selects the foreground samples (and, in the head, the
    columns of the true class); ``normalizer`` is the number of samples the
    loss is averaged over.

    Parameters
    ----------
    pred : array of any shape S, float32 or float64
        Predicted deltas, typically (R, 4).
    target : array of shape S, dtype of ``pred``
        Regression targets.
    weights : array of shape S, dtype of ``pred``
        Per-element weights; same shape required (no broadcasting).
    sigma : float > 0
        Width of the quadratic zone is 1 / sigma**2.
    normalizer : float > 0
        Divides the weighted sum.

    Returns
    -------
    loss : 0-d array, dtype of ``pred``
    cache : tuple
        For :func:`smooth_l1_backward`.
    """
    check_float_array(pred, "pred")
    check_float_array(target, "target", shape=pred.shape)
    check_float_array(weights, "weights", shape=pred.shape)
    check_same_dtype("pred", pred, target=target, weights=weights)
    sigma = check_positive_number(sigma, "sigma")
    normalizer = check_positive_number(normalizer, "normalizer")
    xp = get_array_module(pred, target, weights)
    s = sigma * sigma
    d = pred - target
    abs_d = xp.abs(d)
    quadratic = abs_d < 1.0 / s
    f = xp.where(quadratic, (0.5 * s) * d * d, abs_d - 0.5 / s)
    loss = (weights * f).sum() / normalizer
    cache = (d, quadratic, weights, s, normalizer)
    return xp.asarray(loss, dtype=pred.dtype), cache


def smooth_l1_backward(dout, cache):
    """Gradient of :func:`smooth_l1_forward` w.r.t. ``pred``.

    ``dout * weights * f'(d) / normalizer``, with ``f'(d) = s * d`` inside
    the quadratic zone and ``sign(d)`` outside; the two agree at
    |d| = 1 / s, so the gradient is continuous.

    Parameters
    ----------
    dout : float or 0-d array
        Upstream gradient of the scalar loss (1.0 for the loss itself).
    cache : tuple
        From the forward pass.

    Returns
    -------
    dpred : array of shape S, dtype of ``pred``
        The gradient w.r.t. ``target`` is its negative.
    """
    d, quadratic, weights, s, normalizer = cache
    xp = get_array_module(d)
    grad = xp.where(quadratic, s * d, xp.sign(d))
    scale = _upstream(dout, d.dtype, xp) / d.dtype.type(normalizer)
    return weights * grad * scale
