"""The 3x3 convs of minirpn on the GPU, path by path: Winograd against
im2col (and cuDNN through torch when it is there).

    python benchmarks/bench_gpu_conv.py [--repeat N] [--skip-model]

In one process:
- every 3x3 conv shape of VGG16 and the RPN at 600x1000 and of the toy
  config at 600x1000, forward + backward, on the "winograd" path (the
  default for CuPy arrays) and forced onto "im2col", and torch's conv2d;
- the winograd path's steps one by one for three shapes (filter and input
  transforms, the batched products, the adjoints, the gather), so a slow
  step shows;
- the paper and toy train step and detect with each path (alternating).

Every figure is a median of device-synchronised runs (ms). CUPY_TF32 is
CuPy's switch for TF32 matmuls; torch uses its defaults (TF32 in cuDNN).
"""
import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests"), os.path.dirname(os.path.abspath(__file__))]

from bench_gpu import import_torch, scene, time_minirpn, timer  # noqa: E402
from minirpn import Config, FasterRCNN  # noqa: E402
from minirpn.backend import import_cupy  # noqa: E402
from minirpn.nn import conv  # noqa: E402
from minirpn.nn import functional as F  # noqa: E402

#: (name, C, F, H, W): the 3x3 convs of VGG16 (conv1_1 has C = 3: im2col)
#: and the RPN at 600x1000, then the toy config's
SHAPES = [("conv1_2", 64, 64, 600, 1000), ("conv2_1", 64, 128, 300, 500),
          ("conv2_2", 128, 128, 300, 500), ("conv3_1", 128, 256, 150, 250),
          ("conv3_x", 256, 256, 150, 250), ("conv4_1", 256, 512, 75, 125),
          ("conv4_x", 512, 512, 75, 125), ("conv5_x/rpn", 512, 512, 37, 62),
          ("toy 16->32", 16, 32, 300, 500), ("toy 32->64", 32, 64, 150, 250),
          ("toy 64->128", 64, 128, 75, 125), ("toy rpn", 128, 128, 75, 125)]

_CHOOSE = conv._choose_path


def force(path):
    """Make CuPy's 3x3 convs take ``path`` ("winograd" or "im2col")."""
    def choose(x, w, stride, padding, out_size):
        chosen = _CHOOSE(x, w, stride, padding, out_size)
        return "im2col" if chosen == "winograd" and path == "im2col" else chosen
    conv._choose_path = choose


def conv_inputs(cp, C, Fo, H, W):
    """x (1, C, H, W), w (Fo, C, 3, 3), b (Fo,) and dy (1, Fo, H, W) on the GPU."""
    rng = np.random.default_rng(0)
    x = cp.asarray(rng.standard_normal((1, C, H, W), np.float32))
    w = cp.asarray(rng.standard_normal((Fo, C, 3, 3), np.float32) * 0.05)
    dy = cp.asarray(rng.standard_normal((1, Fo, H, W), np.float32))
    return x, w, cp.zeros(Fo, np.float32), dy


def layer_rows(cp, torch, repeat):
    timed = timer(cp.cuda.Device().synchronize)
    print(f"\n== 3x3 conv fwd+bwd (ms) ==\n{'':14s} {'C->F @HxW':>20s} {'winograd':>9s} "
          f"{'im2col':>8s} {'torch':>7s} {'wino/torch':>10s}")
    for name, C, Fo, H, W in SHAPES:
        x, w, b, dy = conv_inputs(cp, C, Fo, H, W)

        def run():
            y, cache = F.conv2d_forward(x, w, b, padding=1)
            F.conv2d_backward(dy, cache)
        times = {}
        for path in ("winograd", "im2col"):
            force(path)
            times[path] = timed(run, repeat)
        force("winograd")
        ref = float("nan")
        if torch is not None:
            tx = torch.as_tensor(x.get(), device="cuda").requires_grad_()
            tw = torch.as_tensor(w.get(), device="cuda").requires_grad_()
            tb = torch.zeros(Fo, device="cuda", requires_grad=True)
            tdy = torch.as_tensor(dy.get(), device="cuda")

            def run_torch():
                for p in (tx, tw, tb):
                    p.grad = None
                torch.nn.functional.conv2d(tx, tw, tb, padding=1).backward(tdy)
            ref = timer(torch.cuda.synchronize)(run_torch, repeat)
        print(f"{name:14s} {f'{C}->{Fo} @{H}x{W}':>20s} {times['winograd']:9.3f} "
              f"{times['im2col']:8.3f} {ref:7.3f} {times['winograd'] / ref:9.2f}x")


