"""The proposal layer: RPN outputs -> a few hundred or thousand RoIs.

Ren et al. 2015, section 3.3; py-faster-rcnn's ``proposal_layer.py``:
apply the RPN's regression coefficients to the
anchors, then prune the boxes by non-maximum suppression on the foreground
scores. The order of the steps is py-faster-rcnn's ``proposal_layer.py``:

1. decode the deltas against the anchors;
2. clip the boxes to the image;
3. drop boxes smaller than ``min_size * scale``;
4. keep the ``pre_nms_top_n`` highest scoring boxes;
5. non-maximum suppression at ``nms_threshold``;
6. keep the first ``post_nms_top_n`` survivors.

Every step records which anchors it removed, so a step-through can show the
proposals before and after NMS and what NMS removed.

The paper's counts (py-faster-rcnn ``config.py``; Ren et al. 2015, sections
3.3 and 4.1) are 12000 boxes into NMS and 2000 out in training, 6000 and 300
at test time: ``Config.paper``'s ``rpn_pre_nms_top_n_train`` etc.
"""
from dataclasses import dataclass, field

import numpy as np

from .backend import get_array_module
from .checks import (check_float_array, check_image_size, check_non_negative_number,
                     check_positive_int, check_positive_number, check_probability,
                     check_same_dtype, deferrable, first_bad_row)
from .ops import clip_boxes, decode_boxes, nms, remove_small_boxes

__all__ = ["propose", "Proposals", "ProposalStep", "STEP_NAMES"]

STEP_NAMES = ("decode", "clip", "min_size", "pre_nms_top_n", "nms",
              "post_nms_top_n")


@dataclass
class ProposalStep:
    """What one step of the proposal layer did.

    Attributes
    ----------
    name : str
        One of ``STEP_NAMES``.
    n_in, n_out : int
        Boxes going into and coming out of the step; ``n_in == n_out +
        len(removed)``.
    removed : (n_in - n_out,) int64
        Indices into the anchor array of the boxes this step removed, in the
        order the step saw them (score order for the top-n steps and NMS).
    """
    name: str
    n_in: int
    n_out: int
    removed: object


@dataclass
class Proposals:
    """Output of :func:`propose`.

    Shape symbols: P proposals kept, Q boxes that went into NMS (Q >= P).

    Attributes
    ----------
    boxes : (P, 4) float, dtype of the deltas
        Proposals (x1, y1, x2, y2) in input-image pixels, scores descending.
    scores : (P,) float
        Their foreground probabilities, descending.
    anchor_indices : (P,) int64
        The anchor each proposal was decoded from.
    before_nms_boxes : (Q, 4) float
        The boxes that went into NMS (after steps 1-4), scores descending.
    before_nms_scores : (Q,) float
    before_nms_anchor_indices : (Q,) int64
    steps : list of ProposalStep
        One record per step, in order (see ``STEP_NAMES``).
    """
    boxes: object
    scores: object
    anchor_indices: object
    before_nms_boxes: object
    before_nms_scores: object
    before_nms_anchor_indices: object
    steps: list = field(default_factory=list)

    def step(self, name):
        """The :class:`ProposalStep` called ``name``."""
        for record in self.steps:
            if record.name == name:
                return record
        raise KeyError(f"no step named {name!r}; steps are {STEP_NAMES}")

    @property
    def removed_by_nms(self):
        """(S,) int64 anchor indices of the S boxes NMS suppressed."""
        return self.step("nms").removed


def _split(index, keep, xp):
    """Rows ``keep`` of ``index`` survive; return (kept, removed) indices.

    The removed rows come first, in order, in a stable sort of the kept
    flags: their count is known (one per row not kept), so this needs no
    host wait, which reading them through a boolean mask takes on a GPU."""
    kept = xp.zeros(index.shape[0], dtype=np.int8)
    kept[keep] = 1
    removed = xp.argsort(kept, kind="stable")[:index.shape[0] - keep.shape[0]]
    return index[keep], index[removed]


