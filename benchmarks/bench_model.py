"""Whole-model timings and peak memory, minirpn against torchvision.

    python benchmarks/bench_model.py [--repeat 5] [--paper-repeat 2]
                                     [--skip-paper] [--threads 2] [--stages]
                                     [--clock wall|cpu] [--no-torch] [--only toy|paper]

For the toy config (one 256x256 image) and the paper config (VGG16, one
600x1000 image) it times, in the same run:

- a training step: ``zero_grad``, ``forward_train`` (torchvision: the loss
  dict of the model in train mode), ``backward``;
- a detect (torchvision: eval mode under ``torch.no_grad``);

medians of ``--repeat`` runs after one warm-up, and the peak resident
memory of the process (``ru_maxrss``) after the training steps and after
the detects. Each side runs in a child process of its own, so the peaks
are those of one library alone, import included (torch's libraries take
a few hundred MB by themselves; the "growth" rows leave that out), and
neither heap disturbs the other. On a shared machine compare the
ratios of one run, not times across runs: the two children take turns,
run by run, and each time ratio is the median over rounds of the ratio
of two back-to-back runs.

torchvision's FasterRCNN is built with the same hyper-parameters (see
``torchvision_same_config.py``); when it cannot be imported, only our
rows are printed. ``--threads`` is given to torch (``set_num_threads``)
and to our BLAS and numba (``OPENBLAS_NUM_THREADS``, ``NUMBA_NUM_THREADS``
in the child's environment). ``--stages`` adds our per-stage profile
(``step_through``), to see where the time goes.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, ".."), os.path.join(HERE, "..", "tests"), HERE]

SIZES = {"toy": (256, 256), "paper": (600, 1000)}
CLOCK = time.perf_counter  # --clock cpu: time.process_time (all threads' CPU)


def timed(fn, repeat):
    """Median ms of ``repeat`` calls after one warm-up call."""
    fn()  # warm-up: JIT compilation, caches
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def peak_mb():
    """Peak resident memory of this process so far, MB (Linux: KiB units)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scene(h, w, seed=0):
    """A (h, w, 3) uint8 image with two objects, and its target."""
    from scenes import make_scene
    rng = np.random.default_rng(seed)
    boxes = [[w * 0.1, h * 0.1, w * 0.4, h * 0.5], [w * 0.5, h * 0.4, w * 0.9, h * 0.9]]
    image = make_scene(rng, h, w, boxes, [1, 2])
    return image, {"boxes": np.asarray(boxes, np.float32), "labels": np.array([1, 2])}


def config_of(name):
    from minirpn import Config
    return Config.toy(3) if name == "toy" else Config.paper(20)


# ---------------------------------------------------------------- children
class Ours:
    """One side of the comparison: ``train()``, ``detect()``, ``stages()``."""

    def __init__(self, name, threads):
        from minirpn import FasterRCNN
        self.model = FasterRCNN(config_of(name))
        self.image, self.target = scene(*SIZES[name])
        self.rng = np.random.default_rng(0)

    def train(self):
        self.model.zero_grad()
        self.model.forward_train([self.image], [self.target], rng=self.rng)
        self.model.backward()

    def end_train(self):
        self.model.clear_caches()

    def detect(self):
        self.model.detect([self.image])

    def stages(self):
        self.model.step_through(self.image, self.target)
        return [(s.name, 1e3 * s.seconds)
                for s in self.model.step_through(self.image, self.target)]


class Torchvision:
    """torchvision's FasterRCNN, same interface as :class:`Ours`."""

    def __init__(self, name, threads):
        import torch
        from torchvision_same_config import build_torchvision_faster_rcnn, import_torchvision
        if import_torchvision() is None:
            raise ImportError("torchvision is not importable")
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        self.torch = torch
        self.model = build_torchvision_faster_rcnn(config_of(name))
        image, target = scene(*SIZES[name])
        self.images = [torch.from_numpy(image).permute(2, 0, 1).float() / 255]
        self.targets = [{"boxes": torch.from_numpy(target["boxes"]),
                         "labels": torch.from_numpy(target["labels"]).long()}]
        self.model.train()

    def train(self):
        self.model.zero_grad()
        sum(self.model(self.images, self.targets).values()).backward()

    def end_train(self):
        self.model.zero_grad()
        self.model.eval()

    def detect(self):
        with self.torch.no_grad():
            self.model(self.images)

    def stages(self):
        return []


