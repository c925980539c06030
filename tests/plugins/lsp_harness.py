"""Test helpers: the `scribe` command line; pygls' own LanguageClient driving a real
`scribe lsp` process from synchronous tests (its event loop runs in a background thread), with
the requests the tests send through it; and a raw JSON-RPC client written independently of
scribe and pygls."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types as t

T = TypeVar("T")

SCRIBE = [sys.executable, "-m", "scribe.tui.cli"]
WAIT_S = 180  # generous: a loaded 2-core machine imports torch slowly; never a timing assertion
PROMPT = "It was a bright cold day in April, and the"


def server_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"SCRIBE_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
    return env


class PyglsSession:
    """A `scribe lsp` subprocess with pygls' LanguageClient connected to its stdio."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        from pygls.lsp.client import LanguageClient

        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.client = LanguageClient("scribe-tests", "1")
        self.run(self.client.start_io(*SCRIBE, "lsp", *args, env=env))

    def run(self, coro: Awaitable[T], timeout: float = WAIT_S) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def call(self, fn: Callable[[], T]) -> T:
        """Run a plain function (e.g. a notification) on the client's loop."""

        async def wrapper() -> T:
            return fn()

        return self.run(wrapper())

    def request(self, method: str, params: Any, timeout: float = WAIT_S) -> Any:
        async def send() -> Any:
            return await self.client.protocol.send_request_async(method, params)

        return self.run(send(), timeout)

    @property
    def process(self) -> Any:
        return self.client._server

    def close(self) -> None:
        try:
            if self.process is not None and self.process.returncode is None:
                self.run(self.client.shutdown_async(None), timeout=30)
                self.call(lambda: self.client.exit(None))
                self.run(asyncio.wait_for(self.process.wait(), 30), timeout=40)
        finally:
            if self.process is not None and self.process.returncode is None:
                self.process.kill()
            self.run(self.client.stop(), timeout=30)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)


AUTO, INVOKED = t.InlineCompletionTriggerKind.Automatic, t.InlineCompletionTriggerKind.Invoked


def open_doc(lsp: PyglsSession, uri: str, text: str, language: str = "markdown") -> None:
    item = t.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)
    lsp.call(lambda: lsp.client.text_document_did_open(t.DidOpenTextDocumentParams(item)))


def change_doc(lsp: PyglsSession, uri: str, version: int, text: str) -> None:
    change = t.TextDocumentContentChangeWholeDocument(text=text)
    doc = t.VersionedTextDocumentIdentifier(uri=uri, version=version)
    params = t.DidChangeTextDocumentParams(text_document=doc, content_changes=[change])
    lsp.call(lambda: lsp.client.text_document_did_change(params))


def completion_params(uri: str, line: int, character: int, kind=INVOKED):
    return t.InlineCompletionParams(
        context=t.InlineCompletionContext(trigger_kind=kind),
        text_document=t.TextDocumentIdentifier(uri=uri),
        position=t.Position(line=line, character=character),
    )


def complete(lsp: PyglsSession, uri: str, line: int, character: int, kind=INVOKED):
    params = completion_params(uri, line, character, kind)
    return lsp.run(lsp.client.text_document_inline_completion_async(params))


def plain(value):
    """pygls hands custom results back as namedtuples; make them dicts."""
    if hasattr(value, "_asdict"):
        return {key: plain(item) for key, item in value._asdict().items()}
    return value


def status(lsp: PyglsSession) -> dict:
    return plain(lsp.request("scribe/status", None))


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


def completion(uri: str, line: int, character: int) -> dict[str, Any]:
    return {
        "textDocument": {"uri": uri},
        "position": {"line": line, "character": character},
        "context": {"triggerKind": 1},
    }
