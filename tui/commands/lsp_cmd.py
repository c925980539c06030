"""`scribe lsp` (language server on stdio) and `scribe serve` (= `scribe lsp --jsonl`).

Kept light at import: pygls, torch and transformers load inside `run`.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path

from scribe.tui.common_args import add_command, add_model_arg

SUMMARY = "language server on stdio: ghost-text completion in Vim, Neovim, VS Code..."
DESCRIPTION = (
    "Serve inline completions over LSP (stdio), or JSONL with --jsonl. "
    "Logs go to the cache dir, never stdout."
)

SERVE_SUMMARY = "completion for scripts: JSONL on stdin/stdout (same as `scribe lsp --jsonl`)"
SERVE_DESCRIPTION = 'Read {"id","prefix","suffix","max_tokens"} lines, write {"id","text"} lines.'


def register(sub: argparse._SubParsersAction) -> None:
    lsp = add_command(sub, "lsp", SUMMARY, DESCRIPTION)
    _add_server_args(lsp)
    lsp.add_argument(
        "--jsonl",
        action="store_true",
        help='one JSON object per line each way: {"id","prefix","suffix","max_tokens"}',
    )
    lsp.set_defaults(func=run)
    serve = add_command(sub, "serve", SERVE_SUMMARY, SERVE_DESCRIPTION)
    _add_server_args(serve)
    serve.set_defaults(func=run, jsonl=True)


def _add_server_args(parser: argparse.ArgumentParser) -> None:
    add_model_arg(parser)
    parser.add_argument(
        "--max-tokens", type=int, default=32, metavar="N", help="longest suggestion (default 32)"
    )
    parser.add_argument(
        "--debounce-ms",
        type=int,
        default=150,
        metavar="MS",
        help="wait this long after an automatic request before generating (default 150)",
    )


def run(args: argparse.Namespace) -> int:
    from scribe.engine.errors import InputError, ScribeError
    from scribe.engine.runtime.model_files import locate

    if args.max_tokens < 1:
        raise InputError("--max-tokens must be at least 1")
    if args.debounce_ms < 0:
        raise InputError("--debounce-ms must be 0 or more")
    model_path = locate(args.model)  # fails fast, with one line, on a bad --model
    if not args.jsonl:
        try:
            import pygls  # noqa: F401
        except ImportError:
            raise ScribeError("scribe lsp needs pygls; reinstall scribe: pip install .") from None
    log_file = _setup_logging("serve" if args.jsonl else "lsp")
    logging.getLogger("scribe").info("starting; model %s; log %s", model_path, log_file)

    from scribe.plugins.servers.completion_service import CompletionService

    service = CompletionService(args.model, args.debounce_ms, args.max_tokens, args.precision)
    protocol_out = _claim_stdout()
    if args.jsonl:
        from scribe.plugins.servers.jsonl_bridge import JsonlBridge

        out = io.TextIOWrapper(protocol_out, encoding="utf-8", newline="\n")
        JsonlBridge(service, out).serve(sys.stdin.buffer)
        return 0
    from scribe.plugins.servers.lsp_server import serve_stdio

    code = serve_stdio(service, sys.stdin.buffer, protocol_out)
    logging.shutdown()
    # pygls reads stdin in a pool thread that may still block in read(); do not wait for it.
    os._exit(code)


def _claim_stdout() -> io.BufferedWriter:
    """Keep the real stdout for the protocol and point fd 1 at stderr, so a stray print from
    any library cannot corrupt the stream the editor parses."""
    import io

    protocol_fd = os.dup(sys.stdout.fileno())
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    return io.BufferedWriter(io.FileIO(protocol_fd, "wb"))


def _setup_logging(name: str) -> Path:
    from scribe.engine.paths import cache_dir

    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.log"
    handler = RotatingFileHandler(path, maxBytes=2_000_000, backupCount=1, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("scribe").setLevel(logging.INFO)
    return path
