"""Pictures of the pipeline for notebooks, examples and debugging (matplotlib).

Figures are :class:`matplotlib.figure.Figure` objects built directly, never
through pyplot: nothing here opens a window or touches pyplot's global
state, any backend (Agg included) works, a notebook shows a returned Figure
as the cell's output, and :func:`save_figure` writes it as a PNG.

Coordinates. Images are (H, W, 3) uint8 in ORIGINAL pixels (``trace.image``
or a dataset image) and every picture but :func:`plot_anchors` is drawn in
original pixels. Detections and targets are already there. Anchors,
proposals and sampled RoIs live in the NETWORK's pixels (the image resized
as py-faster-rcnn's ``prep_im_for_blob`` does it: shorter side to
``target_size``, longer side at most ``max_size``): functions taking them accept
``network_size = (h', w')``, the resized size ``trace["preprocess"]
["image_size"]``, and map boxes back by the per-axis factors (W / w',
H / h') of ``PreprocessedBatch.to_original``. ``network_size=None`` means
the boxes are already in the image's pixels (AnchorLabels carry their own).

Layout: :mod:`.boxes` (drawing boxes, network -> original pixels, PNG output,
shared checks), :mod:`.anchors` (anchors and their labels), :mod:`.explanation`
(one anchor's label and the rule that decided it), :mod:`.coverage` (how
well anchors cover a dataset's boxes), :mod:`.stages`
(objectness, proposals, RoIs, feature maps, the whole trace) and
:mod:`.results` (detections, detection grids, loss curves), :mod:`.iou` (box pairs and the
max-IoU histogram) and :mod:`.nms` (which box suppressed which).
"""
from .anchors import cell_anchor_indices, plot_anchor_labels, plot_anchors
from .coverage import plot_best_iou_histogram, plot_box_shapes, plot_worst_covered
from .explanation import plot_explanation, rule_name
from .boxes import (GT, IGNORED, NEGATIVE, POSITIVE, class_color, draw_boxes,
                    network_to_original, save_figure)
from .iou import plot_iou_pairs, plot_max_iou_histogram
from .nms import nms_suppressors, plot_nms
from .results import detection_grid, plot_detections, plot_loss_curves
from .results import _smooth  # noqa: F401  (tests check the moving average through here)
from .stages import plot_feature_maps, plot_objectness, plot_proposals, plot_rois, plot_trace

__all__ = ["draw_boxes", "class_color", "network_to_original", "cell_anchor_indices",
           "plot_detections",
           "plot_anchors", "plot_anchor_labels", "plot_explanation", "rule_name",
           "plot_objectness", "plot_proposals",
           "plot_rois", "plot_feature_maps", "plot_trace", "plot_loss_curves",
           "detection_grid", "save_figure",
           "plot_iou_pairs", "plot_max_iou_histogram", "nms_suppressors", "plot_nms",
           "plot_best_iou_histogram", "plot_box_shapes", "plot_worst_covered"]

from .roi_bins import ROI_METHODS, plot_roi_bins, roi_bin_geometry  # noqa: E402
__all__ += ["roi_bin_geometry", "plot_roi_bins", "ROI_METHODS"]

from .smooth_l1 import plot_smooth_l1, smooth_l1_curve  # noqa: E402
__all__ += ["smooth_l1_curve", "plot_smooth_l1"]

from .pr_curve import match_image, plot_matches, plot_pr_curve, precision_envelope  # noqa: E402
__all__ += ["match_image", "plot_matches", "precision_envelope", "plot_pr_curve"]

from .roi_targets import plot_bbox_mask, plot_class_boxes, plot_roi_sampling  # noqa: E402
__all__ += ["plot_roi_sampling", "plot_bbox_mask", "plot_class_boxes"]
