"""The ``minirpn`` command line: the top floor, which nothing else imports.

This module parses the arguments (:func:`build_parser`) and runs a
sub-command (:func:`main`, the ``minirpn`` script and ``python -m
minirpn``); what each sub-command does lives beside it:

* :mod:`~minirpn.cli.demo`: ``demo`` (the main job);
* :mod:`~minirpn.cli.commands`: ``train``, ``evaluate``, ``check-data`` and
  what every command shares (``--data``, ``--config``, checkpoints);
* :mod:`~minirpn.cli.detect_command`: ``detect``;
* :mod:`~minirpn.cli.anchor_commands`: ``inspect-anchors`` and ``trace``;
* ``make-dataset`` and ``gradcheck`` call :mod:`minirpn.data` and
  :mod:`minirpn.nn.selfcheck` directly.

``demo``, ``train``, ``evaluate`` and ``detect`` take ``--backend
numpy|cupy`` (beside ``MINIRPN_BACKEND``). Exit codes: 0 success, 2 usage errors
(argparse's own, including a 0 or negative count), 130 Ctrl-C (128 +
SIGINT, as shells report it), 1 any other error, printed as one line (the
traceback only with ``--debug``).
"""
import argparse
import sys

from .. import __version__
from ..checks import (check_non_negative_int, check_non_negative_number, check_positive_int,
                     check_positive_number)

__all__ = ["main", "build_parser"]


def _cmd_gradcheck(args):
    from ..nn.selfcheck import run_selfcheck
    report = run_selfcheck(seed=args.seed)
    print(report.table())
    return 0 if report.passed else 1


def _cmd_demo(args):
    from .commands import check_run_folder
    from .demo import run_demo
    from ..train import TrainingInterrupted
    check_run_folder(args.out, overwrite=args.overwrite)
    try:
        run_demo(out_dir=args.out, minutes=args.minutes, seed=args.seed,
                 progress=not args.quiet, overwrite=args.overwrite)
    except TrainingInterrupted as exc:
        raise KeyboardInterrupt(f"interrupted at step {exc.step}; run the demo again "
                                "with --overwrite to start over") from exc
    return 0


def _cmd_train(args):
    from .commands import train_command
    return train_command(args)


def _cmd_evaluate(args):
    from .commands import evaluate_command
    return evaluate_command(args)


def _cmd_detect(args):
    from .commands import detect_command
    return detect_command(args)


def _cmd_check_data(args):
    from .commands import check_data_command
    return check_data_command(args)


def _cmd_make_dataset(args):
    from ..data import make_dataset
    path = make_dataset(args.name, args.out, args.num_images, seed=args.seed,
                        progress=not args.quiet)
    print(f"wrote {args.num_images} images and {path}")
    return 0


# Counts and budgets: 0 is a usage error (exit 2), never "not given", so
# "--iterations 0" cannot silently mean the default. Each argparse type runs
# the library's own check, so both say the same thing.
def _argument(parse, check):
    """An argparse ``type``: ``parse`` the text, then ``check`` the value with
    the :mod:`minirpn.checks` function; its message loses the argument name,
    which argparse puts first ("argument --iterations: must be ...")."""
    def argument(text):
        try:
            value = parse(text)
        except ValueError:
            value = text          # the check's TypeError says what was expected
        try:
            return check(value, "")
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc).strip()) from None
    argument.__name__ = parse.__name__   # argparse names the type in its messages
    return argument


_POSITIVE_INT = _argument(int, check_positive_int)
_POSITIVE_FLOAT = _argument(float, check_positive_number)
_COUNT = _argument(int, check_non_negative_int)
_NON_NEGATIVE_FLOAT = _argument(float, check_non_negative_number)


def _add_backend(p):
    p.add_argument("--backend", choices=("numpy", "cupy"), default=None,
                   help="arrays on the CPU (numpy) or an NVIDIA GPU (cupy, needs "
                        "pip install \".[gpu]\"); default: $MINIRPN_BACKEND, else numpy")


DATA_HELP = ("coco:PATH.json, voc:DIR[:SPLIT], shapes or digits "
             "(generated on the fly)")


