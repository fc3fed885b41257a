"""What the ``train``, ``evaluate`` and ``detect`` sub-commands do.

Kept apart from :mod:`minirpn.cli` (argument parsing) so each can be called
from Python with an ``argparse.Namespace`` or a ``SimpleNamespace``.
"""
import json
import os

from .config import Config

__all__ = ["load_data", "load_config", "train_command", "evaluate_command",
           "detect_command"]


def load_data(spec, images_dir=None, num_images=100, seed=0):
    """Open the dataset a ``--data`` string names.

    Forms: ``coco:PATH.json``, ``voc:DIR`` or ``voc:DIR:SPLIT`` (default
    split ``trainval``), ``shapes`` and ``digits`` (``num_images`` generated
    from ``seed``).
    """
    from . import data
    kind, _, rest = spec.partition(":")
    if kind == "shapes" and not rest:
        return data.ShapesDataset(num_images, seed=seed)
    if kind == "digits" and not rest:
        return data.DigitsDataset(num_images, seed=seed)
    if kind == "coco" and rest:
        return data.CocoDataset(rest, images_dir=images_dir)
    if kind == "voc" and rest:
        root, _, split = rest.partition(":")
        return data.VocDataset(root, split=split or "trainval")
    raise ValueError(f"unknown data spec {spec!r}: use {', '.join(('coco:PATH.json', 'voc:DIR[:SPLIT]', 'shapes', 'digits'))}")


def load_config(name, dataset):
    """``toy``, ``paper`` or a JSON file, sized to the dataset's classes."""
    extra = dict(class_names=tuple(dataset.class_names),
                 category_ids=tuple(getattr(dataset, "label_to_category_id", {}).values()))
    if name in ("toy", "paper"):
        preset = Config.toy if name == "toy" else Config.paper
        return preset(len(dataset.class_names), **extra)
    try:
        with open(name) as f:
            values = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"--config {name}: not toy, paper or a readable JSON file ({exc})")
    values.update(num_classes=len(dataset.class_names), **extra)
    return Config.from_dict(values)


def train_command(args):
    """``minirpn train``: train, checkpoint, evaluate on ``--val``."""
    from .faster_rcnn import FasterRCNN
    from .train import TrainConfig, train
    dataset = load_data(args.data, args.images, args.num_images, args.seed)
    val = load_data(args.val, args.images, max(args.num_images // 4, 20),
                    args.seed + 1000) if args.val else None
    if val is not None and list(val.class_names) != list(dataset.class_names):
        raise ValueError(f"--val classes {list(val.class_names)} differ from "
                         f"--data classes {list(dataset.class_names)}")
    config = load_config(args.config, dataset)
    # The toy recipe (the demo's): lr 0.02 after a 100-step warm-up. A
    # config trained from ImageNet weights would want the paper's 0.001.
    options = dict(scheme=args.scheme, batch_size=args.batch_size, seed=args.seed,
                   warmup_iterations=100,
                   lr=args.lr or (0.02 if args.config == "toy" else 0.001))
    if args.iterations:
        options["iterations"] = args.iterations
    if args.minutes:
        options["minutes"] = args.minutes
        if not args.iterations:
            options["iterations"] = None  # the budget alone sets the count
    result = train(FasterRCNN(config), dataset, args.out, TrainConfig(**options),
                   val_dataset=val, resume=args.resume, progress=not args.quiet,
                   class_names=list(dataset.class_names))
    if val is not None:
        print(result.ap.table(class_names=[None] + list(dataset.class_names)))
    print(f"model written to {os.path.join(args.out, 'model.npz')}")
    return 0


def _check_compatible(checkpoint, config, dataset):
    if config.num_classes != len(dataset.class_names):
        raise ValueError(f"{checkpoint}: field num_classes is {config.num_classes} "
                         f"but the data has {len(dataset.class_names)} classes")
    if config.class_names and list(config.class_names) != list(dataset.class_names):
        raise ValueError(f"{checkpoint}: field class_names {list(config.class_names)} "
                         f"differ from the data's {list(dataset.class_names)}")


def evaluate_command(args):
    """``minirpn evaluate``: per-class AP table, or JSON."""
    from .faster_rcnn import FasterRCNN
    from .train import evaluate
    model = FasterRCNN.load(args.checkpoint)
    dataset = load_data(args.data, args.images, args.num_images, args.seed)
    _check_compatible(args.checkpoint, model.config, dataset)
    result = evaluate(model, dataset, method=args.method, iou_threshold=args.iou)
    names = list(dataset.class_names)
    if args.json:
        print(json.dumps({"map": result.map, "method": args.method,
                          "per_class": {names[k - 1]: v for k, v in result.per_class.items()}},
                         indent=1))
    else:
        print(result.table(class_names=[None] + names))
    return 0


def detect_command(args):
    """``minirpn detect``: annotated PNGs and ``detections.json``."""
    from .data import read_image
    from .faster_rcnn import FasterRCNN
    from .visualize import plot_detections, save_figure
    model = FasterRCNN.load(args.checkpoint)
    names = list(model.config.class_names) or [str(k) for k in range(1, model.config.num_classes + 1)]
    os.makedirs(args.out, exist_ok=True)
    records = []
    for path in args.images:
        image = read_image(path)
        det = model.detect([image], score_threshold=args.score_threshold)[0]
        stem = os.path.splitext(os.path.basename(path))[0]
        save_figure(plot_detections(image, det, class_names=names),
                    os.path.join(args.out, f"{stem}.png"))
        records.append({"image": path, "detections": [
            {"box": [float(v) for v in box], "score": float(score), "label": int(label),
             "class": names[int(label) - 1],
             **({"category_id": int(model.config.category_ids[int(label) - 1])}
                if model.config.category_ids else {})}
            for box, score, label in zip(det["boxes"], det["scores"], det["labels"])]})
        print(f"{path}: {len(det['boxes'])} detections")
    from .train.log import write_json
    write_json(os.path.join(args.out, "detections.json"), records)
    return 0
