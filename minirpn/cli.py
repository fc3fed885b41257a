"""The ``minirpn`` command line.

Sub-commands: ``demo`` (the main job), ``train``, ``evaluate``, ``detect``,
``make-dataset``, ``gradcheck``, ``inspect-anchors`` and ``trace``. Exit codes: 0 success, 2 usage errors
(argparse's own), 1 any other error, printed as one line (the traceback
only with ``--debug``).
"""
import argparse
import sys

from . import __version__

__all__ = ["main", "build_parser"]


def _cmd_gradcheck(args):
    from .nn.selfcheck import run_selfcheck
    report = run_selfcheck(seed=args.seed)
    print(report.table())
    return 0 if report.passed else 1


def _cmd_demo(args):
    from .demo import run_demo
    run_demo(out_dir=args.out, minutes=args.minutes, seed=args.seed,
             progress=not args.quiet)
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


def _cmd_make_dataset(args):
    from .data import make_dataset
    path = make_dataset(args.name, args.out, args.num_images, seed=args.seed,
                        progress=not args.quiet)
    print(f"wrote {args.num_images} images and {path}")
    return 0


DATA_HELP = ("coco:PATH.json, voc:DIR[:SPLIT], shapes or digits "
             "(generated on the fly)")


def _add_demo(sub):
    p = sub.add_parser("demo", help="train a detector on generated shapes and "
                       "show what it finds (the main job)")
    p.add_argument("--minutes", type=float, default=None,
                   help="wall-clock budget for training (default: a fixed "
                        "schedule that takes about 7 minutes on 2 cores)")
    p.add_argument("--out", default="minirpn_demo", help="output folder (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of data and training")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_demo)


def _add_train(sub):
    p = sub.add_parser("train", help="train a detector")
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--val", help="validation data, same forms as --data")
    p.add_argument("--images", help="image folder for coco: data (default: beside the JSON)")
    p.add_argument("--out", required=True, help="run folder (model.npz, log.jsonl, metrics.json)")
    p.add_argument("--config", default="toy", help="toy, paper or a JSON file (default toy)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--iterations", type=int, help="training steps")
    budget.add_argument("--minutes", type=float, help="wall-clock budget")
    p.add_argument("--scheme", choices=("joint", "alternating"), default="joint")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--lr", type=float, default=None,
                   help="base learning rate (default 0.02 for --config toy, else 0.001)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-images", type=int, default=400,
                   help="images generated for shapes/digits training data")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)


def _add_evaluate(sub):
    p = sub.add_parser("evaluate", help="mean average precision of a checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--images", help="image folder for coco: data")
    p.add_argument("--method", choices=("area", "voc07", "coco101"), default="area")
    p.add_argument("--iou", type=float, default=0.5, help="IoU threshold (default 0.5)")
    p.add_argument("--num-images", type=int, default=100,
                   help="images generated for shapes/digits data")
    p.add_argument("--seed", type=int, default=1, help="seed of generated data")
    p.add_argument("--json", action="store_true", help="print JSON with map and per_class")
    p.set_defaults(func=_cmd_evaluate)


def _add_detect(sub):
    p = sub.add_parser("detect", help="detect objects in image files")
    p.add_argument("checkpoint")
    p.add_argument("images", nargs="+", help="image files (any format Pillow reads)")
    p.add_argument("--out", required=True, help="folder for annotated PNGs and detections.json")
    p.add_argument("--score-threshold", type=float, default=None)
    p.set_defaults(func=_cmd_detect)


def _add_make_dataset(sub):
    p = sub.add_parser("make-dataset", help="write a toy dataset as COCO JSON + PNGs")
    p.add_argument("name", choices=("shapes", "digits"))
    p.add_argument("--out", required=True)
    p.add_argument("--num-images", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_make_dataset)


def _add_gradcheck(sub):
    p = sub.add_parser("gradcheck", help="check every layer's backward pass "
                       "against finite differences and print the report")
    p.add_argument("--seed", type=int, default=0, help="seed of the test inputs")
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
    p.add_argument("--num-images", type=int, default=200,
                   help="images generated for shapes/digits data (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of generated data")
    p.add_argument("--suggestions", type=int, default=3,
                   help="alternative anchor settings to list (default %(default)s, 0: none)")
    p.add_argument("--gallery", type=int, default=12,
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
    p.add_argument("--index", type=int, default=0, help="image of --data (default 0)")
    p.add_argument("--images", help="image folder for coco: data")
    p.add_argument("--gt", action="append", default=[], metavar="X1,Y1,X2,Y2[,LABEL]",
                   help="a GT box of IMAGE (repeat for more)")
    p.add_argument("--anchor", type=int, action="append", default=[], metavar="N",
                   help="write anchor_N.png explaining anchor N's label (repeat for more)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--samples", type=int, default=10,
                   help="negative and ignored anchors of each kind in the table")
    p.add_argument("--seed", type=int, default=0, help="seed of sampling and generated data")
    p.set_defaults(func=_cmd_trace)


def build_parser():
    """Return the argparse parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="minirpn", description="Faster R-CNN from scratch in NumPy.")
    parser.add_argument("--version", action="version", version=f"minirpn {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_demo, _add_train, _add_evaluate, _add_detect,
                _add_make_dataset, _add_gradcheck, _add_inspect_anchors, _add_trace):
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
        return args.func(args)
    except KeyboardInterrupt:
        print(f"minirpn {args.command}: interrupted", file=sys.stderr)
        return 1
    except Exception as exc:  # one line, not a traceback: see --debug
        if args.debug:
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"minirpn {args.command}: error: {message}", file=sys.stderr)
        return 1

