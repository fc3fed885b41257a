"""The four losses of Faster R-CNN (Ren et al. 2015, eq. 1; Fast R-CNN 2.3).

- RPN classification: softmax cross-entropy over the sampled anchors; label
  -1 ("don't care") rows are ignored.
- RPN box: smooth L1 with sigma 3 on positive anchors only, divided by the
  number of sampled anchors (the paper's N_cls normalisation, with
  lambda = 1 as in py-faster-rcnn).
- Head classification: softmax cross-entropy over C + 1 classes for every
  sampled RoI (background included: Fast R-CNN section 2.3).
- Head box: smooth L1 with sigma 1 on the true class's four columns of the
  foreground RoIs only (the ``bbox_weights`` mask, py-faster-rcnn's
  ``bbox_inside_weights``), divided by
  the number of sampled RoIs.

Each ``*_losses`` function returns the two losses and a cache; the matching
``*_backward`` returns the gradients with respect to the network outputs.
"""
from .backend import get_array_module
from .nn import functional as F

__all__ = ["LOSS_NAMES", "rpn_losses", "rpn_losses_backward", "head_losses",
           "head_losses_backward"]

#: The four terms of a training step's loss, in the order they are computed.
LOSS_NAMES = ("rpn_cls", "rpn_box", "roi_cls", "roi_box")


def rpn_losses(scores, deltas, labels, bbox_targets, sigma=3.0):
    """RPN classification and box losses.

    Shapes: A anchors (all images of the batch, concatenated).

    Parameters
    ----------
    scores : (A, 2) float
        (background, foreground) logits.
    deltas : (A, 4) float
        Predicted box deltas.
    labels : (A,) int, numpy or the scores' array module
        1 positive, 0 negative, -1 ignored (from anchor labelling). A
        numpy array is uploaded, and the count of sampled anchors (the
        classification loss's normaliser) is then read without a host wait.
    bbox_targets : (A, 4) float
        Regression targets; only rows with label 1 are used.
    sigma : float
        Smooth-L1 sigma (3 for the RPN).

    Returns
    -------
    cls_loss, box_loss : 0-d arrays of the scores' dtype
    cache : tuple
    """
    xp = get_array_module(scores)
    labels = get_array_module(labels).asarray(labels)
    num_sampled = int((labels >= 0).sum())  # where the labels are: numpy, no wait
    labels = xp.asarray(labels, dtype=xp.int64)
    positive = (labels == 1).astype(deltas.dtype)[:, None]
    weights = xp.broadcast_to(positive, deltas.shape)
    return _loss_pair(scores, labels, deltas, bbox_targets, weights, sigma,
                      num_sampled=num_sampled)


def rpn_losses_backward(cache, dcls=1.0, dbox=1.0):
    """Gradients of :func:`rpn_losses`: dscores (A, 2), ddeltas (A, 4)."""
    return _losses_backward(cache, dcls, dbox)


def head_losses(class_scores, box_deltas, labels, bbox_targets, bbox_weights,
                sigma=1.0):
    """Detection-head classification and box losses.

    Shapes: R sampled RoIs, K = C + 1 classes including background.

    Parameters
    ----------
    class_scores : (R, K) float
    box_deltas : (R, 4 K) float
        Class-specific deltas.
    labels : (R,) int
        0 background, 1..C object classes.
    bbox_targets : (R, 4 K) float
        Class-specific targets, normalised by the box stds.
    bbox_weights : (R, 4 K) float
        1 on the true class's four columns of foreground rows, else 0.
    sigma : float
        Smooth-L1 sigma (1 for the head).

    Returns
    -------
    cls_loss, box_loss : 0-d arrays of the scores' dtype
    cache : tuple
    """
    xp = get_array_module(class_scores)
    labels = xp.asarray(labels, dtype=xp.int64)
    return _loss_pair(class_scores, labels, box_deltas, bbox_targets, bbox_weights,
                      sigma, num_sampled=int(labels.shape[0]))


def _loss_pair(scores, labels, deltas, targets, weights, sigma, num_sampled):
    """Both stages' pair: softmax cross-entropy over the labelled rows (-1
    ignored) and smooth L1 on the weighted deltas, divided by the number of
    sampled rows (at least 1)."""
    cls_loss, cls_cache = F.softmax_cross_entropy_forward(scores, labels, ignore_index=-1)
    box_loss, box_cache = F.smooth_l1_forward(
        deltas, targets.astype(deltas.dtype), weights.astype(deltas.dtype),
        sigma=sigma, normalizer=float(max(num_sampled, 1)))
    return cls_loss, box_loss, (cls_cache, box_cache)


def head_losses_backward(cache, dcls=1.0, dbox=1.0):
    """Gradients of :func:`head_losses`: dscores (R, K), ddeltas (R, 4 K)."""
    return _losses_backward(cache, dcls, dbox)


def _losses_backward(cache, dcls, dbox):
    """Both stages' loss pairs are softmax cross-entropy + smooth L1: the
    gradients w.r.t. (scores, deltas), scaled by dcls and dbox."""
    cls_cache, box_cache = cache
    return (F.softmax_cross_entropy_backward(dcls, cls_cache),
            F.smooth_l1_backward(dbox, box_cache))
