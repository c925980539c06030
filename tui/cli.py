"""The `scribe` command: parses arguments and hands each subcommand to its module.

Subcommand modules stay light at import time (no torch, transformers, textual or pygls), so
`scribe --help` is instant; each imports what it needs inside its `run`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

# Subcommand name -> module under scribe.tui.commands with `register(subparsers)`.
COMMANDS = ["complete", "chat", "log", "finetune", "models", "templates", "lsp", "export"]
# Commands that generate on the CPU: torch need not look for out-of-tree device backends (a
# scan of every installed package's entry points) when they import it.
CPU_COMMANDS = {"complete", "chat", "lsp", "serve"}


class VersionAction(argparse.Action):
    """argparse's "version" action, with the version looked up only when asked for (reading
    the package metadata costs every other command tens of milliseconds at start)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kw) -> None:
        kw.setdefault("help", "show program's version number and exit")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kw)

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # type: ignore[no-untyped-def]
        from scribe.engine.version import scribe_version

        parser._print_message(f"scribe {scribe_version()}\n", sys.stdout)
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scribe", description="A local, private AI writing assistant."
    )
    parser.add_argument("--version", action=VersionAction)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"scribe.tui.commands.{name}_cmd").register(sub)
    return parser


def error_line(message: str) -> None:
    print(f"scribe: error: {message}", file=sys.stderr, flush=True)


class _Notices(logging.StreamHandler):
    """The engine's notices (a cache rebuilt, a fallback taken) as one `scribe: warning:` line
    each on stderr, as it is now (the chat's screen swaps it). The engine logs them and never
    prints; the servers send the same records to their log file instead (lsp_cmd.py)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


@contextmanager
def engine_notices() -> Iterator[None]:
    """While a command runs: scribe's own warnings only (a library's are not its notices).
    Removed after, so `main` called in a test leaves no handler behind."""
    handler = _Notices()
    handler.setFormatter(logging.Formatter("scribe: warning: %(message)s"))
    handler.setLevel(logging.WARNING)
    handler.addFilter(logging.Filter("scribe"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)


# A Unix filter whose reader went away dies of SIGPIPE; its shell sees 128 + 13.
EXIT_BROKEN_PIPE = 128 + 13


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's flush at exit cannot fail (and print
    "Exception ignored ...") on what is still buffered for a closed pipe or a full disk."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, AttributeError, ValueError):  # no stdout at all: nothing to flush
        pass


def stdout_failed() -> bool:
    """True when stdout itself cannot be written (a full disk, a dead terminal)."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except OSError:
        return True
    return False


def utf8_stdio() -> None:
    """All text I/O is UTF-8 whatever the locale: under LC_ALL=C or a Latin-1 LANG, Python
    would otherwise write the reply in ASCII or Latin-1 and fail on the first other character.
    A character UTF-8 cannot carry (a lone surrogate) is replaced, never an error."""
    for stream, errors in (
        (sys.stdin, "replace"),
        (sys.stdout, "replace"),
        (sys.stderr, "backslashreplace"),
    ):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None:  # not a text stream of io's (closed, or a test's StringIO)
            continue
        try:
            reconfigure(encoding="utf-8", errors=errors)
        except (ValueError, OSError):  # already read from or closed: leave it as it is
            pass


def utf8_argv(argv: list[str]) -> list[str]:
    """The arguments read as UTF-8 whatever the locale (LC_ALL=C decodes them as ASCII, a
    Latin-1 locale as Latin-1): their bytes back, then UTF-8; bytes that are not UTF-8 stay
    as Python keeps them (lone surrogates), for the checks that name them."""
    return [os.fsencode(arg).decode("utf-8", "surrogateescape") for arg in argv]


def main(argv: list[str] | None = None) -> int:
    from scribe.engine.errors import InputError, OutputError, ScribeError

    utf8_stdio()
    parser = build_parser()
    try:
        # Inside the try: the generation flags' types raise ScribeError for a bad number.
        args = parser.parse_args(utf8_argv(sys.argv[1:]) if argv is None else argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 0
        if args.command in CPU_COMMANDS:
            os.environ.setdefault("TORCH_DEVICE_BACKEND_AUTOLOAD", "0")
        # Started with `>&-`: whatever the command prints would vanish (or crash on None).
        if sys.stdout is None:
            raise InputError("stdout is closed; send it to a file or a pipe, e.g. > out.txt")
        if sys.stdin is None:  # started with `<&-`: read it as empty, as </dev/null is
            sys.stdin = open(os.devnull, encoding="utf-8")  # stays open: it is stdin now
        with engine_notices():
            code = int(args.func(args) or 0)
        sys.stdout.flush()  # fails here, not at exit, when stdout cannot take the last bytes
        return code
    except ScribeError as err:
        if isinstance(err, OutputError):
            silence_stdout()
        error_line(str(err))
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    except MemoryError:
        error_line("out of memory; give a shorter input, a smaller --model, or free some memory")
        return 1
    except BrokenPipeError:
        silence_stdout()  # the reader went away (`| head`): stop quietly, as Unix filters do
        return EXIT_BROKEN_PIPE
    except OSError as err:
        if not stdout_failed():
            raise  # not about stdout: a real bug, keep its traceback
        silence_stdout()
        error_line(f"cannot write to stdout ({err.strerror}); free some space or write elsewhere")
        return 1


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
