"""Real Vim and Neovim for the plugin tests, each in its own tmux server (a real terminal, no
display). Keys are typed with `tmux send-keys`; a timer inside the editor writes its state
(buffer, mode, cursor, the plugin's ghost text and the text properties / extmarks that draw it)
to a JSON file the test reads. Waits are generous and never asserted on: only what the editor
ends up showing is.
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

# {plugin}, {command}, {model}, {dump}, {extra}: Vim strings (and lines for {extra}).
BASE_RC = """
set nocompatible
let &runtimepath = {plugin} . ',' . &runtimepath
set packpath=
filetype plugin on
set noswapfile nobackup nowritebackup shortmess+=I
let g:scribe_command = {command}
let g:scribe_model = {model}
let g:scribe_max_tokens = 8
{extra}
function! ScribeTestDump(timer) abort
  let state = scribe#debug()
  let state.mode = mode(1)
  let state.lines = getline(1, '$')
  let state.cursor = [line('.'), col('.')]
  let state.extra = exists('*ScribeTestExtra') ? ScribeTestExtra() : {{}}
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


def vim_list(values: list[str]) -> str:
    return "[" + ", ".join(vim_string(v) for v in values) + "]"


SCRIBE_COMMAND = [sys.executable, "-m", "scribe.tui.cli"]


class Editor:
    """`program` (["nvim"] or ["vim", "-N"]) editing `file` in tmp, with the plugin loaded,
    `command` as g:scribe_command and `extra` Vim script lines in its vimrc."""

    def __init__(
        self,
        program: list[str],
        tmp: Path,
        model: Path | str,
        home: Path,
        extra: str = "",
        command: list[str] | None = None,
        file: str = "draft.md",
        wait_ready: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        self.tmp = tmp
        self.dump = tmp / "state.json"
        self.socket = f"scribe-test-{os.getpid()}-{Path(program[0]).name}"
        rc = tmp / "test.vim"
        rc.write_text(
            BASE_RC.format(
                plugin=vim_string(PLUGIN),
                command=vim_list(command or SCRIBE_COMMAND),
                model=vim_string(model),
                dump=vim_string(self.dump),
                extra=extra,
            ),
            encoding="utf-8",
        )
        args = [*program, "-u", str(rc), "-i", "NONE", str(tmp / file)]
        env = server_env(home)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        self.tmux("new-session", "-d", "-s", "main", "-x", "110", "-y", "20", *args, env=env)
        try:
            self.state = self.wait_for(wait_ready or (lambda s: s["mode"] == "n"), "the editor")
        except BaseException:
            self.close()
            raise

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


def nbytes(text: str) -> int:
    """Columns in the editors count bytes (a tiny random model writes U+FFFD and the like)."""
    return len(text.encode("utf-8"))


def ghost_shown(state: dict[str, Any]) -> bool:
    return bool(state["ghost"]) and bool(state["marks"])


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


EDITORS = {"nvim": ["nvim"], "vim": ["vim", "-N"]}  # the `editor_program` fixture's values
