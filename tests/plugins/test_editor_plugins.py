"""The Vim/Neovim plugin in the real editors against the real `scribe lsp` and a tiny model.

Each editor runs in its own tmux server (a real terminal, no display), keys are typed with
`tmux send-keys`, and a timer inside the editor writes its state (buffer, mode, the plugin's
ghost text, and the text properties / extmarks that draw it) to a JSON file the test reads.
Waits are generous and never asserted on: only what the editor ends up showing is.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.lsp_harness import WAIT_S, server_env

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "plugins" / "editors" / "vim"
PROMPT = "It was a bright cold day in April, and the"

TEST_RC = """
set nocompatible
let &runtimepath = {plugin} . ',' . &runtimepath
set packpath=
filetype plugin on
set noswapfile nobackup nowritebackup shortmess+=I
let g:scribe_command = [{python}, '-m', 'scribe.tui.cli']
let g:scribe_model = {model}
let g:scribe_debounce_ms = 30
let g:scribe_max_tokens = 8
" A manual request, then an edit before its answer can arrive: that answer is stale.
function! ScribeTestStale() abort
  let g:scribe_auto_trigger = 0
  call scribe#suggest()
  call setline('.', getline('.') . ' x')
  call cursor(line('.'), col('$'))
endfunction
inoremap <C-t> <Cmd>call ScribeTestStale()<CR>
imap <C-s> <Plug>(scribe-suggest)
function! ScribeTestDump(timer) abort
  let state = scribe#debug()
  let state.mode = mode(1)
  let state.lines = getline(1, '$')
  let state.cursor = [line('.'), col('.')]
  if has('nvim')
    let state.marks = luaeval('require("scribe").extmarks(0)')
  else
    let state.marks = map(prop_list(1, {{'end_lnum': -1}}),
          \\ {{_, p -> {{'row': p.lnum - 1, 'col': p.col - 1, 'type': p.type}}}})
  endif
  call writefile([json_encode(state)], {dump} . '.tmp')
  call rename({dump} . '.tmp', {dump})
endfunction
call timer_start(50, 'ScribeTestDump', {{'repeat': -1}})
"""


def vim_string(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


class Editor:
    def __init__(self, program: list[str], tmp: Path, model: Path, home: Path) -> None:
        self.tmp = tmp
        self.dump = tmp / "state.json"
        self.socket = f"scribe-test-{os.getpid()}-{Path(program[0]).name}"
        rc = tmp / "test.vim"
        rc.write_text(
            TEST_RC.format(
                plugin=vim_string(PLUGIN),
                python=vim_string(sys.executable),
                model=vim_string(model),
                dump=vim_string(self.dump),
            ),
            encoding="utf-8",
        )
        command = [*program, "-u", str(rc), "-i", "NONE", str(tmp / "draft.md")]
        env = server_env(home)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        self.tmux("new-session", "-d", "-s", "main", "-x", "110", "-y", "20", *command, env=env)
        self.state = self.wait_for(lambda s: s["mode"] == "n", "the editor to start")

    def tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            check=True,
        )
        return done.stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.tmux("send-keys", "-t", "main", *(["-l"] if literal else []), *keys)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-t", "main", "-p")

    def read_state(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.dump.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_S
        state = None
        while time.monotonic() < deadline:
            state = self.read_state()
            if state is not None and predicate(state):
                return state
            time.sleep(0.05)
        raise AssertionError(f"waited for {what}; last state {state}\nscreen:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def ghost_shown(state: dict[str, Any]) -> bool:
    return bool(state["ghost"]) and bool(state["marks"])


def exercise(editor: Editor) -> None:
    """One editing session: the checks shared by Vim and Neovim."""
    # Typing in insert mode brings ghost text at the cursor, drawn by the editor.
    editor.keys("i")
    editor.keys(PROMPT, literal=True)
    state = editor.wait_for(ghost_shown, "ghost text after typing")
    assert state["mode"].startswith("i") and state["lines"] == [PROMPT]
    ghost = state["ghost"]
    assert ghost.startswith(" ") and ghost.strip()  # the tiny model's greedy continuation
    assert [(m["row"], m["col"]) for m in state["marks"]][:1] == [(0, len(PROMPT))]
    assert (PROMPT + ghost.split("\n")[0]).rstrip() in editor.screen()

    # Typing the suggestion's own next characters keeps the rest showing, with no new request.
    typed = ghost[:2] if len(ghost.split("\n")[0]) > 3 else ghost[:1]
    requests = state["stats"]["requests"]
    editor.keys(typed, literal=True)
    state = editor.wait_for(lambda s: s["lines"] == [PROMPT + typed], "the typed characters")
    state = editor.wait_for(lambda s: s["ghost"] == ghost[len(typed) :], "the rest of the ghost")
    assert [(m["row"], m["col"]) for m in state["marks"]][:1] == [(0, len(PROMPT + typed))]
    assert state["stats"]["requests"] == requests
    text, ghost = PROMPT + typed, ghost[len(typed) :]

    # Accept one word (default key <C-Right>): it lands in the buffer, the rest still shows.
    first_word = ghost[: len(ghost) - len(ghost.lstrip())] + ghost.split()[0]
    editor.keys("C-Right")
    state = editor.wait_for(lambda s: s["lines"] != [text], "the accepted word")
    assert state["lines"] == [text + first_word]
    assert state["ghost"] == ghost[len(first_word) :] and state["marks"]
    assert state["cursor"] == [1, len(text + first_word) + 1]

    # Accept all (<Tab>): the whole suggestion is in the buffer, the cursor after it.
    editor.keys("Tab")
    state = editor.wait_for(lambda s: s["lines"] != [text + first_word], "the accepted rest")
    assert state["lines"] == [text + ghost]
    assert state["cursor"] == [1, len(text + ghost) + 1]

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


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split(")")[-1].split()[0] == "Z")


def need(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (scripts/setup.sh installs them)")


def test_neovim_plugin(tiny_model_dir: Path, tmp_path: Path) -> None:
    need("nvim", "tmux")
    editor = Editor(["nvim"], tmp_path, tiny_model_dir, tmp_path / "home")
    try:
        exercise(editor)
    finally:
        editor.close()


def test_vim_plugin(tiny_model_dir: Path, tmp_path: Path) -> None:
    need("vim", "tmux")
    editor = Editor(["vim", "-N"], tmp_path, tiny_model_dir, tmp_path / "home")
    try:
        exercise(editor)
    finally:
        editor.close()
