"""Pictures of the pipeline for notebooks, examples and debugging (matplotlib).

Figures are :class:`matplotlib.figure.Figure` objects built directly, never
through pyplot: nothing here opens a window or touches pyplot's global
state, any backend (Agg included) works, a notebook shows a returned Figure
as the cell's output, and :func:`save_figure` writes it as a PNG.

Coordinates. Images are (H, W, 3) uint8 in ORIGINAL pixels (``trace.image``
or a dataset image) and every picture but :func:`plot_anchors` is drawn in
original pixels. Detections and targets are already there. Anchors,
proposals and sampled RoIs live in the NETWORK's pixels (the image resized
by seed 001's "Image Pre-Processing"): functions taking them accept
``network_size = (h', w')``, the resized size ``trace["preprocess"]
["image_size"]``, and map boxes back by the per-axis factors (W / w',
H / h') of ``PreprocessedBatch.to_original``. ``network_size=None`` means
the boxes are already in the image's pixels (AnchorLabels carry their own).

Layout: :mod:`.boxes` (drawing boxes, network -> original pixels, PNG output,
shared checks), :mod:`.anchors` (anchors and their labels), :mod:`.stages`
(objectness, proposals, RoIs, feature maps, the whole trace) and
:mod:`.results` (detections, detection grids, loss curves) and
:mod:`.comparison` (training runs side by side, staged loss curves).
"""
from .anchors import cell_anchor_indices, plot_anchor_labels, plot_anchors
from .boxes import (GT, IGNORED, NEGATIVE, POSITIVE, class_color, draw_boxes,
                    network_to_original, save_figure)
from .results import detection_grid, plot_detections, plot_loss_curves
from .results import _smooth  # noqa: F401  (tests check the moving average through here)
from .stages import plot_feature_maps, plot_objectness, plot_proposals, plot_rois, plot_trace

__all__ = ["draw_boxes", "class_color", "network_to_original", "cell_anchor_indices",
           "plot_detections",
           "plot_anchors", "plot_anchor_labels", "plot_objectness", "plot_proposals",
           "plot_rois", "plot_feature_maps", "plot_trace", "plot_loss_curves",
           "detection_grid", "save_figure"]

from .comparison import plot_run_comparison, plot_stage_losses  # noqa: E402

__all__ += ["plot_run_comparison", "plot_stage_losses"]
