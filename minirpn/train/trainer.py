"""The training loop behind :func:`train`."""
import dataclasses
import os
import time
from collections import namedtuple

import numpy as np

from ..checkpoint import remove_orphaned_temporaries
from ..faster_rcnn import FasterRCNN
from ..nn import SGD
from .alternating import alternating_stages
from .batches import BatchStream
from .config import TrainConfig, TrainingDiverged, TrainingInterrupted, TrainResult
from ..evaluation.detector import evaluate, label_names, metrics_dict
from .interrupts import CriticalSections
from .log import JsonlLog, Progress, write_json
from .schedule import learning_rate
from .stages import estimate_step_seconds, joint_stages, locate, split_lengths
from .state import (LOG_FILE, METRICS_FILE, RUN_FILES, STATE_FILE,
                    check_resume_config, existing_run_files, load_run, save_run)

__all__ = ["train", "StepInfo", "LOG_FILE", "METRICS_FILE", "RUN_FILES",
           "existing_run_files"]

#: What ``callback`` receives after every step: the 1-based step, the stage
#: name, the step's log record and the run's networks (dict name -> model).
StepInfo = namedtuple("StepInfo", ["step", "stage", "record", "networks"])

#: Share of the remaining time budget planned for steps; the rest is left
#: for evaluations, checkpoints and the optimizer updates the probe omits.
_BUDGET_MARGIN = 0.9


def train(model, train_dataset, out_dir, train_config=None, val_dataset=None,
          resume=False, progress=True, class_names=None, callback=None,
          overwrite=False):
    """Train a detector with SGD; log, checkpoint, evaluate, resume.

    Parameters
    ----------
    model : FasterRCNN
        Trained in place (joint), or network A of the alternating scheme.
    train_dataset : indexable dataset
        ``dataset[i] -> (image (H, W, 3) uint8, target dict)`` with
        ``boxes``, ``labels`` and optionally ``difficult`` (dropped for
        training).
    out_dir : str or os.PathLike
        Run folder (created): ``log.jsonl``, ``model.npz``,
        ``train_state.npz``, ``metrics.json``. A fresh run refuses a folder
        holding any of these (an earlier run) unless ``overwrite``.
        Temporary ``.tmp-*.npz`` files that a killed checkpoint write left
        there are removed at the start.
    train_config : TrainConfig, optional
    val_dataset : indexable dataset, optional
        Evaluated (mAP, "area" method, IoU 0.5) every ``eval_every`` steps
        and at the end; the final metrics go to ``metrics.json``.
    resume : bool
        Continue the run saved in ``out_dir/train_state.npz``. The losses
        after the resume point are bit-identical to an uninterrupted run's.
        The saved TrainConfig and iteration count are used; the given one
        may differ only in ``eval_every``, ``checkpoint_every`` and
        ``minutes``. Steps run after the last checkpoint (before a hard
        crash: kill -9, power cut) are run again and their log lines
        replaced. Files: see
        :mod:`minirpn.train.state`.
    progress : bool
        Show a tqdm bar (only on a terminal).
    class_names : sequence of str, optional
        Names of labels 1..C for the per-class APs; default: the validation
        (or training) dataset's ``class_names``.
    callback : callable(StepInfo), optional
        Called after every step (after its checkpoint and evaluation).
    overwrite : bool
        Start afresh in a folder that holds an earlier run. Nothing is
        deleted up front: the new step-0 checkpoint replaces ``model.npz``
        and ``train_state.npz`` (atomic renames), and only then are the old
        ``metrics.json`` removed and ``log.jsonl`` restarted, so a run that
        fails before that (bad data, bad config) leaves the old run intact.

    Returns
    -------
    TrainResult

    Raises
    ------
    FileExistsError
        ``out_dir`` holds an earlier run and neither ``resume`` nor
        ``overwrite`` was given.
    TrainingDiverged
        A loss or parameter became NaN/inf; the message names it and the
        step. The checkpoint of the last good step stays in place.
    TrainingInterrupted
        Ctrl-C (a KeyboardInterrupt, a subclass of it): the last finished
        step was checkpointed first, so ``resume=True`` continues the run.
        A Ctrl-C that arrives while the parameters are being updated or a
        checkpoint is written takes effect just after it.
    Exception
        Any other error during the run (a corrupt image read at step k, a
        failing callback) is re-raised after the same checkpoint, with a
        note (PEP 678) naming the checkpoint's step and folder. The
        generator and data stream are rewound to the last finished step,
        so the resumed run is still bit-identical. Other BaseExceptions
        (SystemExit, GeneratorExit) pass through without a checkpoint.

    Notes
    -----
    Time budget (``minutes``): before step 1 a probe times each stage's
    step (see :func:`.stages.estimate_step_seconds`) and the iteration
    count is FIXED at ``0.9 * budget / seconds_per_step`` (capped by
    ``iterations`` when given; at least one step per stage), so the warm-up
    and decay milestones are laid out for a known length. The run then
    also stops as soon as the wall clock (summed over resumed sessions)
    passes the budget, with ``stop_reason = "time budget"``, even if the
    fixed count is not reached (the last decay steps may then be cut). A
    resumed run keeps the stored count; ``minutes`` then only moves that
    deadline.
    """
    cfg = TrainConfig() if train_config is None else train_config
    if not isinstance(model, FasterRCNN):
        raise TypeError(f"model must be a FasterRCNN, got {type(model).__name__}")
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"train_config must be a TrainConfig, got {type(cfg).__name__}")
    cfg.validate()
    if resume and overwrite:
        raise ValueError("resume=True continues the run in out_dir and overwrite=True "
                         "replaces it: give at most one")
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    run = _Run(model, train_dataset, out_dir, cfg, val_dataset, progress,
               class_names, callback)
    return run.run(resume, overwrite)


