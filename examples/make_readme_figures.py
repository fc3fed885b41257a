"""Make the README's pictures: detections, one anchor explained, a step-through overview.

    python examples/make_readme_figures.py                   # trains the demo's model first
    python examples/make_readme_figures.py --checkpoint minirpn_demo/model.npz

Without ``--checkpoint`` it trains ``Config.toy`` on generated shapes with
the demo's recipe (``minirpn.cli.demo``: 2700 steps at 224 px, about 3.5
minutes on 2 cores), or for ``--minutes`` with that schedule stretched
over the budget, in a temporary folder. It writes three PNGs into ``examples/figures/`` (this
script's own output, refreshed on every run), each quantised to a palette
so it stays under 300 KB:

* ``detections.png``: held-out shapes with their detections and GT;
* ``explanation.png``: ``plot_explanation`` for a held-out image's
  best-anchor (rule 4) positive, the anchor whose label most needs
  explaining;
* ``step_through.png``: ``plot_trace`` of the same image.
"""
import argparse
import dataclasses
import io
import os
import sys
import tempfile

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import minirpn                                           # noqa: E402
from minirpn.anchor_targets import Reason                 # noqa: E402
from minirpn.data import ShapesDataset                    # noqa: E402
from minirpn.visualize import detection_grid, plot_explanation, plot_trace  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")
MAX_BYTES = 300_000


def save_small(fig, path, dpi):
    """Write ``fig`` as a palette PNG; refuse to leave one over MAX_BYTES."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    image = Image.open(buffer).convert("RGB").quantize(colors=128)
    image.save(path, optimize=True)
    size = os.path.getsize(path)
    if size > MAX_BYTES:
        raise RuntimeError(f"{path} is {size} bytes, over {MAX_BYTES}: lower its dpi")
    print(f"wrote {path} ({size // 1000} KB)")


def trained_model(checkpoint, minutes, seed):
    if checkpoint:
        return minirpn.FasterRCNN.load(checkpoint)
    from minirpn.cli.demo import DEMO_TRAIN_IMAGES, demo_train_config
    from minirpn.train import train
    data = ShapesDataset(DEMO_TRAIN_IMAGES, seed=seed)
    names = tuple(data.class_names)
    model = minirpn.FasterRCNN(minirpn.Config.toy(len(names), class_names=names, seed=seed,
                                                  target_size=224, max_size=350))
    recipe = demo_train_config(seed)
    if minutes is not None:
        # The schedule stretched over the time budget instead of its 2700
        # steps (as `minirpn train --minutes` does).
        recipe = dataclasses.replace(demo_train_config(seed, minutes), iterations=None)
    with tempfile.TemporaryDirectory() as run:
        return train(model, data, run, recipe, progress=False).model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a trained toy model (default: train one)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="training budget (default: the demo's 2700 steps)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model = trained_model(args.checkpoint, args.minutes, args.seed)
    names = list(model.config.class_names) or None
    held_out = ShapesDataset(8, seed=args.seed + 1)           # the demo's held-out seed
    os.makedirs(OUT, exist_ok=True)

    images = [held_out[i][0] for i in range(4)]
    targets = [held_out[i][1] for i in range(4)]
    save_small(detection_grid(images, model.detect(images), names, targets=targets,
                              min_score=0.5), os.path.join(OUT, "detections.png"), dpi=70)

    image, target = held_out[0]
    trace = model.step_through(image, target)
    labels = trace["anchor_labels"].result
    rescued = np.flatnonzero(labels.reason_before_sampling == Reason.POSITIVE_AS_BEST_ANCHOR)
    anchor = int(rescued[np.argmin(labels.max_iou[rescued])]) if len(rescued) else \
        int(np.flatnonzero(labels.labels == 1)[0])
    print(labels.explain(anchor))
    save_small(plot_explanation(labels, anchor, image=image),
               os.path.join(OUT, "explanation.png"), dpi=80)
    save_small(plot_trace(trace, class_names=names), os.path.join(OUT, "step_through.png"),
               dpi=60)


if __name__ == "__main__":
    main()
