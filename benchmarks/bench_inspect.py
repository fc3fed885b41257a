"""Time ``minirpn inspect-anchors`` on a COCO-sized annotation file (no pixels).

Writes a COCO instances file of 5000 images (sizes drawn from COCO's usual
range, 480-640 px a side) and 40000 boxes (log-uniform sides from 8 px to
the image size, aspect ratios from 1:4 to 4:1), then times the command as a
user runs it: the annotation file is parsed and validated, every box's best
IoU is found under the paper config, and 28 alternative anchor settings are
ranked. The issue's bar: under 60 s on 2 cores.

    python benchmarks/bench_inspect.py [--images 5000] [--boxes 40000] [--config paper]
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def make_annotations(path, num_images, num_boxes, seed=0):
    """A COCO instances file with ``num_images`` images and ``num_boxes`` boxes."""
    rng = np.random.default_rng(seed)
    sizes = rng.choice([480, 500, 512, 600, 612, 640], size=(num_images, 2))
    images = [dict(id=i + 1, file_name=f"{i:06d}.jpg", width=int(w), height=int(h))
              for i, (h, w) in enumerate(sizes.tolist())]
    owner = rng.integers(0, num_images, num_boxes)
    H, W = sizes[owner, 0], sizes[owner, 1]
    side = np.exp(rng.uniform(np.log(8), np.log(np.minimum(H, W) * 0.9)))
    ratio = np.exp(rng.uniform(np.log(0.25), np.log(4.0), num_boxes))
    w = np.minimum(side / np.sqrt(ratio), W - 1.0)
    h = np.minimum(side * np.sqrt(ratio), H - 1.0)
    x = rng.uniform(0, W - w)
    y = rng.uniform(0, H - h)
    anns = [dict(id=k + 1, image_id=int(owner[k]) + 1, category_id=1 + k % 3, iscrowd=0,
                 bbox=[round(float(v), 2) for v in (x[k], y[k], w[k], h[k])])
            for k in range(num_boxes)]
    with open(path, "w") as f:
        json.dump(dict(images=images, annotations=anns,
                       categories=[dict(id=c, name=f"class{c}") for c in (1, 2, 3)]), f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--boxes", type=int, default=40000)
    parser.add_argument("--config", default="paper")
    args = parser.parse_args()
    from minirpn.cli import main as cli
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "instances.json")
        start = time.perf_counter()
        make_annotations(path, args.images, args.boxes)
        made = time.perf_counter() - start
        start = time.perf_counter()
        code = cli(["inspect-anchors", "--data", f"coco:{path}", "--config", args.config,
                    "--json"])
        took = time.perf_counter() - start
    print("\n| images | boxes | config | write JSON (s) | inspect-anchors (s) | exit |",
          file=sys.stderr)
    print("|---|---|---|---|---|---|", file=sys.stderr)
    print(f"| {args.images} | {args.boxes} | {args.config} | {made:.1f} | {took:.1f} | {code} |",
          file=sys.stderr)


if __name__ == "__main__":
    main()
