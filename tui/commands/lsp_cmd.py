"""`scribe lsp` (language server on stdio), `scribe serve` (= `scribe lsp --jsonl`), and
`scribe serve --http` (the OpenAI, Ollama and llama.cpp APIs on one local HTTP server).

Kept light at import: pygls, torch, transformers, starlette and uvicorn load inside `run`.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path

from scribe.engine.prompting.editor_window import DEFAULT_MAX_TOKENS
from scribe.tui.common_args import add_command, add_model_arg

SUMMARY = "language server on stdio: ghost-text completion in Vim, Neovim, VS Code..."
DESCRIPTION = (
    "Serve inline completions over LSP (stdio), or JSONL with --jsonl. "
    "Logs go to the cache dir, never stdout."
)

SERVE_SUMMARY = "JSONL completion on stdin/stdout, or --http: an OpenAI/Ollama/llama.cpp server"
SERVE_DESCRIPTION = (
    'Read {"id","prefix","suffix","max_tokens"} lines, write {"id","text"} lines (same as '
    "`scribe lsp --jsonl`). With --http: a local HTTP server that speaks OpenAI's API (/v1), "
    "Ollama's (/api) and llama.cpp's (/completion, /infill), for the openai SDK, llm, "
    "Continue, oterm, llama.vim and curl."
)
HTTP_FLAGS = ("host", "port", "api_key", "allow_origin", "max_loaded", "max_queue", "max_body")


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
    _add_http_args(serve)
    serve.set_defaults(func=run, jsonl=True)


def _add_http_args(parser: argparse.ArgumentParser) -> None:
    http = parser.add_argument_group("HTTP server (--http)")
    http.add_argument(
        "--http",
        action="store_true",
        help="serve HTTP instead: OpenAI /v1, Ollama /api, llama.cpp /completion and /infill",
    )
    http.add_argument(
        "--host",
        metavar="H",
        help="address to listen on (default 127.0.0.1; any other is reachable from elsewhere)",
    )
    http.add_argument("--port", type=int, metavar="P", help="port (default 8012, llama.vim's)")
    http.add_argument(
        "--api-key",
        metavar="K",
        help="require Authorization: Bearer K on every path but /health (default $SCRIBE_API_KEY)",
    )
    http.add_argument(
        "--allow-origin",
        action="append",
        metavar="ORIGIN",
        help="also accept browser requests from ORIGIN, e.g. https://app.example (repeatable)",
    )
    http.add_argument(
        "--max-loaded", type=int, metavar="N", help="models kept loaded at once (default 2)"
    )
    http.add_argument(
        "--max-queue", type=int, metavar="N", help="requests waiting per model (default 16)"
    )
    http.add_argument("--max-body", type=int, metavar="BYTES", help="request size cap (8 MiB)")


def _add_server_args(parser: argparse.ArgumentParser) -> None:
    add_model_arg(parser)
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=DEFAULT_MAX_TOKENS,
        metavar="N",
        help=f"longest suggestion (default {DEFAULT_MAX_TOKENS})",
    )
    parser.add_argument(
        "--debounce-ms",
        type=int,
        default=None,  # adaptive, at most 150 ms (plugins/servers/pacing.py)
        metavar="MS",
        help="wait this long after an automatic request before generating (default 150)",
    )
    parser.add_argument(
        "--log-prompts",
        action="store_true",
        help="also log document paths, prompts and answers (default: figures only)",
    )


def run(args: argparse.Namespace) -> int:
    from scribe.engine.errors import InputError
    from scribe.engine.runtime.model_files import locate
    from scribe.engine.runtime.options import max_tokens_in_bounds

    if getattr(args, "http", False):
        return _run_http(args)
    given = [f for f in HTTP_FLAGS if getattr(args, f, None) is not None]
    if given:
        raise InputError(f"--{given[0].replace('_', '-')} is for the HTTP server: add --http")
    if not max_tokens_in_bounds(args.max_tokens, limit=None):
        raise InputError("--max-tokens must be at least 1")
    if args.debounce_ms is not None and args.debounce_ms < 0:
        raise InputError("--debounce-ms must be 0 or more")
    model_path = locate(args.model)  # fails fast, with one line, on a bad --model
    log_file = _setup_logging("serve" if args.jsonl else "lsp")
    logging.getLogger("scribe").info("starting; model %s; log %s", model_path, log_file)

    from scribe.plugins.servers.completion_service import CompletionService

    service = CompletionService(
        args.model, args.debounce_ms, args.max_tokens, args.precision, args.log_prompts
    )
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


def _run_http(args: argparse.Namespace) -> int:
    from scribe.engine.errors import InputError
    from scribe.engine.runtime.model_files import locate

    for flag, value, low in (
        ("--port", args.port, 0),
        ("--max-loaded", args.max_loaded, 1),
        ("--max-queue", args.max_queue, 1),
        ("--max-body", args.max_body, 1),
    ):
        if value is not None and (value < low or (flag == "--port" and value > 65535)):
            raise InputError(f"{flag} must be {'0 to 65535' if flag == '--port' else 'at least 1'}")
    model_path = locate(args.model)  # fails fast, with one line, on a bad --model
    from scribe.plugins.servers.http import server
    from scribe.plugins.servers.http.app import DEFAULT_PORT, ServerSettings
    from scribe.plugins.servers.http.models_pool import display_name

    host = args.host or "127.0.0.1"
    api_key = args.api_key or os.environ.get("SCRIBE_API_KEY") or None
    settings = ServerSettings(
        host=host,
        port=DEFAULT_PORT if args.port is None else args.port,
        model=args.model,
        precision=args.precision,
        api_key=api_key,
        allow_origins=tuple(args.allow_origin or ()),
        **{k: v for k in ("max_loaded", "max_queue", "max_body") if (v := getattr(args, k))},
        log_prompts=args.log_prompts,
    )
    sock = server.bind(settings.host, settings.port)
    log_file = _setup_logging("http")
    logging.getLogger("scribe").info("starting; model %s; %s", model_path, server.url(sock))
    if server.exposed(host):
        key = "" if api_key else "; set --api-key"
        print(
            f"scribe: warning: --host {host} is reachable from other machines{key}",
            file=sys.stderr,
            flush=True,
        )
    url = server.url(sock)
    print(
        f"scribe: serving {display_name(args.model)} on {url} (OpenAI {url}/v1, Ollama {url}, "
        f"llama.cpp {url}/infill); Ctrl-C stops; log {log_file}",
        file=sys.stderr,
        flush=True,
    )
    server.serve(settings, sock)
    return 0


def _claim_stdout() -> io.BufferedWriter:
    """Keep the real stdout for the protocol and point fd 1 at stderr, so a stray print from
    any library cannot corrupt the stream the editor parses."""
    import io

    protocol_fd = os.dup(sys.stdout.fileno())
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    return io.BufferedWriter(io.FileIO(protocol_fd, "wb"))


class PrivateLog(RotatingFileHandler):
    """A log file only its owner may read (it names files and models; with --log-prompts it
    holds text), rotated files included."""

    def _open(self):  # type: ignore[no-untyped-def]
        from scribe.engine.paths import private_umask

        with private_umask():
            return super()._open()


def _setup_logging(name: str) -> Path | str:
    """The log file in the cache dir (0700, the file 0600); when that cannot be written (a
    file in its place, no permission, a full disk) one warning line and the log goes to stderr,
    which is the editor's log pane and never the protocol's stream. Returns where it goes."""
    from scribe.engine.paths import cache_dir, make_private_dir, tighten

    folder = cache_dir()
    path = folder / f"{name}.log"
    try:
        make_private_dir(folder)
        handler: logging.Handler = PrivateLog(
            path, maxBytes=2_000_000, backupCount=1, encoding="utf-8"
        )
    except OSError as err:
        print(
            f"scribe: warning: cannot write the log {path} ({err.strerror or err}); logging to "
            "stderr instead; fix the cache dir or set SCRIBE_HOME",
            file=sys.stderr,
            flush=True,
        )
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.WARNING)  # stderr gets what needs a look, not every request
        where: Path | str = "stderr"
    else:
        tighten(path)
        where = path
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("scribe").setLevel(logging.INFO)
    return where
