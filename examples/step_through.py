"""Run the detector one stage at a time on a shapes image and draw it.

    python examples/step_through.py                    # untrained toy model
    python examples/step_through.py --checkpoint model.npz --out trace.png

Prints every stage of ``model.step_through`` (name, time, summary), asks
the anchor labels why a few anchors got their label, and saves the one-page
overview of :func:`minirpn.visualize.plot_trace`.
"""
import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")          # files only, no window

try:
    import minirpn
except ImportError:            # a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import minirpn

import numpy as np                                     # noqa: E402
from minirpn.anchor_targets import Reason              # noqa: E402
from minirpn.data import ShapesDataset                 # noqa: E402
from minirpn.visualize import plot_trace, save_figure  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", help="a model saved with model.save() "
                   "(default: an untrained Config.toy(3) model)")
    p.add_argument("--seed", type=int, default=0, help="ShapesDataset seed (default 0)")
    p.add_argument("--index", type=int, default=0, help="image index (default 0)")
    p.add_argument("--min-score", type=float, default=0.5,
                   help="detections drawn (default 0.5)")
    p.add_argument("--out", default="step_through.png", help="PNG written (default %(default)s)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    dataset = ShapesDataset(args.index + 1, seed=args.seed)
    image, target = dataset[args.index]
    model = minirpn.FasterRCNN.load(args.checkpoint) if args.checkpoint \
        else minirpn.FasterRCNN(minirpn.Config.toy(len(dataset.class_names)))

    # lazy=True runs nothing yet: each next() runs one stage and returns it.
    trace = model.step_through(image, target, lazy=True)
    while (stage := trace.next()) is not None:
        print(f"{stage.name:<17s} {stage.seconds * 1e3:8.1f} ms  {stage.summary}")

    # Ask the anchor labelling why: one anchor for each reason a label is given.
    labels = trace["anchor_labels"].result
    print()
    for reason in Reason:
        found = np.flatnonzero(labels.reason == reason)
        if len(found):
            print(f"[{reason.name}] {labels.explain(int(found[len(found) // 2]))}")

    fig = plot_trace(trace, dataset.class_names, min_score=args.min_score)
    print(f"\nwrote {save_figure(fig, args.out)}")


if __name__ == "__main__":
    main()
