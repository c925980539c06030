"""The contract between lsp_hardening.py and pygls: each pygls method it overrides or calls still
exists with the signature it was written against (a pygls release that renames or reshapes one
fails here, not in an editor), and the hardening works through a real server in-process."""

from __future__ import annotations

import inspect
import io
import json
import threading
from typing import Any

import pytest
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.protocol import JsonRPCProtocol, LanguageServerProtocol
from pygls.server import JsonRPCServer

from scribe.plugins.servers.lsp_framing import FrameReader
from scribe.plugins.servers.lsp_hardening import HardenedProtocol, HardenedServer

# (the pygls class that defines it, the method, its parameters): what lsp_hardening relies on.
HOOKS = [
    (JsonRPCProtocol, "structure_message", ["self", "data"]),  # overridden; json object_hook
    (JsonRPCProtocol, "handle_message", ["self", "message"]),  # overridden
    (JsonRPCProtocol, "_send_response", ["self", "msg_id", "result", "error"]),  # overridden
    (JsonRPCProtocol, "_send_data", ["self", "data"]),  # called to send raw error objects
    (JsonRPCProtocol, "set_writer", ["self", "writer", "include_headers"]),  # called
    (JsonRPCServer, "start_io", ["self", "stdin", "stdout"]),  # replaced
    (JsonRPCServer, "shutdown", ["self"]),  # called; sets `_stop_event`
    (LanguageServer, "report_server_error", ["self", "error", "source"]),  # overridden
]


@pytest.mark.parametrize(("owner", "name", "params"), HOOKS, ids=[h[1] for h in HOOKS])
def test_pygls_still_has_the_hook(owner: type, name: str, params: list[str]) -> None:
    assert name in vars(owner), f"pygls' {owner.__name__} no longer defines {name}"
    assert list(inspect.signature(getattr(owner, name)).parameters) == params
    # Nothing between that class and the ones scribe subclasses redefines it.
    base = LanguageServerProtocol if issubclass(owner, JsonRPCProtocol) else LanguageServer
    assert issubclass(base, owner)
    assert getattr(base, name) is getattr(owner, name)


def test_pygls_has_none_of_our_names() -> None:
    # Ours would silently replace a pygls method of the same name.
    for name in ("handle_body", "send_error", "shut_down"):
        assert not hasattr(LanguageServerProtocol, name), name
    assert not hasattr(LanguageServer, "_serve")


def test_pygls_private_state_is_where_we_read_it() -> None:
    server = HardenedServer("test", "0")
    assert server.protocol._shutdown is False and server.protocol.shut_down is False
    assert server._stop_event is None  # set by start_io; shutdown() sets the event
    server._stop_event = threading.Event()
    server.shutdown()
    assert server._stop_event.is_set()
    assert isinstance(server.protocol, HardenedProtocol)
    assert list(inspect.signature(StdoutWriter).parameters) == ["stdout"]
    # pygls parses a body with structure_message as json's object_hook: a nested object that is
    # not a message passes through unchanged.
    assert server.protocol.structure_message({"uri": "x"}) == {"uri": "x"}


def frame(message: Any) -> bytes:
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def serve(*messages: Any) -> list[dict[str, Any]]:
    """Run a HardenedServer on the messages (until their end); its answers."""
    server = HardenedServer("test", "0")

    @server.feature("test/fail")
    def fail(ls: HardenedServer, params: Any) -> None:
        raise RuntimeError("a bug in a handler")

    @server.feature("test/echo")
    def echo(ls: HardenedServer, params: Any) -> Any:
        return "echo"

    out = io.BytesIO()
    server.start_io(io.BytesIO(b"".join(frame(m) for m in messages)), out)  # type: ignore[arg-type]
    reader = FrameReader(io.BytesIO(out.getvalue()))  # type: ignore[arg-type]
    answers = []
    while (body := reader.read_message()) is not None:
        answers.append(json.loads(body))
    return answers


def request(msg_id: Any, method: str, params: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}


def test_a_body_that_is_not_json_gets_a_parse_error_and_the_server_goes_on() -> None:
    bad, good = serve(b"{not json", request(2, "test/echo"))
    assert bad["id"] is None and bad["error"]["code"] == -32700
    assert good == {"jsonrpc": "2.0", "id": 2, "result": "echo"}


def test_a_failing_handler_is_answered_without_its_traceback() -> None:
    (answer,) = serve(request(1, "test/fail"))
    assert answer["id"] == 1 and "a bug in a handler" in answer["error"]["message"]
    assert "data" not in answer["error"]  # pygls put the traceback there; it went to the log


def test_bad_params_and_bad_ids_are_answered() -> None:
    params = request(1, "textDocument/hover", {"textDocument": 3})
    bad_id = request([1], "test/echo")
    not_2_0 = {"id": 3, "method": "test/echo"}  # no "jsonrpc"
    answers = serve(params, bad_id, not_2_0)
    assert [a["id"] for a in answers] == [1, None, 3]
    assert [a["error"]["code"] for a in answers] == [-32602, -32600, -32600]


def test_requests_after_shutdown_are_refused() -> None:
    _, refused = serve(request(1, "shutdown"), request(2, "test/echo"))
    assert refused["id"] == 2 and refused["error"]["code"] == -32600
