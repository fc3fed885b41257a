"""The functional layer library: CS231n-style forward/backward pairs.

Each ``x_forward(...)`` returns ``(out, cache)`` and each ``x_backward``
consumes the cache. One concept lives in one file; this module gathers them.
"""
from .conv import conv2d_forward, conv2d_backward
from .activations import relu_forward, relu_backward
from .pooling import max_pool2d_forward, max_pool2d_backward
from .linear import linear_forward, linear_backward
from .dropout import dropout_forward, dropout_backward
from .losses import (softmax_cross_entropy_forward,
                     softmax_cross_entropy_backward,
                     smooth_l1_forward, smooth_l1_backward)
from .roi_pool import roi_pool_forward, roi_pool_backward
from .roi_align import roi_align_forward, roi_align_backward

__all__ = [
    "conv2d_forward",
    "conv2d_backward",
    "relu_forward",
    "relu_backward",
    "max_pool2d_forward",
    "max_pool2d_backward",
    "linear_forward",
    "linear_backward",
    "dropout_forward",
    "dropout_backward",
    "softmax_cross_entropy_forward",
    "softmax_cross_entropy_backward",
    "smooth_l1_forward",
    "smooth_l1_backward",
    "roi_pool_forward",
    "roi_pool_backward",
    "roi_align_forward",
    "roi_align_backward",
]
