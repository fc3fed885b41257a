"""The ``minirpn`` command line.

Exit codes: 0 success, 2 usage errors (argparse's own), 1 any other error,
printed as one line (the traceback only with ``--debug``).
"""
import argparse
import sys

from . import __version__

__all__ = ["main", "build_parser"]


def _cmd_demo(args):
    from .nn.selfcheck import run_selfcheck
    report = run_selfcheck(seed=args.seed)
    print(report.table())
    return 0 if report.passed else 1


def build_parser():
    """Return the argparse parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="minirpn",
        description="Faster R-CNN from scratch in NumPy.")
    parser.add_argument("--version", action="version",
                        version=f"minirpn {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo", help="check every layer's backward pass against finite "
                     "differences and print the report")
    demo.add_argument("--seed", type=int, default=0,
                      help="seed of the random test inputs (default 0)")
    demo.set_defaults(func=_cmd_demo)
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
    except (ValueError, TypeError, RuntimeError, OSError) as exc:
        if args.debug:
            raise
        print(f"minirpn {args.command}: error: {exc}", file=sys.stderr)
        return 1
