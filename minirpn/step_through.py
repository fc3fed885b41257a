"""Step through the detector one stage at a time.

``trace = model.step_through(image, target)`` runs the pipeline on one image
and keeps every stage, in order. Each :class:`Stage` has a ``name``, a
one-line ``summary``, its ``outputs`` (a dict of arrays, shapes in
:data:`STAGE_OUTPUTS`), its ``result`` (the stage function's own return
value where that is an object: the :class:`~minirpn.anchor_targets.AnchorLabels`
with ``explain(i)``, the :class:`~minirpn.proposals.Proposals`, ...) and the
``seconds`` it took. Everything is a plain attribute, so a debugger or a
notebook can look at it directly. The stages are the model's own stage
methods, the very calls that ``forward_train`` and ``detect`` make.

``model.step_through(image, lazy=True)`` computes nothing up front:
``trace.next()`` runs one more stage and returns it, so a lesson can stop
after any stage. The model runs in inference mode (no dropout, test-time
proposal counts). With a ``target``, three training stages are added: the
anchor labels (``explain(i)`` answers "why is anchor i ignored?"), the
sampled RoIs with their targets, and the four losses on those RoIs.
"""
import time
from dataclasses import dataclass, field

import numpy as np

from .detections import class_boxes, class_probabilities
from .detection_losses import LOSS_NAMES
from .preprocess import check_images, check_targets
from .roi_head import batch_rois

__all__ = ["Stage", "Trace", "STAGE_OUTPUTS"]

#: Output names and shapes of every stage (A anchors in total, Hf x Wf the
#: feature map, P proposals, Q boxes into NMS, R RoIs, K = C + 1 classes).
STAGE_OUTPUTS = {
    "preprocess": "image (1, 3, Hp, Wp) padded network input; scale float; "
                  "image_size (h, w) resized; original_size (H, W); "
                  "result: the PreprocessedBatch",
    "features": "features (1, C, Hf, Wf)",
    "anchors": "anchors (A, 4), A = Hf * Wf * anchors per cell, order (Hf, Wf, a)",
    "rpn": "scores (A, 2) bg/fg logits; fg_probs (A,); deltas (A, 4); "
           "result: the model's RPNOutputs",
    "proposals": "before_nms_boxes (Q, 4); before_nms_scores (Q,); boxes (P, 4); "
                 "scores (P,); removed_by_nms (Q - P',) anchor indices; "
                 "result: the Proposals",
    "anchor_labels": "labels (A,) int8 in {-1, 0, 1}; bbox_targets (A, 4); "
                     "result: the AnchorLabels, with explain(i)",
    "proposal_targets": "rois (R, 4); labels (R,); bbox_targets (R, 4K); "
                        "bbox_weights (R, 4K); result: the ProposalTargets",
    "losses": "rpn_cls, rpn_box, roi_cls, roi_box, total (floats)",
    "roi_features": "rois (P, 4); crops (P, C, 7, 7)",
    "head": "class_scores (P, K); class_probs (P, K); class_boxes (P, K, 4)",
    "detections": "boxes (D, 4) original pixels; scores (D,); labels (D,)",
}


@dataclass
class Stage:
    """One stage of the pipeline: name, one-line summary, outputs, the stage
    function's result object (or None), time."""

    name: str
    summary: str
    outputs: dict = field(default_factory=dict)
    result: object = None
    seconds: float = 0.0

    def __getitem__(self, key):
        return self.outputs[key]

    def __repr__(self):
        return f"Stage({self.name!r}: {self.summary})"


