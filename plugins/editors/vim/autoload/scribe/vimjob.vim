" scribe backend for Vim 9: `scribe lsp` as a job whose channel speaks LSP ("lsp" mode,
" Vim >= 9.0.0185), document sync done here (full text), ghost text as text properties.

let s:job = v:null
let s:ready = 0
" Bufnr -> {'uri', 'version', 'tick'}
let s:opened = {}
" The server's last stderr lines, for :ScribeStatus
let s:stderr = []

function! scribe#vimjob#start(cmd, init_options) abort
  if s:job isnot v:null && job_status(s:job) ==# 'run'
    return
  endif
  let s:ready = 0
  let s:opened = {}
  let s:stderr = []
  let s:job = job_start(a:cmd, {
        \ 'in_mode': 'lsp', 'out_mode': 'lsp', 'err_mode': 'nl',
        \ 'out_cb': function('s:on_message'), 'err_cb': function('s:on_stderr'),
        \ 'exit_cb': function('s:on_exit'), 'stoponexit': 'term', 'noblock': 1,
        \ })
  if job_status(s:job) !=# 'run'
    throw 'cannot start ' . join(a:cmd) . '; set g:scribe_command (see :help scribe-install)'
  endif
  let params = {
        \ 'processId': getpid(),
        \ 'clientInfo': {'name': 'vim', 'version': string(v:version)},
        \ 'rootUri': v:null,
        \ 'capabilities': {'general': {'positionEncodings': ['utf-8']},
        \                  'textDocument': {'inlineCompletion': {}}},
        \ 'initializationOptions': a:init_options,
        \ }
  call ch_sendexpr(s:job, {'method': 'initialize', 'params': params},
        \ {'callback': function('s:on_initialized')})
endfunction

function! s:on_initialized(channel, reply) abort
  if has_key(a:reply, 'error') || !has_key(a:reply, 'result')
    call scribe#on_server_failed('initialize failed: ' . string(get(a:reply, 'error', a:reply)))
    return
  endif
  call ch_sendexpr(s:job, {'method': 'initialized', 'params': {}})
  let s:ready = 1
  call scribe#on_ready()
endfunction

" Server-to-client messages: partial suggestions, log messages, requests such as
" workDoneProgress/create (answered with null).
function! s:on_message(channel, message) abort
  if type(a:message) != v:t_dict
    return
  endif
  if get(a:message, 'method', '') ==# 'scribe/partialCompletion'
    let params = get(a:message, 'params', {})
    if type(params) == v:t_dict
      call scribe#on_partial(get(params, 'id', -1), get(params, 'text', v:null))
    endif
  elseif has_key(a:message, 'id') && has_key(a:message, 'method')
    call ch_sendexpr(s:job, {'id': a:message.id, 'result': v:null})
  endif
endfunction

function! s:on_stderr(channel, line) abort
  call add(s:stderr, a:line)
  if len(s:stderr) > 20
    call remove(s:stderr, 0)
  endif
endfunction

function! s:on_exit(job, code) abort
  let s:ready = 0
  let s:job = v:null
  if a:code != 0 && !empty(s:stderr)
    call scribe#on_server_failed(s:stderr[-1])
  endif
  call scribe#on_server_exit(a:code)
endfunction

function! scribe#vimjob#stop() abort
  if s:job is v:null || job_status(s:job) !=# 'run'
    return
  endif
  let job = s:job
  let s:ready = 0
  " Polite first (shutdown, exit); the server also ends when its stdin closes with Vim.
  silent! call ch_evalexpr(job, {'method': 'shutdown'}, {'timeout': 300})
  silent! call ch_sendexpr(job, {'method': 'exit'})
  silent! call job_stop(job, 'term')
endfunction

function! scribe#vimjob#pid() abort
  return s:job is v:null ? 0 : job_info(s:job).process
endfunction

" -- documents ----------------------------------------------------------------------------------
function! s:uri(bufnr) abort
  let name = bufname(a:bufnr)
  if empty(name)
    return 'untitled:scribe-' . a:bufnr
  endif
  let path = fnamemodify(name, ':p')
  return 'file://' . substitute(path, '[^A-Za-z0-9/._~-]',
        \ '\=printf("%%%02X", char2nr(submatch(0)))', 'g')
endfunction

