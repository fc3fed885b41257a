"""The paper's 4-step alternating training (Ren et al. 2015, section 3.2).

Two networks of the same Config: A (the model given to ``train``) and B,
built fresh with ``seed + 1`` so its convolutions start elsewhere ("at this
point the two networks do not share convolutional layers").

1. ``1-rpn``: train A's backbone and RPN for the proposal task
   (``a.forward_rpn``; A's head is frozen, so weight decay leaves it be).
2. ``2-detector``: train B's own backbone and its detection head on the
   proposals of A's step-1 RPN (``b.forward_head(..., proposals=...)``).
   They are computed per batch, on the fly, by A in eval mode with the
   training proposal settings (pre/post-NMS top-N "train"): the same boxes
   a precomputed file would hold, as A no longer changes, without storing
   them. B's RPN is frozen (it is not used yet).
3. ``3-rpn``: "use the detector network to initialise RPN training, but fix
   the shared convolutional layers and only fine-tune the layers unique to
   RPN": B's backbone (and head) frozen, B's RPN trained. With
   ``rpn_init="copy"`` (default) B's RPN first takes A's trained RPN
   weights (``load_parameters``), a warm start on features that are
   different but trained for the same task; ``"fresh"`` keeps B's random
   RPN, as py-faster-rcnn does (its stage-1 detector has no RPN layers).
4. ``4-detector``: backbone and RPN frozen, B's head fine-tuned on the
   proposals of B's own RPN (``b.forward_head``, no ``proposals``).

The result is B: one network whose RPN and detector share convolutions.
Freezing uses the modules' ``freeze``/``unfreeze``; each stage's optimizer
is built from ``parameters(trainable_only=True)``.
"""
from .stages import Stage

__all__ = ["alternating_stages"]


def alternating_stages(a, b, fractions, rpn_init="copy"):
    """The four stages for networks ``a`` (given) and ``b`` (fresh).

    Parameters
    ----------
    a, b : FasterRCNN
    fractions : 4 floats
        Shares of the iterations (``TrainConfig.stage_fractions``).
    rpn_init : {"copy", "fresh"}
        How step 3 initialises B's RPN (module docstring).

    Returns
    -------
    list of 4 Stage
    """
    def enter_rpn_a(fresh):
        a.unfreeze()
        a.roi_head.freeze()

    def enter_detector_b(fresh):
        a.freeze()
        b.unfreeze()
        b.rpn.freeze()

    def enter_rpn_b(fresh):
        b.unfreeze()
        b.backbone.freeze()
        b.roi_head.freeze()
        if fresh and rpn_init == "copy":
            b.rpn.load_parameters(a.rpn.parameters())

    def enter_head_b(fresh):
        b.unfreeze()
        b.backbone.freeze()
        b.rpn.freeze()

    def detector_on_a_proposals(images, targets, rng):
        # training=True: step 2 samples RoIs from as many proposals as joint
        # training would (py-faster-rcnn's rpn_generate keeps 2000 per image).
        return b.forward_head(images, targets, rng,
                              proposals=a.rpn_proposals(images, training=True))

    f1, f2, f3, f4 = fractions
    # Before step 3 B has no trained RPN, so B is no detector yet: periodic
    # evaluation waits for steps 3 and 4.
    return [Stage("1-rpn", f1, a, a.forward_rpn, enter_rpn_a, evaluable=False),
            Stage("2-detector", f2, b, detector_on_a_proposals, enter_detector_b,
                  evaluable=False),
            Stage("3-rpn", f3, b, b.forward_rpn, enter_rpn_b),
            Stage("4-detector", f4, b, b.forward_head, enter_head_b)]
