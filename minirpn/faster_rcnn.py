"""Faster R-CNN: the feature network, the RPN and the detection network.

The model is a :class:`~minirpn.nn.Module` with three children (Ren et al.
2015, section 3): ``backbone``, ``rpn`` and ``roi_head``. The paper's
pipeline reads top to bottom in :meth:`FasterRCNN.forward_train`:

    preprocess -> features -> anchors -> RPN -> anchor labels -> RPN losses
                                             -> proposals -> RoI sampling
                                             -> RoI head -> head losses

and in :meth:`FasterRCNN.detect`, which stops at the proposals' head outputs
and turns them into detections. Training is the paper's approximate joint
training (section 3.2): the four losses are summed, their gradients flow
back through both heads into the shared backbone, and the proposals are
constants. The RPN's half and the head's half are also separate methods,
:meth:`~FasterRCNN.forward_rpn` and :meth:`~FasterRCNN.forward_head`, which
the 4-step alternating training (:mod:`minirpn.train.alternating`) runs one
at a time. ``step_through`` runs the same stage functions and keeps each
one's output.
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
from .detection_losses import head_losses, head_losses_backward, rpn_losses, rpn_losses_backward
from .nn import Module
from .ops import check_boxes
from .preprocess import check_images, check_targets, preprocess
from .proposal_targets import sample_proposals
from .proposals import propose
from .roi_head import RoIHead, batch_rois
from .rpn import RPNHead, RPNOutputs, foreground_probability
from .step_through import Trace

__all__ = ["FasterRCNN"]


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
        self.rpn = self.add_module("rpn", RPNHead(
            self.backbone.out_channels, c.rpn_channels, c.num_anchors,
            rng=init_rng, dtype=c.dtype))
        self.roi_head = self.add_module("roi_head", RoIHead(
            self.backbone.out_channels, c.num_classes, hidden=c.head_hidden,
            crop_method=c.crop_method, output_size=c.roi_output_size,
            spatial_scale=1.0 / c.stride, sampling_ratio=c.roi_sampling_ratio,
            dropout=c.head_dropout, rng=init_rng, dtype=c.dtype))
        self.base_anchors = self._base_anchors_on_host = base_anchors(
            c.stride, c.anchor_scales, c.anchor_ratios, dtype=c.dtype)
        self.rng = np.random.default_rng(c.seed)
        self._anchor_cache = {}
        self._last = None

    @property
    def stride(self):
        """Feature stride of the backbone (16 for VGG16)."""
        return self.backbone.stride

    @property
    def xp(self):
        """The array module (numpy or cupy) holding the parameters."""
        return get_array_module(self.backbone[0].weight)

    def to(self, backend_name):
        """Move parameters, gradients and anchors to "numpy" or "cupy"."""
        super().to(backend_name)
        self.base_anchors = self.xp.asarray(self._base_anchors_on_host)
        self._anchor_cache = {}
        return self

    # ---- the stages, in the paper's order -------------------------------------
    def preprocess(self, images):
        """Resize, normalise and pad raw images (:func:`minirpn.preprocess.preprocess`);
        the batch lands where the parameters live (numpy or cupy)."""
        return preprocess(images, self.config, xp=self.xp)

    def features(self, images, keep_cache=True):
        """(N, 3, H, W) images -> (N, C, H/s, W/s) shared conv features.

        With ``keep_cache=False`` each layer drops what backward would need
        as soon as it has run (inference: much less memory).
        """
        x = images
        for layer in self.backbone:
            x = layer(x)
            if not keep_cache:
                layer.clear_cache()
        return x

    def anchors(self, feature_height, feature_width, on_host=False):
        """(H*W*A, 4) anchors of a feature map (section 3.1.1), cached by size,
        beside the parameters, or numpy ``on_host``: the same bits, made on the host."""
        key = (feature_height, feature_width)
        if key not in self._anchor_cache:
            anchors = grid_anchors(*key, self.stride, self._base_anchors_on_host)
            self._anchor_cache[key] = (anchors, self.xp.asarray(anchors))
        return self._anchor_cache[key][0 if on_host else 1]

    def rpn_outputs(self, features):
        """The RPN on the features (section 3.1): an :class:`RPNOutputs`."""
        scores, deltas = self.rpn(features)
        # Diverged weights show up here first; stop before the proposal
        # layer trips over NaN scores, naming the loss they feed.
        check_finite_outputs("rpn_cls", scores)
        check_finite_outputs("rpn_box", deltas)
        return RPNOutputs(scores, foreground_probability(scores), deltas,
                          self.anchors(*features.shape[2:]), features.shape[2:])

    def proposals(self, rpn, batch, training):
        """Each image's :class:`~minirpn.proposals.Proposals` (section 3.3),
        with the "train" or "test" proposal counts."""
        settings = self.config.proposal_settings(training)
        return [propose(rpn.fg_probs[i], rpn.deltas[i], rpn.anchors,
                        batch.image_sizes[i], scale=batch.scales[i], **settings)
                for i in range(len(batch.scales))]

    def anchor_labels(self, rpn, batch, gt_boxes, rng):
        """Each image's :class:`~minirpn.anchor_targets.AnchorLabels` (3.1.2),
        numpy on either backend: they need the anchors and the numpy (K_i, 4)
        ``gt_boxes``, not the features. On a GPU the host labels while the GPU
        computes the features (py-faster-rcnn's anchor target layer is NumPy
        too); on the device its first host wait would wait for the backbone."""
        settings = self.config.anchor_target_settings()
        anchors = self.anchors(*rpn.feature_size, on_host=True)
        return [label_anchors(anchors, gt, size, rng=rng, **settings)
                for gt, size in zip(gt_boxes, batch.image_sizes)]

    def rpn_loss(self, rpn, anchor_labels):
        """The RPN's two losses (eq. 1) and the cache for its backward; the
        host's labels and targets of :meth:`anchor_labels` go up once."""
        return rpn_losses(
            rpn.scores.reshape(-1, 2), rpn.deltas.reshape(-1, 4),
            np.concatenate([to_numpy(a.labels) for a in anchor_labels]),
            self.xp.asarray(np.concatenate([to_numpy(a.bbox_targets) for a in anchor_labels])),
            self.config.rpn_sigma)

    def proposal_targets(self, rois, gt_boxes, gt_labels, rng):
        """Each image's :class:`~minirpn.proposal_targets.ProposalTargets`
        drawn from its (P_i, 4) RoIs (Fast R-CNN, section 2.3)."""
        c, xp = self.config, self.xp
        return [sample_proposals(r, xp.asarray(gt), labels, c.num_classes, rng=rng,
                                 **c.proposal_target_settings())
                for r, gt, labels in zip(rois, gt_boxes, gt_labels)]

    def head_loss(self, class_scores, box_deltas, sampled):
        """The head's two losses (Fast R-CNN eq. 1) on the sampled RoIs, and
        the cache for its backward."""
        xp = self.xp
        return head_losses(class_scores, box_deltas,
                           xp.concatenate([s.labels for s in sampled]),
                           xp.concatenate([s.bbox_targets for s in sampled]),
                           xp.concatenate([s.bbox_weights for s in sampled]),
                           self.config.roi_sigma)

    def rpn_step(self, features, batch, gt_boxes, rng):
        """The RPN's half of a training step (section 3.1): its outputs, its
        two losses on the sampled anchors, and their backward cache."""
        rpn = self.rpn_outputs(features)
        rpn_cls, rpn_box, cache = self.rpn_loss(
            rpn, self.anchor_labels(rpn, batch, gt_boxes, rng))
        return rpn, dict(rpn_cls=rpn_cls, rpn_box=rpn_box), (rpn.scores.shape, cache)

    def head_step(self, features, rois, gt_boxes, gt_labels, rng):
        """The detection head's half (Fast R-CNN on the RoIs): its two losses
        on the RoIs sampled from ``rois``, and their backward cache."""
        sampled = self.proposal_targets(rois, gt_boxes, gt_labels, rng)
        class_scores, box_deltas = self.roi_head.forward(
            features, batch_rois([s.rois for s in sampled]), rng)
        roi_cls, roi_box, cache = self.head_loss(class_scores, box_deltas, sampled)
        return dict(roi_cls=roi_cls, roi_box=roi_box), cache

    # ---- training ----------------------------------------------------------------
    @deferred_device_checks()  # on CuPy: one host wait for all value checks
    def forward_train(self, images, targets, rng=None):
        """One step of approximate joint training (section 3.2); the losses.

        Parameters
        ----------
        images : list of (H_i, W_i, 3) uint8 or float arrays
        targets : list of dict
            ``boxes`` (K_i, 4) float in original pixels, ``labels`` (K_i,)
            int in 1..C. An image without boxes is valid.
        rng : numpy.random.Generator, optional
            Drives anchor and RoI sampling and dropout; the model's own
            generator when omitted. The same seed gives the same losses.

        Returns
        -------
        dict of str -> float
            ``rpn_cls``, ``rpn_box``, ``roi_cls``, ``roi_box``; ``total``, their sum.

        Raises
        ------
        FloatingPointError
            If a loss is NaN or inf (naming it), before any gradient exists.
        """
        rng = self.rng if rng is None else rng
        batch, gt_boxes, gt_labels = self.training_batch(images, targets)
        features = self.features(batch.images)
        rpn, rpn_values, rpn_cache = self.rpn_step(features, batch, gt_boxes, rng)
        # The proposals are constants from here on (approximate joint training).
        rois = [p.boxes for p in self.proposals(rpn, batch, training=True)]
        head_values, head_cache = self.head_step(features, rois, gt_boxes, gt_labels, rng)
        return self._finish_step(features, {**rpn_values, **head_values},
                                 rpn_cache, head_cache)

    @deferred_device_checks()
    def forward_rpn(self, images, targets, rng=None):
        """The RPN's half of a step alone (alternating training, steps 1 and
        3): ``rpn_cls``, ``rpn_box`` and ``total``."""
        rng = self.rng if rng is None else rng
        batch, gt_boxes, _ = self.training_batch(images, targets)
        features = self.features(batch.images)
        _, values, cache = self.rpn_step(features, batch, gt_boxes, rng)
        return self._finish_step(features, values, cache, None)

    @deferred_device_checks()
    def forward_head(self, images, targets, rng=None, proposals=None):
        """The detection head's half of a step alone (alternating training,
        steps 2 and 4): ``roi_cls``, ``roi_box`` and ``total``. ``proposals``
        (one (P_i, 4) array per image, original pixels), e.g. another
        network's :meth:`rpn_proposals` (step 2), or this model's RPN's (step 4)."""
        rng = self.rng if rng is None else rng
        batch, gt_boxes, gt_labels = self.training_batch(images, targets)
        features = self.features(batch.images)
        if proposals is None:
            rpn = self.rpn_outputs(features)
            rois = [p.boxes for p in self.proposals(rpn, batch, training=True)]
            for module in self.rpn.modules():   # no RPN loss: nothing flows back
                module.clear_cache()
        else:
            rois = self._given_proposals(batch, proposals)
        values, cache = self.head_step(features, rois, gt_boxes, gt_labels, rng)
        return self._finish_step(features, values, None, cache)

    def training_batch(self, images, targets):
        """Checked, preprocessed images and their GT in the network's pixels:
        (batch, [(K_i, 4) boxes], [(K_i,) labels]), the GT as numpy arrays
        (the host labels the anchors; RoI sampling uploads the boxes)."""
        images = check_images(images)
        targets = check_targets(targets, images, self.config.num_classes)
        self.train()
        self._last = None
        batch, dtype = self.preprocess(images), self.config.dtype
        boxes = [batch.to_network(i, t["boxes"], dtype, xp=np) for i, t in enumerate(targets)]
        return batch, boxes, [t["labels"] for t in targets]

    def _given_proposals(self, batch, proposals):
        if len(proposals) != len(batch.scales):
            raise ValueError(f"proposals must hold one (P, 4) array per image "
                             f"({len(batch.scales)}), got {len(proposals)}")
        dtype = self.config.dtype
        return [batch.to_network(i, check_boxes(np.asarray(to_numpy(p), dtype=dtype),
                                                f"proposals[{i}]"), dtype)
                for i, p in enumerate(proposals)]

    def _finish_step(self, features, values, rpn_cache, head_cache):
        """The losses to the host in one crossing, NaN/inf refused, caches kept."""
        xp = self.xp
        host = to_numpy(xp.stack([xp.asarray(v) for v in values.values()])).tolist()
        losses = dict(zip(values, host))
        for name, value in losses.items():
            if not math.isfinite(value):
                raise FloatingPointError(f"loss {name} is {value}")
        losses["total"] = sum(losses.values())
        self._last = (features.shape, rpn_cache, head_cache)
        return losses

    @deferred_device_checks()
    def backward(self):
        """Fill ``gradients()`` with d total / d parameter of the last
        training step (accumulating: call ``zero_grad`` first)."""
        if self._last is None:
            raise RuntimeError("backward() needs a successful forward_train() first")
        feature_shape, rpn_cache, head_cache = self._last
        dfeatures = self.xp.zeros(feature_shape, dtype=self.config.dtype)
        if rpn_cache is not None:
            score_shape, cache = rpn_cache
            dscores, ddeltas = rpn_losses_backward(cache)
            dfeatures += self.rpn.backward(dscores.reshape(score_shape),
                                           ddeltas.reshape(score_shape[:2] + (4,)))
        if head_cache is not None:
            dfeatures += self.roi_head.backward(*head_losses_backward(head_cache))
        self.backbone.backward(dfeatures)

    # ---- inference ------------------------------------------------------------------
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
        batch, features, proposals = self._run_to_proposals(images, training=False)
        rois = [p.boxes for p in proposals]
        heads = self.head_outputs(self.roi_head.crop(features, batch_rois(rois))[0], rois)
        self.clear_caches()
        return [self.detections(batch, i, rois[i], *heads[i], score_threshold)
                for i in range(len(rois))]

    def head_outputs(self, crops, rois_per_image):
        """The head on (R, C, 7, 7) crops; each image's (class scores (R_i,
        C+1), box deltas (R_i, 4(C+1))), split by ``rois_per_image``."""
        class_scores, box_deltas = self.roi_head.classify(crops)
        bounds = np.cumsum([0] + [len(r) for r in rois_per_image])
        return [(class_scores[a:b], box_deltas[a:b])
                for a, b in zip(bounds[:-1], bounds[1:])]

    def detections(self, batch, i, rois, class_scores, box_deltas,
                   score_threshold=None):
        """Final detections of image i, moved to original pixels on the host."""
        c = self.config
        threshold = c.score_threshold if score_threshold is None else score_threshold
        det = postprocess_detections(
            class_scores, box_deltas, rois, batch.image_sizes[i], c.box_stds,
            threshold, c.nms_threshold, c.detections_per_image)
        return {"boxes": batch.to_original(i, det["boxes"]),
                "scores": to_numpy(det["scores"]),
                "labels": to_numpy(det["labels"])}

    def rpn_proposals(self, images, training=False):
        """RPN proposals for raw (H_i, W_i, 3) images: one (P_i, 4) numpy array
        per image in original pixels, as :meth:`forward_head` takes them. P_i
        <= ``rpn_post_nms_top_n_test`` (``_train`` with ``training``); eval
        mode either way, caches cleared after."""
        batch, _, proposals = self._run_to_proposals(images, training)
        self.clear_caches()
        return [batch.to_original(i, p.boxes) for i, p in enumerate(proposals)]

    def _run_to_proposals(self, images, training):
        """Eval mode, no caches for backward: (batch, features, Proposals per image)."""
        self.eval()
        batch = self.preprocess(images)
        features = self.features(batch.images, keep_cache=False)
        return batch, features, self.proposals(self.rpn_outputs(features), batch, training)

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
