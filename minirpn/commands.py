"""What the ``train``, ``evaluate`` and ``detect`` sub-commands do.

Kept apart from :mod:`minirpn.cli` (argument parsing) so each can be called
from Python with an ``argparse.Namespace`` or a ``SimpleNamespace``.
"""
import json
import os
import sys

from .config import Config
from .detect_files import detect_command  # noqa: F401  (re-exported: one place per command)

__all__ = ["load_data", "load_config", "load_model", "check_run_folder",
           "check_some_steps_ran", "train_command", "evaluate_command", "detect_command"]


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


def check_run_folder(out, resume=None, overwrite=False):
    """Refuse, before any data is loaded, an ``--out`` holding an earlier run
    unless ``--overwrite`` (or ``--resume``; None: the command has no such
    flag) was given, as Hugging Face's scripts refuse a non-empty output_dir
    without ``--overwrite_output_dir``."""
    from .train import existing_run_files
    earlier = existing_run_files(out)
    if earlier and not (resume or overwrite):
        how = "add --resume to continue it, --overwrite" if resume is not None \
            else "add --overwrite"
        raise FileExistsError(f"--out {out} already holds a training run "
                              f"({', '.join(earlier)}): {how} to replace it, or "
                              "choose another --out")


def train_command(args):
    """``minirpn train``: train, checkpoint, evaluate on ``--val``."""
    from .faster_rcnn import FasterRCNN
    from .train import TrainConfig, TrainingInterrupted, train
    check_run_folder(args.out, args.resume, args.overwrite)
    dataset = load_data(args.data, args.images, args.num_images, args.seed)
    val = load_data(args.val, args.images, max(args.num_images // 4, 20),
                    args.seed + 1000) if args.val is not None else None
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
    from .checkpoint import load_checkpoint
    from .faster_rcnn import FasterRCNN
    from .train.state import TRAIN_STEP
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
    from .train import evaluate
    model = load_model(args.checkpoint)
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