def _add_data_options(p):
    """Lenient loading and VOC class names, for every command that reads
    COCO or VOC files."""
    p.add_argument("--skip-invalid", action="store_true",
                   help="leave out boxes of zero size or outside the image and "
                        "images whose file is missing, unreadable or of "
                        "another size (reported per reason)")
    p.add_argument("--clip-boxes", action="store_true",
                   help="clip boxes that overhang the image to it (reported)")
    p.add_argument("--classes", help="voc: data: class names, comma-separated "
                   "or a file with one per line, or 'found' for the names in "
                   "the annotations (default: the 20 VOC classes; evaluate: "
                   "the checkpoint's)")


def _add_demo(sub):
    p = sub.add_parser("demo", help="train a detector on generated shapes and "
                       "show what it finds (the main job)")
    p.add_argument("--minutes", type=_POSITIVE_FLOAT, default=None,
                   help="wall-clock budget for training, > 0 (default: a fixed "
                        "schedule that takes about 3.5 minutes on 2 cores)")
    p.add_argument("--out", default="minirpn_demo", help="output folder (default %(default)s)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier demo run in --out")
    p.add_argument("--seed", type=_COUNT, default=0, help="seed of data and training")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_backend(p)
    p.set_defaults(func=_cmd_demo)


def _add_train(sub):
    p = sub.add_parser("train", help="train a detector")
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--val", help="validation data, same forms as --data")
    p.add_argument("--images", help="image folder for coco: data (default: beside the JSON)")
    p.add_argument("--out", required=True, help="run folder (model.npz, log.jsonl, metrics.json)")
    p.add_argument("--config", default="toy", help="toy, paper or a JSON file (default toy)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--iterations", type=_POSITIVE_INT, help="training steps, >= 1")
    budget.add_argument("--minutes", type=_POSITIVE_FLOAT, help="wall-clock budget, > 0")
    p.add_argument("--scheme", choices=("joint", "alternating"), default="joint")
    p.add_argument("--batch-size", type=_POSITIVE_INT, default=2)
    p.add_argument("--lr", type=_NON_NEGATIVE_FLOAT, default=None,
                   help="base learning rate (default 0.02 for --config toy, else 0.001); "
                        "0 is honoured, as by torch.optim.SGD: losses only, no update")
    p.add_argument("--seed", type=_COUNT, default=0)
    p.add_argument("--num-images", type=_POSITIVE_INT, default=400,
                   help="images generated for shapes/digits training data")
    p.add_argument("--checkpoint-every", type=_COUNT, default=500, metavar="N",
                   help="checkpoint every N steps (default %(default)s; 0: only at "
                        "the start and the end; Ctrl-C and errors always checkpoint)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the run in --out")
    again.add_argument("--overwrite", action="store_true",
                       help="replace the run in --out (kept until the new run's "
                            "first checkpoint is written)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_data_options(p)
    _add_backend(p)
    p.set_defaults(func=_cmd_train)


def _add_evaluate(sub):
    p = sub.add_parser("evaluate", help="mean average precision of a checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--images", help="image folder for coco: data")
    p.add_argument("--method", choices=("area", "voc07", "coco101"), default="area")
    p.add_argument("--iou", type=float, default=0.5, help="IoU threshold (default 0.5)")
    p.add_argument("--num-images", type=_POSITIVE_INT, default=100,
                   help="images generated for shapes/digits data")
    p.add_argument("--seed", type=_COUNT, default=1, help="seed of generated data")
    p.add_argument("--json", action="store_true", help="print JSON with map and per_class")
    _add_data_options(p)
    _add_backend(p)
    p.set_defaults(func=_cmd_evaluate)


def _add_detect(sub):
    p = sub.add_parser("detect", help="detect objects in image files")
    p.add_argument("checkpoint")
    p.add_argument("images", nargs="+", help="image files (any format Pillow reads)")
    p.add_argument("--out", required=True,
                   help="folder for annotated PNGs and detections.json; never one "
                        "holding an input image")
    p.add_argument("--score-threshold", type=float, default=None)
    p.add_argument("--overwrite", action="store_true",
                   help="replace files in --out that detect writes (earlier results)")
    _add_backend(p)
    p.set_defaults(func=_cmd_detect)


def _add_make_dataset(sub):
    p = sub.add_parser("make-dataset", help="write a toy dataset as COCO JSON + PNGs")
    p.add_argument("name", choices=("shapes", "digits"))
    p.add_argument("--out", required=True)
    p.add_argument("--num-images", type=_POSITIVE_INT, default=200)
    p.add_argument("--seed", type=_COUNT, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_make_dataset)


def _add_check_data(sub):
    p = sub.add_parser("check-data", help="check every record and image file "
                       "of a COCO or VOC dataset and list every problem")
    p.add_argument("--data", required=True, help="coco:PATH.json or voc:DIR[:SPLIT]")
    p.add_argument("--images", help="image folder for coco: data")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_data_options(p)
    p.set_defaults(func=_cmd_check_data)


def _add_gradcheck(sub):
    p = sub.add_parser("gradcheck", help="check every layer's backward pass "
                       "against finite differences and print the report")
    p.add_argument("--seed", type=_COUNT, default=0, help="seed of the test inputs")
    p.set_defaults(func=_cmd_gradcheck)


def _cmd_inspect_anchors(args):
    from .anchor_commands import inspect_anchors_command
    return inspect_anchors_command(args)


def _cmd_trace(args):
    from .anchor_commands import trace_command
    return trace_command(args)


def _add_inspect_anchors(sub):
    p = sub.add_parser("inspect-anchors", help="how well the anchors of a config cover a "
                       "dataset's GT boxes (annotations only), with better settings")
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--config", default="toy", help="toy, paper or a JSON file (default toy)")
    p.add_argument("--out", help="folder for report.json, best_iou.png, box_shapes.png and "
                   "worst_covered.png (the gallery reads the images)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--images", help="image folder for coco: data (default: beside the JSON)")
    p.add_argument("--num-images", type=_POSITIVE_INT, default=200,
                   help="images generated for shapes/digits data (default %(default)s)")
    p.add_argument("--seed", type=_COUNT, default=0, help="seed of generated data")
    p.add_argument("--suggestions", type=_COUNT, default=3,
                   help="alternative anchor settings to list (default %(default)s, 0: none)")
    p.add_argument("--gallery", type=_COUNT, default=12,
                   help="worst-covered boxes drawn in --out (default %(default)s)")
    p.set_defaults(func=_cmd_inspect_anchors)


def _add_trace(sub):
    p = sub.add_parser("trace", help="step through one image: overview PNG, anchor label "
                       "table, one explanation figure per --anchor")
    p.add_argument("inputs", nargs="*", metavar="CHECKPOINT [IMAGE]",
                   help="a checkpoint and an image file; with --config, only the image "
                        "(or nothing, with --data)")
    p.add_argument("--config", help="toy, paper or a JSON file: trace an untrained model "
                   "(labels do not depend on the weights)")
    p.add_argument("--data", help=DATA_HELP)
    p.add_argument("--index", type=_COUNT, default=0, help="image of --data (default 0)")
    p.add_argument("--images", help="image folder for coco: data")
    p.add_argument("--gt", action="append", default=[], metavar="X1,Y1,X2,Y2[,LABEL]",
                   help="a GT box of IMAGE (repeat for more)")
    p.add_argument("--anchor", type=_COUNT, action="append", default=[], metavar="N",
                   help="write anchor_N.png explaining anchor N's label (repeat for more)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--samples", type=_COUNT, default=10,
                   help="negative and ignored anchors of each kind in the table")
    p.add_argument("--seed", type=_COUNT, default=0, help="seed of sampling and generated data")
    p.set_defaults(func=_cmd_trace)


def build_parser():
    """Return the argparse parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="minirpn", description="Faster R-CNN from scratch in NumPy.")
    parser.add_argument("--version", action="version", version=f"minirpn {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_demo, _add_train, _add_evaluate, _add_detect,
                _add_make_dataset, _add_check_data, _add_gradcheck,
                _add_inspect_anchors, _add_trace):
        add(sub)
    return parser


def main(argv=None):
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        if getattr(args, "backend", None):
            from ..backend import set_backend
            set_backend(args.backend)
        return args.func(args)
    except KeyboardInterrupt as exc:
        if args.debug:
            raise
        print(f"minirpn {args.command}: {str(exc) or 'interrupted'}", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, not a traceback: see --debug
        if args.debug:
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        # PEP 678 notes say what was kept (train: the checkpoint to resume from)
        notes = [n for n in getattr(exc, "__notes__", ()) if n.strip()]
        if notes:
            message += f" ({notes[-1].strip()})"
        print(f"minirpn {args.command}: error: {message}", file=sys.stderr)
        return 1

