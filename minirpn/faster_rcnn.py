"""Faster R-CNN: the feature network, the RPN and the detection network.

The model is a :class:`~minirpn.nn.Module` with three children (Ren et al.
2015, section 3): ``backbone``, ``rpn`` and ``roi_head``. Each stage is a
method, so ``forward_train``, ``detect`` and ``step_through`` are three
orderings of the same code:

    preprocess -> features -> anchors -> rpn -> proposals
               -> (training) anchor labels, proposal targets
               -> roi crops -> head -> losses | detections

Training is the paper's approximate joint training (section 3.2): the four
losses are summed, their gradients flow back through both heads into the
shared backbone, and the proposals are constants (:mod:`minirpn.roi_head`).
"""
import math

import numpy as np

from .anchor_targets import label_anchors
from .anchors import base_anchors, grid_anchors
from .backbone import Backbone
from .backend import get_array_module, to_numpy
from .checkpoint import load_checkpoint, save_checkpoint
from .checks import check_finite_outputs, deferred_device_checks
from .config import Config
from .detections import postprocess_detections
from .losses import (head_losses, head_losses_backward, rpn_losses,
                     rpn_losses_backward)
from .nn import Module
from .ops import check_boxes
from .preprocess import check_images, check_targets, preprocess
from .proposal_targets import sample_proposals
from .proposals import ProposalLayer
from .roi_head import RoIHead, batch_rois
from .rpn import RPNHead, foreground_probability
from .step_through import Trace

__all__ = ["FasterRCNN", "LOSS_NAMES"]

LOSS_NAMES = ("rpn_cls", "rpn_box", "roi_cls", "roi_box")


def _check_parts(parts):
    parts = (parts,) if isinstance(parts, str) else tuple(parts)
    if not parts or not set(parts) <= {"rpn", "head"}:
        raise ValueError(f'parts must be a non-empty subset of ("rpn", "head"), got {parts!r}')
    return parts


