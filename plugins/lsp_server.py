"""`scribe lsp`: a language server on stdio that offers inline completions (LSP 3.18).

Features: full document sync, `textDocument/inlineCompletion`, `$/cancelRequest` (pygls cancels
the awaiting task; we then set the job's cancel event), latest-request-wins per document,
server-side debounce for automatic triggers, and the custom `scribe/status` request.

Client settings come as `initializationOptions`: {"debounceMs": int, "maxTokens": int}.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol

from scribe.plugins.completion_service import CompletionRequest, CompletionService

log = logging.getLogger("scribe.plugins.lsp")

STATUS_METHOD = "scribe/status"
PARENT_POLL_S = 3.0


@attrs.define
class _BadRequest:
    """A request whose params did not fit its method: answered with an error, not dropped."""

    id: Any
    error: JsonRpcException


class ScribeProtocol(LanguageServerProtocol):
    """pygls' protocol, made to answer malformed messages instead of only logging them."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        if "jsonrpc" in data and "method" in data and "params" not in data:
            data["params"] = None  # "params" is optional in JSON-RPC; pygls' types want the key
        try:
            return super().structure_message(data)
        except JsonRpcException as err:
            if "id" in data and "method" in data:
                return _BadRequest(data["id"], err)
            raise

    def handle_message(self, message: Any) -> None:
        if isinstance(message, _BadRequest):
            self._send_response(message.id, error=message.error.to_response_error())
            return
        if getattr(message, "jsonrpc", None) != "2.0":
            msg_id = message.get("id") if isinstance(message, dict) else None
            self.send_error(msg_id, -32600, "Invalid Request: expected a JSON-RPC 2.0 object")
            return
        super().handle_message(message)

    def send_error(self, msg_id: Any, code: int, message: str) -> None:
        if not isinstance(msg_id, int | str):
            msg_id = None
        error = {"code": code, "message": message}
        self._send_data({"jsonrpc": "2.0", "id": msg_id, "error": error})


class ScribeServer(LanguageServer):
    def __init__(self, service: CompletionService) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            server_version = version("scribe")
        except PackageNotFoundError:
            server_version = "unknown"
        super().__init__(
            "scribe",
            server_version,
            text_document_sync_kind=types.TextDocumentSyncKind.Full,
            protocol_cls=ScribeProtocol,
        )
        self.service = service
        self.exit_code = 0  # 1 after `exit` without `shutdown`, as the LSP spec asks

    def report_server_error(self, error: Exception, source: Any) -> None:
        """A body that is not JSON gets a parse error (id null, as JSON-RPC says); the rest is
        logged. pygls would otherwise pop up a message in the editor."""
        if source is not JsonRpcException:  # a handler failed; its response already says so
            log.error("%s: %s", getattr(source, "__name__", source), error)
            return
        # The read loop reports a message it could not parse or dispatch.
        log.warning("bad message from the client: %s", error)
        if isinstance(error, ValueError):
            self.protocol.send_error(None, -32700, f"Parse error: {error}")


def create_server(service: CompletionService) -> ScribeServer:
    server = ScribeServer(service)

    @server.feature(types.INITIALIZE)
    def on_initialize(ls: ScribeServer, params: types.InitializeParams) -> None:
        options = params.initialization_options
        if isinstance(options, dict):
            _apply_settings(ls.service, options)
        if params.process_id:
            _watch_parent(params.process_id)

    @server.feature(types.SHUTDOWN)
    def on_shutdown(ls: ScribeServer, *args: Any) -> None:
        # Stop generating now; do not keep the editor waiting for a model that is still loading.
        ls.service.close(timeout=1.0)

    @server.feature(types.EXIT)
    def on_exit(ls: ScribeServer, *args: Any) -> None:
        # pygls's own exit code is lost: it calls sys.exit inside an asyncio callback.
        ls.exit_code = 0 if ls.protocol._shutdown else 1

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: ScribeServer, params: types.InlineCompletionParams
    ) -> list[types.InlineCompletionItem]:
        uri = params.text_document.uri
        if uri not in ls.workspace.text_documents:
            return []  # never opened: nothing to complete from
        doc = ls.workspace.get_text_document(uri)
        text = doc.source
        cursor = min(doc.offset_at_position(params.position), len(text))
        request = CompletionRequest(
            document=uri,
            text=text,
            cursor=cursor,
            suffix=text[cursor : cursor + 2000],
            language=doc.language_id,
            max_tokens=ls.service.max_tokens,
        )
        automatic = params.context.trigger_kind == types.InlineCompletionTriggerKind.Automatic
        job = ls.service.submit(request, automatic=automatic)
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


def _apply_settings(service: CompletionService, options: dict[str, Any]) -> None:
    for key, attr in (("debounceMs", "debounce_ms"), ("maxTokens", "max_tokens")):
        value = options.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            setattr(service, attr, max(value, 1) if attr == "max_tokens" else value)
        elif value is not None:
            log.warning("ignoring initializationOptions.%s = %r (want an integer >= 0)", key, value)


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
