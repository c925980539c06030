"""Hostile or unlucky input to the real editor servers (`scribe lsp`, `scribe serve`): each bad
input is followed by a good request, which must still be answered, and no traceback may reach
stderr, stdout or a response."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.lsp_harness import PROMPT, SCRIBE, WAIT_S, RawClient, completion, server_env

pytestmark = pytest.mark.slow


class Client(RawClient):
    """RawClient that also keeps the server's stderr and every message from it, and does not
    lose a response that comes before the one asked for."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        super().__init__(args, env)
        self.stderr = bytearray()
        self.seen: list[dict[str, Any]] = []
        self._early: list[dict[str, Any]] = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for chunk in iter(lambda: self.proc.stderr.read1(65536), b""):
            self.stderr += chunk

    def response(self, msg_id: Any) -> dict[str, Any]:
        while True:
            for reply in self._early:
                if reply.get("id") == msg_id:
                    self._early.remove(reply)
                    return reply
            message = self.messages.get(timeout=WAIT_S)
            self.seen.append(message)
            if "method" not in message:
                self._early.append(message)

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def assert_still_serving(self) -> None:
        status = self.request("scribe/status", None)
        assert status["result"]["state"] in ("loading", "warm"), status
        assert b"Traceback" not in self.stderr
        assert "traceback" not in json.dumps(self.seen).lower()


def frame(body: bytes, length: int | None = None) -> bytes:
    header = b"Content-Length: %d\r\n\r\n" % (len(body) if length is None else length)
    return header + body


def request_body(msg_id: int, method: str = "scribe/status", params: Any = None) -> bytes:
    message = {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}
    return json.dumps(message).encode("utf-8")


def start(model: Path, home: Path, process_id: int | None = None) -> Client:
    client = Client([*SCRIBE, "lsp", "--model", str(model)], server_env(home))
    params = {"processId": process_id, "rootUri": None, "capabilities": {}}
    reply = client.request("initialize", params)
    assert "capabilities" in reply["result"]
    client.notify("initialized", {})
    return client


def stop(client: Client) -> None:
    if client.proc.poll() is None:
        client.proc.kill()
        client.proc.wait()


@pytest.fixture(scope="module")
def lsp(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("servers-home")
    client = start(tiny_model_dir, home)
    client.home = home
    yield client
    stop(client)


# -- `scribe lsp`: framing ---------------------------------------------------------------------


def test_garbage_content_length_is_skipped(lsp: Client) -> None:
    lsp.write(b"Content-Length: lots\r\n\r\n" + request_body(201))
    lsp.assert_still_serving()


def test_header_without_content_length_is_skipped(lsp: Client) -> None:
    lsp.write(b"Content-Type: application/vscode-jsonrpc\r\n\r\n" + request_body(202))
    lsp.assert_still_serving()


def test_content_length_too_small_gets_a_parse_error(lsp: Client) -> None:
    lsp.write(frame(request_body(203), length=10))  # the body is cut after 10 bytes
    assert lsp.response(None)["error"]["code"] == -32700
    lsp.assert_still_serving()


def test_content_length_too_large_stops_at_the_next_header(lsp: Client) -> None:
    # The body claims 500 more bytes than it has; they never come. The next message's header
    # shows where the body really ended, so both requests are answered.
    lsp.write(frame(request_body(204), length=len(request_body(204)) + 500))
    time.sleep(0.3)  # the next message arrives in a read of its own
    lsp.assert_still_serving()
    assert lsp.response(204)["result"]["state"] in ("loading", "warm")


def test_content_length_too_large_in_one_write(lsp: Client) -> None:
    body = request_body(205)
    lsp.write(frame(body, length=len(body) + 20) + frame(request_body(206)))
    assert "result" in lsp.response(205)
    assert "result" in lsp.response(206)
    lsp.assert_still_serving()


def test_absurd_content_length_is_refused_without_allocating(lsp: Client) -> None:
    lsp.write(b"Content-Length: 999999999999\r\n\r\n" + request_body(207))
    lsp.assert_still_serving()
    assert b"MemoryError" not in lsp.stderr
    log = (lsp.home / "cache" / "lsp.log").read_text(encoding="utf-8")
    assert "refusing a 999999999999-byte message" in log


# -- `scribe lsp`: bodies ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b'{"jsonrpc": "2.0", "id": 1, "method": "\xff\xfe"}', b"", b"{]"],
    ids=["deeply-nested", "invalid-utf8", "empty", "invalid-json"],
)
def test_a_body_that_is_not_json_gets_a_parse_error(lsp: Client, body: bytes) -> None:
    lsp.write(frame(body))
    assert lsp.response(None)["error"]["code"] == -32700
    lsp.assert_still_serving()


