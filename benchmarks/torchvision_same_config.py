"""torchvision's FasterRCNN built like a minirpn Config, for benchmarks only.

The package never imports torch; :mod:`bench_model` does, through this
module, to time the same network in both libraries. The build follows
``torchvision.models.detection.FasterRCNN``'s documented arguments:

- backbone: the same VGG-style stack (3x3 convs + ReLU, 2x2 max-pools) of
  ``config.backbone_channels``; its output width is ``out_channels``;
- anchors: one feature level, sizes ``scale * stride`` and the same
  ratios (torchvision's aspect ratio is h / w, like ours);
- RPN: torchvision's ``RPNHead`` (3x3 conv of the feature width, then 1x1
  class and box convs), the same IoU thresholds, sampler sizes, pre/post
  NMS counts and NMS threshold;
- RoI head: ``MultiScaleRoIAlign`` on the one level (7x7, sampling ratio
  2), ``TwoMLPHead`` of ``config.head_hidden``, the same sampler sizes,
  score and NMS thresholds, and detections per image;
- transform: the same min/max size, mean and std (torchvision takes pixels
  in [0, 1], so they are divided by 255).

Differences that stay: torchvision's head has no dropout and its RPN conv
is as wide as the features (``rpn_channels`` equals the feature width in
both presets anyway).

torchvision is imported plainly when that works. On a machine whose only
torchvision build needs CUDA libraries, set ``MINIRPN_TORCHVISION_SHIM``
to a directory made by the stub-library script that this project's
maintainers use for such machines (it holds ``lib/libc10_cuda.so``,
``lib/libtorch_cuda.so`` and ``site/``); nothing here depends on it.
"""
import ctypes
import os
import sys

__all__ = ["import_torchvision", "build_torchvision_faster_rcnn"]

SHIM_VARIABLE = "MINIRPN_TORCHVISION_SHIM"


def import_torchvision():
    """torchvision, or None (with a one-line reason on stderr)."""
    try:
        import torchvision
        import torchvision.ops  # noqa: F401  (its compiled kernels load here)
        return torchvision
    except (ImportError, OSError, RuntimeError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
    for name in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
        del sys.modules[name]
    shim = os.environ.get(SHIM_VARIABLE)
    if not shim:
        print(f"torchvision not importable ({reason}); set {SHIM_VARIABLE} "
              "to a CPU shim directory to use one", file=sys.stderr)
        return None
    try:
        import torch  # noqa: F401  (its libraries first, then the stubs)
        for name in ("libc10_cuda.so", "libtorch_cuda.so"):
            ctypes.CDLL(os.path.join(shim, "lib", name), mode=ctypes.RTLD_GLOBAL)
        sys.path.insert(0, os.path.join(shim, "site"))
        import torchvision
        import torchvision.ops  # noqa: F401
        return torchvision
    except (ImportError, OSError, RuntimeError) as exc:
        print(f"torchvision not importable through {shim}: {exc}", file=sys.stderr)
        return None


def _backbone(torch, channels):
    layers, c = [], 3
    for spec in channels:
        if spec == "M":
            layers.append(torch.nn.MaxPool2d(2, 2))
        else:
            layers += [torch.nn.Conv2d(c, spec, 3, padding=1), torch.nn.ReLU(inplace=True)]
            c = spec
    net = torch.nn.Sequential(*layers)
    net.out_channels = c
    return net


def build_torchvision_faster_rcnn(config):
    """torchvision FasterRCNN with the hyper-parameters of ``config``."""
    import torch
    tv = import_torchvision()
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.rpn import AnchorGenerator
    backbone = _backbone(torch, config.backbone_channels)
    sizes = tuple(float(s * config.stride) for s in config.anchor_scales)
    anchors = AnchorGenerator(sizes=(sizes,), aspect_ratios=(tuple(config.anchor_ratios),))
    k = config.roi_output_size
    pool = tv.ops.MultiScaleRoIAlign(["0"], output_size=k,
                                     sampling_ratio=config.roi_sampling_ratio)
    c = backbone.out_channels
    return FasterRCNN(
        backbone, num_classes=None,
        min_size=config.target_size, max_size=config.max_size,
        image_mean=[m / 255 for m in config.pixel_mean],
        image_std=[s / 255 for s in config.pixel_std],
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=config.rpn_pre_nms_top_n_train,
        rpn_pre_nms_top_n_test=config.rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_train=config.rpn_post_nms_top_n_train,
        rpn_post_nms_top_n_test=config.rpn_post_nms_top_n_test,
        rpn_nms_thresh=config.rpn_nms_threshold,
        rpn_fg_iou_thresh=config.rpn_positive_iou,
        rpn_bg_iou_thresh=config.rpn_negative_iou,
        rpn_batch_size_per_image=config.rpn_batch_size,
        rpn_positive_fraction=config.rpn_positive_fraction,
        box_roi_pool=pool,
        box_head=TwoMLPHead(c * k * k, config.head_hidden),
        box_predictor=FastRCNNPredictor(config.head_hidden, config.num_classes + 1),
        box_score_thresh=config.score_threshold,
        box_nms_thresh=config.nms_threshold,
        box_detections_per_img=config.detections_per_image,
        box_fg_iou_thresh=config.roi_positive_iou,
        box_bg_iou_thresh=config.roi_negative_iou,
        box_batch_size_per_image=config.roi_batch_size,
        box_positive_fraction=config.roi_positive_fraction,
    )
