"""The ``neurolm`` command line.

Each stage contributes one module in this package exposing
``register(subparsers)``; it adds its sub-commands and sets ``func`` on each
parser. ``func(args) -> int`` returns the exit code. Modules that run a Prefect
flow import ``flows`` lazily inside ``func`` so the library stays Prefect-free.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from neurolm.errors import NeurolmError

# Sub-command modules, in the order they appear in --help.
COMMAND_MODULES = (
    "neurolm.cli.synth",
    "neurolm.cli.ingest",
    "neurolm.cli.rebuild",
    "neurolm.cli.datasets",
    "neurolm.cli.tokenizer",
    "neurolm.cli.tokens",
    "neurolm.cli.pretrain",
    "neurolm.cli.tune",
    "neurolm.cli.evaluate",
    "neurolm.cli.ask",
    "neurolm.cli.build",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neurolm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a stage not installed/built yet
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except NeurolmError as exc:
        print(f"neurolm {args.command}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        _quiet_exit_time_logging()


def _quiet_exit_time_logging() -> None:
    """Keep interpreter shutdown quiet once the command's own output is complete.

    Prefect's background log/event workers flush at exit; when the embedded
    server of the run has already stopped, each queued item would print a
    "Logging error" traceback after the summary. Everything the run had to say
    (and record on the server) was said before this point; the stdlib's advice
    for production code is ``raiseExceptions = False``.
    """
    import logging

    logging.raiseExceptions = False


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