@pytest.mark.parametrize(
    "body",
    [b"null", b"42", b'"text"', b'{"jsonrpc": "2.0", "id": [1], "method": "scribe/status"}'],
    ids=["null", "number", "string", "array-id"],
)
def test_json_that_is_no_request_gets_invalid_request(lsp: Client, body: bytes) -> None:
    lsp.write(frame(body))
    assert lsp.response(None)["error"]["code"] == -32600
    lsp.assert_still_serving()


def test_a_notification_with_bad_params_is_dropped(lsp: Client) -> None:
    lsp.notify("textDocument/didOpen", {"textDocument": 5})
    lsp.notify("$/cancelRequest", {"id": [1]})
    lsp.assert_still_serving()


def test_a_failing_handler_answers_without_a_traceback(lsp: Client) -> None:
    # A lone surrogate is valid JSON but the tokenizer refuses it, so the completion handler
    # raises; pygls would put that traceback into error.data.
    uri = "file:///surrogate.md"
    doc = {"uri": uri, "languageId": "markdown", "version": 1, "text": "ab\ud800"}
    lsp.notify("textDocument/didOpen", {"textDocument": doc})
    reply = lsp.request("textDocument/inlineCompletion", completion(uri, 0, 3))
    assert reply["error"]["code"] == -32603
    assert "data" not in reply["error"]
    assert "traceback" not in json.dumps(reply).lower()
    lsp.assert_still_serving()


def test_completion_still_works_after_all_that(lsp: Client) -> None:
    uri = "file:///after.md"
    doc = {"uri": uri, "languageId": "markdown", "version": 1, "text": PROMPT}
    lsp.notify("textDocument/didOpen", {"textDocument": doc})
    reply = lsp.request("textDocument/inlineCompletion", completion(uri, 0, len(PROMPT)))
    items = reply["result"]
    items = items["items"] if isinstance(items, dict) else items
    assert len(items) == 1 and items[0]["insertText"].strip()
    assert lsp.garbage == []  # stdout held only framed messages
    assert b"Traceback" not in lsp.stderr


# -- `scribe lsp`: after shutdown --------------------------------------------------------------


def test_requests_after_shutdown_get_invalid_request(tiny_model_dir: Path, tmp_path: Path) -> None:
    client = start(tiny_model_dir, tmp_path)
    try:
        assert client.request("shutdown", None)["result"] is None
        reply = client.request("scribe/status", None)
        assert reply["error"]["code"] == -32600
        client.notify("textDocument/didOpen", {"textDocument": {}})  # dropped, not answered
        assert client.request("shutdown", None)["error"]["code"] == -32600
        client.notify("exit", None)
        assert client.proc.wait(timeout=WAIT_S) == 0  # `exit` still ends it, cleanly
        assert b"Traceback" not in client.stderr
    finally:
        stop(client)


@pytest.mark.parametrize("process_id", [2**40, -5], ids=["overflowing", "negative"])
def test_a_bogus_process_id_is_not_watched(
    tiny_model_dir: Path, tmp_path: Path, process_id: int
) -> None:
    # The server polls the editor's pid: 2**40 overflowed os.kill in the watcher thread (a
    # traceback on stderr), and -5 named a process group that does not exist (the server quit).
    from scribe.plugins.servers.lsp_server import PARENT_POLL_S

    client = start(tiny_model_dir, tmp_path, process_id)
    try:
        time.sleep(PARENT_POLL_S + 1.5)  # past the watcher's first poll
        assert client.proc.poll() is None
        client.assert_still_serving()
    finally:
        stop(client)


# -- `scribe serve` / `scribe lsp --jsonl` ----------------------------------------------------

