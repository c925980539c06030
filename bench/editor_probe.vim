" The measuring probe of bench/editor_latency.py, sourced from the bench's vimrc / init.vim.
" It knows nothing of the plugin's internals: it watches what the plugin draws, the ghost-text
" extmarks (Neovim: namespace 'scribe') or text properties (Vim: type 'ScribeGhost'), at every
" redraw (Neovim: a decoration provider), after every handled message (Vim: SafeState and
" SafeStateAgain) and every 5 ms, and logs with a timestamp when ghost text appears and
" vanishes and when the text changes in insert mode, one JSON object per line to
" $SCRIBE_BENCH_LOG. $SCRIBE_BENCH_STATE gets scribe#debug() every 200 ms (server state, the
" figures :ScribeStatus fetched).

let s:log = $SCRIBE_BENCH_LOG
let s:state = $SCRIBE_BENCH_STATE
let s:shown = 0
let s:ticks = 0
let s:server = ''

if has('nvim')
  lua << EOF
  _G.scribe_probe = { events = {}, shown = false }
  local probe = _G.scribe_probe
  -- Times go out as strings: json_encode() writes a Float with 6 significant digits.
  local function now()
    local s, us = vim.loop.gettimeofday()
    return string.format('%d.%06d', s, us)
  end
  probe.now = now
  local function ghost(buf)
    local ns = vim.api.nvim_get_namespaces()['scribe']
    if not ns then
      return nil
    end
    local marks = vim.api.nvim_buf_get_extmarks(buf, ns, 0, -1, { details = true })
    if #marks == 0 then
      return nil
    end
    local chunks = marks[1][4].virt_text
    return chunks and chunks[1][1] or ''
  end
  function probe.check(source)
    local text = ghost(vim.api.nvim_get_current_buf())
    local shown = text ~= nil
    if shown ~= probe.shown then
      probe.shown = shown
      table.insert(probe.events, { e = shown and 'appear' or 'vanish', t = now(),
        text = text or '', src = source })
    end
  end
  vim.api.nvim_set_decoration_provider(vim.api.nvim_create_namespace('scribe-bench-probe'), {
    on_win = function(_, win)
      if win == vim.api.nvim_get_current_win() then
        probe.check('redraw')
      end
      return false
    end,
  })
  function probe.take()
    local events = probe.events
    probe.events = {}
    return events
  end
EOF
endif

function! s:now() abort
  return has('nvim') ? luaeval('_G.scribe_probe.now()') : printf('%.6f', reltimefloat(reltime()))
endfunction

function! s:write(events) abort
  if !empty(a:events)
    call writefile(map(copy(a:events), 'json_encode(v:val)'), s:log, 'a')
  endif
endfunction

function! s:check(source) abort
  if has('nvim')
    call luaeval('_G.scribe_probe.check(_A)', a:source)
    return
  endif
  let shown = !empty(prop_type_get('ScribeGhost'))
        \ && !empty(prop_list(line('.'), {'types': ['ScribeGhost']}))
  if shown != s:shown
    let s:shown = shown
    " Vim 9.0 does not list a property's text: take the plugin's record of what it drew.
    let text = shown ? get(scribe#debug(), 'ghost', '') : ''
    call s:write([{'e': shown ? 'appear' : 'vanish', 't': s:now(), 'text': text,
          \ 'src': a:source}])
  endif
endfunction

function! s:tick(timer) abort
  call s:check('timer')
  if has('nvim')
    call s:write(luaeval('_G.scribe_probe.take()'))
  endif
  let s:ticks += 1
  if s:ticks % 4 == 0
    " The plugin's server state (stopped, starting, ready), every 20 ms.
    let state = scribe#debug()
    if state.server !=# s:server
      let s:server = state.server
      call s:write([{'e': 'server', 't': s:now(), 'state': state.server}])
    endif
    if s:ticks % 40 == 0
      let state.t = s:now()
      call writefile([json_encode(state)], s:state . '.tmp')
      call rename(s:state . '.tmp', s:state)
    endif
  endif
endfunction

function! s:changed() abort
  call s:check('change')
  let line = getline('.')
  call s:write([{'e': 'change', 't': s:now(), 'tick': b:changedtick, 'col': col('.'),
        \ 'shown': has('nvim') ? luaeval('_G.scribe_probe.shown') : s:shown,
        \ 'tail': strpart(line, max([0, col('.') - 21]), 20)}])
endfunction

augroup scribe_bench_probe
  autocmd!
  autocmd TextChangedI * call s:changed()
  if !has('nvim')
    autocmd SafeState,SafeStateAgain * call s:check('safestate')
  endif
augroup END

" The clock: gettimeofday in Neovim; Vim's reltime() is gettimeofday or CLOCK_MONOTONIC,
" depending on its build (the bench tells them apart by size).
call s:write([{'e': 'start', 't': s:now(), 'wall': localtime()}])
call timer_start(5, function('s:tick'), {'repeat': -1})
