"""`scribe lsp`: a language server on stdio that offers inline completions (LSP 3.18).

Features: full document sync, `textDocument/inlineCompletion`, `$/cancelRequest` (pygls cancels
the awaiting task; we then set the job's cancel event), latest-request-wins per document,
server-side debounce for automatic triggers (adaptive unless the client fixes it), and the custom
`scribe/status` request.

Start-up: `initialize` is answered while the worker thread imports torch and loads the model;
a document opened meanwhile is prefilled (its window up to its end, or up to the position a
`scribe/prefill` notification names) once the model is warm, so the first request there only
reads what was typed since.

Client settings come as `initializationOptions`: {"debounceMs": int (a fixed debounce; absent or
null: adaptive), "maxTokens": int, "partialCompletions": bool}. With partialCompletions, a prose
suggestion's first whole words go out while it is generated, as `scribe/partialCompletion`
notifications {"id": the request's id, "text": the suggestion so far}; the response still
carries the whole suggestion.

Bad input never ends or silences the server: lsp_hardening.py holds what scribe changes in pygls
for that (framing, malformed messages, requests after `shutdown`, tracebacks kept out of errors).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from lsprotocol import types

from scribe.plugins.servers.completion_service import CompletionRequest, CompletionService
from scribe.plugins.servers.lsp_hardening import HardenedServer

log = logging.getLogger("scribe.plugins.lsp")

STATUS_METHOD = "scribe/status"
PREFILL_METHOD = "scribe/prefill"  # notification {textDocument: {uri}, position}
PARTIAL_METHOD = "scribe/partialCompletion"  # server -> client {id, text}
PARENT_POLL_S = 3.0
MAX_PID = 2**31 - 1  # pid_t is a signed 32-bit integer; a negative one would name a group


class ScribeServer(HardenedServer):
    def __init__(self, service: CompletionService) -> None:
        from scribe.engine.version import scribe_version

        super().__init__(
            "scribe",
            scribe_version(),
            require_initialize=True,
            text_document_sync_kind=types.TextDocumentSyncKind.Full,
        )
        self.service = service
        self.exit_code = 0  # 1 after `exit` without `shutdown`, as the LSP spec asks
        self.partials = False  # the client asked for scribe/partialCompletion notifications


def create_server(service: CompletionService) -> ScribeServer:
    server = ScribeServer(service)

    @server.feature(types.INITIALIZE)
    def on_initialize(ls: ScribeServer, params: types.InitializeParams) -> None:
        options = params.initialization_options
        if isinstance(options, dict):
            _apply_settings(ls.service, options)
            ls.partials = options.get("partialCompletions") is True
        pid = params.process_id  # not range-checked by lsprotocol: os.kill could overflow
        if isinstance(pid, int) and 0 < pid <= MAX_PID:
            _watch_parent(pid)
        elif pid is not None:
            log.warning("ignoring initialize processId = %r (not a process id)", pid)

    @server.feature(types.SHUTDOWN)
    def on_shutdown(ls: ScribeServer, *args: Any) -> None:
        # Stop generating now; do not keep the editor waiting for a model that is still loading.
        ls.service.close(timeout=1.0)

    @server.feature(types.EXIT)
    def on_exit(ls: ScribeServer, *args: Any) -> None:
        # pygls's own exit code is lost: it calls sys.exit inside an asyncio callback.
        ls.exit_code = 0 if ls.protocol.shut_down else 1

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: ScribeServer, params: types.DidOpenTextDocumentParams) -> None:
        # Where typing will start is unknown: the end of the document is the likeliest.
        uri = params.text_document.uri
        ls.service.prefill(uri, lambda: _request_at(ls, uri, None))

    @server.feature(PREFILL_METHOD)
    def prefill(ls: ScribeServer, params: Any) -> None:
        uri, position = _prefill_params(params)
        if uri is None:
            log.warning("ignoring %s without a textDocument uri", PREFILL_METHOD)
            return
        ls.service.prefill(uri, lambda: _request_at(ls, uri, position))

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: ScribeServer, params: types.InlineCompletionParams
    ) -> list[types.InlineCompletionItem]:
        request = _request_at(ls, params.text_document.uri, params.position)
        if request is None:
            return []  # never opened: nothing to complete from
        automatic = params.context.trigger_kind == types.InlineCompletionTriggerKind.Automatic
        partial = _partial_sender(ls, ls.protocol.msg_id) if ls.partials else None
        job = ls.service.submit(request, automatic=automatic, partial=partial)
        try:
            suggestion = await asyncio.wrap_future(job.future)
        except asyncio.CancelledError:  # $/cancelRequest
            ls.service.cancel(job)
            raise
        if suggestion is None or not suggestion.text:
            return []
        here = types.Range(start=params.position, end=params.position)
        return [types.InlineCompletionItem(insert_text=suggestion.text, range=here)]

    @server.feature(STATUS_METHOD)
    def status(ls: ScribeServer, params: Any) -> dict[str, Any]:
        return ls.service.status()

    return server


def _request_at(
    ls: ScribeServer, uri: str, position: types.Position | None
) -> CompletionRequest | None:
    """A request at `position` in the open document `uri` (None: at its end), or None when the
    document is not open."""
    if uri not in ls.workspace.text_documents:
        return None
    doc = ls.workspace.get_text_document(uri)
    text = doc.source
    if position is None:
        cursor = len(text.rstrip("\n"))
    else:
        cursor = min(doc.offset_at_position(position), len(text))
    return CompletionRequest(
        document=uri,
        text=text,
        cursor=cursor,
        suffix=text[cursor : cursor + 2000],
        language=doc.language_id,
        max_tokens=ls.service.max_tokens,
    )


def _prefill_params(params: Any) -> tuple[str | None, types.Position | None]:
    """(uri, position) from a scribe/prefill notification; a missing or bad position is None."""
    doc, where = _field(params, "textDocument"), _field(params, "position")
    uri = _field(doc, "uri")
    line, character = _field(where, "line"), _field(where, "character")
    position = None
    if all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (line, character)):
        position = types.Position(line=line, character=character)
    return (uri if isinstance(uri, str) else None), position


def _field(value: Any, name: str) -> Any:
    """A field of a custom message's params: pygls gives them as namedtuples."""
    if isinstance(value, dict):
        return value.get(name)
    return getattr(value, name, None)