class Trace:
    """The stages of one run; see the module docstring.

    Parameters
    ----------
    model : FasterRCNN
    image : (H, W, 3) uint8 or float array
    target : dict, optional
        ``boxes`` (K, 4) and ``labels`` (K,) in original pixels.
    rng : numpy.random.Generator, optional
        Drives anchor and RoI sampling (seeded with 0 when omitted).
    """

    def __init__(self, model, image, target=None, rng=None):
        self.model = model
        self.image = check_images([image])[0]
        self.target = None if target is None else check_targets(
            [target], [self.image], model.config.num_classes)[0]
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.stages = []
        self._pending = self._run()

    # ---- navigation ----------------------------------------------------------
    def _clock(self):
        # GPU work is asynchronous: wait for it so each stage pays its own time.
        if self.model.xp.__name__ == "cupy":
            self.model.xp.cuda.Device().synchronize()
        return time.perf_counter()

    def next(self):
        """Run the next stage and return it; None when all have run."""
        start = self._clock()
        stage = next(self._pending, None)
        if stage is not None:
            stage.seconds = self._clock() - start
            self.stages.append(stage)
        return stage

    def run(self):
        """Run every remaining stage; returns self."""
        while self.next() is not None:
            pass
        return self

    @property
    def names(self):
        """Names of the stages run so far."""
        return [s.name for s in self.stages]

    def __getitem__(self, name):
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"stage {name!r} has not run; stages so far: {self.names}")

    def __iter__(self):
        return iter(self.stages)

    def summary(self):
        """One line per stage run so far, with its time."""
        return "\n".join(f"{s.name:<17s} {s.seconds * 1e3:8.1f} ms  {s.summary}"
                         for s in self.stages)

    def __repr__(self):
        return f"Trace({len(self.stages)} stages run)\n{self.summary()}"

    # ---- the pipeline: the model's stage methods, in the paper's order ----------
    def _run(self):
        m, c = self.model, self.model.config
        m.eval()
        batch = m.preprocess([self.image])
        yield Stage("preprocess", f"scaled by {batch.scales[0]:.3f} to "
                    f"{batch.image_sizes[0][0]}x{batch.image_sizes[0][1]}, padded to "
                    f"{batch.images.shape[2]}x{batch.images.shape[3]}",
                    dict(image=batch.images, scale=batch.scales[0],
                         image_size=batch.image_sizes[0],
                         original_size=batch.original_sizes[0]), batch)
        features = m.features(batch.images)
        yield Stage("features", f"backbone: {tuple(features.shape)} at stride "
                    f"{m.stride}", dict(features=features))
        anchors = m.anchors(*features.shape[2:])
        yield Stage("anchors", f"{len(anchors)} anchors = {features.shape[2]} x "
                    f"{features.shape[3]} cells x {c.num_anchors}", dict(anchors=anchors))
        rpn = m.rpn_outputs(features)
        yield Stage("rpn", f"objectness for {rpn.scores.shape[1]} anchors, max "
                    f"P(fg) {float(rpn.fg_probs.max()):.3f}",
                    dict(scores=rpn.scores[0], fg_probs=rpn.fg_probs[0],
                         deltas=rpn.deltas[0]), rpn)
        proposals = m.proposals(rpn, batch, training=False)[0]
        yield Stage("proposals", f"{len(proposals.before_nms_boxes)} boxes into NMS, "
                    f"{len(proposals.boxes)} proposals out",
                    dict(before_nms_boxes=proposals.before_nms_boxes,
                         before_nms_scores=proposals.before_nms_scores,
                         boxes=proposals.boxes, scores=proposals.scores,
                         removed_by_nms=proposals.removed_by_nms), proposals)
        if self.target is not None:
            yield from self._training_stages(batch, features, rpn, proposals)
        crops, _ = m.roi_head.crop(features, batch_rois([proposals.boxes]))
        yield Stage("roi_features", f"{c.crop_method}: {tuple(crops.shape)}",
                    dict(rois=proposals.boxes, crops=crops))
        class_scores, box_deltas = m.head_outputs(crops, [proposals.boxes])[0]
        yield Stage("head", f"{class_scores.shape[1]} class scores and boxes for "
                    f"{class_scores.shape[0]} RoIs",
                    dict(class_scores=class_scores,
                         class_probs=class_probabilities(class_scores),
                         class_boxes=class_boxes(proposals.boxes, box_deltas,
                                                 batch.image_sizes[0], c.box_stds)))
        det = m.detections(batch, 0, proposals.boxes, class_scores, box_deltas)
        m.clear_caches()
        yield Stage("detections", f"{len(det['boxes'])} detections above "
                    f"{c.score_threshold}", det)

    def _training_stages(self, batch, features, rpn, proposals):
        """What ``forward_train`` adds: the targets of both heads, the losses."""
        m = self.model
        gt_boxes = [batch.to_network(0, self.target["boxes"], m.config.dtype, xp=np)]
        anchor_labels = m.anchor_labels(rpn, batch, gt_boxes, self.rng)
        labels = anchor_labels[0]
        yield Stage("anchor_labels", labels.summary(),
                    dict(labels=labels.labels, bbox_targets=labels.bbox_targets), labels)
        sampled = m.proposal_targets([proposals.boxes], gt_boxes,
                                     [self.target["labels"]], self.rng)
        s = sampled[0]
        yield Stage("proposal_targets", f"{len(s.labels)} RoIs sampled: "
                    f"{s.num_positive} positive, {s.num_negative} negative (background)",
                    dict(rois=s.rois, labels=s.labels, bbox_targets=s.bbox_targets,
                         bbox_weights=s.bbox_weights), s)
        rpn_cls, rpn_box, _ = m.rpn_loss(rpn, anchor_labels)
        class_scores, box_deltas = m.roi_head.forward(features, batch_rois([s.rois]), self.rng)
        roi_cls, roi_box, _ = m.head_loss(class_scores, box_deltas, sampled)
        losses = {name: float(value) for name, value in zip(
            LOSS_NAMES, (rpn_cls, rpn_box, roi_cls, roi_box))}
        losses["total"] = sum(losses.values())
        yield Stage("losses", "  ".join(f"{k} {v:.4f}" for k, v in losses.items()),
                    losses)
