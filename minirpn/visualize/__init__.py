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

Layout, in the order of the course: :mod:`.boxes` (drawing boxes, network
-> original pixels, PNG output, shared checks), :mod:`.iou` (box pairs, the
max-IoU histogram), :mod:`.anchors` (anchors and their labels),
:mod:`.explanation` (one anchor's label and the rule that decided it),
:mod:`.coverage` (how well anchors cover a dataset's boxes), :mod:`.nms`
(which box suppressed which), :mod:`.stages` (objectness, proposals, RoIs,
feature maps, the whole trace), :mod:`.roi_targets` (sampled RoIs, the
weights mask, class-specific boxes), :mod:`.roi_bins` (RoI pool/Align and
crop-pool bins over the feature cells), :mod:`.smooth_l1` (the loss and its
joint), :mod:`.results` (detections, detection grids, loss curves),
:mod:`.pr_curve` (matching and precision-recall) and :mod:`.comparison`
(training runs side by side, staged loss curves).
"""
from .anchors import cell_anchor_indices, plot_anchor_labels, plot_anchors
from .boxes import (GT, IGNORED, NEGATIVE, POSITIVE, class_color, draw_boxes,  # noqa: F401
                    network_to_original, save_figure)
from .comparison import plot_run_comparison, plot_stage_losses
from .coverage import plot_best_iou_histogram, plot_box_shapes, plot_worst_covered
from .explanation import plot_explanation, rule_name
from .iou import plot_iou_pairs, plot_max_iou_histogram
from .nms import nms_suppressors, plot_nms
from .pr_curve import match_image, plot_matches, plot_pr_curve, precision_envelope
from .results import detection_grid, plot_detections, plot_loss_curves
from .results import _smooth  # noqa: F401  (tests check the moving average through here)
from .roi_bins import ROI_METHODS, plot_roi_bins, roi_bin_geometry
from .roi_targets import plot_bbox_mask, plot_class_boxes, plot_roi_sampling
from .smooth_l1 import plot_smooth_l1, smooth_l1_curve
from .stages import plot_feature_maps, plot_objectness, plot_proposals, plot_rois, plot_trace

__all__ = [
    # boxes and IoU
    "draw_boxes", "class_color", "network_to_original", "save_figure",
    "plot_iou_pairs", "plot_max_iou_histogram",
    # anchors, their labels, and why
    "cell_anchor_indices", "plot_anchors", "plot_anchor_labels",
    "plot_explanation", "rule_name",
    "plot_best_iou_histogram", "plot_box_shapes", "plot_worst_covered",
    # RPN, proposals, NMS and the whole trace
    "nms_suppressors", "plot_nms", "plot_objectness", "plot_proposals",
    "plot_rois", "plot_feature_maps", "plot_trace",
    # the detection head
    "plot_roi_sampling", "plot_bbox_mask", "plot_class_boxes",
    "roi_bin_geometry", "plot_roi_bins", "ROI_METHODS",
    "smooth_l1_curve", "plot_smooth_l1",
    # results and training
    "plot_detections", "detection_grid", "plot_loss_curves",
    "match_image", "plot_matches", "precision_envelope", "plot_pr_curve",
    "plot_run_comparison", "plot_stage_losses",
]