def child(side, name, threads):
    """Serve timing requests on stdin/stdout, one JSON line each."""
    global CLOCK
    CLOCK = time.process_time if os.environ.get("BENCH_CLOCK") == "cpu" else time.perf_counter
    try:
        runner = (Ours if side == "ours" else Torchvision)(name, threads)
    except ImportError as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        return
    print(json.dumps({"start_mb": peak_mb()}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command in ("train", "detect"):
            start = CLOCK()
            getattr(runner, command)()
            out = {"ms": 1e3 * (CLOCK() - start)}
        elif command == "end_train":
            runner.end_train()
            out = {}
        elif command == "peak":
            out = {}
        elif command == "stages":
            out = {"stages": runner.stages()}
        else:
            break
        out["peak_mb"] = peak_mb()
        print(json.dumps(out), flush=True)


class Worker:
    """A child process running one side; ``ask(command)`` -> its reply."""

    def __init__(self, side, name, threads, clock):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), BENCH_CLOCK=clock,
                   NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
        cmd = [sys.executable, os.path.abspath(__file__), "--child", side,
               "--config", name, "--threads", str(threads)]
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.hello = json.loads(self.proc.stdout.readline() or '{"error": "died"}')

    def ask(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def compare(name, repeat, threads, stages, with_torch, clock):
    """Alternate the two sides run by run; per side the median ms, the
    peaks, and the median over rounds of the paired ratios."""
    workers = {"ours": Worker("ours", name, threads, clock)}
    if with_torch:
        tv = Worker("torchvision", name, threads, clock)
        if "error" in tv.hello:
            print(f"torchvision side skipped: {tv.hello['error']}", file=sys.stderr)
            tv.close()
        else:
            workers["torchvision"] = tv
    res = {side: {"start_mb": w.hello["start_mb"]} for side, w in workers.items()}
    for phase in ("train", "detect"):
        times = {side: [] for side in workers}
        for round_ in range(repeat + 1):  # round 0 warms up
            for side, w in workers.items():
                reply = w.ask(phase)
                if round_:
                    times[side].append(reply["ms"])
        for side, w in workers.items():
            res[side][phase + "_ms"] = float(np.median(times[side]))
            res[side][phase + "_runs"] = times[side]
            if phase == "train":
                res[side]["train_peak_mb"] = w.ask("end_train")["peak_mb"]
            else:
                res[side]["peak_mb"] = w.ask("peak")["peak_mb"]
    if stages:
        res["ours"]["stages"] = workers["ours"].ask("stages")["stages"]
    for w in workers.values():
        w.close()
    return res["ours"], res.get("torchvision")


# ---------------------------------------------------------------- table
def print_table(name, mine, theirs):
    h, w = SIZES[name]
    print(f"\n== {name} config, one {h}x{w} image ==")
    print(f"{'':34s}{'minirpn':>10s}{'torchvision':>13s}{'ratio':>8s}")
    rows = [("train step (ms, median)", "train_ms"), ("detect (ms, median)", "detect_ms"),
            ("peak RSS after import+build (MB)", "start_mb"),
            ("peak RSS, train steps (MB)", "train_peak_mb"),
            ("peak RSS, train + detect (MB)", "peak_mb")]
    for label, key in rows:
        line = f"{label:34s}{mine[key]:10.0f}"
        if theirs:
            ratio = mine[key] / theirs[key]
            if key.endswith("_ms"):  # median of the paired (back-to-back) ratios
                runs = key.replace("_ms", "_runs")
                ratio = float(np.median(np.divide(mine[runs], theirs[runs])))
            line += f"{theirs[key]:13.0f}{ratio:7.2f}x"
        print(line)
    for label, key in (("train-step growth (MB)", "train_peak_mb"),
                       ("train + detect growth (MB)", "peak_mb")):
        line = f"{label:34s}{mine[key] - mine['start_mb']:10.0f}"
        if theirs:
            a, b = mine[key] - mine["start_mb"], theirs[key] - theirs["start_mb"]
            line += f"{b:13.0f}{a / b:7.2f}x"
        print(line)
    for stage, ms in mine.get("stages", []):
        print(f"  stage {stage:<18s} {ms:9.1f} ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="toy runs per median")
    parser.add_argument("--paper-repeat", type=int, default=2, help="paper runs per median")
    parser.add_argument("--skip-paper", action="store_true")
    parser.add_argument("--only", choices=tuple(SIZES), help="run one config only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--stages", action="store_true", help="our per-stage profile")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: process CPU time of all threads, steadier on a "
                             "loaded machine (use with --threads 1)")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--child", choices=("ours", "torchvision"), help=argparse.SUPPRESS)
    parser.add_argument("--config", choices=tuple(SIZES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.config, args.threads)
        return
    print(f"{args.clock} clock, {args.threads} threads each; load average {os.getloadavg()[0]:.1f} at start")
    names = ("toy",) if args.skip_paper else ("toy", "paper")
    for name in (args.only,) if args.only else names:
        repeat = args.repeat if name == "toy" else args.paper_repeat
        mine, theirs = compare(name, repeat, args.threads, args.stages,
                               not args.no_torch, args.clock)
        print_table(name, mine, theirs)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