function! s:sync(bufnr) abort
  let tick = getbufvar(a:bufnr, 'changedtick')
  let doc = get(s:opened, a:bufnr, {})
  if !empty(doc) && doc.tick == tick
    return doc
  endif
  let text = join(getbufline(a:bufnr, 1, '$'), "\n") . "\n"
  if empty(doc)
    let doc = {'uri': s:uri(a:bufnr), 'version': 1, 'tick': tick}
    let s:opened[a:bufnr] = doc
    let language = scribe#filetype(a:bufnr)
    call ch_sendexpr(s:job, {'method': 'textDocument/didOpen', 'params': {'textDocument': {
          \ 'uri': doc.uri, 'languageId': empty(language) ? 'text' : language,
          \ 'version': 1, 'text': text}}})
  else
    let doc.version += 1
    let doc.tick = tick
    call ch_sendexpr(s:job, {'method': 'textDocument/didChange', 'params': {
          \ 'textDocument': {'uri': doc.uri, 'version': doc.version},
          \ 'contentChanges': [{'text': text}]}})
  endif
  return doc
endfunction

" Send the buffer: didOpen the first time, didChange when it changed since.
function! scribe#vimjob#open(bufnr) abort
  if s:ready
    call s:sync(a:bufnr)
  endif
endfunction

" Send the buffer, then ask for its prefill at `position`.
function! scribe#vimjob#prefill(bufnr, position) abort
  if !s:ready
    return
  endif
  let uri = s:sync(a:bufnr).uri
  call ch_sendexpr(s:job, {'method': 'scribe/prefill',
        \ 'params': {'textDocument': {'uri': uri}, 'position': a:position}})
endfunction

function! scribe#vimjob#close(bufnr) abort
  if has_key(s:opened, a:bufnr) && s:ready
    call ch_sendexpr(s:job, {'method': 'textDocument/didClose',
          \ 'params': {'textDocument': {'uri': s:opened[a:bufnr].uri}}})
    call remove(s:opened, a:bufnr)
  endif
endfunction

" -- requests -----------------------------------------------------------------------------------
" Returns the LSP request id, or -1 when the server is not ready.
function! scribe#vimjob#request(bufnr, params, seq) abort
  if !s:ready
    return -1
  endif
  let params = deepcopy(a:params)
  let params.textDocument.uri = s:sync(a:bufnr).uri
  let reply = ch_sendexpr(s:job, {'method': 'textDocument/inlineCompletion', 'params': params},
        \ {'callback': function('s:on_completion', [a:seq])})
  return get(reply, 'id', -1)
endfunction

function! s:on_completion(seq, channel, reply) abort
  if has_key(a:reply, 'error')
    call scribe#on_response(a:seq, {'error': a:reply.error})
  else
    call scribe#on_response(a:seq, get(a:reply, 'result', v:null))
  endif
endfunction

function! scribe#vimjob#cancel(id) abort
  if s:ready
    call ch_sendexpr(s:job, {'method': '$/cancelRequest', 'params': {'id': a:id}})
  endif
endfunction

function! scribe#vimjob#status() abort
  call ch_sendexpr(s:job, {'method': 'scribe/status', 'params': {}},
        \ {'callback': {channel, reply -> scribe#on_status(get(reply, 'result', reply))}})
endfunction

" -- ghost text ---------------------------------------------------------------------------------
" The first line is virtual text at the cursor; further lines are virtual lines below it.
function! scribe#vimjob#show(bufnr, lnum, col, lines) abort
  if empty(prop_type_get('ScribeGhost'))
    call prop_type_add('ScribeGhost', {'highlight': 'ScribeGhost'})
  endif
  if !empty(a:lines[0])
    call prop_add(a:lnum, a:col, {'type': 'ScribeGhost', 'text': a:lines[0], 'bufnr': a:bufnr})
  endif
  for line in a:lines[1:]
    call prop_add(a:lnum, 0, {'type': 'ScribeGhost', 'text': empty(line) ? ' ' : line,
          \ 'text_align': 'below', 'bufnr': a:bufnr})
  endfor
endfunction

function! scribe#vimjob#clear(bufnr) abort
  if !empty(prop_type_get('ScribeGhost'))
    call prop_remove({'type': 'ScribeGhost', 'bufnr': a:bufnr, 'all': 1})
  endif
endfunction
