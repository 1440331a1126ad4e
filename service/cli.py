"""``robocall`` command line: entry point only, no ML logic.

Each subcommand lives in its own module under ``service/commands/`` (the only place argparse is
used) exposing ``register(subparsers)``; the parser it adds sets
``func=<callable(args) -> int>``. Results go to stdout, logs to stderr. Exit codes: 0 every input
analysed, 1 any input failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# Modules that contribute subcommands, in the order `--help` lists them.
COMMAND_MODULES = (
    "service.commands.analyze",
    "service.commands.serve",
    "service.commands.batch",
    "service.commands.apikeys",
    "service.commands.evidence",
    "service.commands.keys",
    "service.commands.train",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robocall",
        description="Tell an electronic sales robot from a live person in a recorded phone "
        "call, and whether a sales pitch was heard (Mandarin, English). Runs offline.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
