"""Every hyper-parameter of the detector, with py-faster-rcnn's defaults.

``Config.paper(num_classes)`` is Faster R-CNN as published (VGG16, stride 16,
600/1000 images, 9 anchors); ``Config.toy(num_classes)`` is a small network
that trains on toy data (128-320 px images, 16-128 px objects) on two CPU
cores. A config is saved as JSON inside every checkpoint.
"""
import dataclasses
import json
from dataclasses import dataclass

from .anchors import num_anchors

__all__ = ["Config", "VGG16_CHANNELS", "TOY_CHANNELS", "feature_stride"]

#: The 13 conv layers of VGG16; "M" is a 2x2 max-pool. The fifth pool is left
#: out, so the feature stride is 2**4 = 16 (the paper's conv5_3 features).
VGG16_CHANNELS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                  512, 512, 512, "M", 512, 512, 512)

#: A small VGG-style stack with stride 8, for 128-320 px images (four convs:
#: the demo trains it from scratch in minutes on two cores).
TOY_CHANNELS = (16, "M", 32, "M", 64, "M", 128)

def feature_stride(channels):
    """Stride of a VGG-style stack: 2 to the number of 2x2 max-pools ("M")."""
    return 2 ** sum(1 for spec in channels if spec == "M")


@dataclass
class Config:
    """Hyper-parameters; every field has py-faster-rcnn's or the paper's default."""

    num_classes: int
    """Number of object classes C; labels are 1..C and 0 is background."""

    # --- preprocessing (Ren et al. 2015, section 3.3; py-faster-rcnn) -------
    target_size: int = 600
    """The shorter image side is resized to this many pixels."""
    max_size: int = 1000
    """...unless the longer side would exceed this; then it is capped."""
    pixel_mean: tuple = (122.7717, 115.9465, 102.9801)
    """Per-channel RGB mean, a fixed configuration value (not per image)."""
    pixel_std: tuple = (1.0, 1.0, 1.0)
    """Per-channel divisor after mean subtraction (1: the paper's Caffe way)."""

    # --- backbone -------------------------------------------------------------
    backbone_channels: tuple = VGG16_CHANNELS
    """Conv widths of the VGG-style backbone; "M" marks a 2x2 max-pool."""

    # --- anchors (Ren et al. 2015, section 3.3: 3 scales x 3 ratios) --------
    anchor_scales: tuple = (8, 16, 32)
    """Anchor sizes as multiples of the stride: 128, 256, 512 px at stride 16."""
    anchor_ratios: tuple = (0.5, 1.0, 2.0)
    """Anchor aspect ratios, height / width."""

    # --- region proposal network ---------------------------------------------
    rpn_channels: int = 512
    """Width of the RPN's 3x3 conv."""
    rpn_positive_iou: float = 0.7
    """Anchors with max IoU >= this are positive (Ren et al. 2015, 3.1.2)."""
    rpn_negative_iou: float = 0.3
    """Anchors with max IoU < this are negative (Ren et al. 2015, 3.1.2)."""
    rpn_batch_size: int = 256
    """Anchors sampled per image for the RPN loss."""
    rpn_positive_fraction: float = 0.5
    """At most this fraction of the sampled anchors are positive."""
    rpn_allowed_border: float = 0.0
    """Anchors crossing the image border by more than this are ignored."""
    rpn_pre_nms_top_n_train: int = 12000
    """Proposals kept before NMS while training."""
    rpn_post_nms_top_n_train: int = 2000
    """Proposals kept after NMS while training."""
    rpn_pre_nms_top_n_test: int = 6000
    """Proposals kept before NMS at test time."""
    rpn_post_nms_top_n_test: int = 300
    """Proposals kept after NMS at test time."""
    rpn_nms_threshold: float = 0.7
    """IoU above which NMS suppresses a proposal."""
    rpn_min_size: float = 16.0
    """Proposals smaller than this (original-image pixels) are dropped."""
    rpn_sigma: float = 3.0
    """Smooth-L1 sigma of the RPN box loss."""

    # --- proposal targets (Fast R-CNN section 2.3; proposal_target_layer.py) -
    roi_batch_size: int = 128
    """RoIs sampled per image for the detection head's loss."""
    roi_positive_fraction: float = 0.25
    """At most this fraction of the sampled RoIs are positive (foreground)."""
    roi_positive_iou: float = 0.5
    """RoIs with max IoU >= this are positive (py-faster-rcnn FG_THRESH)."""
    roi_negative_iou: float = 0.5
    """RoIs with max IoU < this are negative, background (BG_THRESH_HI)..."""
    roi_negative_iou_floor: float = 0.1
    """...and >= this (BG_THRESH_LO; Fast R-CNN section 2.3)."""
    box_stds: tuple = (0.1, 0.1, 0.2, 0.2)
    """Head regression targets are divided by these."""

    # --- RoI head ---------------------------------------------------------------
    crop_method: str = "roi_pool"
    """How RoI features are cropped: "roi_pool", "roi_align" or "crop_pool"."""
    roi_output_size: int = 7
    """Side of the cropped feature grid (7x7 in the paper)."""
    roi_sampling_ratio: int = 2
    """Bilinear samples per bin side for roi_align."""
    head_hidden: int = 4096
    """Width of the two fully connected layers (fc6, fc7)."""
    head_dropout: float = 0.5
    """Dropout after fc6 and fc7 while training."""
    roi_sigma: float = 1.0
    """Smooth-L1 sigma of the head's box loss."""

    # --- inference -------------------------------------------------------------
    score_threshold: float = 0.05
    """Detections scoring below this are dropped."""
    nms_threshold: float = 0.3
    """Per-class NMS IoU threshold at test time."""
    detections_per_image: int = 100
    """At most this many detections per image."""

    # --- metadata ---------------------------------------------------------------
    class_names: tuple = ()
    """Names of classes 1..C, for tables and drawings (optional)."""
    category_ids: tuple = ()
    """Dataset category id of each class 1..C, e.g. COCO's (optional)."""

    # --- numerics ---------------------------------------------------------------
    dtype: str = "float32"
    """Parameter and activation dtype; "float64" for gradient checks."""
    seed: int = 0
    """Seed of the weight initialisation and the default sampling RNG."""

    def __post_init__(self):
        self.validate()

    # --- derived ------------------------------------------------------------------
    @property
    def stride(self):
        """Feature stride of the backbone: 2 to the number of max-pools."""
        return feature_stride(self.backbone_channels)

    @property
    def num_anchors(self):
        """Anchors per feature-map cell, A = len(ratios) * len(scales)."""
        return num_anchors(self.anchor_scales, self.anchor_ratios)

    # --- the stages' settings, as their functions take them ----------------------
    def anchor_target_settings(self):
        """Keyword arguments of :func:`minirpn.anchor_targets.label_anchors`."""
        return dict(positive_iou=self.rpn_positive_iou,
                    negative_iou=self.rpn_negative_iou,
                    batch_size=self.rpn_batch_size,
                    positive_fraction=self.rpn_positive_fraction,
                    allowed_border=self.rpn_allowed_border)

    def proposal_settings(self, training):
        """Keyword arguments of :func:`minirpn.proposals.propose`: the
        "train" or "test" proposal counts (section 3.3: 2000 or 300 out)."""
        when = "train" if training else "test"
        return dict(pre_nms_top_n=getattr(self, f"rpn_pre_nms_top_n_{when}"),
                    post_nms_top_n=getattr(self, f"rpn_post_nms_top_n_{when}"),
                    nms_threshold=self.rpn_nms_threshold,
                    min_size=self.rpn_min_size)

    def proposal_target_settings(self):
        """Keyword arguments of :func:`minirpn.proposal_targets.sample_proposals`."""
        return dict(batch_size=self.roi_batch_size,
                    positive_fraction=self.roi_positive_fraction,
                    positive_iou=self.roi_positive_iou,
                    negative_iou=self.roi_negative_iou,
                    negative_iou_floor=self.roi_negative_iou_floor,
                    box_stds=tuple(self.box_stds))

    # --- presets --------------------------------------------------------------------
    @classmethod
    def paper(cls, num_classes, **overrides):
        """The paper's detector: VGG16 backbone, stride 16, 600/1000 px."""
        return cls(num_classes=num_classes, **overrides)

    @classmethod
    def toy(cls, num_classes, **overrides):
        """A small detector for 128-320 px images with 16-128 px objects.

        Stride 8 and anchors of 16-128 px; images are scaled so the shorter
        side is 256 px. Pixels are standardised (mean and std) since the
        network trains from scratch. Proposal counts are scaled down with the
        image area. RoI Align rather than RoI pool: at stride 8 a 16 px
        object spans two feature cells, and the quantisation of RoI pool
        costs it localisation (in the demo's tuning, mAP 0.91 vs 0.87).
        """
        values = dict(
            target_size=256, max_size=400,
            pixel_std=(58.4, 57.1, 57.4),
            backbone_channels=TOY_CHANNELS,
            anchor_scales=(2, 4, 8, 16),
            rpn_channels=128,
            rpn_pre_nms_top_n_train=2000, rpn_post_nms_top_n_train=256,
            rpn_pre_nms_top_n_test=1000, rpn_post_nms_top_n_test=100,
            rpn_min_size=4.0,
            roi_batch_size=64,
            head_hidden=256,
            head_dropout=0.0,
            crop_method="roi_align",
        )
        values.update(overrides)
        return cls(num_classes=num_classes, **values)

    # --- checks and JSON --------------------------------------------------------------
    def validate(self):
        """Raise ValueError naming the first field with an impossible value."""
        def need(ok, name, what):
            if not ok:
                raise ValueError(
                    f"Config.{name} must be {what}, got {getattr(self, name)!r}")
        need(isinstance(self.num_classes, int) and self.num_classes >= 1,
             "num_classes", "an int >= 1")
        need(self.dtype in ("float32", "float64"), "dtype",
             '"float32" or "float64"')
        need(self.crop_method in ("roi_pool", "roi_align", "crop_pool"),
             "crop_method", '"roi_pool", "roi_align" or "crop_pool"')
        need(0 < self.target_size <= self.max_size, "target_size",
             "positive and <= max_size")
        need(len(self.pixel_mean) == 3, "pixel_mean", "3 numbers")
        need(len(self.pixel_std) == 3 and min(self.pixel_std) > 0,
             "pixel_std", "3 positive numbers")
        need(any(c != "M" for c in self.backbone_channels),
             "backbone_channels", "a list with at least one conv width")
        for name in ("rpn_positive_iou", "rpn_negative_iou",
                     "rpn_positive_fraction", "roi_positive_fraction",
                     "roi_positive_iou", "roi_negative_iou",
                     "roi_negative_iou_floor", "score_threshold",
                     "nms_threshold", "rpn_nms_threshold"):
            need(0.0 <= getattr(self, name) <= 1.0, name, "in [0, 1]")
        need(0.0 <= self.head_dropout < 1.0, "head_dropout", "in [0, 1)")
        need(self.rpn_negative_iou <= self.rpn_positive_iou,
             "rpn_negative_iou", "<= rpn_positive_iou")
        need(self.roi_negative_iou <= self.roi_positive_iou,
             "roi_negative_iou", "<= roi_positive_iou")
        need(self.roi_negative_iou_floor <= self.roi_negative_iou,
             "roi_negative_iou_floor", "<= roi_negative_iou")
        need(len(self.box_stds) == 4 and min(self.box_stds) > 0, "box_stds",
             "4 positive numbers")
        for name in ("class_names", "category_ids"):
            need(len(getattr(self, name)) in (0, self.num_classes), name,
                 f"empty or {self.num_classes} entries (one per class)")

    def to_dict(self):
        """A JSON-serialisable dict of every field."""
        return dataclasses.asdict(self)

    def to_json(self):
        """The config as a JSON string."""
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, values):
        """Build a config from :meth:`to_dict`'s output; lists become tuples.

        Unknown keys raise ValueError naming them (a config from another
        version or a typo should not be silently ignored). Fields renamed
        since a checkpoint was written are read under their new names.
        """
        values = _upgrade(values)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v
                      for k, v in values.items()})

    @classmethod
    def from_json(cls, text):
        """Parse :meth:`to_json`'s output."""
        return cls.from_dict(json.loads(text))


def _upgrade(values):
    """An older checkpoint's config dict with today's field names:
    ``roi_fg_iou`` became ``roi_positive_iou``, and the pair ``roi_bg_iou``
    = (lo, hi) became ``roi_negative_iou_floor`` and ``roi_negative_iou``."""
    values = dict(values)
    if "roi_fg_iou" in values:
        values["roi_positive_iou"] = values.pop("roi_fg_iou")
    if "roi_bg_iou" in values:
        values["roi_negative_iou_floor"], values["roi_negative_iou"] = values.pop("roi_bg_iou")
    return values
