"""Checkpoints of a run: what ``resume=True`` needs to continue exactly.

A run folder holds two checkpoints, both written atomically (temporary
file, then rename; :func:`minirpn.checkpoint.save_checkpoint`):

* ``model.npz``: the run's network (the model, or network B of the
  alternating scheme) as a plain model checkpoint, for
  :meth:`FasterRCNN.load`, plus ``train_step``: the step it was saved at.
* ``train_state.npz``: everything needed to resume, in ONE file so that it
  is never half-updated: the parameters of every network of the run, the
  optimizer's momentum buffers and a JSON string with the step, the fixed
  iteration count, the generator's ``bit_generator.state``, the data
  stream's permutation and position, the elapsed time and both configs.
  Its ``param/`` entries are the primary network's, so it is itself
  loadable by ``FasterRCNN.load``; the others sit under ``net/NAME/``.

``train_state.npz`` is written first; ``model.npz`` only duplicates its
primary network. Before anything is written every parameter and momentum
buffer is checked to be finite, so a diverged run can never overwrite the
last good checkpoint.
"""
import dataclasses
import json
import os

import numpy as np

from ..backend import get_array_module, to_numpy
from ..checkpoint import load_checkpoint, save_checkpoint
from ..config import Config
from .config import TrainingDiverged

__all__ = ["STATE_FILE", "MODEL_FILE", "LOG_FILE", "METRICS_FILE", "RUN_FILES",
           "existing_run_files", "check_finite", "save_run", "load_run",
           "check_resume_config"]

STATE_FILE = "train_state.npz"
MODEL_FILE = "model.npz"
LOG_FILE, METRICS_FILE = "log.jsonl", "metrics.json"
#: The files a run writes; any of them in a folder means a run is there.
RUN_FILES = (MODEL_FILE, STATE_FILE, LOG_FILE, METRICS_FILE)
_NET, _VELOCITY, _STATE = "net/", "velocity/", "state_json"
#: model.npz's extra entry: the step of the run it was saved at.
TRAIN_STEP = "train_step"

#: TrainConfig fields a resumed run may change: they never alter the results.
MAY_CHANGE_ON_RESUME = ("eval_every", "checkpoint_every", "minutes")


def existing_run_files(out_dir):
    """The files of :data:`RUN_FILES` present in ``out_dir`` (a list of names;
    empty for a missing or fresh folder)."""
    return [name for name in RUN_FILES if os.path.exists(os.path.join(out_dir, name))]


def check_finite(networks, velocity, step):
    """Raise TrainingDiverged naming the first NaN/inf parameter or
    momentum buffer (``networks``: dict name -> model)."""
    arrays = [(f"parameter {key} of network {name!r}", p)
              for name, net in networks.items() for key, p in net.parameters().items()]
    arrays += [(f"momentum buffer of {key}", v) for key, v in velocity.items()]
    for what, value in arrays:
        if not bool(get_array_module(value).isfinite(value).all()):
            raise TrainingDiverged(f"{what} is not finite after step {step}; "
                                   "checkpoint not written")


def save_run(out_dir, networks, velocity, state):
    """Write ``train_state.npz`` then ``model.npz`` (both atomic).

    Parameters
    ----------
    out_dir : str
    networks : dict of str -> FasterRCNN
        The first entry is the primary network (the one ``model.npz`` holds).
    velocity : dict of str -> array
        The optimizer's momentum buffers (``SGD.velocity``).
    state : dict
        JSON-serialisable trainer state; ``state["step"]`` names the step.

    Raises
    ------
    TrainingDiverged
        If a parameter or buffer is NaN or inf; nothing is written then.
    """
    check_finite(networks, velocity, state["step"])
    (primary, model), *others = networks.items()
    extra = {_STATE: np.array(json.dumps(dict(state, networks=list(networks))))}
    for name, net in others:
        extra[f"{_NET}{name}/config_json"] = np.array(net.config.to_json())
        extra.update({f"{_NET}{name}/{k}": to_numpy(v) for k, v in net.parameters().items()})
    extra.update({_VELOCITY + k: to_numpy(v) for k, v in velocity.items()})
    save_checkpoint(os.path.join(out_dir, STATE_FILE), model.config, model.parameters(), extra)
    # the step lets evaluate/detect warn about an untrained (step 0) model
    save_checkpoint(os.path.join(out_dir, MODEL_FILE), model.config, model.parameters(),
                    {TRAIN_STEP: np.array(state["step"])})


def load_run(out_dir, networks):
    """Load ``train_state.npz`` into ``networks`` (in place).

    Parameters
    ----------
    out_dir : str
    networks : dict of str -> FasterRCNN
        Built as for a fresh run: names and configs must match the saved
        ones (a ValueError names the difference).

    Returns
    -------
    state : dict
        The trainer state saved by :func:`save_run`.
    velocity : dict of str -> numpy array
        The momentum buffers.
    """
    path = os.path.join(out_dir, STATE_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"resume=True but {path} does not exist "
                                "(no checkpoint of an earlier run in out_dir)")
    config, params, extra = load_checkpoint(path, with_extra=True)
    state = json.loads(str(extra[_STATE]))
    if state["networks"] != list(networks):
        raise ValueError(f"{path}: holds networks {state['networks']}, this run "
                         f"trains {list(networks)} (another scheme?)")
    (primary, model), *others = networks.items()
    saved = {primary: (config, params)}
    for name, _ in others:
        prefix = f"{_NET}{name}/"
        saved[name] = (Config.from_json(str(extra[prefix + "config_json"])),
                       {k[len(prefix):]: v for k, v in extra.items()
                        if k.startswith(prefix) and k != prefix + "config_json"})
    for name, net in networks.items():
        if saved[name][0] != net.config:
            diff = [k for k, v in saved[name][0].to_dict().items()
                    if net.config.to_dict()[k] != v]
            raise ValueError(f"{path}: network {name!r} was trained with another "
                             f"Config (fields differ: {', '.join(diff)})")
    for name, net in networks.items():
        net.load_parameters(saved[name][1])
    velocity = {k[len(_VELOCITY):]: v for k, v in extra.items() if k.startswith(_VELOCITY)}
    return state, velocity


def check_resume_config(saved, given, out_dir):
    """Raise ValueError naming the TrainConfig fields (other than
    :data:`MAY_CHANGE_ON_RESUME`) where ``given`` differs from ``saved``."""
    changed = [f.name for f in dataclasses.fields(saved)
               if f.name not in MAY_CHANGE_ON_RESUME
               and getattr(saved, f.name) != getattr(given, f.name)]
    if changed:
        was = ", ".join(f"{k}={getattr(saved, k)!r}" for k in changed)
        raise ValueError(f"resume: the run in {out_dir} was started with other "
                         f"TrainConfig values for {', '.join(changed)} (saved: {was})")
