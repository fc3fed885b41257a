"""``minirpn detect``: detections on image files, each result written as it
finishes, inputs never overwritten.

For each input, in order: read it (an unreadable file is skipped with a
warning, and the command exits 1 at the end, after every readable image is
done), detect, write the annotated PNG (atomically: temporary file, then
rename) and append one line to ``detections.jsonl``, flushed. At the end
``detections.json`` holds the same records as one list.

Why JSON lines while running: a line per image costs O(1) to write, while
rewriting one JSON list after each image costs O(n) per image (O(n^2) for
the run); a crash or Ctrl-C after image k still leaves the k results, each
line whole, readable with ``minirpn.train.read_log`` or any JSON-lines
reader. ``detections.json`` keeps the one-list form the COCO tools and the
earlier versions of this command use.
"""
import json
import os
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

__all__ = ["detect_command", "output_names", "RESULTS_FILE", "LINES_FILE"]

RESULTS_FILE, LINES_FILE = "detections.json", "detections.jsonl"


def output_names(paths):
    """Unique, deterministic PNG names for the input images.

    A file's stem (``x/img.jpg`` -> ``img.png``); where stems clash
    (ignoring case, for case-insensitive file systems), as few parent
    folder names as tell the clashing files apart (``x/img.png``,
    ``y/img.png`` -> ``x_img.png``, ``y_img.png``); files that no folder
    tells apart (``a.png`` and ``a.jpg``, or one file given twice) are
    numbered in input order (``a-1.png``, ``a-2.png``).

    Parameters
    ----------
    paths : sequence of str or os.PathLike

    Returns
    -------
    list of str
        One file name per path, all different.
    """
    full = [Path(os.path.abspath(os.fspath(p))) for p in paths]
    names = [p.stem for p in full]
    groups = defaultdict(list)
    for i, name in enumerate(names):
        groups[name.lower()].append(i)
    for members in groups.values():
        if len(members) < 2:
            continue
        for depth in range(1, max(len(full[i].parent.parts) for i in members)):
            trial = {i: "_".join([*full[i].parent.parts[1:][-depth:], full[i].stem])
                     for i in members}
            if len({t.lower() for t in trial.values()}) == len(members):
                for i, t in trial.items():
                    names[i] = t
                break
    counts = Counter(n.lower() for n in names)
    taken, out = set(counts), []
    used = set()
    for name in names:
        candidate, k = name, 1
        if counts[name.lower()] > 1:
            while f"{name}-{k}".lower() in taken | used:
                k += 1
            candidate = f"{name}-{k}"
        used.add(candidate.lower())
        out.append(candidate + ".png")
    return out


def _check_out_folder(out, images, outputs, overwrite):
    """Refuse an --out that holds an input image, or (unless ``overwrite``)
    any file this run would write."""
    real_out = os.path.realpath(out)
    for path in images:
        if os.path.realpath(os.path.dirname(os.path.abspath(path))) == real_out:
            raise ValueError(f"--out {out} holds the input image {path}: detect never "
                             "writes beside its inputs (it could overwrite them); "
                             "choose another --out")
    earlier = [n for n in (RESULTS_FILE, LINES_FILE, *outputs)
               if os.path.exists(os.path.join(out, n))]
    if earlier and not overwrite:
        more = f" and {len(earlier) - 3} more" if len(earlier) > 3 else ""
        raise FileExistsError(f"--out {out} already holds {', '.join(earlier[:3])}{more}, "
                              "which detect would write: add --overwrite to replace "
                              "them, or choose another --out")


def _save_png(fig, path):
    """save_figure to a temporary name, then rename: never a torn PNG."""
    from ..visualize import save_figure
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".png", dir=os.path.dirname(path))
    os.close(fd)
    try:
        save_figure(fig, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _record(path, name, det, config, names):
    return {"image": os.fspath(path), "output": name, "detections": [
        {"box": [float(v) for v in box], "score": float(score), "label": int(label),
         "class": names[int(label) - 1],
         **({"category_id": int(config.category_ids[int(label) - 1])}
            if config.category_ids else {})}
        for box, score, label in zip(det["boxes"], det["scores"], det["labels"])]}


def detect_command(args):
    """``minirpn detect``: annotated PNGs, ``detections.jsonl`` as it goes,
    ``detections.json`` at the end; returns the exit code (1 if any input
    could not be read)."""
    from .commands import load_model
    from ..data import read_image
    from ..train.log import write_json
    from ..visualize import plot_detections
    outputs = output_names(args.images)
    _check_out_folder(args.out, args.images, outputs, getattr(args, "overwrite", False))
    model = load_model(args.checkpoint)
    config = model.config
    names = list(config.class_names) or [str(k) for k in range(1, config.num_classes + 1)]
    os.makedirs(args.out, exist_ok=True)
    records, skipped = [], []
    with open(os.path.join(args.out, LINES_FILE), "w", encoding="utf-8") as lines:
        for path, name in zip(args.images, outputs):
            try:
                image = read_image(path)
            except (OSError, ValueError) as exc:
                print(f"minirpn detect: warning: skipping {path}: "
                      f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                      file=sys.stderr)
                skipped.append(os.fspath(path))
                continue
            det = model.detect([image], score_threshold=args.score_threshold)[0]
            _save_png(plot_detections(image, det, class_names=names),
                      os.path.join(args.out, name))
            records.append(_record(path, name, det, config, names))
            lines.write(json.dumps(records[-1]) + "\n")
            lines.flush()
            print(f"{path}: {len(det['boxes'])} detections -> {name}")
    write_json(os.path.join(args.out, RESULTS_FILE), records)
    if skipped:
        raise RuntimeError(f"{len(skipped)} of {len(args.images)} images could not be read "
                           f"and were skipped (first: {skipped[0]}); the results of the "
                           f"other {len(records)} are in {args.out}")
    return 0
