"""The Vim/Neovim plugin in the real editors against the real `scribe lsp` and a tiny model
(editor_harness.py runs them in tmux and reads their state).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.plugins.editor_harness import (
    Editor,
    ghost_shown,
    nbytes,
    process_alive,
)
from tests.plugins.lsp_harness import WAIT_S

pytestmark = pytest.mark.slow

PROMPT = "It was a bright cold day in April, and the"

EXTRA_RC = """
let g:scribe_debounce_ms = 30
" A manual request, then an edit before its answer can arrive: that answer is stale.
function! ScribeTestStale() abort
  let g:scribe_auto_trigger = 0
  call scribe#suggest()
  call setline('.', getline('.') . ' x')
  call cursor(line('.'), col('$'))
endfunction
inoremap <C-t> <Cmd>call ScribeTestStale()<CR>
imap <C-s> <Plug>(scribe-suggest)
"""


def exercise(editor: Editor) -> None:
    """One editing session: the checks shared by Vim and Neovim."""
    # Typing in insert mode brings ghost text at the cursor, drawn by the editor.
    editor.keys("i")
    editor.keys(PROMPT, literal=True)
    # The first words may show before the rest (early display): wait for the whole answer.
    state = editor.wait_for(lambda s: ghost_shown(s) and not s["inflight"], "the suggestion")
    assert state["mode"].startswith("i") and state["lines"] == [PROMPT]
    ghost = state["ghost"]
    assert ghost.startswith(" ") and ghost.strip()  # the tiny model's greedy continuation
    assert [(m["row"], m["col"]) for m in state["marks"]][:1] == [(0, nbytes(PROMPT))]
    assert (PROMPT + ghost.split("\n")[0]).rstrip() in editor.screen()

    # Typing the suggestion's own next characters keeps the rest showing, with no new request.
    typed = ghost[:2] if len(ghost.split("\n")[0]) > 3 else ghost[:1]
    requests = state["stats"]["requests"]
    editor.keys(typed, literal=True)
    state = editor.wait_for(lambda s: s["lines"] == [PROMPT + typed], "the typed characters")
    state = editor.wait_for(lambda s: s["ghost"] == ghost[len(typed) :], "the rest of the ghost")
    assert [(m["row"], m["col"]) for m in state["marks"]][:1] == [(0, nbytes(PROMPT + typed))]
    assert state["stats"]["requests"] == requests
    text, ghost = PROMPT + typed, ghost[len(typed) :]

    # Accept one word (default key <C-Right>): it lands in the buffer, the rest still shows.
    first_word = ghost[: len(ghost) - len(ghost.lstrip())] + ghost.split()[0]
    editor.keys("C-Right")
    state = editor.wait_for(lambda s: s["lines"] != [text], "the accepted word")
    assert state["lines"] == [text + first_word]
    assert state["ghost"] == ghost[len(first_word) :] and state["marks"]
    assert state["cursor"] == [1, nbytes(text + first_word) + 1]

    # Accept all (<Tab>): the whole suggestion is in the buffer, the cursor after it.
    editor.keys("Tab")
    state = editor.wait_for(lambda s: s["lines"] != [text + first_word], "the accepted rest")
    assert state["lines"] == [text + ghost]
    assert state["cursor"] == [1, nbytes(text + ghost) + 1]

    # Accepting changed the text, so a new request went out; let its answer land first.
    state = editor.wait_for(lambda s: not s["inflight"], "the request after accepting")

    # A response to a request made before the last edit is ignored: no ghost text appears.
    before = state["stats"]
    editor.keys("C-t")
    state = editor.wait_for(
        lambda s: s["stats"]["stale"] > before["stale"] and not s["inflight"],
        "the stale response",
    )
    assert state["lines"] == [text + ghost + " x"]
    assert state["ghost"] == "" and state["marks"] == []
    assert state["stats"]["shown"] == before["shown"]

    # With no suggestion showing, <Tab> is still a tab (spaces where 'expandtab' is set, as
    # Vim's Markdown settings do).
    line = text + ghost + " x"
    editor.keys("Tab")
    state = editor.wait_for(lambda s: s["lines"] != [line], "a plain tab")
    [tabbed] = state["lines"]
    assert tabbed.startswith(line) and tabbed[len(line) :] in ("\t", " " * len(tabbed[len(line) :]))
    assert tabbed[len(line) :] and state["ghost"] == ""

    # The manual trigger (automatic requests are off now) asks about the current text, and
    # that answer is shown.
    editor.keys("Then she", literal=True)
    editor.wait_for(lambda s: s["lines"][0].endswith("Then she"), "typing")
    editor.keys("C-s")
    state = editor.wait_for(ghost_shown, "ghost text from the manual trigger")
    assert state["stats"]["shown"] == before["shown"] + 1

    # Dismiss (<C-]>) removes it; leaving the editor stops the server.
    editor.keys("C-]")
    state = editor.wait_for(lambda s: not s["ghost"] and not s["marks"], "the dismissed ghost")
    pid = state["pid"]
    assert pid > 0

    # :ScribeStatus fetches the server's figures; :ScribeToggle turns suggestions off.
    editor.keys("Escape")
    editor.keys(":ScribeStatus", "Enter")
    state = editor.wait_for(lambda s: s["last_status"], "the server's status")
    assert state["last_status"]["state"] == "warm"
    assert state["last_status"]["served"] >= 2 and state["last_status"]["latency_ms"]["p50"] > 0
    editor.keys(":ScribeToggle", "Enter")
    editor.wait_for(lambda s: s["enabled"] == 0, "scribe turned off")

    editor.keys(":qa!", "Enter")
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and process_alive(pid):
        time.sleep(0.1)
    assert not process_alive(pid), "the server outlived the editor"


def test_editor_plugin(editor_program: list[str], tiny_model_dir: Path, tmp_path: Path) -> None:
    editor = Editor(editor_program, tmp_path, tiny_model_dir, tmp_path / "home", EXTRA_RC)
    try:
        exercise(editor)
    finally:
        editor.close()
