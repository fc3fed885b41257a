"""minirpn on the GPU (CuPy backend) against torchvision on the same GPU.

    python benchmarks/bench_gpu.py [--quick] [--repeat N] [--skip-paper] [--cpu]

In one process, on one 600x1000 image:
- NMS (12000 boxes at IoU 0.7), RoI pool and RoI Align forward+backward
  (300 RoIs on 512x38x63) and a few VGG16 conv shapes, against
  ``torchvision.ops`` / ``torch.nn.functional.conv2d`` when torch is there;
- a training step (zero_grad, forward, backward) and a detect of the toy and
  paper configs, against torchvision's ``FasterRCNN`` built the same way
  (``torchvision_same_config.py``: same backbone widths, anchors,
  pre/post-NMS counts, sampler sizes and head width; ``MultiScaleRoIAlign``
  on one level);
- the step-through stages of the paper config on the GPU, each between two
  device synchronisations (CuPy runs asynchronously);
- with ``--cpu``, the toy config on the CPU too.

It ends with the ratio table (minirpn / torchvision, lower is better) and
the targets of the GPU work: paper train step and detect at most 2x, RoI
pool and RoI Align at most 2x, NMS at most 1x. Matmuls use TF32 only where
the user allows it (``CUPY_TF32=1`` for CuPy; torch's own defaults: TF32 in
cuDNN convolutions); both settings are printed.

Needs CuPy and a CUDA device (pip install ".[gpu]"); without them it says
which is missing and exits with status 2. torch/torchvision are optional.
"""
import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from minirpn import Config, FasterRCNN  # noqa: E402
from minirpn.backend import import_cupy  # noqa: E402
from minirpn.nn import functional as F  # noqa: E402
from minirpn.ops import nms  # noqa: E402
from scenes import make_scene  # noqa: E402

#: ratio targets of the GPU issue: row name -> most minirpn may take, in
#: multiples of torchvision's time
TARGETS = {"paper train step": 2.0, "paper detect": 2.0, "roi_pool fwd+bwd": 2.0,
           "roi_align fwd+bwd": 2.0, "nms 12000 @0.7": 1.0}


def scene(h, w, seed=0):
    rng = np.random.default_rng(seed)
    boxes = [[w * 0.1, h * 0.1, w * 0.4, h * 0.5], [w * 0.5, h * 0.4, w * 0.9, h * 0.9]]
    image = make_scene(rng, h, w, boxes, [1, 2])
    return image, {"boxes": np.asarray(boxes, np.float32), "labels": np.array([1, 2])}


def timer(sync):
    """A function timing fn (median of ``repeat`` runs after two warm-ups,
    ms), synchronising the device around every run."""
    def timed(fn, repeat):
        fn()
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


# ---- torchvision, built like minirpn's configs ---------------------------------------
def torchvision_like(config, device):
    """torchvision's FasterRCNN built like ``config`` (the one construction of
    :func:`torchvision_same_config.build_torchvision_faster_rcnn`, which
    ``bench_model.py`` uses too), on ``device``."""
    from torchvision_same_config import build_torchvision_faster_rcnn
    return build_torchvision_faster_rcnn(config).to(device)


def time_torchvision(config, image, target, repeat, torch):
    """(train step ms, detect ms) of :func:`torchvision_like` on one image."""
    device = torch.device("cuda")
    model = torchvision_like(config, device)
    x = torch.as_tensor(image, device=device).permute(2, 0, 1).float() / 255
    t = {"boxes": torch.as_tensor(target["boxes"], device=device),
         "labels": torch.as_tensor(target["labels"], device=device, dtype=torch.int64)}
    timed = timer(torch.cuda.synchronize)

    def step():
        model.train()
        model.zero_grad(set_to_none=True)
        sum(model([x], [t]).values()).backward()

    def detect():
        model.eval()
        with torch.no_grad():
            model([x])
    return timed(step, repeat), timed(detect, repeat)


def time_minirpn(model, image, target, repeat, sync):
    """(train step ms, detect ms) of a minirpn model on one image."""
    rng = np.random.default_rng(0)
    timed = timer(sync)

    def step():
        model.zero_grad()
        model.forward_train([image], [target], rng=rng)
        model.backward()
    return timed(step, repeat), timed(lambda: model.detect([image]), repeat)


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


# ---- single ops -------------------------------------------------------------------
def nms_inputs():
    rng = np.random.default_rng(0)
    centres = rng.uniform(0, 1000, (600, 2))[rng.integers(0, 600, 12000)]
    half = rng.uniform(8, 150, (12000, 2))
    boxes = np.concatenate([centres - half, centres + half], 1).astype(np.float32)
    return boxes, rng.random(12000).astype(np.float32)