class _Run:
    def __init__(self, model, dataset, out_dir, cfg, val_dataset, progress,
                 class_names, callback):
        self.session_start = time.perf_counter()
        self.cfg, self.dataset, self.out_dir = cfg, dataset, out_dir
        self.val, self.show_progress, self.callback = val_dataset, progress, callback
        if cfg.scheme == "joint":
            self.networks = {"model": model}
            self.stages = joint_stages(model)
        else:
            b = FasterRCNN(dataclasses.replace(model.config, seed=model.config.seed + 1))
            self.networks = {"b": b, "a": model}
            self.stages = alternating_stages(model, b, cfg.stage_fractions, cfg.rpn_init)
        self.primary = next(iter(self.networks.values()))
        for source in (val_dataset, dataset):
            if class_names is None and len(getattr(source, "class_names", ())):
                class_names = source.class_names
        self.names = label_names(class_names, model.config.num_classes)
        self.rng = np.random.default_rng(cfg.seed)
        self.stream = BatchStream(dataset, cfg.batch_size, self.rng, cfg.flip)
        self.opt = self.stage_index = self.pending_velocity = self.last_saved = None
        self.evaluations, self.stop_reason, self.last_ap = [], "completed", (None, None)
        self.log = self.bar = self.mark = None
        # "update" (parameters possibly half updated: never checkpointed) or
        # "save" (train_state.npz and model.npz possibly at different steps)
        self.sections = CriticalSections()

    def path(self, name):
        return os.path.join(self.out_dir, name)

    def elapsed(self):
        """Training seconds so far, over all sessions of the run."""
        return self.elapsed_before + time.perf_counter() - self.session_start

    # ---- start: fresh or resumed -------------------------------------------
    def run(self, resume, overwrite):
        with self.sections.handling_ctrl_c():
            try:
                if resume:
                    self.restore()
                else:
                    self.begin(overwrite)
                self.bar = Progress(self.planned, self.done, self.show_progress)
                self.loop()
                self.save_final()
                metrics = self.final_metrics()
            except TrainingDiverged:
                raise
            except (Exception, KeyboardInterrupt) as exc:
                if self.log is None:       # failed before the run started
                    raise
                self.keep_work(exc)
            finally:
                for closable in (self.bar, self.log):
                    if closable is not None:
                        closable.close()
        if self.cfg.scheme == "alternating":
            for net in self.networks.values():   # hand back plain networks
                net.unfreeze()
        history = [r for r in self.log.records if r["event"] == "step"]
        return TrainResult(model=self.primary, history=history, metrics=metrics,
                           evaluations=self.evaluations, iterations=self.done,
                           planned_iterations=self.planned, seconds=self.elapsed(),
                           stop_reason=self.stop_reason, out_dir=self.out_dir,
                           ap=self.last_ap[1])

    def begin(self, overwrite):
        earlier = existing_run_files(self.out_dir)
        if earlier and not overwrite:
            raise FileExistsError(
                f"{self.out_dir} already holds a training run ({', '.join(earlier)}): "
                "pass resume=True to continue it or overwrite=True to replace it")
        remove_orphaned_temporaries(self.out_dir)
        self.done, self.elapsed_before = 0, 0.0
        self.planned = self.cfg.iterations
        if self.cfg.minutes is not None:
            self.planned = self.plan_for_budget()
        self.lengths = split_lengths(self.planned, [s.fraction for s in self.stages])
        self.set_mark()
        # Step 0: a divergence always leaves a good checkpoint. Its atomic
        # renames are the first change to the folder; an earlier run's
        # metrics and log go only once it exists.
        self.save()
        if os.path.exists(self.path(METRICS_FILE)):
            os.remove(self.path(METRICS_FILE))
        self.log = JsonlLog(self.path(LOG_FILE))

    def plan_for_budget(self):
        seconds = estimate_step_seconds(self.stages, self.dataset, self.cfg.batch_size,
                                        self.cfg.seed)
        left = self.cfg.minutes * 60.0 - self.elapsed()
        planned = max(len(self.stages), int(_BUDGET_MARGIN * left / seconds))
        return planned if self.cfg.iterations is None else min(planned, self.cfg.iterations)

    def restore(self):
        remove_orphaned_temporaries(self.out_dir)
        state, velocity = load_run(self.out_dir, self.networks)
        check_resume_config(TrainConfig.from_dict(state["train_config"]), self.cfg,
                            self.out_dir)
        self.rng.bit_generator.state = state["rng"]
        self.stream.load_state(state["stream"])
        self.done, self.planned = state["step"], state["iterations"]
        self.elapsed_before = state["elapsed"]
        self.session_start = time.perf_counter()
        self.lengths = split_lengths(self.planned, [s.fraction for s in self.stages])
        self.pending_velocity = (state["stage"], velocity)
        self.log = JsonlLog(self.path(LOG_FILE), resume_step=self.done)
        self.evaluations = [r for r in self.log.records if r["event"] == "eval"]
        self.last_saved = self.done
        self.set_mark()

    # ---- the loop -----------------------------------------------------------
    def loop(self):
        while self.done < self.planned:
            if self.cfg.minutes is not None and self.elapsed() >= self.cfg.minutes * 60:
                self.stop_reason = "time budget"
                self.log.write({"event": "stop", "step": self.done, "message":
                                f"time budget of {self.cfg.minutes:g} min spent after "
                                f"step {self.done} of {self.planned}"})
                break
            k, s = locate(self.lengths, self.done)
            if k != self.stage_index:
                self.enter(k, fresh=(s == 0))
            stage = self.stages[k]
            record = self.step(stage, s)
            if self.cfg.checkpoint_every and self.done % self.cfg.checkpoint_every == 0:
                self.save()
            if self.val is not None and self.cfg.eval_every and stage.evaluable \
                    and self.done % self.cfg.eval_every == 0:
                self.evaluate()
            if self.callback is not None:
                self.callback(StepInfo(self.done, stage.name, record, self.networks))

    def enter(self, k, fresh):
        """Start (or, resumed, re-enter) stage k: frozen flags, optimizer."""
        stage, cfg = self.stages[k], self.cfg
        if stage.enter is not None:
            stage.enter(fresh)
        params = stage.model.parameters(trainable_only=True)
        no_decay = () if cfg.decay_biases else [n for n in params if n.endswith("bias")]
        self.opt = SGD(params, stage.model.gradients(trainable_only=True), lr=cfg.lr,
                       momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                       no_weight_decay=no_decay)
        if not fresh and self.pending_velocity is not None:
            saved_stage, velocity = self.pending_velocity
            if saved_stage != k:
                raise ValueError(f"resume: checkpoint momentum belongs to stage "
                                 f"{saved_stage}, the run continues in stage {k}")
            self.opt.load_state({"velocity": velocity})
        self.pending_velocity, self.stage_index = None, k

    def step(self, stage, s):
        """One SGD step of ``stage`` (its 0-based step ``s``); returns the record."""
        cfg, number = self.cfg, self.done + 1
        lr = learning_rate(s, cfg.lr, self.lengths[self.stage_index],
                           cfg.warmup_iterations, cfg.lr_steps, cfg.lr_gamma)
        self.opt.lr = lr
        images, targets = self.stream.next_batch()
        try:
            stage.model.zero_grad()
            losses = stage.forward(images, targets, self.rng)
        except FloatingPointError as exc:
            self.diverged(number, f"stage {stage.name}: {exc}", exc)
        stage.model.backward()
        record = {"event": "step", "step": number, "stage": stage.name,
                  "epoch": self.stream.epoch, "lr": lr, **losses}
        with self.sections.critical("update"):
            self.opt.step()
            self.done = number
            record["time"] = round(self.elapsed(), 3)
            self.log.write(record)
            self.bar.update(record)
            self.set_mark()
        return record

    def diverged(self, number, what, cause=None):
        message = (f"training diverged at step {number} ({what}); the last good "
                   f"checkpoint is {self.path(STATE_FILE)} (step {self.last_saved})")
        if self.log is not None:
            self.log.write({"event": "diverged", "step": number, "message": message})
        raise TrainingDiverged(message) from cause

    # ---- checkpoints and evaluation -----------------------------------------
    def save(self):
        state = {"step": self.done, "iterations": self.planned, "stage": self.stage_index,
                 "rng": self.rng.bit_generator.state, "stream": self.stream.state(),
                 "elapsed": self.elapsed(), "train_config": self.cfg.to_dict()}
        try:
            with self.sections.critical("save"):
                save_run(self.out_dir, self.networks,
                         {} if self.opt is None else self.opt.velocity, state)
        except TrainingDiverged as exc:
            self.diverged(self.done, str(exc), exc)
        self.last_saved = self.done

    # ---- failures: Ctrl-C and errors keep the work done ---------------------
    def set_mark(self):
        """Remember the generator and data stream as they are after step
        ``self.done``: a step that fails part-way has consumed both."""
        self.mark = (self.rng.bit_generator.state,
                     (self.stream.order, self.stream.position, self.stream.epoch))

    def rewind(self):
        self.rng.bit_generator.state = self.mark[0]
        self.stream.order, self.stream.position, self.stream.epoch = self.mark[1]

    def keep_work(self, exc):
        """Checkpoint the last finished step, log why the run stopped, and
        raise: TrainingInterrupted for Ctrl-C, else ``exc`` with a note."""
        if self.sections.clear() != "update" and self.last_saved != self.done:
            self.rewind()
            try:
                self.save()
            except Exception:  # e.g. the disk is full: keep the older checkpoint
                pass
        where = (f"the checkpoint of step {self.last_saved} is in {self.out_dir}: "
                 "resume=True (minirpn train ... --resume) continues the run")
        what = "interrupted" if isinstance(exc, KeyboardInterrupt) else \
            f"stopped by {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        message = f"training {what} after step {self.done} of {self.planned}; {where}"
        self.log.write({"event": "stopped", "step": self.done, "message": message})
        if isinstance(exc, KeyboardInterrupt):
            raise TrainingInterrupted(message, self.last_saved, self.out_dir) from exc
        exc.add_note(where)
        raise exc

    def save_final(self):
        if self.last_saved != self.done:
            self.save()

    def evaluate(self):
        start = time.perf_counter()
        result = evaluate(self.primary, self.val, batch_size=self.cfg.batch_size)
        record = {"event": "eval", "step": self.done, **metrics_dict(result, self.names),
                  "seconds": round(time.perf_counter() - start, 3)}
        self.evaluations.append(record)
        self.last_ap = (self.done, result)
        self.log.write(record)
        self.bar.message(f"step {self.done}: mAP {record['map']:.4f}")
        return record

    def final_metrics(self):
        if self.val is None:
            return None
        seconds = self.elapsed()
        last = self.evaluations[-1] if self.last_ap[0] == self.done else self.evaluate()
        metrics = {k: last[k] for k in ("map", "per_class", "method", "iou_threshold")}
        metrics.update(seconds=round(seconds, 3), iterations=self.done)
        write_json(self.path(METRICS_FILE), metrics)
        return metrics
