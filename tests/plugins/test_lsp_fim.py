"""Fill-in-the-middle through the real `scribe lsp`: with a model whose card declares FIM, a
suggestion requested mid-line reads the text after the cursor (it differs from the prefix-only
suggestion, never repeats that text), and typing on keeps reusing the cached prefix."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types as t

from tests import factory
from tests.plugins.lsp_harness import (
    PyglsSession,
    change_doc,
    complete,
    open_doc,
    server_env,
    status,
)

pytestmark = pytest.mark.slow

BEFORE = "The quick brown fox jumps over the "
AFTER = " dog. A writer needs a quiet room and time."


def start(model: Path, home: Path) -> PyglsSession:
    session = PyglsSession(["--model", str(model)], server_env(home))
    options = {"debounceMs": 0, "maxTokens": 8}
    params = t.InitializeParams(capabilities=t.ClientCapabilities(), initialization_options=options)
    session.run(session.client.initialize_async(params))
    session.call(lambda: session.client.initialized(t.InitializedParams()))
    return session


def suggestion(result) -> str:
    items = result.items if hasattr(result, "items") else result
    return items[0].insert_text if items else ""


@pytest.fixture(scope="module")
def fim_lsp(tmp_path_factory: pytest.TempPathFactory):
    model = factory.fim_model(tmp_path_factory.mktemp("fim-model"))
    session = start(model, tmp_path_factory.mktemp("fim-home"))
    yield session
    session.close()


def test_mid_line_suggestion_uses_the_text_after_the_cursor(fim_lsp: PyglsSession) -> None:
    open_doc(fim_lsp, "file:///mid.md", BEFORE + AFTER, "markdown")
    with_suffix = suggestion(complete(fim_lsp, "file:///mid.md", 0, len(BEFORE)))
    fim_status = status(fim_lsp)
    assert fim_status["fim"] is True
    fim_tokens = fim_status["last"]["prompt_tokens"]
    open_doc(fim_lsp, "file:///end.md", BEFORE, "markdown")  # nothing after the cursor
    prefix_only = suggestion(complete(fim_lsp, "file:///end.md", 0, len(BEFORE)))
    plain_tokens = status(fim_lsp)["last"]["prompt_tokens"]
    assert fim_tokens > plain_tokens + 5  # the suffix and the markers were in the prompt
    assert with_suffix != prefix_only
    assert AFTER.strip()[:10] not in with_suffix  # never re-types what follows


def test_typing_mid_line_reuses_the_cached_prefix(fim_lsp: PyglsSession) -> None:
    uri = "file:///typing.md"
    text = BEFORE + AFTER
    open_doc(fim_lsp, uri, text, "markdown")
    complete(fim_lsp, uri, 0, len(BEFORE))
    typed = BEFORE + "la"
    change_doc(fim_lsp, uri, 2, typed + AFTER)
    complete(fim_lsp, uri, 0, len(typed))
    last = status(fim_lsp)["last"]
    # All of the old prefix but the boundary token is reused; the suffix part is fed again.
    assert last["reused_tokens"] >= len(BEFORE) // 6


def test_a_model_without_fim_ignores_the_suffix(tiny_model_dir: Path, tmp_path: Path) -> None:
    session = start(tiny_model_dir, tmp_path)
    try:
        open_doc(session, "file:///a.md", BEFORE + AFTER, "markdown")
        complete(session, "file:///a.md", 0, len(BEFORE))
        with_suffix = status(session)
        open_doc(session, "file:///b.md", BEFORE, "markdown")
        complete(session, "file:///b.md", 0, len(BEFORE))
        assert with_suffix["fim"] is False
        assert with_suffix["last"]["prompt_tokens"] == status(session)["last"]["prompt_tokens"]
    finally:
        session.close()
