"""The run's JSON-lines log and its progress bar.

``log.jsonl`` holds one JSON object per line, flushed as it is written:

* ``{"event": "step", "step": s, "stage": k, "epoch": e, "lr": ..., "rpn_cls":
  ..., "rpn_box": ..., "roi_cls": ..., "roi_box": ..., "total": ...,
  "time": ...}`` after every step (``step`` 1-based; only the losses the
  step computed; ``time`` seconds of training so far);
* ``{"event": "eval", "step": s, "map": ..., "per_class": {...}, ...}``;
* ``{"event": "stop" | "diverged" | "stopped", "step": s, "message": ...}``
  (time budget spent; NaN/inf; Ctrl-C or an error, after the checkpoint of
  the last finished step was written).

Floats are written with Python's shortest round-trip repr, so a loss read
back from the log is bit-identical to the float that was computed.
"""
import json
import os

from tqdm.auto import tqdm

from ..detection_losses import LOSS_NAMES

__all__ = ["JsonlLog", "Progress", "read_log", "write_json"]


def write_json(path, value):
    """Write ``value`` as indented JSON atomically (temp file, then rename),
    so a crash never leaves a half-written file under ``path``."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1)
    os.replace(tmp, path)


def read_log(path):
    """Parse a ``log.jsonl``; a torn last line (a crash mid-write) is
    skipped. Returns a list of dicts."""
    records = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for k, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if k == len(lines) - 1:
                break
            raise ValueError(f"{path}: line {k + 1} is not JSON: {line[:80]!r}")
    return records


class JsonlLog:
    """Append-only JSON-lines writer.

    Parameters
    ----------
    path : str
    resume_step : int, optional
        Continue an earlier run from its checkpoint at this step: records
        after it (steps run after the last checkpoint, then lost) are cut,
        so the resumed log reads as one uninterrupted run. Without it the
        file is started afresh.
    """

    def __init__(self, path, resume_step=None):
        self.path = path
        self.records = []
        if resume_step is not None and os.path.exists(path):
            self.records = [r for r in read_log(path) if r.get("step", 0) <= resume_step]
            tmp = path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r) + "\n" for r in self.records)
            os.replace(tmp, path)
        self._file = open(path, "a" if resume_step is not None else "w",
                          encoding="utf-8")

    def write(self, record):
        """Append one record (a dict of JSON-able values) and flush."""
        self.records.append(record)
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self):
        self._file.close()


class Progress:
    """A tqdm bar showing exponentially smoothed losses and the rate.

    ``enabled=False`` hides it; otherwise tqdm decides (``disable=None``:
    shown on a terminal, silent in a pipe or a test).
    """

    def __init__(self, total, initial=0, enabled=True, smoothing=0.9):
        self.bar = tqdm(total=total, initial=initial, unit="step",
                        disable=None if enabled else True, dynamic_ncols=True)
        self.smoothing, self.smoothed = smoothing, {}

    def update(self, record):
        for name in LOSS_NAMES:
            if name in record:
                old = self.smoothed.get(name, record[name])
                self.smoothed[name] = self.smoothing * old + (1 - self.smoothing) * record[name]
        if not self.bar.disable:
            self.bar.set_description(record["stage"], refresh=False)
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in self.smoothed.items()}
                                 | {"lr": f"{record['lr']:.2g}"}, refresh=False)
        self.bar.update(1)

    def message(self, text):
        """Print a line above the bar (nothing when the bar is hidden)."""
        if not self.bar.disable:
            self.bar.write(text)

    def close(self):
        self.bar.close()
