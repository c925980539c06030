"""A stale or superseded suggestion is never shown, in real Vim and Neovim.

The server here is fake_lsp.py: each suggestion names the line, column and text it was made for
(and starts with "~", which the test never types, so no suggestion is typed into),
and the server answers out of turn (a partial for the previous request whenever a new one
arrives, late answers to requests the editor already replaced or cancelled). A check inside the
editor runs whenever the ghost text can be drawn (Neovim: a decoration provider, called as the
window is redrawn; Vim: SafeState and SafeStateAgain, after every message the plugin handles,
and a 10 ms timer) and records any ghost text that does not belong to the text and cursor it is
drawn at, or that shows outside insert mode. The test types, pauses, deletes, moves the cursor
and dismisses while answers arrive, then asserts that nothing was recorded, that ghost text did
show (the check ran on real ghosts), and that the plugin did receive and drop stale messages.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.plugins.editor_harness import Editor, ghost_shown

pytestmark = pytest.mark.slow

FAKE_SERVER = [sys.executable, str(Path(__file__).with_name("fake_lsp.py"))]
DRAFT = "# Notes\n\nThe harbour was quiet that evening\n"

MONITOR_RC = r"""
let g:scribe_test = {'checks': 0, 'violations': []}
" What the ghost at the cursor must start with: fake_lsp.py's tag for this position.
function! ScribeTestWant(line, col, text) abort
  let before = strpart(a:text, 0, a:col)
  return printf('~%d:%d:%s~', a:line, a:col, strpart(before, max([0, len(before) - 12])))
endfunction
function! ScribeTestRecord(why, drawn, want) abort
  call add(g:scribe_test.violations, {'why': a:why, 'drawn': a:drawn, 'want': a:want,
        \ 'source': expand('<sfile>'),
        \ 'line': getline('.'), 'cursor': [line('.'), col('.')], 'mode': mode()})
endfunction
function! ScribeTestCheck(...) abort
  if empty(prop_type_get('ScribeGhost'))
    return
  endif
  let props = prop_list(1, {'end_lnum': -1, 'types': ['ScribeGhost']})
  if empty(props)
    return
  endif
  let g:scribe_test.checks += 1
  " Vim 9.0 does not list a property's text: the plugin's own record of what it drew.
  let drawn = scribe#debug().ghost
  let want = ScribeTestWant(line('.') - 1, col('.') - 1, getline('.'))
  if mode() !~# '^[iR]'
    call ScribeTestRecord('shown outside insert mode', drawn, want)
  elseif [props[0].lnum, props[0].col] != [line('.'), col('.')]
    call ScribeTestRecord('not at the cursor', drawn, want)
  elseif stridx(drawn, want) != 0
    call ScribeTestRecord('made for other text', drawn, want)
  endif
endfunction
function! ScribeTestExtra() abort
  if has('nvim')
    return luaeval('_G.scribe_test')
  endif
  return g:scribe_test
endfunction
if has('nvim')
lua << EOF
_G.scribe_test = { checks = 0, violations = {} }
local ghost_ns = vim.api.nvim_create_namespace('scribe')
local function check(win, buf, source)
  if win ~= vim.api.nvim_get_current_win() then
    return
  end
  local marks = vim.api.nvim_buf_get_extmarks(buf, ghost_ns, 0, -1, { details = true })
  if #marks == 0 then
    return
  end
  _G.scribe_test.checks = _G.scribe_test.checks + 1
  local row, col = unpack(vim.api.nvim_win_get_cursor(win))
  local line = vim.api.nvim_buf_get_lines(buf, row - 1, row, false)[1] or ''
  local before = line:sub(1, col)
  local want = string.format('~%d:%d:%s~', row - 1, col, before:sub(math.max(1, #before - 11)))
  local drawn = marks[1][4].virt_text[1][1]
  local why = nil
  if not vim.api.nvim_get_mode().mode:match('^[iR]') then
    why = 'shown outside insert mode'
  elseif marks[1][2] ~= row - 1 or marks[1][3] ~= col then
    why = 'not at the cursor'
  elseif drawn:sub(1, #want) ~= want then
    why = 'made for other text'
  end
  if why then
    table.insert(_G.scribe_test.violations, { why = why, drawn = drawn, want = want,
      line = line, cursor = { row, col }, source = source })
  end
end
vim.api.nvim_set_decoration_provider(vim.api.nvim_create_namespace('scribe-test'), {
  on_win = function(_, win, buf) check(win, buf, 'redraw') return false end,
})
vim.fn.timer_start(10, function()
  check(vim.api.nvim_get_current_win(), vim.api.nvim_get_current_buf(), 'timer')
end, { ['repeat'] = -1 })
EOF
else
  autocmd SafeState,SafeStateAgain * call ScribeTestCheck()
  call timer_start(10, 'ScribeTestCheck', {'repeat': -1})
endif
"""


def type_slowly(editor: Editor, text: str, gap_s: float = 0.03) -> None:
    for char in text:
        editor.keys(char, literal=True)
        time.sleep(gap_s)


def test_stale_or_superseded_suggestions_are_never_shown(
    editor_program: list[str], tmp_path: Path
) -> None:
    (tmp_path / "draft.md").write_text(DRAFT, encoding="utf-8")
    editor = Editor(
        editor_program, tmp_path, "unused", tmp_path / "home", MONITOR_RC, command=FAKE_SERVER
    )
    try:
        editor.keys("G", "A")  # the end of the last line
        type_slowly(editor, " and the boats")
        time.sleep(0.3)  # a pause: the answers for this text arrive
        type_slowly(editor, " came home", gap_s=0.01)
        editor.keys("BSpace", "BSpace")  # delete while answers are on their way
        type_slowly(editor, "me late")
        editor.keys("Left", "Left")  # move while a request is outstanding
        time.sleep(0.2)
        editor.keys("End")
        type_slowly(editor, " again")
        editor.keys("C-]")  # dismiss, then type on
        type_slowly(editor, " at night")
        editor.keys("Escape")  # normal mode: nothing may show
        time.sleep(0.2)
        editor.keys("a")
        type_slowly(editor, ".")
        # The last request is answered and its ghost text drawn: the check saw real ghosts.
        state = editor.wait_for(lambda s: ghost_shown(s) and not s["inflight"], "the last answer")
        time.sleep(0.3)  # late messages for older requests may still come: let them
        state = editor.read_state() or state
        line = state["lines"][2]
        assert line == DRAFT.split("\n")[2] + " and the boats came home late again at night."
        assert state["ghost"].startswith(f"~2:{len(line)}:{line[-12:]}~")
        monitor = state["extra"]
        assert monitor["violations"] in ([], {}), monitor["violations"][:3]
        assert monitor["checks"] > 0
        assert state["stats"]["stale"] > 0  # stale messages did reach the plugin, and were dropped
    finally:
        editor.close()
