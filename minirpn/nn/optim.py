"""Stochastic gradient descent with momentum and weight decay.

The update is PyTorch's form of momentum (which is also Caffe's when the
learning rate is constant)::

    g = grad + weight_decay * param        (L2 penalty; skipped for keys in
                                            no_weight_decay)
    v = momentum * v + g
    param -= lr * v

Caffe folds ``lr`` into ``v`` instead (``v = mu v + lr g; p -= v``); the two
differ only right after the learning rate changes, where this form applies
the new rate to the whole velocity at once. py-faster-rcnn's solver:
momentum 0.9, weight decay 5e-4, lr 1e-3 then 1e-4.
"""
import math

import numpy as np

from ..backend import get_array_module, to_numpy
from ..checks import check_probability
from ..jit import njit

__all__ = ["SGD"]


def _number(value, name, low=0.0):
    if isinstance(value, bool) or not isinstance(value, (int, float)) and \
            not hasattr(value, "__float__"):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(float(value)) or float(value) < low:
        raise ValueError(f"{name} must be a finite number >= {low}, got {value!r}")
    return float(value)


@njit(error_model="numpy")
def _sgd_kernel(p, g, v, lr, momentum, weight_decay, decay):
    """The three lines above in one pass over flat arrays (the ``xp`` code
    makes five passes and two temporaries: 418 -> 90 ms for VGG16's 137M
    parameters, benchmarks/README.md). The scalars come in p's dtype and the
    operations in the ``xp`` code's order, so the results are the same."""
    for i in range(p.size):
        grad = g[i] + weight_decay * p[i] if decay else g[i]
        vi = v[i] * momentum + grad
        v[i] = vi
        p[i] -= lr * vi


def _sgd_xp(p, g, v, lr, momentum, weight_decay, decay):
    """The same update with ``xp`` array operations (arrays that are not
    C-contiguous; CuPy arrays take :mod:`minirpn.cuda.sgd_kernel`)."""
    if decay:
        g = g + weight_decay * p
    v *= momentum
    v += g
    p -= lr * v


class SGD:
    """SGD over the live arrays of ``Module.parameters()``/``gradients()``.

    Parameters
    ----------
    params : dict of str -> array
        Parameters, updated in place by :meth:`step`. Build it with
        ``module.parameters(trainable_only=True)`` so that frozen layers
        get neither momentum nor weight decay.
    grads : dict of str -> array
        Gradients with the same keys and shapes.
    lr : float >= 0
        Learning rate; a plain attribute that schedulers set.
    momentum : float in [0, 1]
    weight_decay : float >= 0
    no_weight_decay : iterable of str, optional
        Keys exempt from weight decay (e.g. biases, as Caffe's
        ``decay_mult: 0``). Decay applies to every key by default.
    """

    def __init__(self, params, grads, lr, momentum=0.9, weight_decay=5e-4,
                 no_weight_decay=()):
        for key in params:
            if key not in grads:
                raise ValueError(f"grads has no entry for parameter {key!r}")
            if tuple(grads[key].shape) != tuple(params[key].shape):
                raise ValueError(
                    f"grads[{key!r}] must have shape {tuple(params[key].shape)}, "
                    f"got {tuple(grads[key].shape)}")
        for key in grads:
            if key not in params:
                raise ValueError(f"params has no entry for gradient {key!r}")
        self.no_weight_decay = set(no_weight_decay)
        for key in self.no_weight_decay:
            if key not in params:
                raise ValueError(f"no_weight_decay names unknown parameter {key!r}")
        self.params, self.grads = params, grads
        self.lr = lr
        self.momentum = check_probability(momentum, "momentum")
        self.weight_decay = _number(weight_decay, "weight_decay")
        self.velocity = {k: get_array_module(p).zeros_like(p)
                         for k, p in params.items()}

    @property
    def lr(self):
        """Learning rate (float >= 0); settable."""
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = _number(value, "lr")

    def step(self):
        """Apply one update to every parameter, in place."""
        for key, p in self.params.items():
            g, v = self.grads[key], self.velocity[key]
            decay = bool(self.weight_decay) and key not in self.no_weight_decay
            arrays = (p, g, v)
            if not (all(a.flags.c_contiguous and a.dtype == p.dtype for a in arrays)
                    and p.dtype in (np.float32, np.float64)):
                _sgd_xp(p, g, v, self._lr, self.momentum, self.weight_decay, decay)
                continue
            scalar = p.dtype.type
            args = (*(a.reshape(-1) for a in arrays), scalar(self._lr),
                    scalar(self.momentum), scalar(self.weight_decay), decay)
            if all(isinstance(a, np.ndarray) for a in arrays):
                _sgd_kernel(*args)
            else:  # CuPy: one launch instead of five CuPy calls
                from ..cuda import sgd_kernel  # imports numba.cuda: GPU path only
                sgd_kernel.sgd_step(*args)

    def zero_grad(self):
        """Set every gradient to zero, in place."""
        for g in self.grads.values():
            g[...] = 0

    def state(self):
        """Checkpointable state: numpy copies of the momentum buffers and
        the hyper-parameters."""
        return {"lr": self._lr, "momentum": self.momentum,
                "weight_decay": self.weight_decay,
                "velocity": {k: to_numpy(v).copy() for k, v in self.velocity.items()}}

    def load_state(self, state):
        """Restore :meth:`state` output (momentum buffers copied in place).

        Raises
        ------
        ValueError
            If the keys or shapes of the buffers differ from the parameters'.
        """
        velocity = state["velocity"]
        if set(velocity) != set(self.velocity):
            raise ValueError(
                f"load_state: velocity keys differ; missing "
                f"{sorted(set(self.velocity) - set(velocity))}, unknown "
                f"{sorted(set(velocity) - set(self.velocity))}")
        for key, value in velocity.items():
            v = self.velocity[key]
            if tuple(value.shape) != tuple(v.shape):
                raise ValueError(f"load_state: velocity[{key!r}] must have shape "
                                 f"{tuple(v.shape)}, got {tuple(value.shape)}")
            v[...] = get_array_module(v).asarray(value, dtype=v.dtype)
        self.lr = state.get("lr", self._lr)
        self.momentum = check_probability(state.get("momentum", self.momentum),
                                          "momentum")
        self.weight_decay = _number(state.get("weight_decay", self.weight_decay),
                                    "weight_decay")