def step_rows(cp, repeat):
    """The winograd path's steps one at a time, then its backward pass for
    several ``CHUNK_TILES``."""
    from minirpn.cuda import winograd_kernel as wk
    from minirpn.cuda.launch import THREADS, blocks_for, launch
    timed = timer(cp.cuda.Device().synchronize)
    for name, C, Fo, H, W in (SHAPES[0], SHAPES[4], SHAPES[7]):
        x, w, b, dy = conv_inputs(cp, C, Fo, H, W)
        y, U, V = wk.forward(x, w, b)
        S = V.shape[1]
        Us, Uts = wk._per_chunk(cp, U, S), wk._per_chunk(cp, U.transpose(0, 2, 1), S)
        M = cp.matmul(Us, V)
        dM, dx = cp.empty_like(M), cp.empty_like(x)
        dV = cp.matmul(Uts, M)
        dU = cp.matmul(M, V.transpose(0, 1, 3, 2)).sum(axis=1)
        zero, half = np.float32(0), np.float32(0.5)
        blocks = blocks_for(C * (H // 2 + 1) * (W // 2 + 1))
        steps = [
            ("forward, whole", lambda: wk.forward(x, w, b)),
            ("  filter transform", lambda: launch(wk._filter_kernel, blocks_for(Fo * C),
                                                  THREADS, w, half, U)),
            ("  input transform", lambda: launch(wk._input_kernel, blocks_for(V.size // 16),
                                                 THREADS, x, zero, V)),
            ("  M = U @ V", lambda: cp.matmul(Us, V)),
            ("  U per chunk", lambda: wk._per_chunk(cp, U, S)),
            ("  output transform", lambda: launch(wk._output_kernel, blocks_for(M.size // 16),
                                                  THREADS, M, b, y)),
            ("backward, whole", lambda: wk.backward(dy, U, V, x.shape)),
            ("  dM = A dy A^T", lambda: launch(wk._output_adjoint_kernel,
                                               blocks_for(dM.size // 16), THREADS, dy, zero,
                                               dM)),
            ("  dU = sum dM @ V^T", lambda: cp.matmul(dM, V.transpose(0, 1, 3, 2)).sum(1)),
            ("  dw = G^T dU G", lambda: launch(wk._filter_adjoint_kernel, blocks_for(Fo * C),
                                               THREADS, dU, half, w)),
            ("  dV = U^T @ dM", lambda: cp.matmul(Uts, dM)),
            ("  V^T, contiguous", lambda: cp.ascontiguousarray(V.transpose(0, 1, 3, 2))),
            ("  dV <- B dV B^T", lambda: launch(wk._input_adjoint_kernel,
                                                blocks_for(dV.size // 16), THREADS, dV)),
            ("  gather dx", lambda: launch(wk._gather_kernel, blocks, THREADS, dV, zero, dx)),
        ]
        print(f"\n== winograd steps, {name} {C}->{Fo} @{H}x{W}, "
              f"{V.shape[1]} chunks of {V.shape[3]} tiles (ms) ==")
        for step, fn in steps:
            print(f"  {step:22s} {timed(fn, repeat):8.3f}")
    default = wk.CHUNK_TILES
    for name, C, Fo, H, W in (SHAPES[0], SHAPES[2], SHAPES[4]):
        x, w, b, dy = conv_inputs(cp, C, Fo, H, W)
        print(f"\n== {name}: fwd+bwd (ms) by CHUNK_TILES ==")
        for tiles in (512, 1024, 2048, 4096, 8192, 1 << 30):
            wk.CHUNK_TILES = tiles

            def run():
                y, U, V = wk.forward(x, w, b)
                wk.backward(dy, U, V, x.shape)
            print(f"  {tiles:>10d} {timed(run, repeat):8.3f}")
    wk.CHUNK_TILES = default


def model_rows(cp, repeat):
    sync = cp.cuda.Device().synchronize
    image, target = scene(600, 1000)
    print("\n== whole model, each path (ms; alternating, median) ==")
    for cname, config in (("toy", Config.toy(3)), ("paper", Config.paper(3))):
        model = FasterRCNN(config).to("cupy")
        got = {"winograd": [], "im2col": []}
        for _ in range(3):
            for path in got:
                force(path)
                got[path].append(time_minirpn(model, image, target, repeat, sync))
        force("winograd")
        for path, runs in got.items():
            train, detect = np.median(np.array(runs), axis=0)
            print(f"  {cname:6s} {path:9s} train step {train:8.2f}   detect {detect:8.2f}")
        del model
        cp.get_default_memory_pool().free_all_blocks()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-model", action="store_true")
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args()
    cp = import_cupy()
    print(f"device: {cp.cuda.runtime.getDeviceProperties(0)['name'].decode()}; "
          f"CuPy {cp.__version__}, CUPY_TF32={os.environ.get('CUPY_TF32', '0')}")
    torch = None if args.no_torch else import_torch()
    start = time.perf_counter()
    layer_rows(cp, torch, args.repeat)
    step_rows(cp, args.repeat)
    if not args.skip_model:
        model_rows(cp, args.repeat)
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
