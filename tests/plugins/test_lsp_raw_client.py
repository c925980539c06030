"""A standard LSP client written independently of scribe and pygls (lsp_harness.RawClient):
JSON-RPC with Content-Length framing over the stdio of `scribe lsp --model DIR`.

It also checks the bad-input promises: malformed messages get error responses and the server
stays up; stdout carries nothing but framed messages; the client going away ends the server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugins.lsp_harness import PROMPT, SCRIBE, WAIT_S, RawClient, completion, server_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("raw-home")
    raw = RawClient([*SCRIBE, "lsp", "--model", str(tiny_model_dir)], server_env(home))
    raw.home = home
    yield raw
    if raw.proc.poll() is None:
        raw.proc.kill()
        raw.proc.wait()


def test_initialize_then_inline_completion(client: RawClient) -> None:
    reply = client.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
    capabilities = reply["result"]["capabilities"]
    assert "inlineCompletionProvider" in capabilities
    assert capabilities["textDocumentSync"]["change"] == 1  # full
    client.notify("initialized", {})
    uri = "file:///notes/today.md"
    text = "# Notes\n" + PROMPT
    doc = {"uri": uri, "languageId": "markdown", "version": 1, "text": text}
    client.notify("textDocument/didOpen", {"textDocument": doc})
    reply = client.request("textDocument/inlineCompletion", completion(uri, 1, len(PROMPT)))
    items = reply["result"]
    items = items["items"] if isinstance(items, dict) else items
    assert len(items) == 1 and items[0]["insertText"].strip()
    assert items[0]["range"]["start"] == {"line": 1, "character": len(PROMPT)}
    status = client.request("scribe/status", None)["result"]
    assert status["state"] == "warm" and status["served"] == 1


def test_malformed_messages_get_errors_and_the_server_stays_up(client: RawClient) -> None:
    client.send_raw(b"{this is not json")
    assert client.response(None)["error"]["code"] == -32700  # parse error, id null
    client.send_raw(b"[1, 2, 3]")
    assert client.response(None)["error"]["code"] == -32600  # not a request object
    client.send({"id": 71, "method": "textDocument/inlineCompletion", "params": {"oops": 1}})
    assert client.response(71)["error"]["code"] == -32602  # params do not fit the method
    client.send({"id": 72, "method": "no/such/method", "params": {}})
    assert client.response(72)["error"]["code"] == -32601
    uri = "file:///notes/today.md"
    reply = client.request("textDocument/inlineCompletion", completion(uri, 1, len(PROMPT)))
    assert "result" in reply  # still serving


def test_stdout_carries_only_protocol_and_logs_go_to_the_cache_dir(client: RawClient) -> None:
    assert client.garbage == []
    log = client.home / "cache" / "lsp.log"
    assert "bad message from the client" in log.read_text(encoding="utf-8")


def test_the_client_going_away_ends_the_server(client: RawClient) -> None:
    assert client.proc.poll() is None
    assert client.proc.stdin is not None
    client.proc.stdin.close()
    assert client.proc.wait(timeout=WAIT_S) == 0


@pytest.mark.parametrize(("shutdown", "code"), [(True, 0), (False, 1)])
def test_exit_code_says_whether_shutdown_came_first(
    tiny_model_dir: Path, tmp_path: Path, shutdown: bool, code: int
) -> None:
    """The LSP spec: `exit` ends the server with 0 after a `shutdown` request, else with 1."""
    raw = RawClient([*SCRIBE, "lsp", "--model", str(tiny_model_dir)], server_env(tmp_path))
    try:
        raw.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
        raw.notify("initialized", {})
        if shutdown:
            assert raw.request("shutdown", None)["result"] is None
        raw.notify("exit", None)
        assert raw.proc.wait(timeout=WAIT_S) == code
    finally:
        if raw.proc.poll() is None:
            raw.proc.kill()
            raw.proc.wait()
