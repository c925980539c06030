"""A language server that answers late and out of turn, for the editor staleness tests.

Run as `python fake_lsp.py [ignored args]` (the plugin appends `lsp --model ...`). It speaks
just enough LSP for the scribe plugin: initialize, full document sync, inline completion with
`scribe/partialCompletion` notifications, and $/cancelRequest (which it ignores: it answers
cancelled requests anyway, as a slow server may).

Every suggestion names the text it was made for: `~LINE:COL:TAIL~ and more words`, where
LINE and COL are the request's position and TAIL the (up to) 12 bytes of that line before it.
An editor test can so tell, from the ghost text alone, whether what is drawn belongs to the
text and cursor on screen.

The schedule is adversarial: when request N arrives, the previous request's partial is sent
again (always: a notification for a request that was superseded, and maybe answered already),
and its answer too if it was still unanswered; request N gets its partial after PARTIAL_S and
its answer after ANSWER_S unless a newer request came first.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

PARTIAL_S = 0.02
ANSWER_S = 0.08
TAIL = 12

out_lock = threading.Lock()
state_lock = threading.Lock()
documents: dict[str, list[str]] = {}  # uri -> lines
outstanding: dict[Any, str] = {}  # request id -> its suggestion, until answered
suggestions: dict[Any, str] = {}  # every request's suggestion
order: list[Any] = []  # request ids, oldest first


def send(message: dict[str, Any]) -> None:
    body = json.dumps({"jsonrpc": "2.0", **message}).encode()
    with out_lock:
        sys.stdout.buffer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        sys.stdout.buffer.flush()


def read() -> dict[str, Any] | None:
    length = None
    while True:
        line = sys.stdin.buffer.readline()
        if not line:
            return None
        line = line.strip()
        if not line:
            break
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    return json.loads(sys.stdin.buffer.read(length or 0))


def suggestion_for(uri: str, line: int, col: int) -> str:
    lines = documents.get(uri, [""])
    text = lines[line] if line < len(lines) else ""
    before = text.encode("utf-8")[:col]
    tail = before[-TAIL:].decode("utf-8", "replace")
    return f"~{line}:{col}:{tail}~ and more words"


def partial(request_id: Any) -> None:
    text = suggestions[request_id]
    send({"method": "scribe/partialCompletion", "params": {"id": request_id, "text": text[:-10]}})


def answer(request_id: Any) -> None:
    with state_lock:
        text = outstanding.pop(request_id, None)
    if text is not None:
        send({"id": request_id, "result": {"items": [{"insertText": text}]}})


def later(seconds: float, action: Any, *args: Any) -> None:
    timer = threading.Timer(seconds, action, args)
    timer.daemon = True
    timer.start()


def on_completion(message: dict[str, Any]) -> None:
    params = message["params"]
    position = params["position"]
    request_id = message["id"]
    with state_lock:
        text = suggestion_for(
            params["textDocument"]["uri"], position["line"], position["character"]
        )
        previous = order[-1] if order else None
        order.append(request_id)
        suggestions[request_id] = text
        outstanding[request_id] = text
    if previous is not None:
        partial(previous)  # late: the editor has moved on
        answer(previous)  # late, when it was still unanswered
    later(PARTIAL_S, lambda: request_id in outstanding and partial(request_id))
    later(ANSWER_S, answer, request_id)


def main() -> int:
    while (message := read()) is not None:
        method = message.get("method")
        params = message.get("params") or {}
        if method == "initialize":
            capabilities = {"textDocumentSync": 1, "inlineCompletionProvider": {}}
            send({"id": message["id"], "result": {"capabilities": capabilities}})
        elif method == "shutdown":
            send({"id": message["id"], "result": None})
        elif method == "exit":
            return 0
        elif method == "textDocument/didOpen":
            item = params["textDocument"]
            documents[item["uri"]] = item["text"].split("\n")
        elif method == "textDocument/didChange":
            text = params["contentChanges"][-1]["text"]
            documents[params["textDocument"]["uri"]] = text.split("\n")
        elif method == "textDocument/inlineCompletion":
            on_completion(message)
        elif method == "scribe/status":
            send({"id": message["id"], "result": {"state": "warm", "model": "fake"}})
        elif "id" in message and method is not None:
            send({"id": message["id"], "result": None})
    return 0


if __name__ == "__main__":
    sys.exit(main())
