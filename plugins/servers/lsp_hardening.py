"""What scribe's language server changes in pygls, and why: pygls logs a message it cannot use and
goes on, so a client that gets something wrong waits for an answer that never comes.

- `HardenedServer.start_io` reads with `FrameReader` (lsp_framing.py) in place of pygls' reader:
  after a lying or missing `Content-Length` it finds the next header, and it refuses bodies over
  `MAX_MESSAGE_BYTES` unread.
- `HardenedProtocol.handle_body` answers a body that is not JSON with a parse error;
  `structure_message` and `handle_message` answer a request whose params do not fit its method, a
  request with an invalid id or a non-2.0 object, and requests after `shutdown` (InvalidRequest);
  `_send_response` keeps tracebacks out of error responses (they go to the log file).

These override or call pygls methods that are not all public (`_send_response`, `_send_data`,
`_shutdown`, `_stop_event`); pyproject.toml pins pygls' major version and
tests/plugins/test_lsp_hardening.py checks each hook's name and signature against pygls.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol

from scribe.plugins.servers.lsp_framing import FrameReader

log = logging.getLogger("scribe.plugins.lsp")

SERVER_NOT_INITIALIZED = -32002  # JSON-RPC error code the LSP spec names ServerNotInitialized


@attrs.define
class _BadRequest:
    """A request whose params did not fit its method: answered with an error, not dropped."""

    id: Any
    method: Any
    error: JsonRpcException


class HardenedProtocol(LanguageServerProtocol):
    """pygls' protocol, made to answer malformed messages instead of only logging them."""

    # The LSP's rule (a request before `initialize` gets ServerNotInitialized), for servers
    # that ask for it; `initialize_seen` is set on the instance by the client's `initialize`.
    require_initialize = False
    initialize_seen = False

    @property
    def shut_down(self) -> bool:
        """Whether the client sent `shutdown` (pygls keeps this private)."""
        return self._shutdown

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
        if not self._before_initialize(message):
            super().handle_message(message)

    def _before_initialize(self, message: Any) -> bool:
        """True when `message` came before `initialize` and was answered here: the spec wants
        a request refused with ServerNotInitialized and a notification (but exit) dropped."""
        method = getattr(message, "method", None)
        if method == types.INITIALIZE:
            self.initialize_seen = True
        if not self.require_initialize or self.initialize_seen:
            return False
        if method is None or method == types.EXIT:
            return False
        if _is_request(message):
            error = (
                f"Server not initialized: {method} came before initialize; send initialize first"
            )
            self.send_error(message.id, SERVER_NOT_INITIALIZED, error)
        else:
            log.info("ignoring %s before initialize", method)
        return True

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


class HardenedServer(LanguageServer):
    """pygls' LanguageServer on stdio with FrameReader and HardenedProtocol."""

    def __init__(
        self, name: str, version: str, require_initialize: bool = False, **options: Any
    ) -> None:
        super().__init__(name, version, protocol_cls=HardenedProtocol, **options)
        self.protocol.require_initialize = require_initialize

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
        protocol: HardenedProtocol = self.protocol  # type: ignore[assignment]
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
