"""Stages of a run, how the iterations are split between them, and the
timing probe behind the ``minutes`` budget.

A run is a list of :class:`Stage`: one for joint training, four for the
alternating scheme. Each stage updates one network (``model``) with the
losses its ``forward`` returns (the model's ``forward_train``, or its RPN's
or head's half), on its own optimizer and its own learning-rate schedule
(warm-up and decay relative to the stage's length), as the paper's four
steps are four separate solver runs in py-faster-rcnn.
"""
import math
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ..data import drop_difficult

__all__ = ["Stage", "joint_stages", "split_lengths", "locate",
           "estimate_step_seconds"]


@dataclass
class Stage:
    """One stage of training.

    Attributes
    ----------
    name : str
        Shown in the log and the progress bar ("joint", "1-rpn", ...).
    fraction : float
        Share of the run's iterations.
    model : FasterRCNN
        The network whose trainable parameters the stage updates.
    forward : callable(images, targets, rng) -> dict of losses
        The forward pass of one step: ``model.forward_train`` (joint),
        ``model.forward_rpn`` or ``model.forward_head`` (alternating);
        ``model.backward()`` follows it.
    enter : callable(fresh: bool), optional
        Sets the modules' frozen flags; with ``fresh`` (the stage starts
        now, not a resume in its middle) also initialises what the stage
        starts from. Called before the stage's optimizer is built.
    evaluable : bool
        Whether the run's network is a meaningful detector during this
        stage (periodic evaluation is skipped otherwise).
    """
    name: str
    fraction: float
    model: object
    forward: Callable
    enter: Optional[Callable] = None
    evaluable: bool = True


def joint_stages(model):
    """Approximate joint training (paper section 3.2): one stage, all four
    losses. The model's own frozen flags are respected (freeze its backbone
    beforehand to fine-tune only the heads)."""
    return [Stage("joint", 1.0, model, model.forward_train)]


def split_lengths(iterations, fractions):
    """Split ``iterations`` steps by ``fractions`` (rounded cumulatively,
    so the lengths add up exactly). Every stage needs at least one step.

    Returns
    -------
    list of int
    """
    total, cumulative, ends = float(sum(fractions)), 0.0, []
    for f in fractions:
        cumulative += f
        ends.append(int(math.floor(iterations * cumulative / total + 0.5)))
    ends[-1] = iterations
    lengths = [b - a for a, b in zip([0] + ends[:-1], ends)]
    if min(lengths) < 1:
        raise ValueError(f"{iterations} iterations split by {tuple(fractions)} give "
                         f"stages of {lengths} steps; every stage needs at least one "
                         "(raise iterations)")
    return lengths


def locate(lengths, step):
    """(stage index, 0-based step within the stage) of 0-based ``step``."""
    start = 0
    for k, n in enumerate(lengths):
        if step < start + n:
            return k, step - start
        start += n
    raise ValueError(f"step {step} lies past the end of the run ({start} steps)")


def estimate_step_seconds(stages, dataset, batch_size, seed, timed_steps=3):
    """Seconds one step takes, averaged over the stages by their fractions.

    Each stage's work (loading a batch, its ``forward`` (with proposals
    from another network in alternating step 2), ``backward``) runs once to warm caches and load
    compiled kernels, then ``timed_steps`` times on batches spread over the
    dataset (image sizes vary, and so does the cost of a step); the mean of
    the timed runs is the estimate. Nothing is updated and the run's own
    generator is not touched (a throwaway one drives the sampling), so the
    probe does not change the results of the run that follows; gradients
    are zeroed afterwards.
    """
    rng = np.random.default_rng([seed, 1])
    starts = np.linspace(0, len(dataset), timed_steps + 1, endpoint=False).astype(int)
    seconds = []
    for stage in stages:
        elapsed = []
        for start_index in starts:
            indices = [(start_index + i) % len(dataset) for i in range(batch_size)]
            start = time.perf_counter()
            items = [dataset[i] for i in indices]
            images = [image for image, _ in items]
            targets = [drop_difficult(t) for _, t in items]
            stage.forward(images, targets, rng)
            stage.model.backward()
            elapsed.append(time.perf_counter() - start)
        stage.model.zero_grad()
        seconds.append(float(np.mean(elapsed[1:])))  # the first one warms up
    weights = [s.fraction for s in stages]
    return float(np.dot(weights, seconds) / sum(weights))
