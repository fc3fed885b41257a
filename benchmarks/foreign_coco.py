"""Write a COCO-format toy dataset that minirpn's own generators did not make.

    python benchmarks/foreign_coco.py OUT_DIR [--train 300] [--val 80] [--seed 0]

It stands in for "a user's own dataset" when checking that the training
recipe is not tuned to ``minirpn.data.ShapesDataset``: other shapes
(ellipses, plus signs, rings), other backgrounds (two-colour gradients with
clutter lines), images of 192-320 px, objects of 24-96 px, category ids that
are not 1..C. Writes ``OUT_DIR/train.json``, ``OUT_DIR/val.json`` and the
PNGs under ``OUT_DIR/images/``. Then, for example:

    minirpn train --data coco:OUT/train.json --val coco:OUT/val.json \\
        --out runs/foreign --minutes 15
"""
import argparse
import json
import os

import numpy as np
from PIL import Image, ImageDraw

CATEGORIES = [{"id": 7, "name": "ellipse"}, {"id": 11, "name": "plus"},
              {"id": 42, "name": "ring"}]


def background(rng, h, w):
    a, b = rng.integers(0, 256, size=(2, 3))
    t = np.linspace(0, 1, w if rng.random() < 0.5 else h)
    ramp = a + (b - a) * t[:, None]
    image = np.broadcast_to(ramp[None] if len(t) == w else ramp[:, None], (h, w, 3))
    image = Image.fromarray(image.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(3, 9)):  # clutter that is not an object
        x1, x2 = rng.integers(0, w, 2)
        y1, y2 = rng.integers(0, h, 2)
        draw.line([(x1, y1), (x2, y2)], fill=tuple(int(v) for v in rng.integers(0, 256, 3)),
                  width=int(rng.integers(1, 3)))
    return image


def draw_object(draw, rng, kind, box, colour):
    x1, y1, x2, y2 = box
    if kind == "ellipse":
        draw.ellipse([x1, y1, x2 - 1, y2 - 1], fill=colour)
    elif kind == "plus":
        tw, th = max(4, (x2 - x1) // 3), max(4, (y2 - y1) // 3)
        cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
        draw.rectangle([x1, cy - th // 2, x2 - 1, cy + th // 2], fill=colour)
        draw.rectangle([cx - tw // 2, y1, cx + tw // 2, y2 - 1], fill=colour)
    else:
        width = max(3, (x2 - x1) // 5)
        draw.ellipse([x1, y1, x2 - 1, y2 - 1], outline=colour, width=width)


def make_image(rng):
    h, w = (int(v) for v in rng.integers(192, 321, size=2))
    image = background(rng, h, w)
    draw = ImageDraw.Draw(image)
    boxes, labels = [], []
    for _ in range(rng.integers(1, 6)):
        for _ in range(30):
            side = int(np.exp(rng.uniform(np.log(24), np.log(96))))
            bw = side if rng.random() < 0.5 else int(side * rng.uniform(0.7, 1.0))
            x1, y1 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - side))
            box = (x1, y1, x1 + bw, y1 + side)
            if all(box[2] <= b[0] or b[2] <= box[0] or box[3] <= b[1] or b[3] <= box[1]
                   for b in boxes):
                break
        else:
            continue
        k = int(rng.integers(3))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        draw_object(draw, rng, CATEGORIES[k]["name"], box, colour)
        boxes.append(box)
        labels.append(CATEGORIES[k]["id"])
    return np.asarray(image), boxes, labels


def write_split(out_dir, name, count, rng, start_id):
    images, annotations = [], []
    for i in range(count):
        image, boxes, labels = make_image(rng)
        file_name = f"images/{name}_{i:05d}.png"
        Image.fromarray(image).save(os.path.join(out_dir, file_name))
        image_id = start_id + i
        images.append({"id": image_id, "file_name": file_name,
                       "height": image.shape[0], "width": image.shape[1]})
        for (x1, y1, x2, y2), category in zip(boxes, labels):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": category, "iscrowd": 0,
                                "bbox": [x1, y1, x2 - x1, y2 - y1],
                                "area": (x2 - x1) * (y2 - y1)})
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump({"images": images, "annotations": annotations,
                   "categories": CATEGORIES}, f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--train", type=int, default=300)
    parser.add_argument("--val", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(os.path.join(args.out_dir, "images"), exist_ok=True)
    rng = np.random.default_rng(args.seed)
    write_split(args.out_dir, "train", args.train, rng, 0)
    write_split(args.out_dir, "val", args.val, rng, 100000)
    print(f"wrote {args.train} + {args.val} images to {args.out_dir}")


if __name__ == "__main__":
    main()
