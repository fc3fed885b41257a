"""What the ``train``, ``evaluate`` and ``detect`` sub-commands do.

Kept apart from :mod:`minirpn.cli` (argument parsing) so each can be called
from Python with an ``argparse.Namespace`` or a ``SimpleNamespace``.
"""
import json
import os
import sys

from .config import Config

__all__ = ["load_data", "parse_classes", "data_options", "open_data",
           "load_config", "train_command", "evaluate_command",
           "detect_command", "check_data_command"]


def load_data(spec, images_dir=None, num_images=100, seed=0,
              skip_invalid=False, clip=False, classes=None,
              collect_problems=False):
    """Open the dataset a ``--data`` string names.

    Forms: ``coco:PATH.json``, ``voc:DIR`` or ``voc:DIR:SPLIT`` (default
    split ``trainval``), ``shapes`` and ``digits`` (``num_images`` generated
    from ``seed``). ``skip_invalid``, ``clip`` and ``collect_problems`` go
    to the COCO and VOC loaders; ``classes`` (a list of names, ``None`` for
    the 20 VOC classes, ``"found"`` for the names in the annotations) is for
    VOC data only.
    """
    from . import data
    kind, _, rest = spec.partition(":")
    lenient = dict(skip_invalid=skip_invalid, clip=clip,
                   collect_problems=collect_problems)
    if classes is not None and kind != "voc":
        raise ValueError(f"--classes applies to voc: data only, not {spec!r} "
                         f"(COCO files and generated data name their classes)")
    if kind == "shapes" and not rest:
        return data.ShapesDataset(num_images, seed=seed)
    if kind == "digits" and not rest:
        return data.DigitsDataset(num_images, seed=seed)
    if kind == "coco" and rest:
        return data.CocoDataset(rest, images_dir=images_dir, **lenient)
    if kind == "voc" and rest:
        root, _, split = rest.partition(":")
        names = data.VOC_CLASSES if classes is None else \
            None if classes == "found" else classes
        return data.VocDataset(root, split=split or "trainval",
                               class_names=names, **lenient)
    raise ValueError(f"unknown data spec {spec!r}: use {', '.join(('coco:PATH.json', 'voc:DIR[:SPLIT]', 'shapes', 'digits'))}")


def parse_classes(value):
    """``--classes``: ``None``, ``"found"``, a file with one name per line,
    or comma-separated names -> ``None``, ``"found"`` or a list of str."""
    if value is None or value == "found":
        return value
    if os.path.isfile(value):
        with open(value, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
        where = value
    else:
        names, where = [n.strip() for n in value.split(",")], "--classes"
    if not names or not all(names) or len(set(names)) != len(names):
        raise ValueError(f"{where}: class names must be distinct and "
                         f"non-empty, got {names!r}")
    return names


def data_options(args):
    """The data-loading options of a parsed command line, as keyword
    arguments of :func:`load_data` (absent flags: the strict defaults)."""
    return dict(skip_invalid=getattr(args, "skip_invalid", False),
                clip=getattr(args, "clip_boxes", False),
                classes=parse_classes(getattr(args, "classes", None)))


def open_data(spec, args, num_images, seed, **overrides):
    """:func:`load_data` with the command line's options; prints to stderr
    what a lenient load dropped or clipped."""
    options = {**data_options(args), **overrides}
    dataset = load_data(spec, getattr(args, "images", None), num_images, seed,
                        **options)
    report = getattr(dataset, "report", None)
    if report:
        print(report.summary(spec), file=sys.stderr)
    return dataset


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
    dataset = open_data(args.data, args, args.num_images, args.seed)
    # --val uses the training classes (a validation split may lack one)
    val_classes = list(dataset.class_names) \
        if args.val and args.val.startswith("voc:") else None
    val = open_data(args.val, args, max(args.num_images // 4, 20),
                    args.seed + 1000, classes=val_classes) \
        if args.val else None
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
    # VOC data is read with the checkpoint's classes unless --classes says
    overrides = {} if getattr(args, "classes", None) or \
        not args.data.startswith("voc:") or not model.config.class_names \
        else {"classes": list(model.config.class_names)}
    dataset = open_data(args.data, args, args.num_images, args.seed,
                        **overrides)
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


def check_data_command(args):
    """``minirpn check-data``: every problem of a COCO or VOC dataset in one
    pass (annotations, then a full decode of every image file); exit 1 if
    there is any."""
    from .data.validation import verify_image_files
    if not args.data.startswith(("coco:", "voc:")):
        raise ValueError(f"check-data reads files: use coco:PATH.json or "
                         f"voc:DIR[:SPLIT], not {args.data!r}")
    dataset = open_data(args.data, args, 0, 0, collect_problems=True)
    unreadable = verify_image_files(dataset, progress=not args.quiet)
    problems = dataset.report.problems + unreadable
    for problem in problems:
        print(problem)
    print(f"{args.data}: {len(dataset) - len(unreadable)} usable images, "
          f"{len(problems)} problem{'s' * (len(problems) != 1)}")
    return 1 if problems else 0
