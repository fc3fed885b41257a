"""Speed of the numba box geometry against NumPy (and OpenCV if present).

Usage::

    python benchmarks/bench_geometry.py [--repeat 7] [--no-jit]

Prints one table: our time, the reference's time, the ratio and the target
ratio. Times are the best of ``--repeat`` runs after a warm-up call (so JIT
compilation is excluded); the first-call compile cost is measured apart, in
fresh processes with an empty ``NUMBA_CACHE_DIR`` (cold) and then again with
the cache it left behind (warm), which shows ``cache=True`` at work.

References:

* ``numpy_nms``: the classic py-faster-rcnn ``py_cpu_nms``, vectorised over
  the remaining boxes, written here with continuous coordinates (no +1);
* ``cv2.dnn.NMSBoxes`` when ``cv2`` imports (opencv-python-headless is
  not a dependency; it takes (x, y, w, h) boxes);
* ``numpy_iou``: plain NumPy broadcasting over (N, M) pairs.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from minirpn.ops import batched_nms, box_iou, nms  # noqa: E402

IMAGE_H, IMAGE_W = 600, 1000


# ---------------------------------------------------------------- inputs
def random_boxes(rng, n, dtype=np.float32):
    """Boxes of side 16..300 uniformly placed inside a 600x1000 image."""
    wh = rng.uniform(16, 300, size=(n, 2))
    x1 = rng.uniform(0, IMAGE_W - wh[:, 0])
    y1 = rng.uniform(0, IMAGE_H - wh[:, 1])
    return np.stack([x1, y1, x1 + wh[:, 0], y1 + wh[:, 1]], 1).astype(dtype)


def rpn_like_boxes(rng, n, objects=20, dtype=np.float32):
    """Proposals as an RPN emits them: jittered copies around a few objects
    (centre shift ~10% of the size, log-size jitter 0.15), so that most of
    them overlap a better-scoring copy and get suppressed."""
    gt = random_boxes(rng, objects, np.float64)
    src = gt[rng.integers(0, objects, n)]
    wh = src[:, 2:] - src[:, :2]
    centre = src[:, :2] + 0.5 * wh + rng.normal(0, 0.1, (n, 2)) * wh
    wh = wh * np.exp(rng.normal(0, 0.15, (n, 2)))
    boxes = np.concatenate([centre - 0.5 * wh, centre + 0.5 * wh], 1)
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, IMAGE_W)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, IMAGE_H)
    return boxes.astype(dtype)


# ---------------------------------------------------------------- references
def numpy_nms(boxes, scores, threshold):
    """py-faster-rcnn's py_cpu_nms (continuous coordinates)."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest])
                       - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest])
                       - np.maximum(y1[i], y1[rest]))
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter)
        order = rest[iou <= threshold]
    return np.array(keep, dtype=np.int64)


