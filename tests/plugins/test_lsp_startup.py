"""`scribe lsp` at start-up and while the user types: `initialize` answered before the model
is loaded, opened documents prefilled, `scribe/prefill`, partial suggestions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as t

from scribe.plugins.servers.completion_service import CompletionService
from scribe.plugins.servers.lsp_framing import FrameReader
from scribe.plugins.servers.lsp_server import serve_stdio
from tests.plugins.lsp_harness import WAIT_S, PyglsSession, server_env

pytestmark = pytest.mark.slow

TEXT = "It was a bright cold day in April, and the clocks"


def test_the_server_imports_no_torch_before_it_serves() -> None:
    # What `scribe lsp` imports before answering `initialize`; torch loads in the worker.
    code = (
        "import sys, scribe.tui.cli, scribe.tui.commands.lsp_cmd, "
        "scribe.plugins.servers.completion_service, scribe.plugins.servers.lsp_server; "
        "print(sorted(m for m in ('torch', 'transformers', 'numpy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


class Pipes:
    """serve_stdio on a thread, spoken to through two pipes."""

    def __init__(self, service: CompletionService) -> None:
        in_r, self._in_w = os.pipe()
        out_r, out_w = os.pipe()
        self._stdin = os.fdopen(in_r, "rb")
        self._stdout = os.fdopen(out_w, "wb")
        self._frames = FrameReader(os.fdopen(out_r, "rb"))
        self.thread = threading.Thread(
            target=serve_stdio, args=(service, self._stdin, self._stdout), daemon=True
        )
        self.thread.start()
        self.next_id = 0

    def send(self, method: str, params: Any = None, request: bool = True) -> Any:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
        if request:
            self.next_id += 1
            message["id"] = self.next_id
        body = json.dumps(message).encode()
        os.write(self._in_w, b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        while request:
            reply = json.loads(self._frames.read_message())
            if reply.get("id") == self.next_id:
                return reply
        return None

    def close(self) -> None:
        self.send("shutdown")
        self.send("exit", request=False)
        self.thread.join(WAIT_S)
        os.close(self._in_w)


def test_initialize_is_answered_while_the_model_is_still_loading(tiny_model_dir: Path) -> None:
    release = threading.Event()

    class HeldLoad(CompletionService):
        def _load(self) -> None:
            release.wait(WAIT_S)  # the model (and torch) take their time
            super()._load()

    pipes = Pipes(HeldLoad(str(tiny_model_dir)))
    try:
        reply = pipes.send("initialize", {"capabilities": {}})
        assert reply["result"]["capabilities"]["inlineCompletionProvider"] is not None
        pipes.send("initialized", {}, request=False)
        assert pipes.send("scribe/status")["result"]["state"] == "loading"
        release.set()
        deadline = time.monotonic() + WAIT_S
        while pipes.send("scribe/status")["result"]["state"] == "loading":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert pipes.send("scribe/status")["result"]["state"] == "warm"
    finally:
        release.set()
        pipes.close()


@pytest.fixture(scope="module")
def lsp(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    session = PyglsSession(
        ["--model", str(tiny_model_dir)], server_env(tmp_path_factory.mktemp("startup-home"))
    )
    session.partials = []
    session.client.feature("scribe/partialCompletion")(
        lambda params: session.partials.append(params)
    )
    options = {"maxTokens": 32, "partialCompletions": True}  # and the adaptive debounce
    params = t.InitializeParams(capabilities=t.ClientCapabilities(), initialization_options=options)
    session.run(session.client.initialize_async(params))
    session.call(lambda: session.client.initialized(t.InitializedParams()))
    yield session
    session.close()


def status(lsp: PyglsSession) -> dict[str, Any]:
    value = lsp.request("scribe/status", None)
    return {k: getattr(value, k) for k in value._fields}


def wait_for_prefills(lsp: PyglsSession, count: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while status(lsp)["prefilled"] < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status(lsp)["prefilled"] == count


def open_doc(lsp: PyglsSession, uri: str, text: str) -> None:
    item = t.TextDocumentItem(uri=uri, language_id="markdown", version=1, text=text)
    lsp.call(lambda: lsp.client.text_document_did_open(t.DidOpenTextDocumentParams(item)))


def request(lsp: PyglsSession, uri: str, line: int, character: int, msg_id: str) -> Any:
    params = t.InlineCompletionParams(
        context=t.InlineCompletionContext(trigger_kind=t.InlineCompletionTriggerKind.Invoked),
        text_document=t.TextDocumentIdentifier(uri=uri),
        position=t.Position(line=line, character=character),
    )
    future = lsp.call(
        lambda: lsp.client.protocol.send_request(
            t.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=msg_id
        )
    )
    return future.result(WAIT_S)


def test_an_opened_document_is_prefilled_up_to_its_end(lsp: PyglsSession) -> None:
    before = status(lsp)["prefilled"]
    open_doc(lsp, "file:///opened.md", f"{TEXT}\n")
    wait_for_prefills(lsp, before + 1)
    assert request(lsp, "file:///opened.md", 0, len(TEXT), "opened")
    last = status(lsp)["last"]
    assert last.reused_tokens == last.prompt_tokens - 1  # the first request found it cached


def test_scribe_prefill_reads_up_to_the_position_it_names(lsp: PyglsSession) -> None:
    uri = "file:///middle.md"
    text = f"# Title\n\n{TEXT}\n\nThe end.\n"
    before = status(lsp)["prefilled"]
    open_doc(lsp, uri, text)
    wait_for_prefills(lsp, before + 1)  # at its end
    where = {"textDocument": {"uri": uri}, "position": {"line": 2, "character": len(TEXT)}}
    lsp.call(lambda: lsp.client.protocol.notify("scribe/prefill", where))
    wait_for_prefills(lsp, before + 2)
    assert request(lsp, uri, 2, len(TEXT), "middle")
    last = status(lsp)["last"]
    assert last.reused_tokens == last.prompt_tokens - 1


def test_a_prefill_for_a_document_never_opened_is_ignored(lsp: PyglsSession) -> None:
    before = status(lsp)
    where = {"textDocument": {"uri": "file:///nowhere.md"}, "position": {"line": 0}}
    lsp.call(lambda: lsp.client.protocol.notify("scribe/prefill", where))
    lsp.call(lambda: lsp.client.protocol.notify("scribe/prefill", {"bad": True}))
    open_doc(lsp, "file:///after.md", TEXT)  # the server goes on
    wait_for_prefills(lsp, before["prefilled"] + 1)


def test_partial_suggestions_name_their_request_and_grow_into_the_answer(
    lsp: PyglsSession,
) -> None:
    uri = "file:///partial.md"
    prompt = "The boats were coming home and she"
    open_doc(lsp, uri, prompt)
    lsp.partials.clear()
    items = request(lsp, uri, 0, len(prompt), "partial-1")
    final = items[0].insert_text if items else ""
    partials = list(lsp.partials)
    assert all(p.id == "partial-1" for p in partials)
    for shown in (p.text for p in partials):
        assert shown.strip() and final.startswith(shown)
    if len(final.split()) >= 3:
        assert partials