GOOD = {"prefix": PROMPT, "max_tokens": 4}
BAD_LINES: list[tuple[bytes, str]] = [
    (b"{not json", "line 1: not valid JSON"),
    (b"[1, 2]", "expected a JSON object, got an array"),
    (b"42", "expected a JSON object, got a number"),
    (b"null", "expected a JSON object, got null"),
    (b"[" * 100_000, "JSON nested too deeply"),
    (b'{"id": "u", "prefix": "caf\xe9"}', "not valid UTF-8"),
    (b'{"id": "t", "text": 5}', '"prefix" must be a string'),
    (b'{"id": "p", "prefix": 5}', '"prefix" must be a string'),
    (b'{"id": "m", "prefix": "x", "max_tokens": "x"}', '"max_tokens" must be an integer'),
    (b'{"id": "e", "prefix": "x", "max_tokens": 1e308}', '"max_tokens" must be an integer'),
    (b'{"id": "n", "prefix": "x", "max_tokens": NaN}', '"max_tokens" must be an integer'),
    (b'{"id": "s", "prefix": "x", "suffix": {}}', '"suffix" must be a string'),
    (b'{"cancel": [1]}', '"cancel" must be the id of a request'),
]


def run_jsonl(model: Path, home: Path, lines: list[bytes]) -> tuple[list[dict], str]:
    proc = subprocess.run(
        [*SCRIBE, "lsp", "--jsonl", "--model", str(model)],
        input=b"\n".join(lines) + b"\n",
        capture_output=True,
        env=server_env(home),
        timeout=WAIT_S,
    )
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "Traceback" not in proc.stdout.decode("utf-8", "replace")
    return [json.loads(line) for line in proc.stdout.splitlines()], stderr


def test_jsonl_answers_one_error_per_bad_line_and_goes_on(tiny_model_dir: Path, tmp_path: Path):
    lines: list[bytes] = []
    for number, (bad, _) in enumerate(BAD_LINES):
        lines.append(bad)
        # A document of its own for each, so no good request supersedes another.
        good = {"id": f"good-{number}", "document": f"doc-{number}", **GOOD}
        lines.append(json.dumps(good).encode("utf-8"))
    replies, _ = run_jsonl(tiny_model_dir, tmp_path, lines)
    errors = [reply["error"] for reply in replies if "error" in reply]
    assert len(errors) == len(BAD_LINES), errors
    for (_, expected), error in zip(BAD_LINES, errors, strict=True):
        assert expected in error, (expected, error)
    texts = {reply["id"]: reply["text"] for reply in replies if "text" in reply}
    assert set(texts) == {f"good-{number}" for number in range(len(BAD_LINES))}


def test_jsonl_skips_a_line_over_the_cap(tiny_model_dir: Path, tmp_path: Path) -> None:
    from scribe.plugins.servers.jsonl_bridge import MAX_LINE_BYTES

    huge = b'{"id": "huge", "prefix": "' + b"a" * MAX_LINE_BYTES + b'"}'
    good = json.dumps({"id": "after", **GOOD}).encode("utf-8")
    replies, _ = run_jsonl(tiny_model_dir, tmp_path, [huge, good])
    assert replies[0] == {
        "id": None,
        "error": f"line 1: longer than {MAX_LINE_BYTES} bytes; skipped",
    }
    assert replies[1]["id"] == "after" and "text" in replies[1]


def test_jsonl_lone_surrogate_does_not_stop_the_bridge(tiny_model_dir: Path, tmp_path: Path):
    # JSON may spell a lone surrogate ("\\ud800"); echoing it back cannot be written as UTF-8.
    lines = [
        json.dumps({"id": "\ud800", "prefix": 5}).encode(),
        json.dumps({**GOOD, "id": "sur", "prefix": "ab\ud800", "document": "a"}).encode(),
        json.dumps({**GOOD, "id": "next", "document": "b"}).encode(),
    ]
    replies, _ = run_jsonl(tiny_model_dir, tmp_path, lines)
    assert replies[0] == {
        "id": "\ud800",
        "error": '"prefix" must be a string: the text before the cursor',
    }
    assert {reply["id"] for reply in replies[1:]} == {"sur", "next"}
    assert "text" in next(reply for reply in replies if reply["id"] == "next")