class FasterRCNN(Module):
    """The detector.

    Parameters
    ----------
    config : Config
        Every hyper-parameter; ``Config.toy(C)`` or ``Config.paper(C)``.

    Notes
    -----
    ``parameters()`` and ``gradients()`` are dicts name -> live array with
    the same keys; ``forward_train`` then ``backward`` fills the gradients.
    """

    def __init__(self, config):
        if not isinstance(config, Config):
            raise TypeError(f"config must be a minirpn.Config, got {type(config).__name__}")
        super().__init__()
        self.config = c = config
        init_rng = np.random.default_rng(c.seed)
        self.backbone = self.add_module("backbone", Backbone(
            c.backbone_channels, rng=init_rng, dtype=c.dtype))
        self.stride = self.backbone.stride
        self.rpn = self.add_module("rpn", RPNHead(
            self.backbone.out_channels, c.rpn_channels, c.num_anchors,
            rng=init_rng, dtype=c.dtype))
        self.roi_head = self.add_module("roi_head", RoIHead(
            self.backbone.out_channels, c.num_classes, hidden=c.head_hidden,
            crop_method=c.crop_method, output_size=c.roi_output_size,
            spatial_scale=1.0 / self.stride, sampling_ratio=c.roi_sampling_ratio,
            dropout=c.head_dropout, rng=init_rng, dtype=c.dtype))
        self.base_anchors = base_anchors(self.stride, c.anchor_scales,
                                         c.anchor_ratios, dtype=c.dtype)
        self.train_proposals = ProposalLayer(
            c.rpn_pre_nms_top_n_train, c.rpn_post_nms_top_n_train,
            c.rpn_nms_threshold, c.rpn_min_size)
        self.test_proposals = ProposalLayer(
            c.rpn_pre_nms_top_n_test, c.rpn_post_nms_top_n_test,
            c.rpn_nms_threshold, c.rpn_min_size)
        self.rng = np.random.default_rng(c.seed)
        self._anchor_cache = {}
        self._last = None

    # ---- stages ---------------------------------------------------------------
    def preprocess(self, images):
        """Stage 0: resize, normalise, pad (see :mod:`minirpn.preprocess`);
        the batch lands where the parameters live (numpy or cupy)."""
        return preprocess(images, self.config, xp=self.xp)

    @property
    def xp(self):
        """The array module (numpy or cupy) holding the parameters."""
        return get_array_module(self.backbone[0].weight)

    def to(self, backend_name):
        """Move parameters, gradients and anchors to "numpy" or "cupy"."""
        super().to(backend_name)
        self.base_anchors = self.xp.asarray(to_numpy(self.base_anchors)) \
            if backend_name == "cupy" else to_numpy(self.base_anchors)
        self._anchor_cache = {}
        return self

    def features(self, images, keep_cache=True):
        """Stage 1: (N, 3, H, W) images -> (N, C, H/s, W/s) features.

        With ``keep_cache=False`` each layer drops what backward would need
        as soon as it has run (inference: much less memory).
        """
        x = images
        for layer in self.backbone:
            x = layer(x)
            if not keep_cache:
                layer.clear_cache()
        return x

    def anchors(self, feature_height, feature_width):
        """Stage 2: (H*W*A, 4) anchors of a feature map, cached by size."""
        key = (feature_height, feature_width)
        if key not in self._anchor_cache:
            self._anchor_cache[key] = grid_anchors(
                feature_height, feature_width, self.stride, self.base_anchors)
        return self._anchor_cache[key]

    def propose(self, fg_probs, deltas, anchors, batch, training):
        """Stage 4: one :class:`~minirpn.proposals.Proposals` per image."""
        layer = self.train_proposals if training else self.test_proposals
        return [layer(fg_probs[i], deltas[i], anchors, batch.image_sizes[i],
                      scale=batch.scales[i]) for i in range(len(batch.scales))]

    def label_anchors(self, anchors, gt_boxes, image_size, rng):
        """Stage 5 (training): anchor labels and RPN targets of one image."""
        c = self.config
        return label_anchors(
            anchors, gt_boxes, image_size, positive_iou=c.rpn_positive_iou,
            negative_iou=c.rpn_negative_iou, batch_size=c.rpn_batch_size,
            positive_fraction=c.rpn_positive_fraction,
            allowed_border=c.rpn_allowed_border, rng=rng)

    def sample_rois(self, proposal_boxes, gt_boxes, gt_labels, rng):
        """Stage 6 (training): sampled RoIs and head targets of one image."""
        c = self.config
        return sample_proposals(
            proposal_boxes, gt_boxes, gt_labels, c.num_classes,
            batch_size=c.roi_batch_size, positive_fraction=c.roi_positive_fraction,
            fg_iou=c.roi_fg_iou, bg_iou=tuple(c.roi_bg_iou),
            box_stds=tuple(c.box_stds), rng=rng)

    def network_targets(self, batch, targets):
        """GT boxes scaled into the network's pixels, in the model's dtype."""
        return [batch.network_boxes(i, t["boxes"], self.config.dtype)
                for i, t in enumerate(targets)]

    # ---- training ----------------------------------------------------------------
    @deferred_device_checks()  # on CuPy: one host wait for all value checks
    def forward_train(self, images, targets, rng=None, *, parts=("rpn", "head"),
                      proposals=None):
        """Run the training pipeline and return the losses.

        Parameters
        ----------
        images : list of (H_i, W_i, 3) uint8 or float arrays
        targets : list of dict
            ``boxes`` (K_i, 4) float in original pixels, ``labels`` (K_i,)
            int in 1..C. An image without boxes is valid.
        rng : numpy.random.Generator, optional
            Drives anchor and RoI sampling and dropout; the model's own
            generator when omitted. The same seed gives the same losses.
        parts : tuple of "rpn" and/or "head"
            Which losses to compute. Joint training uses both; the paper's
            4-step alternating training (section 3.2) one at a time.
        proposals : list of (P_i, 4) float arrays, optional
            RoI candidates in original pixels to sample from instead of this
            model's own RPN (alternating step 2: another network's proposals).

        Returns
        -------
        dict of str -> float
            ``rpn_cls`` and ``rpn_box`` (if "rpn" in parts), ``roi_cls`` and
            ``roi_box`` (if "head"), and their sum ``total``.

        Raises
        ------
        FloatingPointError
            If a loss is NaN or inf (naming it), before any gradient exists.
        """
        parts = _check_parts(parts)
        rng = self.rng if rng is None else rng
        images = check_images(images)
        targets = check_targets(targets, images, self.config.num_classes)
        self.train()
        self._last = None
        batch = self.preprocess(images)
        features = self.features(batch.images)
        gt_boxes = self.network_targets(batch, targets)
        scores = deltas = None
        if "rpn" in parts or proposals is None:
            scores, deltas = self.rpn(features)
            # Diverged weights show up here first; stop before the proposal
            # layer trips over NaN scores, naming the loss they feed.
            check_finite_outputs("rpn_cls", scores)
            check_finite_outputs("rpn_box", deltas)
            anchors = self.anchors(*features.shape[2:])
        if "head" in parts:
            # Proposals are constants from here on (approximate joint training).
            rois = self.network_proposals(batch, proposals) if proposals is not None \
                else [p.boxes for p in self.propose(foreground_probability(scores), deltas,
                                                    anchors, batch, training=True)]
        anchor_labels = [] if "rpn" in parts else None
        sampled = [] if "head" in parts else None
        for i, gt in enumerate(gt_boxes):
            if anchor_labels is not None:
                anchor_labels.append(self.label_anchors(anchors, gt, batch.image_sizes[i], rng))
            if sampled is not None:
                sampled.append(self.sample_rois(rois[i], gt, targets[i]["labels"], rng))
        losses, caches = self.compute_losses(features, scores, deltas, anchor_labels,
                                             sampled, rng)
        self._last = (caches, features.shape, None if scores is None else scores.shape,
                      None if deltas is None else deltas.shape)
        return losses

    def network_proposals(self, batch, proposals):
        """Given per-image (P_i, 4) proposals in original pixels, return them
        in the network's pixels and dtype (checked like any boxes)."""
        if len(proposals) != len(batch.scales):
            raise ValueError(f"proposals must hold one (P, 4) array per image "
                             f"({len(batch.scales)}), got {len(proposals)}")
        dtype = self.config.dtype
        return [batch.network_boxes(i, check_boxes(
                    np.asarray(to_numpy(p), dtype=dtype), f"proposals[{i}]"), dtype)
                for i, p in enumerate(proposals)]

    def compute_losses(self, features, scores, deltas, anchor_labels, sampled, rng):
        """Stages 7-8: the head on the sampled RoIs, then the losses.

        ``anchor_labels`` None skips the RPN losses, ``sampled`` None the
        head's. Returns the losses (floats, with ``total``) and the caches
        that :meth:`backward` needs. Raises FloatingPointError naming a NaN
        or inf loss.
        """
        c, xp = self.config, get_array_module(features)
        values, rpn_cache, head_cache = {}, None, None
        if anchor_labels is not None:
            values["rpn_cls"], values["rpn_box"], rpn_cache = rpn_losses(
                scores.reshape(-1, 2), deltas.reshape(-1, 4),
                xp.concatenate([a.labels for a in anchor_labels]),
                xp.concatenate([a.bbox_targets for a in anchor_labels]), c.rpn_sigma)
        if sampled is not None:
            rois = batch_rois([s.rois for s in sampled])
            class_scores, box_deltas = self.roi_head.forward(features, rois, rng)
            values["roi_cls"], values["roi_box"], head_cache = head_losses(
                class_scores, box_deltas, xp.concatenate([s.labels for s in sampled]),
                xp.concatenate([s.bbox_targets for s in sampled]),
                xp.concatenate([s.bbox_weights for s in sampled]), c.roi_sigma)
        # One host crossing per step for all the losses (the progress bar
        # needs them), not one per loss.
        names = [name for name in LOSS_NAMES if name in values]
        host = to_numpy(xp.stack([xp.asarray(values[n]) for n in names])).tolist()
        losses = dict(zip(names, host))
        for name, value in losses.items():
            if not math.isfinite(value):
                raise FloatingPointError(f"loss {name} is {value}")
        losses["total"] = sum(losses.values())
        return losses, (rpn_cache, head_cache)

    @deferred_device_checks()
    def backward(self):
        """Fill ``gradients()`` with d total / d parameter of the last
        :meth:`forward_train` (accumulating: call ``zero_grad`` first)."""
        if self._last is None:
            raise RuntimeError("backward() needs a successful forward_train() first")
        (rpn_cache, head_cache), feature_shape, score_shape, delta_shape = self._last
        dfeatures = self.xp.zeros(feature_shape, dtype=self.config.dtype)
        if rpn_cache is not None:
            dscores, ddeltas = rpn_losses_backward(rpn_cache)
            dfeatures += self.rpn.backward(dscores.reshape(score_shape),
                                           ddeltas.reshape(delta_shape))
        if head_cache is not None:
            dfeatures += self.roi_head.backward(*head_losses_backward(head_cache))
        self.backbone.backward(dfeatures)

    # ---- inference ------------------------------------------------------------------
    def proposals(self, images, training=False):
        """RPN proposals for raw images, in original pixels.

        Shapes: P_i proposals of image i (at most the config's
        ``rpn_post_nms_top_n_test``; ``_train`` with ``training=True``).

        Parameters
        ----------
        images : list of (H_i, W_i, 3) uint8 or float arrays
        training : bool
            Use the training proposal settings (pre/post-NMS top-N "train");
            the network runs in eval mode either way, and its caches are
            cleared afterwards.

        Returns
        -------
        list of (P_i, 4) numpy arrays in the model's dtype
            Boxes (x1, y1, x2, y2) in each image's original pixels, as
            ``forward_train(..., proposals=...)`` takes them.
        """
        batch, _, proposals = self._eval_proposals(images, training)
        self.clear_caches()
        return [batch.original_boxes(i, p.boxes) for i, p in enumerate(proposals)]

    def _eval_proposals(self, images, training):
        """Stages 0-4 in eval mode, no caches kept for backward: returns the
        batch, the features and each image's proposals (network pixels)."""
        self.eval()
        batch = self.preprocess(images)
        features = self.features(batch.images, keep_cache=False)
        scores, deltas = self.rpn(features)
        proposals = self.propose(foreground_probability(scores), deltas,
                                 self.anchors(*features.shape[2:]), batch, training=training)
        return batch, features, proposals

    @deferred_device_checks()
    def detect(self, images, score_threshold=None):
        """Detect objects in raw images.

        Parameters
        ----------
        images : list of (H_i, W_i, 3) uint8 or float arrays
        score_threshold : float, optional
            Overrides ``config.score_threshold``.

        Returns
        -------
        list of dict, one per image, numpy arrays in original pixels:
            ``boxes`` (D, 4) float, ``scores`` (D,) float, ``labels`` (D,)
            int64 in 1..C, sorted by score.
        """
        batch, features, proposals = self._eval_proposals(images, training=False)
        heads = self.head_outputs(features, [p.boxes for p in proposals])
        self.clear_caches()
        return [self.to_detections(batch, i, proposals[i].boxes, *heads[i],
                                   score_threshold) for i in range(len(proposals))]

    def head_outputs(self, features, rois_per_image):
        """Run the head on each image's RoIs; returns [(scores, deltas), ...]."""
        class_scores, box_deltas = self.roi_head.forward(
            features, batch_rois(rois_per_image))
        bounds = np.cumsum([0] + [len(r) for r in rois_per_image])
        return [(class_scores[a:b], box_deltas[a:b])
                for a, b in zip(bounds[:-1], bounds[1:])]

    def to_detections(self, batch, i, rois, class_scores, box_deltas,
                      score_threshold=None):
        """Final detections of image i, moved to original pixels on the host."""
        c = self.config
        threshold = c.score_threshold if score_threshold is None else score_threshold
        det = postprocess_detections(
            class_scores, box_deltas, rois, batch.image_sizes[i], c.box_stds,
            threshold, c.nms_threshold, c.detections_per_image)
        return {"boxes": batch.original_boxes(i, det["boxes"]),
                "scores": to_numpy(det["scores"]),
                "labels": to_numpy(det["labels"])}

    def clear_caches(self):
        """Drop every module's forward cache (frees the activations)."""
        for module in self.modules():
            module.clear_cache()
        self._last = None

    # ---- inspection and persistence ------------------------------------------------
    def step_through(self, image, target=None, lazy=False):
        """Run the pipeline on one image and keep every stage.

        See :class:`minirpn.step_through.Trace`. With ``lazy=True`` nothing
        runs until ``trace.next()``, so a teacher can stop after any stage.
        """
        trace = Trace(self, image, target)
        return trace if lazy else trace.run()

    def save(self, path):
        """Write parameters and config to one ``.npz``, atomically."""
        save_checkpoint(path, self.config, self.parameters())

    @classmethod
    def load(cls, path):
        """Rebuild a model from :meth:`save`'s file."""
        config, params = load_checkpoint(path)
        model = cls(config)
        model.load_parameters(params)
        return model
