"""CPU vs GPU (CuPy backend): training step, detect, per-stage times, NMS.

    python benchmarks/bench_gpu.py [--repeat 5] [--skip-cpu-paper] [--skip-paper]

Rows, for the toy config and the paper config (VGG16), one 600x1000 image:
- forward_train + backward, and detect, on the CPU and on the GPU;
- the step-through stages on the GPU (and CPU), each timed between two
  device synchronisations (CuPy runs asynchronously: without them a stage's
  GPU work would be billed to whichever later stage first waits for it);
- NMS of 12000 boxes (the training pre-NMS count) on the GPU: target < 2 ms.

Needs CuPy and a CUDA device (pip install minirpn[gpu]); without them it
says which is missing and exits with status 2.
"""
import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from minirpn import Config, FasterRCNN  # noqa: E402
from minirpn.backend import _import_cupy  # noqa: E402
from minirpn.ops import nms  # noqa: E402
from scenes import make_scene  # noqa: E402


def scene(h, w, seed=0):
    rng = np.random.default_rng(seed)
    boxes = [[w * 0.1, h * 0.1, w * 0.4, h * 0.5], [w * 0.5, h * 0.4, w * 0.9, h * 0.9]]
    image = make_scene(rng, h, w, boxes, [1, 2])
    return image, {"boxes": np.asarray(boxes, np.float32), "labels": np.array([1, 2])}


def timer(sync):
    """A function timing fn (median of ``repeat`` runs after a warm-up, ms),
    synchronising the device around every run."""
    def timed(fn, repeat):
        fn()
        times = []
        for _ in range(repeat):
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - start)
        return 1e3 * float(np.median(times))
    return timed


def train_step(model, image, target):
    rng = np.random.default_rng(0)

    def step():
        model.zero_grad()
        model.forward_train([image], [target], rng=rng)
        model.backward()
    return step


def stage_times(model, image, target, sync):
    """(name, ms) per step-through stage, each between two synchronisations
    (the second, warm run)."""
    rows = []
    for _ in range(2):
        trace, rows = model.step_through(image, target, lazy=True), []
        while True:
            sync()
            start = time.perf_counter()
            stage = trace.next()
            sync()
            if stage is None:
                break
            rows.append((stage.name, 1e3 * (time.perf_counter() - start)))
    return rows


def compare(name, config, image, target, args, cp, cpu_too):
    print(f"\n== {name}: one {image.shape[0]}x{image.shape[1]} image ==")
    sync = cp.cuda.Device().synchronize
    gpu_time, cpu_time = timer(sync), timer(lambda: None)
    gpu = FasterRCNN(config).to("cupy")
    cpu = FasterRCNN(config) if cpu_too else None
    results = {}
    for label, model in (("gpu", gpu), ("cpu", cpu)):
        if model is None:
            continue
        timed = gpu_time if label == "gpu" else cpu_time
        repeat = args.repeat if label == "gpu" else max(1, args.repeat // 2)
        results[label] = (timed(train_step(model, image, target), repeat),
                          timed(lambda: model.detect([image]), repeat))
    print(f"{'':28s} {'CPU ms':>10s} {'GPU ms':>10s} {'speed-up':>9s}")
    for i, label in enumerate(("forward_train + backward", "detect")):
        g = results["gpu"][i]
        c = results["cpu"][i] if "cpu" in results else float("nan")
        print(f"{label:28s} {c:10.1f} {g:10.1f} {c / g:8.1f}x")
    stages = {"gpu": stage_times(gpu, image, target, sync)}
    if cpu is not None:
        stages["cpu"] = stage_times(cpu, image, target, lambda: None)
    print("step-through stages (inference, then the training stages):")
    for i, (stage, g) in enumerate(stages["gpu"]):
        c = stages["cpu"][i][1] if "cpu" in stages else float("nan")
        print(f"  {stage:<26s} {c:10.1f} {g:10.1f}")


def bench_nms(cp, repeat):
    rng = np.random.default_rng(0)
    centres = rng.uniform(0, 1000, (600, 2))[rng.integers(0, 600, 12000)]
    half = rng.uniform(8, 150, (12000, 2))
    boxes = np.concatenate([centres - half, centres + half], 1).astype(np.float32)
    scores = rng.random(12000).astype(np.float32)
    boxes_gpu, scores_gpu = cp.asarray(boxes), cp.asarray(scores)
    keep = nms(boxes_gpu, scores_gpu, 0.7)
    assert np.array_equal(keep.get(), nms(boxes, scores, 0.7)), "GPU NMS differs from the CPU"
    gpu_ms = timer(cp.cuda.Device().synchronize)(lambda: nms(boxes_gpu, scores_gpu, 0.7),
                                                 repeat * 10)
    cpu_ms = timer(lambda: None)(lambda: nms(boxes, scores, 0.7), repeat * 10)
    print(f"\n== NMS of 12000 boxes at IoU 0.7 ({len(keep)} kept) ==")
    print(f"CPU {cpu_ms:.2f} ms, GPU {gpu_ms:.2f} ms (target < 2 ms: "
          f"{'met' if gpu_ms < 2 else 'NOT met'})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-paper", action="store_true", help="toy config and NMS only")
    parser.add_argument("--skip-cpu-paper", action="store_true",
                        help="no CPU column for the paper config (seconds per step)")
    args = parser.parse_args()
    try:
        cp = _import_cupy()
    except RuntimeError as exc:
        print(f"bench_gpu: {exc}; nothing to measure.", file=sys.stderr)
        sys.exit(2)
    print(f"device: {cp.cuda.runtime.getDeviceProperties(0)['name'].decode()}")
    bench_nms(cp, args.repeat)
    image, target = scene(600, 1000)
    compare("toy config", Config.toy(3), image, target, args, cp, cpu_too=True)
    if not args.skip_paper:
        compare("paper config (VGG16)", Config.paper(20), image, target, args, cp,
                cpu_too=not args.skip_cpu_paper)


if __name__ == "__main__":
    main()
