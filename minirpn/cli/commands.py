"""What the ``train``, ``evaluate`` and ``check-data`` sub-commands do, and
the loading every command shares (``--data``, ``--config``, checkpoints);
``detect_command`` (:mod:`minirpn.cli.detect_command`) is importable here too.

Kept apart from :mod:`minirpn.cli` (argument parsing) so each can be called
from Python with an ``argparse.Namespace`` or a ``SimpleNamespace``.
"""
import json
import os
import sys

from ..config import Config
from .detect_command import detect_command  # noqa: F401  (re-exported: one place per command)

__all__ = ["load_data", "parse_classes", "data_options", "open_data",
           "load_config", "load_model", "check_run_folder", "check_some_steps_ran",
           "train_command", "evaluate_command", "detect_command", "check_data_command"]


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
    from .. import data
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
    raise ValueError(f"unknown data spec {spec!r}: use coco:PATH.json, voc:DIR[:SPLIT], "
                     "shapes, digits")


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


def check_run_folder(out, resume=None, overwrite=False):
    """Refuse, before any data is loaded, an ``--out`` holding an earlier run
    unless ``--overwrite`` (or ``--resume``; None: the command has no such
    flag) was given, as Hugging Face's scripts refuse a non-empty output_dir
    without ``--overwrite_output_dir``."""
    from ..train import existing_run_files
    earlier = existing_run_files(out)
    if earlier and not (resume or overwrite):
        how = "add --resume to continue it, --overwrite" if resume is not None \
            else "add --overwrite"
        raise FileExistsError(f"--out {out} already holds a training run "
                              f"({', '.join(earlier)}): {how} to replace it, or "
                              "choose another --out")


def train_command(args):
    """``minirpn train``: train, checkpoint, evaluate on ``--val``."""
    from ..faster_rcnn import FasterRCNN
    from ..train import TrainConfig, TrainingInterrupted, train
    check_run_folder(args.out, args.resume, args.overwrite)
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
    # "is not None" throughout: 0 is a value (--lr 0), not "not given".
    options = dict(scheme=args.scheme, batch_size=args.batch_size, seed=args.seed,
                   warmup_iterations=100, checkpoint_every=args.checkpoint_every,
                   lr=args.lr if args.lr is not None else
                   (0.02 if args.config == "toy" else 0.001))
    if args.iterations is not None:
        options["iterations"] = args.iterations
    if args.minutes is not None:
        options["minutes"] = args.minutes
        if args.iterations is None:
            options["iterations"] = None  # the budget alone sets the count
    try:
        result = train(FasterRCNN(config), dataset, args.out, TrainConfig(**options),
                       val_dataset=val, resume=args.resume, overwrite=args.overwrite,
                       progress=not args.quiet, class_names=list(dataset.class_names))
    except TrainingInterrupted as exc:
        raise KeyboardInterrupt(f"interrupted; the checkpoint of step {exc.step} is in "
                                f"{exc.out_dir}: run the same command with --resume "
                                "to continue") from exc
    check_some_steps_ran(result)
    if val is not None:
        print(result.ap.table(class_names=[None] + list(dataset.class_names)))
    print(f"model written to {os.path.join(args.out, 'model.npz')}")
    return 0


def check_some_steps_ran(result):
    """Raise when a run ended without a single SGD step (a time budget spent
    on setup): its model.npz is the untrained initial model."""
    if result.iterations == 0:
        raise RuntimeError(f"no training step ran ({result.stop_reason}): "
                           f"{os.path.join(result.out_dir, 'model.npz')} holds the "
                           "untrained model; give it more --minutes")


def load_model(path):
    """``FasterRCNN.load(path)``, with a warning on stderr when the file is
    a run's model.npz saved before its first step (an untrained model)."""
    from ..checkpoint import load_checkpoint
    from ..faster_rcnn import FasterRCNN
    from ..train.state import TRAIN_STEP
    config, params, extra = load_checkpoint(path, with_extra=True)
    if TRAIN_STEP in extra and int(extra[TRAIN_STEP]) == 0:
        print(f"minirpn: warning: {path} holds an untrained model (saved at step 0 "
              "of its run)", file=sys.stderr)
    model = FasterRCNN(config)
    model.load_parameters(params)
    return model


def _check_compatible(checkpoint, config, dataset):
    if config.num_classes != len(dataset.class_names):
        raise ValueError(f"{checkpoint}: field num_classes is {config.num_classes} "
                         f"but the data has {len(dataset.class_names)} classes")
    if config.class_names and list(config.class_names) != list(dataset.class_names):
        raise ValueError(f"{checkpoint}: field class_names {list(config.class_names)} "
                         f"differ from the data's {list(dataset.class_names)}")


def evaluate_command(args):
    """``minirpn evaluate``: per-class AP table, or JSON."""
    from ..train import evaluate
    model = load_model(args.checkpoint)
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


def check_data_command(args):
    """``minirpn check-data``: every problem of a COCO or VOC dataset in one
    pass (annotations, then a full decode of every image file); exit 1 if
    there is any."""
    from ..data.validation import verify_image_files
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
