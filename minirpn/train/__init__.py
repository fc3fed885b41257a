"""Training: SGD with warm-up and step decay, joint or 4-step alternating.

``train(model, dataset, out_dir, TrainConfig(...))`` runs the loop: shuffled
batches with flips, one seeded generator for every random choice, a
JSON-lines log of every step, periodic evaluation and checkpoints, and an
exact resume. Modules: :mod:`.config` (TrainConfig, TrainResult),
:mod:`.schedule` (learning rate), :mod:`.batches` (data order),
:mod:`.stages` and :mod:`.alternating` (what each stage trains),
:mod:`.state` (checkpoint files), :mod:`.log`, :mod:`.interrupts` (Ctrl-C
between updates), :mod:`.trainer` (the loop). The periodic evaluation is
:func:`minirpn.evaluation.evaluate`, re-exported here.
"""
from ..evaluation import evaluate
from .config import (SCHEMES, TrainConfig, TrainingDiverged, TrainingInterrupted,
                     TrainResult)
from .log import read_log
from .schedule import learning_rate, milestones
from .state import MODEL_FILE, STATE_FILE
from .trainer import (LOG_FILE, METRICS_FILE, RUN_FILES, StepInfo, existing_run_files,
                      train)

__all__ = ["train", "TrainConfig", "TrainResult", "TrainingDiverged",
           "TrainingInterrupted", "StepInfo", "existing_run_files", "evaluate",
           "learning_rate", "milestones", "read_log",
           "SCHEMES", "LOG_FILE", "METRICS_FILE", "MODEL_FILE", "STATE_FILE", "RUN_FILES"]
