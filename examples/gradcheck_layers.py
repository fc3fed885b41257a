"""Gradient-check a convolution and RoI Align by hand with minirpn.nn.gradcheck.

    python examples/gradcheck_layers.py
    python examples/gradcheck_layers.py --max-probes 50 --seed 3

Every backward pass in minirpn is written by hand. Here we check two of
them against central differences, the way the test-suite does: for an
output y = f(x) and a random upstream gradient dy, the hand-written
backward must give d(sum(dy * y))/dx, and the numerical estimate is

    (L(x + h e_j) - L(x - h e_j)) / (2 h)   for every entry j,

in float64. The last check breaks a gradient on purpose, to show what a
bug looks like in the report.
"""
import argparse
import sys
from pathlib import Path

try:
    import minirpn
except ImportError:            # a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import minirpn

import numpy as np                                            # noqa: E402
from minirpn.nn import gradcheck                              # noqa: E402
from minirpn.nn.functional import (conv2d_backward, conv2d_forward,   # noqa: E402
                                   roi_align_backward, roi_align_forward)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.add_argument("--eps", type=float, default=1e-6, help="finite-difference step h")
    p.add_argument("--tolerance", type=float, default=1e-6,
                   help="largest relative error that passes (default 1e-6)")
    p.add_argument("--max-probes", type=int, default=None,
                   help="probe this many random entries per input (default: all)")
    return p.parse_args(argv)


def check_conv(rng, args, stride=2, padding=1):
    """3x3 conv, stride 2, padding 1: gradients for x, w and b."""
    x = rng.standard_normal((2, 3, 9, 9))
    w = rng.standard_normal((4, 3, 3, 3)) * 0.5
    b = rng.standard_normal(4)
    y, cache = conv2d_forward(x, w, b, stride, padding)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = conv2d_backward(dy, cache)
    return gradcheck(lambda x, w, b: conv2d_forward(x, w, b, stride, padding)[0],
                     {"x": x, "w": w, "b": b}, {"x": dx, "w": dw, "b": db}, dy=dy,
                     eps=args.eps, tolerance=args.tolerance, max_probes=args.max_probes,
                     rng=rng)


def check_roi_align(rng, args, scale=0.25):
    """RoI Align on a stride-4 map: RoIs with real-valued corners, two images."""
    features = rng.standard_normal((2, 3, 8, 8))
    rois = np.array([[0, 1.3, 2.7, 20.2, 17.9],      # [image, x1, y1, x2, y2], pixels
                     [1, 0.0, 0.0, 31.0, 31.0],
                     [1, 10.5, 4.25, 14.0, 30.5]])
    kwargs = dict(output_size=(3, 3), spatial_scale=scale, sampling_ratio=2, aligned=True)
    y, cache = roi_align_forward(features, rois, **kwargs)
    dy = rng.standard_normal(y.shape)
    dfeatures = roi_align_backward(dy, cache)
    # The RoI corners get no gradient (approximate joint training treats
    # proposals as constants), so only the features are checked.
    return gradcheck(lambda features: roi_align_forward(features, rois, **kwargs)[0],
                     {"features": features}, {"features": dfeatures}, dy=dy,
                     eps=args.eps, tolerance=args.tolerance, max_probes=args.max_probes,
                     rng=rng)


def check_broken_bias(rng, args):
    """The conv check with db halved: the report must say FAIL for b."""
    x, w, b = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3)), \
        rng.standard_normal(3)
    y, cache = conv2d_forward(x, w, b, 1, 1)
    dy = rng.standard_normal(y.shape)
    _, _, db = conv2d_backward(dy, cache)
    return gradcheck(lambda b: conv2d_forward(x, w, b, 1, 1)[0], {"b": b}, {"b": db / 2},
                     dy=dy, eps=args.eps, tolerance=args.tolerance)


def main(argv=None):
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    ok = True
    for title, check, expect in (("conv2d 3x3, stride 2, padding 1", check_conv, True),
                                 ("roi_align 3x3, sampling_ratio 2", check_roi_align, True),
                                 ("conv2d with a bug: db / 2", check_broken_bias, False)):
        report = check(rng, args)
        print(f"{title}  (relative error per input, tolerance {report.tolerance:g})")
        print(report)
        ok &= report.passed == expect
    print("all as expected" if ok else "UNEXPECTED RESULT")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
