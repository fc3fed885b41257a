"""The learning-rate schedule: a short linear warm-up, then step decay.

py-faster-rcnn's solvers use ``lr_policy: "step"`` (lr 1e-3, then x0.1 for
the last part of the run); Detectron added a linear warm-up, which keeps
the first updates of a network trained from scratch from blowing up. With
base rate ``lr``, ``W`` warm-up iterations, decay milestones ``m_1 < m_2 <
...`` and factor ``gamma``, step ``s`` (0-based) uses::

    lr(s) = lr * min(1, (s + 1) / W) * gamma ** #{j : m_j <= s}

So step 0 runs at ``lr / W`` (never 0: no wasted step), step ``W - 1`` at
the full rate, and from step ``m_j`` on the rate is ``gamma`` times lower.
"""
import numbers

__all__ = ["milestones", "learning_rate"]


def milestones(lr_steps, iterations):
    """Turn ``lr_steps`` into sorted 0-based step indices.

    Parameters
    ----------
    lr_steps : sequence of float or int
        A float in (0, 1) is a fraction of the run (0.75: decay at 75% of
        ``iterations``, rounded to the nearest step); an int >= 1 is an
        absolute step index.
    iterations : int
        Length of the run (or of one stage of the alternating scheme).

    Returns
    -------
    list of int
        Sorted milestones (duplicates kept: two equal milestones decay twice).

    Raises
    ------
    ValueError
        On a float outside (0, 1), an int < 1 or anything else.
    """
    out = []
    for k, value in enumerate(lr_steps):
        if isinstance(value, bool):
            raise ValueError(f"lr_steps[{k}] must be a fraction in (0, 1) or "
                             f"an iteration >= 1, got {value!r}")
        if isinstance(value, numbers.Integral) and value >= 1:
            out.append(int(value))
        elif isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral) \
                and 0.0 < float(value) < 1.0:
            out.append(int(round(float(value) * iterations)))
        else:
            raise ValueError(f"lr_steps[{k}] must be a fraction in (0, 1) or "
                             f"an iteration >= 1, got {value!r}")
    return sorted(out)


def learning_rate(step, base_lr, iterations, warmup_iterations=0, lr_steps=(),
                  gamma=0.1):
    """The learning rate of 0-based step ``step`` (see the module docstring).

    Parameters
    ----------
    step : int
        0-based index of the step within the run (or stage).
    base_lr : float
    iterations : int
        Length of the run, which the fractions in ``lr_steps`` refer to.
    warmup_iterations : int
        ``W``; 0 or 1 means no warm-up.
    lr_steps : sequence of float or int
        See :func:`milestones`.
    gamma : float
        Decay factor at each milestone.

    Returns
    -------
    float
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    rate = float(base_lr)
    if warmup_iterations > 1:
        rate *= min(1.0, (step + 1) / warmup_iterations)
    for m in milestones(lr_steps, iterations):
        if step >= m:
            rate *= gamma
    return rate
