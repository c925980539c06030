"""`scribe lsp` driven by pygls' own LanguageClient over stdio, with a tiny real model.

One server process serves the whole module (starting Python + torch is the slow part)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types as t
from pygls.exceptions import JsonRpcRequestCancelled

from tests.plugins.lsp_harness import (
    AUTO,
    PROMPT,
    WAIT_S,
    PyglsSession,
    change_doc,
    complete,
    completion_params,
    open_doc,
    server_env,
    status,
)

pytestmark = pytest.mark.slow

BURST = 200


@pytest.fixture(scope="module")
def lsp(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("lsp-home")
    session = PyglsSession(["--model", str(tiny_model_dir)], server_env(home))
    session.home = home
    # A long debounce makes "a burst of automatic requests starts one generation" certain.
    options = {"debounceMs": 1000, "maxTokens": 8}
    capabilities = t.ClientCapabilities()
    params = t.InitializeParams(capabilities=capabilities, initialization_options=options)
    session.init = session.run(session.client.initialize_async(params))
    session.call(lambda: session.client.initialized(t.InitializedParams()))
    yield session
    session.close()


def test_a_burst_of_automatic_requests_starts_one_generation(lsp: PyglsSession) -> None:
    # First test on purpose: the burst lands while the model may still be loading.
    uri = "file:///burst.md"
    open_doc(lsp, uri, "")
    futures = []
    for i in range(1, BURST + 1):
        text = PROMPT[: 1 + i % len(PROMPT)] if i < BURST else PROMPT
        change_doc(lsp, uri, i + 1, text)
        params = completion_params(uri, 0, len(text), AUTO)
        futures.append(lsp.call(lambda p=params: lsp.client.text_document_inline_completion(p)))
    results = [future.result(WAIT_S) for future in futures]
    assert all(result == [] for result in results[:-1])
    assert results[-1] and results[-1][0].insert_text.strip()
    figures = status(lsp)
    assert figures["generations"] == 1  # only the latest request ever generated
    assert figures["peak_pending"] == 1  # and only one ever waited: memory stays bounded
    assert figures["pending"] == 0


def test_initialize_advertises_inline_completion_and_full_sync(lsp: PyglsSession) -> None:
    capabilities = lsp.init.capabilities
    assert capabilities.inline_completion_provider is not None
    assert capabilities.text_document_sync.change == t.TextDocumentSyncKind.Full
    assert lsp.init.server_info.name == "scribe"


def test_inline_completion_at_the_cursor(lsp: PyglsSession) -> None:
    uri = "file:///story.md"
    open_doc(lsp, uri, "Title\n\n" + PROMPT + "\n\nNext part.")
    items = complete(lsp, uri, 2, len(PROMPT))
    assert len(items) == 1
    assert items[0].insert_text.strip()
    assert items[0].range.start == t.Position(line=2, character=len(PROMPT))
    assert items[0].range.end == items[0].range.start


def test_document_never_opened_gets_an_empty_result(lsp: PyglsSession) -> None:
    assert complete(lsp, "file:///never/opened.md", 0, 0) == []


def test_completion_follows_document_changes_and_reuses_the_prefix(lsp: PyglsSession) -> None:
    uri = "file:///edits.md"
    text = " ".join(["the boats were coming home"] * 30) + " and she"
    open_doc(lsp, uri, text)
    complete(lsp, uri, 0, len(text))
    before = status(lsp)
    edited = text[: text.rindex(" ")] + " he"  # a one-word edit at the end
    change_doc(lsp, uri, 2, edited)
    assert complete(lsp, uri, 0, len(edited))
    after = status(lsp)
    assert after["served"] == before["served"] + 1
    last = after["last"]
    assert last["prompt_tokens"] <= 128 - 8  # the tiny model's window, minus the reply
    assert last["reused_tokens"] >= last["prompt_tokens"] - 4  # all but the edit was cached


def test_five_megabyte_document_keeps_a_bounded_prompt(lsp: PyglsSession) -> None:
    uri = "file:///huge.txt"
    line = "She opened the door and looked out at the sea.\n"
    text = line * (5_000_000 // len(line))
    open_doc(lsp, uri, text, language="plaintext")
    lines = text.count("\n")
    complete(lsp, uri, lines, 0)
    last = status(lsp)["last"]
    assert 0 < last["prompt_tokens"] <= 128 - 8


def test_cancel_request_answers_request_cancelled(lsp: PyglsSession) -> None:
    uri = "file:///cancel.md"
    open_doc(lsp, uri, PROMPT)
    before = status(lsp)
    params = completion_params(uri, 0, len(PROMPT), AUTO)  # waits out the 1 s debounce
    future = lsp.call(
        lambda: lsp.client.protocol.send_request(
            t.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id="cancel-me"
        )
    )
    lsp.call(lambda: lsp.client.protocol.notify("$/cancelRequest", t.CancelParams(id="cancel-me")))
    with pytest.raises(JsonRpcRequestCancelled):
        future.result(WAIT_S)
    after = status(lsp)
    assert after["generations"] == before["generations"]  # it never ran
    assert after["cancelled"] == before["cancelled"] + 1


def test_status_reports_model_state_and_latency(lsp: PyglsSession) -> None:
    figures = status(lsp)
    assert figures["model"] and figures["state"] == "warm"
    assert figures["requests"] >= figures["served"] >= 1
    latency = figures["latency_ms"]
    assert latency["p95"] >= latency["p50"] > 0


def test_logs_go_to_the_cache_dir(lsp: PyglsSession) -> None:
    log = (lsp.home / "cache" / "lsp.log").read_text(encoding="utf-8")
    assert "loaded and warm" in log and "served a document" in log
    assert "story.md" not in log  # document paths only with --log-prompts
