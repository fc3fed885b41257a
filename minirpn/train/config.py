"""What a training run is asked to do (:class:`TrainConfig`) and what it
gives back (:class:`TrainResult`, :class:`TrainingDiverged`)."""
import dataclasses
import json
import math
import numbers
from dataclasses import dataclass, field

from .schedule import milestones

__all__ = ["TrainConfig", "TrainResult", "TrainingDiverged", "TrainingInterrupted",
           "SCHEMES"]

SCHEMES = ("joint", "alternating")


class TrainingDiverged(FloatingPointError):
    """A loss or a parameter became NaN or inf; the message names it and
    the step, and the last good checkpoint is left in place."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or another KeyboardInterrupt) stopped a run after its current
    state was checkpointed; ``resume=True`` continues it.

    Attributes
    ----------
    step : int
        The step the run's checkpoint holds (the last finished step).
    out_dir : str
        The run folder.
    """

    def __init__(self, message, step, out_dir):
        super().__init__(message)
        self.step, self.out_dir = step, out_dir


@dataclass
class TrainConfig:
    """Optimisation settings (the detector's own settings are in Config).

    Defaults follow py-faster-rcnn's solver (momentum 0.9, weight decay
    5e-4, biases not decayed, x0.1 steps) except ``lr``: the networks here
    train from scratch, not from ImageNet weights, and 0.01 is what the toy
    configs need.
    """

    iterations: int = 1000
    """SGD steps of the whole run (alternating: of all four steps). With
    ``minutes`` it is an upper bound, or None for no bound."""
    batch_size: int = 2
    """Images per step."""
    lr: float = 0.01
    """Base learning rate."""
    momentum: float = 0.9
    weight_decay: float = 5e-4
    decay_biases: bool = False
    """Decay biases too (Caffe's prototxts set ``decay_mult: 0`` on them)."""
    warmup_iterations: int = 50
    """Linear warm-up length (see :mod:`minirpn.train.schedule`)."""
    lr_steps: tuple = (0.75,)
    """Decay milestones: fractions in (0, 1) of the run (of each stage for
    the alternating scheme) or absolute step indices (ints)."""
    lr_gamma: float = 0.1
    flip: bool = True
    """Random horizontal flips with probability 1/2 (``TRAIN.USE_FLIPPED``)."""
    eval_every: int = 0
    """Evaluate on the validation set every this many steps (0: only at the
    end)."""
    checkpoint_every: int = 500
    """Write the checkpoint every this many steps (0: only at the start and
    the end)."""
    seed: int = 0
    """Seed of the one numpy Generator behind shuffling, flips, sampling and
    dropout."""
    scheme: str = "joint"
    """"joint" (approximate joint training) or "alternating" (4 steps)."""
    stage_fractions: tuple = (0.25, 0.25, 0.25, 0.25)
    """Alternating: share of ``iterations`` given to each of the 4 steps."""
    rpn_init: str = "copy"
    """Alternating step 3: "copy" starts B's RPN from A's trained RPN,
    "fresh" keeps B's own randomly initialised RPN (py-faster-rcnn)."""
    minutes: float = None
    """Optional wall-clock budget; see :func:`minirpn.train.train`."""

    def __post_init__(self):
        self.lr_steps = tuple(self.lr_steps)
        self.stage_fractions = tuple(self.stage_fractions)
        self.validate()

    def validate(self):
        """Raise ValueError naming the first field with an impossible value."""
        def need(ok, name, what):
            if not ok:
                raise ValueError(f"TrainConfig.{name} must be {what}, "
                                 f"got {getattr(self, name)!r}")

        def is_int(v, low):
            return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= low

        def is_num(v, low, high=math.inf):
            return isinstance(v, numbers.Real) and not isinstance(v, bool) \
                and math.isfinite(v) and low <= v <= high

        need(self.minutes is None or is_num(self.minutes, 0) and self.minutes > 0,
             "minutes", "None or a positive number")
        need(is_int(self.iterations, 1) or self.iterations is None and self.minutes,
             "iterations", "an int >= 1 (None only with minutes)")
        need(is_int(self.batch_size, 1), "batch_size", "an int >= 1")
        need(is_num(self.lr, 0), "lr", "a finite number >= 0")
        need(is_num(self.momentum, 0, 1), "momentum", "in [0, 1]")
        need(is_num(self.weight_decay, 0), "weight_decay", "a finite number >= 0")
        need(is_int(self.warmup_iterations, 0), "warmup_iterations", "an int >= 0")
        need(is_num(self.lr_gamma, 0), "lr_gamma", "a finite number >= 0")
        need(is_int(self.eval_every, 0), "eval_every", "an int >= 0")
        need(is_int(self.checkpoint_every, 0), "checkpoint_every", "an int >= 0")
        need(is_int(self.seed, 0), "seed", "an int >= 0")
        need(self.scheme in SCHEMES, "scheme", f"one of {SCHEMES}")
        need(self.rpn_init in ("copy", "fresh"), "rpn_init", '"copy" or "fresh"')
        need(len(self.stage_fractions) == 4
             and all(is_num(f, 0) and f > 0 for f in self.stage_fractions),
             "stage_fractions", "4 positive numbers")
        try:
            milestones(self.lr_steps, 1)
        except ValueError as exc:
            raise ValueError(f"TrainConfig.{exc}") from None

    def to_dict(self):
        """A JSON-serialisable dict of every field."""
        return dataclasses.asdict(self)

    def to_json(self):
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, values):
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s): {', '.join(unknown)}")
        return cls(**values)


@dataclass
class TrainResult:
    """What :func:`minirpn.train.train` returns.

    Attributes
    ----------
    model : FasterRCNN
        The trained network: the model passed in (joint) or network B, the
        one with shared convolutions (alternating).
    history : list of dict
        One record per step, as in ``log.jsonl``: ``step`` (1-based),
        ``stage``, ``lr``, the losses computed (``rpn_cls``, ``rpn_box``,
        ``roi_cls``, ``roi_box``, ``total``), ``time`` (seconds).
    metrics : dict or None
        Final evaluation when a validation set was given: ``map``,
        ``per_class`` (class name -> AP), ``method``, ``seconds`` (training
        time), ``iterations``.
    evaluations : list of dict
        Every evaluation record (``step``, ``map``, ``per_class``, ...).
    iterations : int
        Steps completed.
    planned_iterations : int
        Steps the schedule was laid out for (fixed at the start).
    seconds : float
        Training wall time, summed over resumed sessions.
    stop_reason : str
        "completed" or "time budget".
    out_dir : str
    ap : APResult or None
        The final evaluation itself (``.table(class_names)``, PR curves).
    """
    model: object
    history: list = field(repr=False)
    metrics: dict
    evaluations: list = field(repr=False)
    iterations: int
    planned_iterations: int
    seconds: float
    stop_reason: str
    out_dir: str
    ap: object = field(default=None, repr=False)
