"""The detection network (Fast R-CNN, section 2): crop, two FC layers, two outputs.

Each RoI's features are cropped to a fixed ``P x P`` grid by one of three
methods (``Config.crop_method``):

- ``"roi_pool"``: max over quantised bins (Fast R-CNN; the paper's choice);
- ``"roi_align"``: averages of bilinear samples, no quantisation (Mask R-CNN);
- ``"crop_pool"``: an affine grid plus bilinear sampling, then a 2x2 max-pool
  (tf-faster-rcnn's ``crop_and_resize``, Chen & Gupta 2017; after
  Spatial Transformer Networks, Jaderberg et al. 2015).

The crop is flattened and passed through fc6 and fc7 (ReLU, dropout), then
two siblings: ``C + 1`` class scores and ``4 (C + 1)`` class-specific box
deltas (Fast R-CNN section 2.3: one set of coefficients per class).

Gradients flow into the features only. The RoI coordinates are treated as
constants even though they come from the RPN's deltas: this is the paper's
"approximate joint training" (section 3.2), which calls the exact gradient
through the coordinates "a nontrivial problem".
"""
import numpy as np

from .backend import get_array_module
from .nn import Dropout, Flatten, Linear, Module, ReLU
from .nn import functional as F
from .nn.crop_pool import crop_pool_backward, crop_pool_forward

__all__ = ["RoIHead", "batch_rois", "crop_features", "crop_features_backward"]


def batch_rois(boxes_per_image):
    """Stack per-image (R_i, 4) boxes into (R, 5) rows ``[i, x1, y1, x2, y2]``,
    the layout the crop layers take."""
    xp = get_array_module(boxes_per_image[0])
    return xp.concatenate([
        xp.concatenate([xp.full((len(b), 1), i, dtype=b.dtype), b], axis=1)
        for i, b in enumerate(boxes_per_image)], axis=0)


def crop_features(method, features, rois, output_size, spatial_scale,
                  sampling_ratio=2):
    """Crop (R, C, P, P) features for (R, 5) rois with the chosen method."""
    size = (output_size, output_size)
    if method == "roi_pool":
        return F.roi_pool_forward(features, rois, size, spatial_scale)
    if method == "roi_align":
        return F.roi_align_forward(features, rois, size, spatial_scale,
                                   sampling_ratio=sampling_ratio, aligned=True)
    if method == "crop_pool":
        return crop_pool_forward(features, rois, size, spatial_scale)
    raise ValueError(f"crop method must be 'roi_pool', 'roi_align' or "
                     f"'crop_pool', got {method!r}")


def crop_features_backward(method, dcrops, cache):
    """Gradient of :func:`crop_features` with respect to the features."""
    backward = {"roi_pool": F.roi_pool_backward,
                "roi_align": F.roi_align_backward,
                "crop_pool": crop_pool_backward}[method]
    return backward(dcrops, cache)


class RoIHead(Module):
    """Crop + fc6 + fc7 + class scores + class-specific box deltas.

    Parameters
    ----------
    in_channels : int
        Channels C of the features.
    num_classes : int
        Object classes (background excluded); outputs have C + 1 columns.
    hidden : int
        Width of fc6 and fc7 (4096 in the paper).
    crop_method, output_size, spatial_scale, sampling_ratio
        How RoIs are cropped; see :func:`crop_features`.
    dropout : float
        Drop probability after fc6 and fc7 (training only).
    rng : numpy.random.Generator, optional
    dtype : str

    Forward: features (N, C, H, W), rois (R, 5) ->
    class scores (R, C + 1), box deltas (R, 4 (C + 1)).
    """

    def __init__(self, in_channels, num_classes, hidden=4096,
                 crop_method="roi_pool", output_size=7, spatial_scale=1 / 16,
                 sampling_ratio=2, dropout=0.5, rng=None, dtype="float32"):
        super().__init__()
        rng = rng if rng is not None else np.random.default_rng(0)
        self.crop_method, self.output_size = crop_method, output_size
        self.spatial_scale, self.sampling_ratio = spatial_scale, sampling_ratio
        self.num_classes = num_classes
        flat = in_channels * output_size * output_size
        layers = [("flatten", Flatten()),
                  ("fc6", Linear(flat, hidden, rng=rng, dtype=dtype)),
                  ("relu6", ReLU()), ("drop6", Dropout(dropout, rng)),
                  ("fc7", Linear(hidden, hidden, rng=rng, dtype=dtype)),
                  ("relu7", ReLU()), ("drop7", Dropout(dropout, rng))]
        self.trunk = [self.add_module(name, layer) for name, layer in layers]
        # Paper, section 3.1.3: new layers from N(0, 0.01^2); Fast R-CNN
        # uses 0.001 for the box regressor.
        self.cls_score = self.add_module("cls_score", Linear(
            hidden, num_classes + 1, std=0.01, rng=rng, dtype=dtype))
        self.bbox_pred = self.add_module("bbox_pred", Linear(
            hidden, 4 * (num_classes + 1), std=0.001, rng=rng, dtype=dtype))
        self.last_crops = None

    def crop(self, features, rois):
        """(R, C, P, P) crops of the features, kept in ``last_crops``."""
        crops, crop_cache = crop_features(
            self.crop_method, features, rois, self.output_size,
            self.spatial_scale, self.sampling_ratio)
        self.last_crops = crops
        return crops, crop_cache

    def forward(self, features, rois, rng=None):
        """Crop, then classify: features (N, C, H, W) and rois (R, 5) ->
        class scores (R, C + 1), box deltas (R, 4 (C + 1))."""
        crops, crop_cache = self.crop(features, rois)
        self._cache = crop_cache
        return self.classify(crops, rng)

    def classify(self, crops, rng=None):
        """fc6, fc7 and the two sibling outputs (Fast R-CNN, figure 1) on
        (R, C, P, P) crops: class scores (R, C + 1), box deltas (R, 4 (C + 1)).
        ``rng`` drives dropout while training."""
        x = crops
        for layer in self.trunk:
            x = layer.forward(x, rng) if isinstance(layer, Dropout) else layer(x)
        return self.cls_score(x), self.bbox_pred(x)

    def backward(self, dscores, ddeltas):
        """dscores (R, C+1), ddeltas (R, 4(C+1)) -> dfeatures (N, C, H, W)."""
        crop_cache = self._last_cache()
        dx = self.cls_score.backward(dscores) + self.bbox_pred.backward(ddeltas)
        for layer in reversed(self.trunk):
            dx = layer.backward(dx)
        return crop_features_backward(self.crop_method, dx, crop_cache)
