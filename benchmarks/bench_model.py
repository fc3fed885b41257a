"""Whole-model timings: training step and detect, with a per-stage profile.

    python benchmarks/bench_model.py [--repeat 5] [--skip-paper] [--threads 2]

Rows:
- toy config, one 256x256 image: forward_train + backward, and detect;
- paper config (VGG16) at 600x1000: one detect, with its peak traced memory;
- the step-through stage times of each (where the time goes);
- if PyTorch is installed, the same backbone + RPN conv stack in PyTorch
  (forward + backward, and forward only) for the "parity with PyTorch on the
  CPU" goal. The package never imports torch; this script does, if it can.
"""
import argparse
import os
import sys
import time
import tracemalloc

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, ".."), os.path.join(HERE, "..", "tests")]

from minirpn import Config, FasterRCNN  # noqa: E402
from scenes import make_scene  # noqa: E402


def timed(fn, repeat):
    fn()  # warm-up: JIT compilation, caches
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def scene(h, w, seed=0):
    rng = np.random.default_rng(seed)
    boxes = [[w * 0.1, h * 0.1, w * 0.4, h * 0.5], [w * 0.5, h * 0.4, w * 0.9, h * 0.9]]
    image = make_scene(rng, h, w, boxes, [1, 2])
    return image, {"boxes": np.asarray(boxes, np.float32), "labels": np.array([1, 2])}


def train_step(model, image, target, rng):
    def step():
        model.zero_grad()
        model.forward_train([image], [target], rng=rng)
        model.backward()
    return step


def stage_table(model, image, target=None):
    trace = model.step_through(image, target)
    trace = model.step_through(image, target)  # second run: warm
    return [(s.name, 1e3 * s.seconds) for s in trace]


def torch_stack(config, image_hw, repeat, threads):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    layers, c = [], 3
    for spec in config.backbone_channels:
        if spec == "M":
            layers.append(torch.nn.MaxPool2d(2, 2))
        else:
            layers += [torch.nn.Conv2d(c, spec, 3, padding=1), torch.nn.ReLU()]
            c = spec
    A = config.num_anchors
    layers += [torch.nn.Conv2d(c, config.rpn_channels, 3, padding=1), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers)
    cls = torch.nn.Conv2d(config.rpn_channels, 2 * A, 1)
    box = torch.nn.Conv2d(config.rpn_channels, 4 * A, 1)
    x = torch.randn(1, 3, *image_hw)

    def fwd_bwd():
        h = net(x)
        (cls(h).sum() + box(h).sum()).backward()

    def fwd():
        with torch.no_grad():
            h = net(x)
            cls(h), box(h)
    return timed(fwd_bwd, repeat), timed(fwd, repeat)


def ours_stack(model, image_hw, repeat):
    x = np.random.default_rng(0).normal(size=(1, 3, *image_hw)).astype(model.config.dtype)

    def fwd_bwd():
        model.zero_grad()
        f = model.features(x)
        s, d = model.rpn(f)
        model.backbone.backward(model.rpn.backward(np.ones_like(s), np.ones_like(d)))

    def fwd():
        f = model.features(x, keep_cache=False)
        model.rpn(f)
        model.clear_caches()
    return timed(fwd_bwd, repeat), timed(fwd, repeat)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-paper", action="store_true")
    parser.add_argument("--threads", type=int, default=2,
                        help="PyTorch threads (numba/BLAS use their defaults)")
    args = parser.parse_args()

    print("== toy config, one 256x256 image ==")
    toy = FasterRCNN(Config.toy(3))
    image, target = scene(256, 256)
    rng = np.random.default_rng(0)
    t_train = timed(train_step(toy, image, target, rng), args.repeat)
    t_detect = timed(lambda: toy.detect([image]), args.repeat)
    print(f"forward_train + backward  {t_train:9.1f} ms")
    print(f"detect                    {t_detect:9.1f} ms")
    print("step-through stages (inference + training stages):")
    for name, ms in stage_table(toy, image, target):
        print(f"  {name:<18s} {ms:9.1f} ms")
    ours = ours_stack(toy, (256, 256), args.repeat)
    theirs = torch_stack(toy.config, (256, 256), args.repeat, args.threads)
    print(f"backbone+RPN convs fwd+bwd: ours {ours[0]:.1f} ms, fwd {ours[1]:.1f} ms", end="")
    if theirs:
        print(f"; PyTorch {theirs[0]:.1f} / {theirs[1]:.1f} ms; ratio "
              f"{ours[0] / theirs[0]:.2f}x / {ours[1] / theirs[1]:.2f}x")
    else:
        print("; PyTorch not installed")

    if args.skip_paper:
        return
    print("\n== paper config (VGG16), one 600x1000 image ==")
    paper = FasterRCNN(Config.paper(20))
    image, _ = scene(600, 1000)
    paper.detect([image])  # warm-up
    tracemalloc.start()
    start = time.perf_counter()
    paper.detect([image])
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"detect                    {1e3 * seconds:9.1f} ms, peak traced memory "
          f"{peak / 2**20:.0f} MiB")
    print("step-through stages:")
    for name, ms in stage_table(paper, image):
        print(f"  {name:<18s} {ms:9.1f} ms")
    ours = ours_stack(paper, (608, 1008), 1)
    theirs = torch_stack(paper.config, (608, 1008), 1, args.threads)
    print(f"VGG16+RPN convs fwd: ours {ours[1]:.0f} ms", end="")
    print(f"; PyTorch {theirs[1]:.0f} ms; ratio {ours[1] / theirs[1]:.2f}x" if theirs
          else "; PyTorch not installed")


if __name__ == "__main__":
    main()
