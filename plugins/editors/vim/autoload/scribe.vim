" scribe: the editor-independent part. Talks to `scribe lsp` through a backend:
" autoload/scribe/vimjob.vim (Vim: job channel in lsp mode, text properties) or
" lua/scribe.lua (Neovim: its LSP client, extmarks).

let s:nvim = has('nvim')
" Number of the latest request; a response for any other is stale
let s:seq = 0
" The latest request: seq, bufnr, tick, lnum, col, id (LSP id)
let s:inflight = {}
" The suggestion on screen: bufnr, lnum, col, text, seq (the request it answers)
let s:ghost = {}
" b:changedtick right after a partial accept or typing into the suggestion (keep the rest)
let s:own_tick = -1
" The last request whose suggestion was shown (stats count each request once)
let s:shown_seq = -1
" Trigger kind to send once the server is ready (0: none)
let s:want = 0
" Server state: stopped, starting, ready or failed
let s:server = 'stopped'
let s:last_error = ''
let s:last_status = {}
let s:stats = {'requests': 0, 'responses': 0, 'shown': 0, 'stale': 0, 'errors': 0,
      \ 'partials': 0, 'prefills': 0}

" -- settings ---------------------------------------------------------------------------------
function! scribe#enabled_here() abort
  if !g:scribe_enabled || &buftype !=# ''
    return 0
  endif
  return get(g:scribe_filetypes, scribe#filetype(), get(g:scribe_filetypes, '*', 0)) ? 1 : 0
endfunction

" The buffer's filetype; with filetype detection off (a vimrc without `filetype on`, as in the
" README's lines) 'filetype' stays empty, so the file's extension names the prose ones.
let s:by_extension = {'md': 'markdown', 'markdown': 'markdown', 'mkd': 'markdown',
      \ 'txt': 'text', 'text': 'text'}
function! scribe#filetype(...) abort
  let bufnr = a:0 ? a:1 : bufnr('')
  let ft = getbufvar(bufnr, '&filetype')
  if !empty(ft)
    return ft
  endif
  return get(s:by_extension, tolower(fnamemodify(bufname(bufnr), ':e')), '')
endfunction

function! scribe#server_command() abort
  let cmd = type(g:scribe_command) == v:t_list ? copy(g:scribe_command) : [g:scribe_command]
  call add(cmd, 'lsp')
  if !empty(g:scribe_model)
    call extend(cmd, ['--model', expand(g:scribe_model)])
  endif
  return cmd
endfunction

" debounceMs only when set: the server adapts its debounce otherwise.
function! s:init_options() abort
  let options = {'maxTokens': g:scribe_max_tokens, 'partialCompletions': v:true}
  if type(get(g:, 'scribe_debounce_ms', v:null)) == v:t_number
    let options.debounceMs = g:scribe_debounce_ms
  endif
  return options
endfunction

" -- server life cycle ------------------------------------------------------------------------
function! s:ensure_server() abort
  if s:server ==# 'ready' || s:server ==# 'starting'
    return s:server ==# 'ready'
  endif
  if s:server ==# 'failed'
    return 0
  endif
  let s:server = 'starting'
  try
    if s:nvim
      call luaeval('require("scribe").start(_A[1], _A[2])', [scribe#server_command(), s:init_options()])
      " Attached now, the buffer is opened on the server once it is up; then on_ready runs.
      call luaeval('require("scribe").attach(_A)', bufnr(''))
    else
      call scribe#vimjob#start(scribe#server_command(), s:init_options())
    endif
  catch
    call scribe#on_server_failed(v:exception)
  endtry
  return 0
endfunction

" Called by a backend once the server answered `initialize` (Neovim: once a buffer is attached).
function! scribe#on_ready() abort
  let s:server = 'ready'
  let insert = mode() =~# '^[iR]'
  if s:want && insert && scribe#enabled_here()
    call s:request(s:want == 1)
  elseif scribe#enabled_here()
    " The server prefills an opened document up to its end; in insert mode, up to the cursor.
    call call(insert ? 's:prefill' : 's:open', [bufnr('')])
  endif
  let s:want = 0
endfunction

" A buffer of an enabled filetype opened (or was entered): start the server now, so that the
" model is loaded, and the text read, before the first keystroke.
function! scribe#on_buffer(bufnr) abort
  if a:bufnr != bufnr('') || !scribe#enabled_here()
    return
  endif
  if s:ensure_server()
    call s:open(a:bufnr)
  endif
endfunction

" Entering insert mode: the server reads the text up to the cursor while nothing else runs.
function! scribe#on_insert_enter() abort
  if s:server ==# 'ready' && scribe#enabled_here()
    call s:prefill(bufnr(''))
  endif
endfunction

" Open the buffer on the server (which prefills the model's cache up to its end).
function! s:open(bufnr) abort
  if s:nvim
    call luaeval('require("scribe").attach(_A)', a:bufnr)
  else
    call scribe#vimjob#open(a:bufnr)
  endif
endfunction

" Send the buffer and ask the server to prefill the model's cache up to the cursor.
function! s:prefill(bufnr) abort
  let position = {'line': line('.') - 1, 'character': col('.') - 1}
  let s:stats.prefills += 1
  if s:nvim
    call luaeval('require("scribe").prefill(_A[1], _A[2])', [a:bufnr, position])
  else
    call scribe#vimjob#prefill(a:bufnr, position)
  endif
endfunction

function! scribe#on_server_failed(message) abort
  let s:server = 'failed'
  let s:last_error = a:message
  let s:inflight = {}
  echohl ErrorMsg | echomsg 'scribe: ' . a:message | echohl None
endfunction

function! scribe#on_server_exit(code) abort
  if s:server !=# 'stopped' && a:code != 0
    let s:last_error = 'the server exited with code ' . a:code . '; see :ScribeStatus'
  endif
  let s:server = a:code == 0 ? 'stopped' : 'failed'
  let s:inflight = {}
  call s:clear()
endfunction

function! scribe#stop() abort
  if s:server ==# 'ready' || s:server ==# 'starting'
    if s:nvim
      lua require("scribe").stop()
    else
      call scribe#vimjob#stop()
    endif
  endif
  let s:server = 'stopped'
endfunction

function! scribe#restart() abort
  call scribe#stop()
  let s:server = 'stopped'
  let s:last_error = ''
  call s:ensure_server()
endfunction

" -- requests ---------------------------------------------------------------------------------
function! scribe#on_text_changed() abort
  if b:changedtick == s:own_tick
    " Our own partial accept, or typing the suggestion: the rest of it stays
    return
  endif
  if s:typed_through()
    return
  endif
  call s:clear()
  if g:scribe_auto_trigger && scribe#enabled_here()
    call s:request(1)
  endif
endfunction

function! scribe#on_cursor_moved() abort
  if !empty(s:ghost) && [bufnr(''), line('.'), col('.')] != [s:ghost.bufnr, s:ghost.lnum, s:ghost.col]
        \ && !s:typed_through()
    call s:clear()
  endif
endfunction

" The user typed the suggestion's own next characters: show the rest after them, with no new
" request. (Vim runs CursorMovedI before TextChangedI, so either event may see it first.)
function! s:typed_through() abort
  if empty(s:ghost) || s:ghost.bufnr != bufnr('') || s:ghost.lnum != line('.')
        \ || col('.') <= s:ghost.col
    return 0
  endif
  let typed = strpart(getline('.'), s:ghost.col - 1, col('.') - s:ghost.col)
  if len(typed) >= len(s:ghost.text) || strpart(s:ghost.text, 0, len(typed)) !=# typed
    return 0
  endif
  call s:show(bufnr(''), line('.'), col('.'), strpart(s:ghost.text, len(typed)), s:ghost.seq)
  let s:own_tick = b:changedtick
  return 1
endfunction

" Manual trigger: no debounce on the server, works in any filetype while enabled.
function! scribe#suggest() abort
  if g:scribe_enabled
    call s:request(0)
  endif
endfunction

function! s:request(automatic) abort
  call s:clear()
  if !s:ensure_server()
    let s:want = a:automatic ? 1 : 2
    return
  endif
  if !empty(s:inflight) && get(s:inflight, 'id', -1) >= 0
    call s:cancel(s:inflight.id)
  endif
  let s:seq += 1
  let ctx = {'seq': s:seq, 'bufnr': bufnr(''), 'tick': b:changedtick, 'lnum': line('.'),
        \ 'col': col('.')}
  let params = {
        \ 'textDocument': {'uri': ''},
        \ 'position': {'line': ctx.lnum - 1, 'character': ctx.col - 1},
        \ 'context': {'triggerKind': a:automatic ? 2 : 1},
        \ }
  let s:stats.requests += 1
  if s:nvim
    let ctx.id = luaeval('require("scribe").request(_A[1], _A[2], _A[3])',
          \ [ctx.bufnr, params, ctx.seq])
  else
    let ctx.id = scribe#vimjob#request(ctx.bufnr, params, ctx.seq)
  endif
  " Not attached yet (Neovim while starting): ask again once ready
  if ctx.id < 0
    let s:want = a:automatic ? 1 : 2
    return
  endif
  let s:inflight = ctx
endfunction

function! s:cancel(id) abort
  if s:nvim
    call luaeval('require("scribe").cancel(_A)', a:id)
  else
    call scribe#vimjob#cancel(a:id)
  endif
endfunction

" What of `text`, a suggestion for request `ctx`, to show at the cursor now; -1 when it is
" stale. It is fresh while the buffer, text and cursor are as they were when we asked, or
" when all the user did since was type (or accept) the start of this same suggestion.
function! s:remainder(ctx, text) abort
  if empty(a:ctx) || mode() !~# '^[iR]' || bufnr('') != a:ctx.bufnr || line('.') != a:ctx.lnum
    return -1
  endif
  if b:changedtick == a:ctx.tick && col('.') == a:ctx.col
    return a:text
  endif
  if empty(s:ghost) || s:ghost.seq != a:ctx.seq || b:changedtick != s:own_tick
        \ || col('.') <= a:ctx.col
    return -1
  endif
  let typed = strpart(getline('.'), a:ctx.col - 1, col('.') - a:ctx.col)
  return strpart(a:text, 0, len(typed)) ==# typed ? strpart(a:text, len(typed)) : -1
endfunction

" A backend hands every completion response here: `result` is the LSP result, or
" {'error': {...}} for an error response.
function! scribe#on_response(seq, result) abort
  let s:stats.responses += 1
  if a:seq != s:seq
    let s:stats.stale += 1
    return
  endif
  let ctx = s:inflight
  let s:inflight = {}
  if type(a:result) == v:t_dict && has_key(a:result, 'error')
    let error = a:result.error
    " Not 'request cancelled'
    if type(error) == v:t_dict && get(error, 'code', 0) != -32800
      let s:stats.errors += 1
      let s:last_error = get(error, 'message', string(error))
    endif
    return
  endif
  let items = type(a:result) == v:t_dict ? get(a:result, 'items', []) : a:result
  let text = ''
  if type(items) == v:t_list && !empty(items) && type(items[0]) == v:t_dict
    let text = get(items[0], 'insertText', '')
    " A snippet StringValue: show its text
    if type(text) == v:t_dict
      let text = get(text, 'value', '')
    endif
  endif
  let rest = s:remainder(ctx, type(text) == v:t_string ? text : '')
  if type(rest) != v:t_string
    " The text or the cursor moved on since we asked
    let s:stats.stale += 1
  elseif !empty(rest)
    call s:show(bufnr(''), line('.'), col('.'), rest, ctx.seq)
  elseif !empty(s:ghost) && s:ghost.seq == ctx.seq
    " The whole suggestion is less than its first words said (or was typed already)
    call s:clear()
  endif
endfunction

" A backend hands the server's scribe/partialCompletion notifications here: the first whole
" words of the suggestion for LSP request `id`, while it is being generated.
function! scribe#on_partial(id, text) abort
  let ctx = s:inflight
  if empty(ctx) || get(ctx, 'id', -1) != a:id || type(a:text) != v:t_string
    let s:stats.stale += 1
    return
  endif
  let rest = s:remainder(ctx, a:text)
  if type(rest) != v:t_string
    let s:stats.stale += 1
  elseif !empty(rest)
    let s:stats.partials += 1
    call s:show(bufnr(''), line('.'), col('.'), rest, ctx.seq)
  endif
endfunction

" -- ghost text -------------------------------------------------------------------------------
function! s:show(bufnr, lnum, col, text, seq) abort
  call s:clear()
  let s:ghost = {'bufnr': a:bufnr, 'lnum': a:lnum, 'col': a:col, 'text': a:text, 'seq': a:seq}
  if a:seq != s:shown_seq
    let s:shown_seq = a:seq
    let s:stats.shown += 1
  endif
  let lines = split(a:text, "\n", 1)
  if s:nvim
    call luaeval('require("scribe").show(_A[1], _A[2], _A[3], _A[4])',
          \ [a:bufnr, a:lnum - 1, a:col - 1, lines])
  else
    call scribe#vimjob#show(a:bufnr, a:lnum, a:col, lines)
  endif
endfunction

function! s:clear() abort
  if empty(s:ghost)
    return
  endif
  let bufnr = s:ghost.bufnr
  let s:ghost = {}
  if !bufexists(bufnr)
    return
  endif
  if s:nvim
    call luaeval('require("scribe").clear(_A)', bufnr)
  else
    call scribe#vimjob#clear(bufnr)
  endif
endfunction

function! scribe#has_suggestion() abort
  return !empty(s:ghost) && s:ghost.bufnr == bufnr('') && s:ghost.lnum == line('.')
        \ && s:ghost.col == col('.')
endfunction

" For the default keys: run `what` when a suggestion shows, else type the key's usual self.
function! scribe#key(what, fallback) abort
  if !scribe#has_suggestion() || pumvisible()
    return a:fallback
  endif
  if a:what ==# 'dismiss'
    return "\<Cmd>call scribe#dismiss()\<CR>"
  endif
  return "\<Cmd>call scribe#accept(" . string(a:what) . ")\<CR>"
endfunction

function! scribe#dismiss() abort
  call s:clear()
  if !empty(s:inflight) && get(s:inflight, 'id', -1) >= 0
    call s:cancel(s:inflight.id)
  endif
  let s:inflight = {}
  " Anything still on its way is now stale
  let s:seq += 1
endfunction

" Insert all of the suggestion, its next word, or its next line; the rest stays on screen.
function! scribe#accept(what) abort
  if !scribe#has_suggestion()
    return
  endif
  let text = s:ghost.text
  let part = text
  if a:what ==# 'word'
    let part = matchstr(text, '^\_s*\k\+')
    let part = empty(part) ? matchstr(text, '^\_s*\S') : part
  elseif a:what ==# 'line'
    let content = match(text, '\S')
    let newline = content < 0 ? -1 : stridx(text, "\n", content)
    let part = newline < 0 ? text : strpart(text, 0, newline)
  endif
  let part = empty(part) ? text : part
  let rest = strpart(text, len(part))
  let seq = s:ghost.seq
  call s:clear()
  call s:insert(part)
  if !empty(rest)
    let s:own_tick = b:changedtick
    call s:show(bufnr(''), line('.'), col('.'), rest, seq)
  endif
endfunction

function! s:insert(text) abort
  let lnum = line('.')
  let col = col('.')
  let line = getline(lnum)
  let before = strpart(line, 0, col - 1)
  let after = strpart(line, col - 1)
  let lines = split(a:text, "\n", 1)
  if len(lines) == 1
    call setline(lnum, before . lines[0] . after)
    call cursor(lnum, col + len(lines[0]))
  else
    call setline(lnum, before . lines[0])
    call append(lnum, lines[1:-2] + [lines[-1] . after])
    call cursor(lnum + len(lines) - 1, len(lines[-1]) + 1)
  endif
endfunction

" -- commands ---------------------------------------------------------------------------------
function! scribe#set_enabled(on) abort
  let g:scribe_enabled = a:on
  if !a:on
    call scribe#dismiss()
  endif
  echomsg 'scribe: ' . (a:on ? 'on' : 'off')
endfunction

function! scribe#toggle() abort
  call scribe#set_enabled(!g:scribe_enabled)
endfunction

function! scribe#status() abort
  let here = scribe#enabled_here() ? 'on for ' : 'off for '
  let ft = empty(scribe#filetype()) ? '(no filetype)' : scribe#filetype()
  let line = 'scribe: ' . (g:scribe_enabled ? here . ft : 'disabled') . '; server ' . s:server
  if !empty(s:last_error)
    let line .= '; last error: ' . s:last_error
  endif
  echomsg line
  if s:server ==# 'ready'
    if s:nvim
      lua require("scribe").status()
    else
      call scribe#vimjob#status()
    endif
  endif
endfunction

" Backends hand the `scribe/status` result here.
function! scribe#on_status(result) abort
  if type(a:result) != v:t_dict || has_key(a:result, 'error')
    return
  endif
  let s:last_status = a:result
  let latency = get(a:result, 'latency_ms', {})
  echomsg printf('scribe: model %s (%s), %d requests, %d served, latency p50 %s ms, p95 %s ms',
        \ get(a:result, 'model', '?'), get(a:result, 'state', '?'), get(a:result, 'requests', 0),
        \ get(a:result, 'served', 0), s:number(get(latency, 'p50', v:null)),
        \ s:number(get(latency, 'p95', v:null)))
endfunction

function! s:number(value) abort
  return type(a:value) == v:t_number || type(a:value) == v:t_float ? string(a:value) : '-'
endfunction

function! scribe#on_buf_unload(bufnr) abort
  if !empty(s:ghost) && s:ghost.bufnr == a:bufnr
    let s:ghost = {}
  endif
  if !s:nvim && s:server ==# 'ready'
    call scribe#vimjob#close(a:bufnr)
  endif
endfunction

" State for tests and bug reports.
function! scribe#debug() abort
  let pid = 0
  if s:server ==# 'ready' || s:server ==# 'starting'
    let pid = s:nvim ? luaeval('require("scribe").pid()') : scribe#vimjob#pid()
  endif
  return {'ghost': empty(s:ghost) ? '' : s:ghost.text, 'stats': copy(s:stats),
        \ 'enabled': g:scribe_enabled,
        \ 'inflight': !empty(s:inflight), 'server': s:server, 'pid': pid,
        \ 'last_error': s:last_error, 'last_status': s:last_status}
endfunction