def roi_inputs():
    """512x38x63 features (VGG16 at 600x1000) and 300 RoIs in image pixels."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 512, 38, 63)).astype(np.float32)
    xy = rng.uniform(0, 800, (300, 2))
    wh = rng.uniform(16, 400, (300, 2))
    rois = np.concatenate([np.zeros((300, 1)), xy, np.minimum(xy + wh, [1000, 600])], 1)
    return x, rois.astype(np.float32)


CONV_SHAPES = [(64, 64, 600, 1000), (256, 256, 150, 250), (512, 512, 38, 63)]


def op_rows(cp, torch, repeat, quick):
    """(name, minirpn ms, torch ms or None) for NMS, RoI pool/Align and convs."""
    sync = cp.cuda.Device().synchronize
    ours = timer(sync)
    rows = []
    boxes, scores = nms_inputs()
    b, s = cp.asarray(boxes), cp.asarray(scores)
    keep = nms(b, s, 0.7).get()
    assert np.array_equal(keep, nms(boxes, scores, 0.7)), "GPU NMS differs from the CPU"
    def nms_torch():
        import torchvision
        tb, ts = torch.as_tensor(boxes, device="cuda"), torch.as_tensor(scores, device="cuda")
        same = np.array_equal(torchvision.ops.nms(tb, ts, 0.7).cpu().numpy(), keep)
        print(f"nms: {len(keep)} of 12000 kept; same indices as torchvision: {same}")
        return timer(torch.cuda.synchronize)(lambda: torchvision.ops.nms(tb, ts, 0.7),
                                             repeat * 5)
    ref = maybe("torchvision nms", nms_torch) if torch is not None else None
    rows.append(("nms 12000 @0.7", ours(lambda: nms(b, s, 0.7), repeat * 5), ref))

    x, rois = roi_inputs()
    xg, rg = cp.asarray(x), cp.asarray(rois)
    dy = cp.asarray(np.random.default_rng(2).standard_normal((300, 512, 7, 7), np.float32))
    pool = dict(output_size=(7, 7), spatial_scale=1 / 16)
    align = dict(pool, sampling_ratio=2, aligned=False)
    for name, forward, backward, kw, tv in (
            ("roi_pool", F.roi_pool_forward, F.roi_pool_backward, pool, "roi_pool"),
            ("roi_align", F.roi_align_forward, F.roi_align_backward, align, "roi_align")):
        def run(forward=forward, backward=backward, kw=kw):
            y, cache = forward(xg, rg, **kw)
            backward(dy, cache)
        def roi_torch(tv=tv, kw=kw):
            import torchvision
            op = getattr(torchvision.ops, tv)
            tx = torch.as_tensor(x, device="cuda").requires_grad_()
            tr, tdy = torch.as_tensor(rois, device="cuda"), torch.as_tensor(dy.get(),
                                                                             device="cuda")

            def run_torch():
                tx.grad = None
                op(tx, tr, **kw).backward(tdy)
            return timer(torch.cuda.synchronize)(run_torch, repeat * 5)
        ref = maybe(f"torchvision {tv}", roi_torch) if torch is not None else None
        rows.append((f"{name} fwd+bwd", ours(run, repeat * 5), ref))

    for cin, cout, h, w in CONV_SHAPES[1:2] if quick else CONV_SHAPES:
        rng = np.random.default_rng(3)
        xc = cp.asarray(rng.standard_normal((1, cin, h, w), np.float32))
        wc = cp.asarray(rng.standard_normal((cout, cin, 3, 3), np.float32) * 0.05)
        bc = cp.zeros(cout, np.float32)
        dyc = cp.asarray(rng.standard_normal((1, cout, h, w), np.float32))

        def conv(xc=xc, wc=wc, bc=bc, dyc=dyc):
            y, cache = F.conv2d_forward(xc, wc, bc, padding=1)
            F.conv2d_backward(dyc, cache)
        ref = None
        if torch is not None:
            tx = torch.as_tensor(xc.get(), device="cuda").requires_grad_()
            tw = torch.as_tensor(wc.get(), device="cuda").requires_grad_()
            tbias = torch.zeros(cout, device="cuda", requires_grad=True)
            tdy = torch.as_tensor(dyc.get(), device="cuda")

            def conv_torch(tx=tx, tw=tw, tbias=tbias, tdy=tdy):
                for p in (tx, tw, tbias):
                    p.grad = None
                torch.nn.functional.conv2d(tx, tw, tbias, padding=1).backward(tdy)
            ref = timer(torch.cuda.synchronize)(conv_torch, repeat * 2)
        rows.append((f"conv {cin}->{cout} @{h}x{w} fwd+bwd", ours(conv, repeat * 2), ref))
    return rows


def maybe(what, fn):
    """fn(), or None with one line saying why (torch's side must not stop
    the minirpn rows)."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - reported, the run goes on
        print(f"{what}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return None


# ---- the report -----------------------------------------------------------------
def ratio_line(name, ours, ref):
    """One row of the ratio table: ms, ms, ratio and the target's verdict."""
    ratio = ours / ref if ref else float("nan")
    target = TARGETS.get(name)
    verdict = "" if target is None or ref is None else \
        f"<= {target:g}x: {'met' if ratio <= target else 'NOT met'}"
    ref_text = f"{ref:9.2f}" if ref else f"{'-':>9s}"
    return f"{name:34s} {ours:11.2f} {ref_text} {ratio:6.2f}x  {verdict}"


def print_ratios(rows):
    print("\n== minirpn (CuPy) / torchvision on this GPU: lower is better ==")
    print(f"{'':34s} {'minirpn ms':>11s} {'torch ms':>9s} {'ratio':>7s}  target")
    for row in rows:
        print(ratio_line(*row))


def import_torch():
    try:
        import torch
        import torchvision
    except ImportError as exc:
        print(f"torch/torchvision not importable ({exc}): minirpn rows only")
        return None
    if not torch.cuda.is_available():
        print("torch sees no CUDA device: minirpn rows only")
        return None
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}; "
          f"cuDNN conv TF32 {torch.backends.cudnn.allow_tf32}, "
          f"matmul TF32 {torch.backends.cuda.matmul.allow_tf32}")
    return torch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats and conv shapes: a minute or two")
    parser.add_argument("--repeat", type=int, default=None,
                        help="timed runs per row (median; default 10, 3 with --quick)")
    parser.add_argument("--skip-paper", action="store_true", help="no VGG16 (paper) rows")
    parser.add_argument("--cpu", action="store_true",
                        help="also time the toy config on the CPU")
    parser.add_argument("--no-torch", action="store_true", help="minirpn rows only")
    args = parser.parse_args()
    repeat = args.repeat or (3 if args.quick else 10)
    try:
        cp = import_cupy()
    except RuntimeError as exc:
        print(f"bench_gpu: {exc}; nothing to measure.", file=sys.stderr)
        sys.exit(2)
    print(f"device: {cp.cuda.runtime.getDeviceProperties(0)['name'].decode()}; "
          f"CuPy {cp.__version__}, CUPY_TF32={os.environ.get('CUPY_TF32', '0')}")
    torch = None if args.no_torch else import_torch()
    sync = cp.cuda.Device().synchronize
    # each row is printed as soon as it is measured (a time limit may stop
    # the run), the paper config's first; the whole table again at the end
    rows = op_rows(cp, torch, repeat, args.quick)
    for row in rows:
        print(ratio_line(*row))

    image, target = scene(600, 1000)
    configs = ([] if args.skip_paper else [("paper", Config.paper(3))]) + [("toy", Config.toy(3))]
    for name, config in configs:
        model = FasterRCNN(config).to("cupy")
        ours = time_minirpn(model, image, target, repeat, sync)
        ref = (maybe(f"torchvision {name}", lambda: time_torchvision(
            config, image, target, repeat, torch)) if torch else None) or (None, None)
        rows += [(f"{name} train step", ours[0], ref[0]), (f"{name} detect", ours[1], ref[1])]
        for row in rows[-2:]:
            print(ratio_line(*row))
        if name == "paper" or args.skip_paper:
            print(f"\n== {name} config: step-through stages on the GPU (ms) ==")
            for stage, ms in stage_times(model, image, target, sync):
                print(f"  {stage:<26s} {ms:8.1f}")
        if name == "toy" and args.cpu:
            cpu = time_minirpn(FasterRCNN(config), image, target, max(1, repeat // 2),
                               lambda: None)
            print(f"\ntoy config on the CPU: train step {cpu[0]:.1f} ms, detect "
                  f"{cpu[1]:.1f} ms (GPU {cpu[0] / ours[0]:.1f}x, {cpu[1] / ours[1]:.1f}x)")
    print_ratios(rows)


if __name__ == "__main__":
    main()
