"""The region proposal network's head (Ren et al. 2015, section 3.1).

A 3x3 conv with ReLU slides over the feature map; two sibling 1x1 convs give,
at every cell, 2 scores (background, foreground) and 4 box deltas for each of
the A anchors. The outputs are reshaped so that row ``i`` lines up with
anchor ``i`` of :func:`minirpn.anchors.grid_anchors`, whose order is
(H, W, A): the conv channels are laid out anchor-major, channel
``2 a + k`` for score ``k`` of anchor ``a`` and ``4 a + j`` for delta ``j``.
A mismatch here is a classic silent bug, and it has its own test.
"""
from dataclasses import dataclass

import numpy as np

from .backend import get_array_module
from .nn import Conv2d, Module, ReLU

__all__ = ["RPNHead", "RPNOutputs", "foreground_probability"]


@dataclass
class RPNOutputs:
    """The RPN's outputs for a batch of N images, A anchors per image.

    Attributes
    ----------
    scores : (N, A, 2) float
        (background, foreground) logits, row i for anchor i.
    fg_probs : (N, A) float
        Their softmax: P(foreground).
    deltas : (N, A, 4) float
        Predicted (t_x, t_y, t_w, t_h).
    anchors : (A, 4) float
        The anchors the rows line up with.
    feature_size : (int, int)
        (H, W) of the feature map, whose cells give the A = H*W*k anchors.
    """
    scores: object
    fg_probs: object
    deltas: object
    anchors: object
    feature_size: tuple


def _to_rows(x, per_anchor):
    """(N, A*k, H, W) -> (N, H*W*A, k): row (y*W + x)*A + a."""
    N, AK, H, W = x.shape
    A = AK // per_anchor
    return x.reshape(N, A, per_anchor, H, W).transpose(0, 3, 4, 1, 2) \
            .reshape(N, H * W * A, per_anchor)


def _from_rows(rows, shape):
    """Inverse of :func:`_to_rows`: (N, H*W*A, k) -> (N, A*k, H, W)."""
    N, AK, H, W = shape
    k = rows.shape[2]
    xp = get_array_module(rows)
    out = rows.reshape(N, H, W, AK // k, k).transpose(0, 3, 4, 1, 2)
    return xp.ascontiguousarray(out).reshape(shape)


def foreground_probability(scores):
    """Softmax over the two scores of each anchor; returns P(foreground).

    Parameters
    ----------
    scores : (..., 2) float
        (background, foreground) logits.

    Returns
    -------
    (...,) float, the dtype of ``scores``
    """
    xp = get_array_module(scores)
    # p_fg = e^f / (e^b + e^f) = 1 / (1 + e^(b - f)), stable for any sign.
    d = scores[..., 0] - scores[..., 1]
    e = xp.exp(-xp.abs(d))
    return xp.where(d <= 0, 1 / (1 + e), e / (1 + e)).astype(scores.dtype)


class RPNHead(Module):
    """3x3 conv + ReLU, then 1x1 convs to 2A scores and 4A deltas.

    Parameters
    ----------
    in_channels : int
        Channels C of the backbone's features.
    channels : int
        Width of the 3x3 conv (512 in the paper).
    num_anchors : int
        A, anchors per feature cell.
    rng : numpy.random.Generator, optional
    dtype : str

    Forward: features (N, C, H, W) -> scores (N, H*W*A, 2), deltas (N, H*W*A, 4).
    """

    def __init__(self, in_channels, channels, num_anchors, rng=None,
                 dtype="float32"):
        super().__init__()
        rng = rng if rng is not None else np.random.default_rng(0)
        self.num_anchors = num_anchors
        self.conv = self.add_module("conv", Conv2d(
            in_channels, channels, 3, padding=1, rng=rng, dtype=dtype))
        self.relu = self.add_module("relu", ReLU())
        # The paper initialises the new layers from N(0, 0.01^2).
        self.cls = self.add_module("cls", Conv2d(
            channels, 2 * num_anchors, 1, std=0.01, rng=rng, dtype=dtype))
        self.bbox = self.add_module("bbox", Conv2d(
            channels, 4 * num_anchors, 1, std=0.01, rng=rng, dtype=dtype))

    def forward(self, features):
        hidden = self.relu(self.conv(features))
        scores, deltas = self.cls(hidden), self.bbox(hidden)
        self._cache = (scores.shape, deltas.shape)
        return _to_rows(scores, 2), _to_rows(deltas, 4)

    def backward(self, dscores, ddeltas):
        """dscores (N, H*W*A, 2), ddeltas (N, H*W*A, 4) -> dfeatures (N, C, H, W)."""
        score_shape, delta_shape = self._last_cache()
        dhidden = self.cls.backward(_from_rows(dscores, score_shape))
        dhidden += self.bbox.backward(_from_rows(ddeltas, delta_shape))
        return self.conv.backward(self.relu.backward(dhidden))
