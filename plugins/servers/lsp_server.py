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

Bad input never ends or silences the server: `FrameReader` finds the next `Content-Length`
header after a lying or missing one and refuses bodies over `MAX_MESSAGE_BYTES` unread; a body
that is not JSON gets a parse error; requests after `shutdown` get InvalidRequest; and error
responses never carry a traceback (those go to the log file).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol

from scribe.plugins.servers.completion_service import CompletionRequest, CompletionService
from scribe.plugins.servers.lsp_framing import FrameReader

log = logging.getLogger("scribe.plugins.lsp")

STATUS_METHOD = "scribe/status"
PREFILL_METHOD = "scribe/prefill"  # notification {textDocument: {uri}, position}
PARTIAL_METHOD = "scribe/partialCompletion"  # server -> client {id, text}
PARENT_POLL_S = 3.0
MAX_PID = 2**31 - 1  # pid_t is a signed 32-bit integer; a negative one would name a group


@attrs.define
class _BadRequest:
    """A request whose params did not fit its method: answered with an error, not dropped."""

    id: Any
    method: Any
    error: JsonRpcException


class ScribeProtocol(LanguageServerProtocol):
    """pygls' protocol, made to answer malformed messages instead of only logging them."""

    def handle_body(self, body: bytes) -> None:
        """Parse and dispatch one message body; nothing a client sends escapes as an exception."""
        try:
            message = json.loads(body, object_hook=self.structure_message)
        except (ValueError, RecursionError) as err:  # also bad UTF-8, and "[" * 100000
            reason = "nested too deeply" if isinstance(err, RecursionError) else str(err)
            log.warning("bad message from the client: not JSON: %s", reason)
            self.send_error(None, -32700, f"Parse error: {reason}")
            return
        except JsonRpcException as err:  # a notification or response that does not fit its type
            log.warning("bad message from the client: %s", err)
            return
        try:
            self.handle_message(message)
        except Exception as err:  # pygls answers failing handlers itself; this is a last resort
            log.error("could not handle a message: %s: %s", type(err).__name__, err)

    def structure_message(self, data: dict[str, Any]) -> Any:
        if "jsonrpc" in data and "method" in data and "params" not in data:
            data["params"] = None  # "params" is optional in JSON-RPC; pygls' types want the key
        try:
            return super().structure_message(data)
        except JsonRpcException as err:
            if "id" in data and "method" in data:
                return _BadRequest(data["id"], data["method"], err)
            raise

    def handle_message(self, message: Any) -> None:
        if self._shutdown and getattr(message, "method", None) != types.EXIT:
            self._refuse_after_shutdown(message)
            return
        if _is_request(message) and not _valid_id(message.id):
            self.send_error(None, -32600, "Invalid Request: the id must be a string or a number")
            return
        if isinstance(message, _BadRequest):
            self._answer_bad_request(message)
            return
        if getattr(message, "jsonrpc", None) != "2.0":
            msg_id = message.get("id") if isinstance(message, dict) else None
            self.send_error(msg_id, -32600, "Invalid Request: expected a JSON-RPC 2.0 object")
            return
        super().handle_message(message)

    def _answer_bad_request(self, message: _BadRequest) -> None:
        if not isinstance(message.method, str):
            self.send_error(message.id, -32600, "Invalid Request: the method must be a string")
            return
        self._send_response(message.id, error=message.error.to_response_error())

    def _refuse_after_shutdown(self, message: Any) -> None:
        # The spec: requests after `shutdown` fail with InvalidRequest; notifications are dropped.
        if _is_request(message):
            error = "Invalid Request: the server is shutting down; only exit is accepted"
            self.send_error(message.id, -32600, error)
        else:
            log.info("ignoring %s after shutdown", getattr(message, "method", "a message"))

    def _send_response(
        self, msg_id: Any, result: Any = None, error: types.ResponseError | None = None
    ) -> None:
        if error is not None and isinstance(error.data, dict) and "traceback" in error.data:
            # pygls puts the handler's traceback here; the client gets the message, the log the
            # traceback (pygls logs it too).
            error = types.ResponseError(code=error.code, message=error.message)
        super()._send_response(msg_id, result, error)

    def send_error(self, msg_id: Any, code: int, message: str) -> None:
        if not _valid_id(msg_id):
            msg_id = None  # JSON-RPC: null when the request's id cannot be told
        error = {"code": code, "message": message}
        self._send_data({"jsonrpc": "2.0", "id": msg_id, "error": error})


def _is_request(message: Any) -> bool:
    return hasattr(message, "method") and hasattr(message, "id")


def _valid_id(value: Any) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


class ScribeServer(LanguageServer):
    def __init__(self, service: CompletionService) -> None:
        from scribe.engine.version import scribe_version

        super().__init__(
            "scribe",
            scribe_version(),
            text_document_sync_kind=types.TextDocumentSyncKind.Full,
            protocol_cls=ScribeProtocol,
        )
        self.service = service
        self.exit_code = 0  # 1 after `exit` without `shutdown`, as the LSP spec asks
        self.partials = False  # the client asked for scribe/partialCompletion notifications

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """pygls' stdio server with scribe's framing (FrameReader) in place of pygls' reader."""
        self._stop_event = threading.Event()
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        try:
            asyncio.run(self._serve(FrameReader(stdin or sys.stdin.buffer)))
        except BrokenPipeError:
            log.info("the client closed its end; stopping")
        except (KeyboardInterrupt, SystemExit):
            pass  # pygls' `exit` handler calls sys.exit
        finally:
            self.shutdown()

    async def _serve(self, frames: FrameReader) -> None:
        protocol: ScribeProtocol = self.protocol  # type: ignore[assignment]
        # Reads block, so they run in a thread of their own; it is not waited for at the end,
        # as stdin may stay open after `exit` (lsp_cmd ends the process with os._exit).
        reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scribe-stdin")
        try:
            while self._stop_event is not None and not self._stop_event.is_set():
                try:
                    body = await asyncio.wrap_future(reader.submit(frames.read_message))
                except (OSError, ValueError) as err:  # stdin closed or broken under us
                    log.info("cannot read from the client (%s); stopping", err)
                    return
                if body is None:
                    return
                protocol.handle_body(body)
        finally:
            reader.shutdown(wait=False)

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Log it: pygls would otherwise pop up a message in the editor. A failed request is
        answered with its error already."""
        log.error("%s: %s", getattr(source, "__name__", source), error)


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
        ls.exit_code = 0 if ls.protocol._shutdown else 1

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
