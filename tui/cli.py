"""The `scribe` command: parses arguments and hands each subcommand to its module.

Subcommand modules stay light at import time (no torch, transformers, textual or pygls), so
`scribe --help` is instant; each imports what it needs inside its `run`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from importlib.metadata import PackageNotFoundError, version

# Subcommand name -> module under scribe.tui with `register(subparsers)`.
COMMANDS = ["complete", "chat", "log", "finetune", "models", "templates", "lsp"]


def _version() -> str:
    try:
        return version("scribe")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scribe", description="A local, private AI writing assistant."
    )
    parser.add_argument("--version", action="version", version=f"scribe {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"scribe.tui.{name}_cmd")
        except ModuleNotFoundError as err:
            if err.name != f"scribe.tui.{name}_cmd":
                raise
            continue  # a door not built yet
        module.register(sub)
    return parser


def error_line(message: str) -> None:
    print(f"scribe: error: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from scribe.engine.errors import ScribeError

    try:
        return int(args.func(args) or 0)
    except ScribeError as err:
        error_line(str(err))
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining
        # about the unflushed stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
