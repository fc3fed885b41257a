"""What ``minirpn inspect-anchors`` and ``minirpn trace`` do: debugging anchor labelling.

Kept apart from :mod:`minirpn.cli` (argument parsing) so each can be called
from Python with an ``argparse.Namespace``; the work itself is in
:mod:`minirpn.inspect`.
"""
import json
import sys
import types

import numpy as np

from .commands import load_config, load_data

__all__ = ["inspect_anchors_command", "trace_command", "parse_gt"]


def _annotation_data(spec, images_dir, num_images, seed):
    """The dataset of ``--data``; COCO and VOC files without checking for pixels."""
    from .. import data
    kind, _, rest = spec.partition(":")
    if kind == "coco" and rest:
        return data.CocoDataset(rest, images_dir=images_dir, check_files=False)
    if kind == "voc" and rest:
        root, _, split = rest.partition(":")
        return data.VocDataset(root, split=split or "trainval", check_files=False)
    return load_data(spec, images_dir, num_images, seed)


def inspect_anchors_command(args):
    """``minirpn inspect-anchors``: the coverage report, its pictures, ``--json``."""
    from ..inspect import inspect_anchors, report_table, write_coverage
    dataset = _annotation_data(args.data, args.images, args.num_images, args.seed)
    config = load_config(args.config, dataset)
    report, coverage = inspect_anchors(dataset, config, suggestions=args.suggestions)
    if args.out:
        try:
            paths = write_coverage(report, coverage, args.out, dataset, gallery=args.gallery)
        except FileNotFoundError as exc:    # the gallery reads pixels; the rest was written
            print(f"minirpn inspect-anchors: the worst-covered gallery was not drawn: {exc}",
                  file=sys.stderr)
            paths = None
        if paths is not None and not args.json:
            print("wrote " + ", ".join(p for p in paths.values() if p), file=sys.stderr)
    print(json.dumps(report, indent=1) if args.json else report_table(report))
    return 0


def parse_gt(texts):
    """``--gt x1,y1,x2,y2[,label]`` strings -> a target dict (label 1 by default), or None."""
    if not texts:
        return None
    boxes, labels = [], []
    for text in texts:
        try:
            values = [float(v) for v in text.split(",")]
        except ValueError:
            values = []
        if len(values) not in (4, 5):
            raise ValueError(f"--gt must be x1,y1,x2,y2 or x1,y1,x2,y2,label, got {text!r}")
        boxes.append(values[:4])
        labels.append(int(values[4]) if len(values) == 5 else 1)
    return {"boxes": np.array(boxes, dtype=np.float32), "labels": np.array(labels, np.int64)}


def _trace_inputs(args):
    """(checkpoint or None, image path or None) from the positional arguments."""
    inputs = list(args.inputs)
    if args.config is not None:
        if len(inputs) > 1:
            raise ValueError(f"with --config (an untrained model) give at most IMAGE, not a "
                             f"checkpoint too: got {inputs}")
        checkpoint, image = None, (inputs[0] if inputs else None)
    else:
        if not inputs or len(inputs) > 2:
            raise ValueError("give CHECKPOINT [IMAGE], or --config toy|paper|FILE.json to "
                             f"trace an untrained model; got {inputs}")
        checkpoint, image = inputs[0], (inputs[1] if len(inputs) == 2 else None)
    if (image is None) == (args.data is None):
        raise ValueError("give either IMAGE or --data SPEC --index I (exactly one)")
    return checkpoint, image


def trace_command(args):
    """``minirpn trace``: overview PNG, label table, one figure per ``--anchor``."""
    from ..data import drop_difficult, read_image
    from ..faster_rcnn import FasterRCNN
    from ..inspect import write_trace
    checkpoint, image_path = _trace_inputs(args)
    if image_path is not None:
        target = parse_gt(args.gt)              # bad --gt is reported before any file is read
        image = read_image(image_path)
        n = 1 if target is None else int(target["labels"].max())
        names = types.SimpleNamespace(class_names=tuple(str(k) for k in range(1, n + 1)))
    else:
        if args.gt:
            raise ValueError("--gt goes with IMAGE; --data brings its own GT boxes")
        names = _annotation_data(args.data, args.images, args.index + 1, args.seed)
        image, target = names[args.index]
        target = drop_difficult(target)
    if checkpoint is not None:
        model = FasterRCNN.load(checkpoint)
        if target is not None and len(target["labels"]) \
                and int(target["labels"].max()) > model.config.num_classes:
            raise ValueError(f"{checkpoint}: the model has {model.config.num_classes} classes "
                             f"but the GT uses label {int(target['labels'].max())}")
    else:
        model = FasterRCNN(load_config(args.config, names))
    class_names = list(model.config.class_names) or None
    out = write_trace(model, image, target, args.out, anchors=args.anchor,
                      rng=np.random.default_rng(args.seed), class_names=class_names,
                      samples=args.samples)
    print(out["summary"])
    written = [out["overview"], out["table_csv"], out["table_md"], *out["anchors"].values()]
    print("wrote " + ", ".join(p for p in written if p))
    if out["labels"] is None:
        print("no GT boxes: anchors are labelled only against a target, so there is no "
              "label table (pass --gt or use --data)")
    return 0
