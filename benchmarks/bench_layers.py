"""Speed of the dense layers (conv2d) and RoI pooling, against PyTorch CPU.

Usage::

    python benchmarks/bench_layers.py [--repeat 9] [--threads 2] [--gap 0.2]
                                      [--clock wall|cpu] [--no-torch]

Prints one table. Each row times the forward alone and forward + backward
(milliseconds, median of ``--repeat`` runs, each behind a warm-up), and the peak
memory that numpy allocates during one forward + backward (tracemalloc,
measured in a separate run so it does not slow the timed ones). When
``import torch`` works, the same conv runs through ``torch.nn.functional``
(``torch.set_num_threads(--threads)``, backward by autograd with x, w and b
all requiring gradients, as ours computes all three), and the ratio columns
give ours / torch for forward and for forward + backward. Ours and torch
alternate run by run (after an idle ``--gap``), and each ratio is the median
over rounds of the ratio of two back-to-back runs, so a load spike from
other processes hits both sides of a pair: on a busy machine compare the
ratios, not the absolute times.

On a machine shared with other jobs, ``--threads 1 --clock cpu`` gives
steadier figures: one thread per library, timed by process CPU time, which
other processes do not inflate.

The issue's target: conv2d forward + backward within 1.5x of PyTorch CPU on
2 threads. For RoI pooling torchvision is not installed here; the issue's
reference figures are printed instead.
"""
import argparse
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


def run_timed(fns, repeat, gap, clock=time.perf_counter):
    """Alternate the callables run by run; the ms of every timed run of each.

    Idle OpenBLAS and OpenMP workers spin for a while after a call before
    they sleep, and would steal a core from the other library's next run;
    sleeping threads, in turn, take time to wake. So each timed run comes
    ``gap`` seconds after the previous library's last call, right behind an
    untimed call of its own, as in a loop that calls it back to back.
    """
    times = {k: [] for k in fns}
    for _ in range(repeat):
        for k, f in fns.items():
            time.sleep(gap)
            f()
            t = clock()
            f()
            times[k].append(1e3 * (clock() - t))
    return {k: np.array(v) for k, v in times.items()}


def paired_ratio(ours, theirs):
    """Median over rounds of ours / theirs, each pair timed back to back so
    that both saw the same load; steadier than a ratio of medians."""
    return float(np.median(ours / theirs))


def peak_mb(f):
    """Peak numpy allocation (MB) of one call, above what existed before."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    f()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - base) / 2**20


def conv_fns(shape, filters, k, pad, rng, torch):
    """Callables for ours (and torch's) conv forward and forward+backward."""
    x = rng.standard_normal(shape, dtype=np.float32)
    w = rng.standard_normal((filters, shape[1], k, k), dtype=np.float32) * 0.05
    b = rng.standard_normal(filters, dtype=np.float32)
    y, _ = fn.conv2d_forward(x, w, b, 1, pad)
    dy = rng.standard_normal(y.shape, dtype=np.float32)

    def ours_fb():
        fn.conv2d_backward(dy, fn.conv2d_forward(x, w, b, 1, pad)[1])

    fns = {"fwd": lambda: fn.conv2d_forward(x, w, b, 1, pad), "fb": ours_fb}
    if torch is not None:
        tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
        tdy = torch.from_numpy(dy)

        def torch_fwd():
            with torch.no_grad():
                torch.nn.functional.conv2d(tx, tw, tb, padding=pad)

        def torch_fb():
            for t in (tx, tw, tb):
                t.grad = None
            torch.nn.functional.conv2d(tx, tw, tb, padding=pad).backward(tdy)

        fns.update(torch_fwd=torch_fwd, torch_fb=torch_fb)
    return fns, ours_fb


def random_rois(rng, n):
    """(n, 5) float32 [0, x1, y1, x2, y2]: sides 16..400 px in a 600x800 image."""
    wh = rng.uniform(16, 400, size=(n, 2))
    x1 = rng.uniform(0, IMAGE_W - wh[:, 0])
    y1 = rng.uniform(0, IMAGE_H - wh[:, 1])
    boxes = np.stack([np.zeros(n), x1, y1, x1 + wh[:, 0], y1 + wh[:, 1]], 1)
    return boxes.astype(np.float32)


def roi_fns(kind, n_rois, rng):
    """Callables for RoI pool / RoI Align forward and forward+backward."""
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

    return {"fwd": fwd, "fb": fb}, fb


def fmt(v, width=8, spec=".2f"):
    return f"{v:{width}{spec}}" if isinstance(v, float) else f"{v:>{width}}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gap", type=float, default=0.2,
                        help="seconds of idle between the libraries' runs")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: process CPU time (use with --threads 1)")
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    torch = None
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(args.threads)
        except ImportError:
            torch = None
    try:  # numpy's BLAS threads too (threadpoolctl is optional)
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=args.threads, user_api="blas")
    except ImportError:
        pass
    import numba  # the RoI kernels are numba-parallel
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    rng = np.random.default_rng(0)
    header = (f"{'case (float32)':<26s}{'fwd':>8s}{'fwd+bwd':>9s}{'peak MB':>9s}"
              f"{'torch fwd':>10s}{'torch f+b':>10s}{'fwd x':>7s}{'f+b x':>7s}")
    print(f"ms ({args.clock} clock), median of {args.repeat}; x = ours / torch, median of "
          f"paired runs "
          f"({args.threads} threads each); "
          f"load average {os.getloadavg()[0]:.1f} at start")
    print(header)
    print("-" * len(header))
    for name, shape, filters, k, pad in CONV_CASES:
        fns, fb = conv_fns(shape, filters, k, pad, rng, torch)
        runs = run_timed(fns, args.repeat, args.gap, clock)
        t = {k: float(np.median(v)) for k, v in runs.items()}
        row = f"{name:<26s}{fmt(t['fwd'])}{fmt(t['fb'], 9)}{fmt(peak_mb(fb), 9, '.1f')}"
        if torch is not None:
            row += (f"{fmt(t['torch_fwd'], 10)}{fmt(t['torch_fb'], 10)}"
                    f"{fmt(paired_ratio(runs['fwd'], runs['torch_fwd']), 7)}"
                    f"{fmt(paired_ratio(runs['fb'], runs['torch_fb']), 7)}")
        print(row, flush=True)
    for kind in ("roi_pool", "roi_align"):
        for n_rois in (128, 300):
            name = f"{kind} {n_rois} rois 7x7"
            try:
                fns, fb = roi_fns(kind, n_rois, rng)
                t = {k: float(np.median(v))
                     for k, v in run_timed(fns, args.repeat, args.gap, clock).items()}
                print(f"{name:<26s}{fmt(t['fwd'])}{fmt(t['fb'], 9)}"
                      f"{fmt(peak_mb(fb), 9, '.1f')}", flush=True)
            except NotImplementedError:
                print(f"{name:<26s}{'n/a':>8s}{'n/a':>9s}{'n/a':>9s}")
    print(TORCHVISION_NOTE)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
