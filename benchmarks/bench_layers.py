"""Speed of the dense layers (conv2d) and RoI pooling, against PyTorch CPU.

Usage::

    python benchmarks/bench_layers.py [--repeat 9] [--threads 2] [--gap 0.1]
                                      [--clock wall|cpu] [--only NAME] [--no-torch]

Prints one table. Each row times the forward alone and forward + backward
(milliseconds, median of ``--repeat`` runs, each right behind an untimed
call, as in a training loop), and the peak memory that numpy allocates
during one forward + backward (tracemalloc, in a separate untimed run).

When ``import torch`` works, the same convs run through
``torch.nn.functional.conv2d`` (``torch.set_num_threads(--threads)``,
backward by autograd with x, w and b all requiring gradients, as ours
computes all three) in a child process: sharing one heap, the two
libraries' allocations made each other's fresh pages fault (several ms a
call here), and their idle worker threads spun on the other's cores. Ours
and torch alternate run by run with ``--gap`` seconds of idle between, and
each ratio (``x`` = ours / torch) is the median over rounds of the ratio of
two back-to-back runs, so a load spike from other processes hits both
sides of a pair: on a busy machine compare the ratios, not the times.
``--threads 1 --clock cpu`` (process CPU time) is steadier still.

The target: conv2d forward + backward within 1.2x of PyTorch CPU on
2 threads. On a machine shared with other work, ``--threads 1 --clock cpu``
gives the steadier ratios. torchvision is not installed, so for RoI pooling the issue's
reference figures are printed instead.
"""
import argparse
import multiprocessing
import os
import sys
import time
import tracemalloc

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from minirpn.nn import functional as fn  # noqa: E402

CONV_CASES = [  # name, x shape, filters, kernel, padding
    ("conv 3->32 @256", (1, 3, 256, 256), 32, 3, 1),
    ("conv 32->64 @128", (1, 32, 128, 128), 64, 3, 1),
    ("conv 64->128 @64", (1, 64, 64, 64), 128, 3, 1),
    ("conv 128->256 @32", (1, 128, 32, 32), 256, 3, 1),
    ("rpn 3x3 256->256 @38x50", (1, 256, 38, 50), 256, 3, 1),
    ("rpn cls 1x1 256->18", (1, 256, 38, 50), 18, 1, 0),
    ("rpn bbox 1x1 256->36", (1, 256, 38, 50), 36, 1, 0),
]
ROI_FEATURES = (1, 512, 38, 50)
IMAGE_H, IMAGE_W = 600, 800
TORCHVISION_NOTE = ("torchvision CPU reference (from the issue, 300 rois, fwd+bwd): "
                    "roi_pool ~100 ms, roi_align ~510 ms")
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def timed(f, clock):
    """A runner: call f once untimed (warm caches, wake threads), then
    return the ms of a second call."""
    def run():
        f()
        t = clock()
        f()
        return 1e3 * (clock() - t)
    return run


def run_timed(runners, repeat, gap):
    """Alternate the runners round by round; the ms of each run of each."""
    times = {k: [] for k in runners}
    for _ in range(repeat):
        for k, run in runners.items():
            time.sleep(gap)  # idle OpenBLAS/OpenMP workers spin a while
            times[k].append(run())
    return {k: np.array(v) for k, v in times.items()}


def paired_ratio(ours, theirs):
    """Median over rounds of ours / theirs (back-to-back runs)."""
    return float(np.median(ours / theirs))


def peak_mb(f):
    """Peak numpy allocation (MB) of one call, above what existed before."""
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    f()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - base) / 2**20


# ---------------------------------------------------------------- torch
def torch_worker(conn, threads, clock_name):
    """Child process: build torch convs on request and time them."""
    try:
        import torch
    except ImportError:
        conn.send(False)
        return
    torch.set_num_threads(threads)
    conn.send(True)
    clock, ops = CLOCKS[clock_name], {}
    while (msg := conn.recv())[0] != "stop":
        if msg[0] == "setup":
            x, w, b, dy, pad = msg[1]
            tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
            tdy = torch.from_numpy(dy)

            def fwd():
                with torch.no_grad():
                    torch.nn.functional.conv2d(tx, tw, tb, padding=pad)

            def fb():
                for t in (tx, tw, tb):
                    t.grad = None
                torch.nn.functional.conv2d(tx, tw, tb, padding=pad).backward(tdy)

            ops = {"fwd": timed(fwd, clock), "fb": timed(fb, clock)}
            conn.send(None)
        else:
            conn.send(ops[msg[1]]())


def start_torch(threads, clock_name):
    """(connection, process) of a torch worker, or None without torch."""
    ctx = multiprocessing.get_context("spawn")
    conn, child = ctx.Pipe()
    proc = ctx.Process(target=torch_worker, args=(child, threads, clock_name),
                       daemon=True)
    proc.start()
    if conn.recv():
        return conn, proc
    proc.join()
    return None


def remote(conn, name):
    def run():
        conn.send(("run", name))
        return conn.recv()
    return run