def numpy_iou(a, b):
    """(N, M) IoU by broadcasting, union 0 -> 0."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    wh = np.maximum(np.minimum(a[:, None, 2:], b[None, :, 2:])
                    - np.maximum(a[:, None, :2], b[None, :, :2]), 0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0)


def opencv_nms():
    """A function (boxes, scores, t) -> keep using cv2, or None."""
    try:
        import cv2
    except ImportError:
        return None

    def run(xywh, scores, threshold):
        keep = cv2.dnn.NMSBoxes(xywh, scores, 0.0, threshold)
        return np.asarray(keep, dtype=np.int64).reshape(-1)
    return run


# ---------------------------------------------------------------- timing
def best_time(fn, repeat):
    """Best wall time in ms over ``repeat`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


ROWS = []


def row(name, ours, ref_name=None, ref=None, target=None, note=""):
    ratio = ref / ours if ref is not None else None
    ok = "" if target is None or ratio is None else \
        ("ok" if ratio >= target else "MISSED")
    ROWS.append((name, ours, ref_name or "", ref, ratio, target, ok, note))


def print_table():
    head = ("case", "ours ms", "reference", "ref ms", "ratio", "target",
            "", "note")
    fmt = "{:<38} {:>9} {:<16} {:>9} {:>8} {:>7} {:<6} {}"
    print(fmt.format(*head))
    print("-" * 110)
    for name, ours, ref_name, ref, ratio, target, ok, note in ROWS:
        print(fmt.format(
            name, "-" if ours is None else f"{ours:.3f}", ref_name,
            "-" if ref is None else f"{ref:.2f}",
            "-" if ratio is None else f"{ratio:.1f}x",
            "-" if target is None else f">={target}x", ok, note))


# ---------------------------------------------------------------- cases
def bench_nms(rng, repeat):
    cv_nms = opencv_nms()
    cases = [("random", random_boxes), ("rpn-like 20 objects", rpn_like_boxes)]
    for label, make in cases:
        for dtype in (np.float32, np.float64):
            boxes = make(rng, 12000, dtype=dtype)
            scores = rng.random(12000).astype(dtype)
            keep = nms(boxes, scores, 0.7)
            ref_keep = numpy_nms(boxes, scores, 0.7)
            same = "same keep" if np.array_equal(keep, ref_keep) else \
                f"keep differs ({len(keep)} vs {len(ref_keep)})"
            name = f"nms 12000 {label} {np.dtype(dtype).name}"
            ours = best_time(lambda: nms(boxes, scores, 0.7), repeat)
            ref = best_time(lambda: numpy_nms(boxes, scores, 0.7), repeat)
            row(name, ours, "numpy py_cpu_nms", ref, 4,
                f"kept {len(keep)}, {same}")
            if cv_nms is not None:
                xywh = np.concatenate([boxes[:, :2], boxes[:, 2:]
                                       - boxes[:, :2]], 1).astype(np.float64)
                cv_scores = scores.astype(np.float32)
                cv_keep = np.sort(cv_nms(xywh, cv_scores, 0.7))
                agree = np.intersect1d(cv_keep, keep).size
                ref = best_time(lambda: cv_nms(xywh, cv_scores, 0.7), repeat)
                row(name, ours, "cv2 NMSBoxes", ref, 4,
                    f"cv2 kept {len(cv_keep)}, {agree} in common")
    boxes = random_boxes(rng, 12000)
    scores = rng.random(12000).astype(np.float32)
    labels = rng.integers(1, 21, 12000)
    ours = best_time(lambda: batched_nms(boxes, scores, labels, 0.7), repeat)
    row("batched_nms 12000 random, 20 classes", ours,
        note=f"kept {len(batched_nms(boxes, scores, labels, 0.7))}")
    if cv_nms is None:
        row("nms vs cv2", None, "cv2 NMSBoxes", note="cv2 not importable")


def bench_iou(rng, repeat):
    for n, m in ((20000, 20), (2000, 2000)):
        for dtype in (np.float32, np.float64):
            a, b = random_boxes(rng, n, dtype), random_boxes(rng, m, dtype)
            err = np.abs(box_iou(a, b) - numpy_iou(a, b)).max()
            ours = best_time(lambda: box_iou(a, b), repeat)
            ref = best_time(lambda: numpy_iou(a, b), max(2, repeat // 2))
            row(f"box_iou {n} x {m} {np.dtype(dtype).name}", ours,
                "numpy broadcast", ref, 50, f"max |diff| {err:.1e}")


def bench_label_anchors(rng, repeat):
    name = "label_anchors 600x1000, 20 GT"
    try:
        from minirpn.anchor_targets import label_anchors
        from minirpn.anchors import base_anchors, grid_anchors
        anchors = grid_anchors(-(-IMAGE_H // 16), -(-IMAGE_W // 16), 16,
                               base_anchors())
        gt = random_boxes(rng, 20, anchors.dtype)
        ours = best_time(lambda: label_anchors(
            anchors, gt, (IMAGE_H, IMAGE_W), rng=rng), repeat)
        row(name, ours, note=f"{len(anchors)} anchors; target < 5 ms "
            + ("ok" if ours < 5 else "MISSED"))
    except (ImportError, NotImplementedError) as exc:
        row(name, None, note=f"not available: {type(exc).__name__} {exc}")


# ---------------------------------------------------------------- JIT cost
JIT_PROBE = r"""
import json, time
start = time.perf_counter()
import numpy as np
import minirpn.ops as ops
out = {"import minirpn.ops": 1e3 * (time.perf_counter() - start)}
for dt in ("float32", "float64"):
    b = np.array([[0, 0, 10, 10], [5, 5, 15, 15]], dt)
    s = np.array([0.9, 0.8], dt)
    for name, call in (("box_iou", lambda: ops.box_iou(b, b)),
                       ("nms", lambda: ops.nms(b, s, 0.5))):
        start = time.perf_counter()
        call()
        out["first call " + name + " " + dt] = \
            1e3 * (time.perf_counter() - start)
print(json.dumps(out))
"""


def bench_jit():
    """First-call cost in fresh processes: cold cache, then warm cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache,
                   PYTHONPATH=ROOT + os.pathsep + os.environ.get(
                       "PYTHONPATH", ""))
        runs = [json.loads(subprocess.run(
            [sys.executable, "-c", JIT_PROBE], env=env, cwd=ROOT, check=True,
            capture_output=True, text=True).stdout) for _ in range(2)]
    notes = {"first call box_iou float32": "includes numba's one-off "
             "LLVM start-up"}
    for key in runs[0]:
        row(key, runs[1][key], "cold cache", runs[0][key],
            note=notes.get(key, "ours = warm cache (2nd process)"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-jit", action="store_true",
                        help="skip the compile-cost subprocesses")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    if not args.no_jit:
        bench_jit()
    bench_nms(rng, args.repeat)
    bench_iou(rng, args.repeat)
    bench_label_anchors(rng, args.repeat)
    print_table()


if __name__ == "__main__":
    main()