def propose(fg_probs, deltas, anchors, image_size, *, pre_nms_top_n,
            post_nms_top_n, nms_threshold=0.7, min_size=16.0, scale=1.0):
    """Turn one image's RPN scores and deltas into proposals (the six steps).

    Shape symbols: A anchors, P proposals kept.

    The scores are foreground PROBABILITIES (the RPN's two-class softmax),
    not raw logits. Ranking by the raw foreground logit was ChainerCV's
    mistake: with a two-class softmax the probability is
    ``sigmoid(z_fg - z_bg)``, whose order is that of the logit difference,
    not of ``z_fg`` alone. Probabilities are also what we report and
    threshold downstream.

    Parameters
    ----------
    fg_probs : (A,) float32 or float64
        Foreground probability of each anchor, in [0, 1].
    deltas : (A, 4) float, same dtype
        Predicted (t_x, t_y, t_w, t_h) per anchor.
    anchors : (A, 4) float, same dtype
        Anchor boxes (x1, y1, x2, y2) in input-image pixels.
    image_size : (int, int)
        (H, W) of the network's input image, for clipping.
    pre_nms_top_n : int
        Boxes kept, by score, before NMS (step 4).
    post_nms_top_n : int
        Boxes kept after NMS (step 6).
    nms_threshold : float in [0, 1]
        A box is suppressed when its IoU with a higher scoring one is
        greater than this.
    min_size : float
        Smallest width and height kept, in ORIGINAL-image pixels: it is
        multiplied by ``scale``, as in py-faster-rcnn
        (``min_size * im_info[2]``).
    scale : float
        Factor the original image was resized by.

    Returns
    -------
    Proposals
        ``boxes`` (P, 4) and ``scores`` (P,) in the input dtype, plus the
        per-step bookkeeping. P may be 0.
    """
    xp = get_array_module(fg_probs, deltas, anchors)
    pre_nms_top_n, post_nms_top_n, nms_threshold, min_size = _check(
        fg_probs, deltas, anchors, image_size, scale, pre_nms_top_n,
        post_nms_top_n, nms_threshold, min_size)
    num_anchors = fg_probs.shape[0]
    steps = []
    index = xp.arange(num_anchors, dtype=np.int64)  # row -> anchor
    none = xp.zeros(0, dtype=np.int64)

    # 1. Decode: apply the RPN's regression coefficients to the anchors.
    boxes = decode_boxes(anchors, deltas)
    steps.append(ProposalStep("decode", num_anchors, num_anchors, none))

    # 2. Clip to the image: a box outside it crops nothing useful.
    boxes = clip_boxes(boxes, (image_size[0], image_size[1]))
    steps.append(ProposalStep("clip", num_anchors, num_anchors, none))

    # 3. Drop tiny boxes. min_size is in original-image pixels, so it is
    # scaled like the image was (py-faster-rcnn _filter_boxes). The kept
    # indices come back ascending: anchor order breaks score ties below.
    keep = remove_small_boxes(boxes, min_size * scale)
    index, removed = _split(index, keep, xp)
    boxes, scores = boxes[keep], fg_probs[keep]
    steps.append(ProposalStep("min_size", num_anchors, len(keep), removed))

    # 4. Top pre_nms_top_n by score; a stable sort so equal scores keep
    # anchor order and a run is reproducible.
    order = xp.argsort(-scores, kind="stable")
    n_in = order.shape[0]
    keep, cut = order[:pre_nms_top_n], order[pre_nms_top_n:]
    steps.append(ProposalStep("pre_nms_top_n", n_in, keep.shape[0],
                              index[cut]))
    boxes, scores, index = boxes[keep], scores[keep], index[keep]
    before = (boxes, scores, index)

    # 5. NMS removes near-duplicates so lower-ranked boxes can reach the
    # top N (Ren et al. 2015, 3.3). nms returns kept positions by score, ties
    # by position, so on this sorted input they come back ascending.
    keep = nms(boxes, scores, nms_threshold)
    index, removed = _split(index, keep, xp)
    steps.append(ProposalStep("nms", boxes.shape[0], keep.shape[0],
                              removed))
    boxes, scores = boxes[keep], scores[keep]

    # 6. Keep post_nms_top_n: the RoIs handed to the detection head.
    n_in = boxes.shape[0]
    cut = index[post_nms_top_n:]
    boxes, scores = boxes[:post_nms_top_n], scores[:post_nms_top_n]
    index = index[:post_nms_top_n]
    steps.append(ProposalStep("post_nms_top_n", n_in, boxes.shape[0], cut))

    return Proposals(boxes=boxes, scores=scores, anchor_indices=index,
                     before_nms_boxes=before[0],
                     before_nms_scores=before[1],
                     before_nms_anchor_indices=before[2], steps=steps)


@deferrable
def _check(fg_probs, deltas, anchors, image_size, scale, pre_nms_top_n,
           post_nms_top_n, nms_threshold, min_size):
    """Validate the arguments; return the four settings, checked."""
    xp = get_array_module(fg_probs, deltas, anchors)
    check_float_array(fg_probs, "fg_probs", ndim=1)
    n = fg_probs.shape[0]
    for name, x in (("deltas", deltas), ("anchors", anchors)):
        check_float_array(x, name, ndim=2)
        if x.shape != (n, 4):
            raise ValueError(
                f"{name} must have shape (A, 4) with A = {n} (the length "
                f"of fg_probs), got {tuple(x.shape)}")
    check_same_dtype("fg_probs", fg_probs, deltas=deltas, anchors=anchors)
    bad = first_bad_row(~xp.isfinite(fg_probs) | (fg_probs < 0)
                        | (fg_probs > 1))
    if bad is not None:
        raise ValueError(
            f"fg_probs must be finite probabilities in [0, 1] (softmax "
            f"output, not logits), got {float(fg_probs[bad])!r} at "
            f"row {bad}")
    # Finite deltas and valid anchors are checked (row named) by
    # decode_boxes before anything is computed.
    check_image_size(image_size)
    check_positive_number(scale, "scale")
    return (check_positive_int(pre_nms_top_n, "pre_nms_top_n"),
            check_positive_int(post_nms_top_n, "post_nms_top_n"),
            check_probability(nms_threshold, "nms_threshold"),
            check_non_negative_number(min_size, "min_size"))