# ---------------------------------------------------------------- cases
def conv_runners(shape, filters, k, pad, rng, clock, torch_conn):
    """Runners for ours (and torch's) conv forward and forward+backward."""
    x = rng.standard_normal(shape, dtype=np.float32)
    w = rng.standard_normal((filters, shape[1], k, k), dtype=np.float32) * 0.05
    b = rng.standard_normal(filters, dtype=np.float32)
    y, _ = fn.conv2d_forward(x, w, b, 1, pad)
    dy = rng.standard_normal(y.shape, dtype=np.float32)

    def fb():
        fn.conv2d_backward(dy, fn.conv2d_forward(x, w, b, 1, pad)[1])

    runners = {"fwd": timed(lambda: fn.conv2d_forward(x, w, b, 1, pad), clock),
               "fb": timed(fb, clock)}
    if torch_conn is not None:
        torch_conn.send(("setup", (x, w, b, dy, pad)))
        torch_conn.recv()
        runners.update(torch_fwd=remote(torch_conn, "fwd"),
                       torch_fb=remote(torch_conn, "fb"))
    return runners, fb


def random_rois(rng, n):
    """(n, 5) float32 [0, x1, y1, x2, y2]: sides 16..400 px in a 600x800 image."""
    wh = rng.uniform(16, 400, size=(n, 2))
    x1 = rng.uniform(0, IMAGE_W - wh[:, 0])
    y1 = rng.uniform(0, IMAGE_H - wh[:, 1])
    boxes = np.stack([np.zeros(n), x1, y1, x1 + wh[:, 0], y1 + wh[:, 1]], 1)
    return boxes.astype(np.float32)


def roi_runners(kind, n_rois, rng, clock):
    """Runners for RoI pool / RoI Align forward and forward+backward."""
    feats = rng.standard_normal(ROI_FEATURES, dtype=np.float32)
    rois = random_rois(rng, n_rois)
    if kind == "roi_pool":
        fwd = lambda: fn.roi_pool_forward(feats, rois, output_size=(7, 7),
                                          spatial_scale=1 / 16)
        bwd = fn.roi_pool_backward
    else:
        fwd = lambda: fn.roi_align_forward(feats, rois, output_size=(7, 7),
                                           spatial_scale=1 / 16, sampling_ratio=2,
                                           aligned=True)
        bwd = fn.roi_align_backward
    y, _ = fwd()
    dy = rng.standard_normal(y.shape, dtype=np.float32)

    def fb():
        bwd(dy, fwd()[1])

    return {"fwd": timed(fwd, clock), "fb": timed(fb, clock)}, fb


def fmt(v, width=8, spec=".2f"):
    return f"{v:{width}{spec}}" if isinstance(v, float) else f"{v:>{width}}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gap", type=float, default=0.1,
                        help="seconds of idle before each timed run")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                        help="cpu: process CPU time (use with --threads 1)")
    parser.add_argument("--only", default="",
                        help="run only the cases whose name contains this")
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args()
    clock = CLOCKS[args.clock]
    torch = None if args.no_torch else start_torch(args.threads, args.clock)
    torch_conn = torch[0] if torch else None
    try:  # numpy's BLAS threads (threadpoolctl is optional)
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=args.threads, user_api="blas")
    except ImportError:
        pass
    import numba  # the RoI kernels are numba-parallel
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    rng = np.random.default_rng(0)
    print(f"ms ({args.clock} clock), median of {args.repeat}; x = ours / torch, median "
          f"of paired runs; {args.threads} threads each; load average "
          f"{os.getloadavg()[0]:.1f} at start")
    header = (f"{'case (float32)':<26s}{'fwd':>8s}{'fwd+bwd':>9s}{'peak MB':>9s}"
              f"{'torch fwd':>10s}{'torch f+b':>10s}{'fwd x':>7s}{'f+b x':>7s}")
    print(header + "\n" + "-" * len(header))
    for name, shape, filters, k, pad in CONV_CASES:
        if args.only not in name:
            continue
        runners, fb = conv_runners(shape, filters, k, pad, rng, clock, torch_conn)
        runs = run_timed(runners, args.repeat, args.gap)
        t = {k: float(np.median(v)) for k, v in runs.items()}
        row = f"{name:<26s}{fmt(t['fwd'])}{fmt(t['fb'], 9)}{fmt(peak_mb(fb), 9, '.1f')}"
        if torch_conn is not None:
            row += (f"{fmt(t['torch_fwd'], 10)}{fmt(t['torch_fb'], 10)}"
                    f"{fmt(paired_ratio(runs['fwd'], runs['torch_fwd']), 7)}"
                    f"{fmt(paired_ratio(runs['fb'], runs['torch_fb']), 7)}")
        print(row, flush=True)
    if torch:
        torch_conn.send(("stop",))
        torch[1].join()
    for kind in ("roi_pool", "roi_align"):
        for n_rois in (128, 300):
            name = f"{kind} {n_rois} rois 7x7"
            if args.only not in name:
                continue
            try:
                runners, fb = roi_runners(kind, n_rois, rng, clock)
                t = {k: float(np.median(v))
                     for k, v in run_timed(runners, args.repeat, args.gap).items()}
                print(f"{name:<26s}{fmt(t['fwd'])}{fmt(t['fb'], 9)}"
                      f"{fmt(peak_mb(fb), 9, '.1f')}", flush=True)
            except NotImplementedError:
                print(f"{name:<26s}{'n/a':>8s}{'n/a':>9s}{'n/a':>9s}")
    print(TORCHVISION_NOTE)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
