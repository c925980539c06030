"""A standard LSP client written here, independently of scribe and pygls: JSON-RPC with
Content-Length framing over the stdio of `scribe lsp --model DIR`.

It also checks the bad-input promises: malformed messages get error responses and the server
stays up; stdout carries nothing but framed messages; the client going away ends the server."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.lsp_harness import SCRIBE, WAIT_S, server_env

PROMPT = "It was a bright cold day in April, and the"


class RawClient:
    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.garbage: list[bytes] = []  # anything on stdout that is not a framed message
        self._next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            headers: dict[str, str] = {}
            while True:
                line = out.readline()
                if not line:
                    return
                if line == b"\r\n":
                    break
                name, sep, value = line.decode("ascii", "replace").partition(":")
                if not sep or not line.endswith(b"\r\n"):
                    self.garbage.append(line)
                    continue
                headers[name.strip().lower()] = value.strip()
            body = out.read(int(headers["content-length"]))
            self.messages.put(json.loads(body.decode("utf-8")))

    def send_raw(self, body: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        self.send_raw(json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8"))

    def notify(self, method: str, params: Any) -> None:
        self.send({"method": method, "params": params})

    def request(self, method: str, params: Any) -> dict[str, Any]:
        self._next_id += 1
        self.send({"id": self._next_id, "method": method, "params": params})
        return self.response(self._next_id)

    def response(self, msg_id: Any) -> dict[str, Any]:
        """The response to `msg_id`, skipping notifications (e.g. window/logMessage)."""
        while True:
            message = self.messages.get(timeout=WAIT_S)
            if "method" not in message and message.get("id") == msg_id:
                return message


@pytest.fixture(scope="module")
def client(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("raw-home")
    raw = RawClient([*SCRIBE, "lsp", "--model", str(tiny_model_dir)], server_env(home))
    raw.home = home
    yield raw
    if raw.proc.poll() is None:
        raw.proc.kill()
        raw.proc.wait()


def completion(uri: str, line: int, character: int) -> dict[str, Any]:
    return {
        "textDocument": {"uri": uri},
        "position": {"line": line, "character": character},
        "context": {"triggerKind": 1},
    }


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
