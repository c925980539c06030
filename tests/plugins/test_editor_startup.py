"""Opening a buffer starts the server, in real Vim and Neovim with the real `scribe lsp`.

Before any key is typed, the server runs, loads the model and prefills the opened document
(its log says so), so the first suggestion only reads what was typed since. A buffer of a
filetype that is not enabled starts nothing, until its filetype becomes an enabled one.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.plugins.editor_harness import Editor, ghost_shown, process_alive
from tests.plugins.lsp_harness import WAIT_S

pytestmark = pytest.mark.slow

DRAFT = "# Notes\n\nIt was a bright cold day in April, and the\n"


def wait_for_log(home: Path, pattern: str) -> re.Match[str]:
    """The first line of the server's log matching `pattern`, once it is there."""
    log = home / "cache" / "lsp.log"
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8") if log.exists() else ""
        found = re.search(pattern, text)
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"the server's log never said {pattern!r}:\n{text}")


def test_opening_a_buffer_starts_the_server_and_prefills_it(
    editor_program: list[str], tiny_model_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "draft.md").write_text(DRAFT, encoding="utf-8")
    home = tmp_path / "home"
    editor = Editor(editor_program, tmp_path, tiny_model_dir, home)
    try:
        # No key typed yet, and the server runs: the buffer's opening started it.
        state = editor.wait_for(lambda s: s["server"] == "ready" and s["pid"] > 0, "the server")
        assert state["mode"] == "n" and state["stats"]["requests"] == 0
        assert process_alive(state["pid"])
        # It loaded the model and read the document up to its end, still before any key.
        prefilled = wait_for_log(home, r"prefilled a document: (\d+) tokens")
        assert int(prefilled.group(1)) > 1
        assert (editor.read_state() or state)["stats"]["requests"] == 0

        # A blank typed at the end: the first suggestion finds the text already in the cache.
        editor.keys("G", "A", " ")
        state = editor.wait_for(lambda s: ghost_shown(s) and not s["inflight"], "a suggestion")
        assert state["lines"][2] == DRAFT.split("\n")[2] + " "
        served = wait_for_log(home, r"served a document: (\d+) prompt tokens \((\d+) reused\)")
        prompt_tokens, reused = int(served.group(1)), int(served.group(2))
        assert reused == prompt_tokens - 1  # all but the one token a step always feeds
    finally:
        editor.close()


def test_a_buffer_of_another_filetype_starts_nothing(
    editor_program: list[str], tiny_model_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "script.py").write_text("print('hello')\n", encoding="utf-8")
    editor = Editor(editor_program, tmp_path, tiny_model_dir, tmp_path / "home", file="script.py")
    try:
        state = editor.state  # the first state the editor wrote, after its start-up
        assert state["server"] == "stopped" and state["pid"] == 0
        # Making it an enabled filetype is opening a buffer of it: now the server starts.
        editor.keys(":set filetype=markdown", "Enter")
        state = editor.wait_for(lambda s: s["server"] == "ready" and s["pid"] > 0, "the server")
        assert process_alive(state["pid"])
    finally:
        editor.close()
