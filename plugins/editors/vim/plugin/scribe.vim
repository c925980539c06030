" scribe: ghost-text completion from a local model, for Vim >= 9.0.0185 and Neovim >= 0.7.
" Settings, commands, autocommands and keys; the work is in autoload/scribe.vim.
" See :help scribe.

if exists('g:loaded_scribe')
  finish
endif
if has('nvim')
  if !has('nvim-0.7')
    echohl WarningMsg | echomsg 'scribe: needs Neovim 0.7 or later' | echohl None
    finish
  endif
elseif v:version < 900 || !has('patch-9.0.0185') || !has('textprop') || !has('job')
  echohl WarningMsg
  echomsg 'scribe: needs Vim 9.0.0185 or later with +job and +textprop'
  echohl None
  finish
endif
let g:loaded_scribe = 1

" Settings (set them in your vimrc before this file loads, or any time after).
let g:scribe_enabled = get(g:, 'scribe_enabled', 1)
let g:scribe_model = get(g:, 'scribe_model', '')
let g:scribe_command = get(g:, 'scribe_command', ['scribe'])
" g:scribe_debounce_ms (unset by default): a fixed wait in ms before automatic suggestions;
" unset, the server adapts it to how long its suggestions take (at most 150 ms).
let g:scribe_max_tokens = get(g:, 'scribe_max_tokens', 32)
let g:scribe_auto_trigger = get(g:, 'scribe_auto_trigger', 1)
" Filetypes: yours are merged over these defaults; '*' stands for every other filetype.
let g:scribe_filetypes = extend({'markdown': 1, 'text': 1, '*': 0}, get(g:, 'scribe_filetypes', {}))

highlight default link ScribeGhost Comment

command! -bar ScribeToggle call scribe#toggle()
command! -bar ScribeEnable call scribe#set_enabled(1)
command! -bar ScribeDisable call scribe#set_enabled(0)
command! -bar ScribeStatus call scribe#status()
command! -bar ScribeSuggest call scribe#suggest()
command! -bar ScribeRestart call scribe#restart()

augroup scribe
  autocmd!
  " The server starts when a buffer of an enabled filetype opens, not at the first keystroke.
  autocmd FileType,BufEnter * call scribe#on_buffer(str2nr(expand('<abuf>')))
  autocmd InsertEnter * call scribe#on_insert_enter()
  autocmd TextChangedI * call scribe#on_text_changed()
  autocmd CursorMovedI * call scribe#on_cursor_moved()
  autocmd InsertLeave,BufLeave * call scribe#dismiss()
  autocmd BufUnload * call scribe#on_buf_unload(str2nr(expand('<abuf>')))
  autocmd VimLeavePre * call scribe#stop()
augroup END

" <Plug> mappings: map your own keys to these.
inoremap <silent> <Plug>(scribe-accept) <Cmd>call scribe#accept('all')<CR>
inoremap <silent> <Plug>(scribe-accept-word) <Cmd>call scribe#accept('word')<CR>
inoremap <silent> <Plug>(scribe-accept-line) <Cmd>call scribe#accept('line')<CR>
inoremap <silent> <Plug>(scribe-dismiss) <Cmd>call scribe#dismiss()<CR>
inoremap <silent> <Plug>(scribe-suggest) <Cmd>call scribe#suggest()<CR>

" Default keys. Each falls back to what the key normally does when no suggestion shows, so
" <Tab> still inserts a tab. Change one with g:scribe_keys = {'accept': '<C-J>'}; '' unmaps it.
" A key you already mapped in insert mode is left alone.
let s:default_keys = {
      \ 'accept': '<Tab>',
      \ 'accept_word': '<C-Right>',
      \ 'accept_line': '<S-Tab>',
      \ 'dismiss': '<C-]>',
      \ 'suggest': '<M-\>',
      \ }
let s:keys = extend(copy(s:default_keys), get(g:, 'scribe_keys', {}))
for [s:action, s:key] in items(s:keys)
  if empty(s:key) || !empty(maparg(s:key, 'i'))
    continue
  endif
  if s:action ==# 'suggest'
    execute 'imap <silent> ' . s:key . ' <Plug>(scribe-suggest)'
  else
    let s:what = s:action ==# 'dismiss' ? 'dismiss' : substitute(s:action, '^accept_\?', '', '')
    let s:what = empty(s:what) ? 'all' : s:what
    " "\<lt>Tab>" in a mapping becomes the expression "\<Tab>": the key itself, at run time.
    let s:fallback = s:key =~# '^<.*>$' ? '"\<lt>' . s:key[1:] . '"' : string(s:key)
    execute printf('inoremap <silent><expr> %s scribe#key(%s, %s)',
          \ s:key, string(s:what), s:fallback)
  endif
endfor
unlet! s:action s:key s:what s:fallback