def _partial_sender(ls: ScribeServer, msg_id: Any) -> Callable[[str], None]:
    """Sends a suggestion's first words for request `msg_id` from the worker thread."""
    loop = asyncio.get_running_loop()

    def send(text: str) -> None:
        try:
            params = {"id": msg_id, "text": text}
            loop.call_soon_threadsafe(ls.protocol.notify, PARTIAL_METHOD, params)
        except RuntimeError:  # the loop is closed: the server is stopping
            pass

    return send


def _apply_settings(service: CompletionService, options: dict[str, Any]) -> None:
    debounce = _setting(options, "debounceMs")
    if debounce is not None:
        service.debounce_ms = debounce
    tokens = _setting(options, "maxTokens")
    if tokens is not None:
        service.max_tokens = max(tokens, 1)  # 0 reads as 1: a setting is clamped, not refused


def _setting(options: dict[str, Any], key: str) -> int | None:
    """initializationOptions[key] as an integer >= 0; None (with a log line) for anything else."""
    value = options.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if value is not None:
        log.warning("ignoring initializationOptions.%s = %r (want an integer >= 0)", key, value)
    return None


def _watch_parent(pid: int) -> None:
    """End the server when the editor dies without closing our stdin (a crash, kill -9)."""

    def watch() -> None:
        while True:
            threading.Event().wait(PARENT_POLL_S)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                log.info("editor process %d is gone; exiting", pid)
                os._exit(0)
            except PermissionError:
                pass  # alive, owned by someone else

    threading.Thread(target=watch, name="scribe-parent-watch", daemon=True).start()


def serve_stdio(service: CompletionService, stdin: Any, stdout: Any) -> int:
    """Serve until the client sends `exit` or closes stdin; returns the exit code."""
    server = create_server(service)
    service.start()
    try:
        server.start_io(stdin, stdout)
    finally:
        service.close()
    return server.exit_code
