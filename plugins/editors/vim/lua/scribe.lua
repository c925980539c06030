-- scribe backend for Neovim >= 0.7: `scribe lsp` through Neovim's own LSP client (which syncs
-- the documents it is attached to), ghost text as extmarks. autoload/scribe.vim drives it.

local M = {}

local ns = vim.api.nvim_create_namespace('scribe')
local client_id = nil

local function client()
  return client_id and vim.lsp.get_client_by_id(client_id) or nil
end

function M.start(cmd, init_options)
  if client() then
    return
  end
  local capabilities = vim.lsp.protocol.make_client_capabilities()
  capabilities.general = capabilities.general or {}
  capabilities.general.positionEncodings = { 'utf-8' }
  -- Neovim 0.7 does not read the encoding the server picks, so ask for utf-8 on both sides:
  -- positions are then byte columns, as col('.') gives them.
  client_id = vim.lsp.start_client({
    name = 'scribe',
    cmd = cmd,
    root_dir = vim.fn.getcwd(),
    capabilities = capabilities,
    offset_encoding = 'utf-8',
    init_options = init_options,
    flags = { debounce_text_changes = 50 },
    handlers = {
      -- The first whole words of a suggestion, while it is being generated.
      ['scribe/partialCompletion'] = function(_, result)
        if type(result) == 'table' then
          vim.fn['scribe#on_partial'](result.id or -1, result.text or vim.NIL)
        end
      end,
    },
    on_attach = function()
      -- Scheduled: Neovim 0.7 marks the buffer attached only after this callback returns.
      vim.schedule(function()
        vim.fn['scribe#on_ready']()
      end)
    end,
    on_exit = function(code)
      vim.schedule(function()
        client_id = nil
        vim.fn['scribe#on_server_exit'](code)
      end)
    end,
  })
  if not client_id then
    error('cannot start ' .. table.concat(cmd, ' ') .. '; set g:scribe_command (see :help scribe-install)')
  end
end

function M.stop()
  local c = client()
  if c then
    c.stop()
  end
  client_id = nil
end

function M.pid()
  local c = client()
  return c and c.rpc and c.rpc.pid or 0
end

function M.attach(bufnr)
  if client_id then
    vim.lsp.buf_attach_client(bufnr, client_id)
  end
end

-- Ask the server to prefill the model's cache for `bufnr` up to `position`. A buffer not yet
-- attached is attached instead: its on_attach calls scribe#on_ready, which asks again.
function M.prefill(bufnr, position)
  local c = client()
  if not c then
    return
  end
  if not c.attached_buffers[bufnr] then
    vim.lsp.buf_attach_client(bufnr, client_id)
    return
  end
  if c.initialized then
    c.notify('scribe/prefill', { textDocument = { uri = vim.uri_from_bufnr(bufnr) }, position = position })
  end
end

-- Returns the LSP request id, or -1 while the server is not ready for this buffer yet
-- (autoload/scribe.vim asks again from on_attach).
function M.request(bufnr, params, seq)
  local c = client()
  if not c then
    return -1
  end
  vim.lsp.buf_attach_client(bufnr, client_id)
  if not c.initialized or not c.attached_buffers[bufnr] then
    return -1
  end
  params.textDocument.uri = vim.uri_from_bufnr(bufnr)
  local ok, id = c.request('textDocument/inlineCompletion', params, function(err, result)
    if err then
      vim.fn['scribe#on_response'](seq, { error = { code = err.code, message = err.message } })
    else
      vim.fn['scribe#on_response'](seq, result or {})
    end
  end, bufnr)
  return ok and id or -1
end

function M.cancel(id)
  local c = client()
  if c then
    c.cancel_request(id)
  end
end

function M.status()
  local c = client()
  if c then
    c.request('scribe/status', {}, function(err, result)
      vim.fn['scribe#on_status'](err and { error = err.message } or result)
    end)
  end
end

-- Buffers whose changes are watched: any change to the text clears the ghost text at once.
-- (Neovim may redraw between a keystroke and the TextChangedI that would clear it, and the
-- extmark moves with the text, so the old suggestion would show, shifted, for a moment.
-- autoload/scribe.vim shows the rest again when the user typed the suggestion's start.)
local watched = {}

local function watch(bufnr)
  if watched[bufnr] then
    return
  end
  watched[bufnr] = true
  vim.api.nvim_buf_attach(bufnr, false, {
    on_bytes = function()
      vim.api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
    end,
    on_detach = function()
      watched[bufnr] = nil
    end,
  })
end

-- The first line overlays the cursor position (with the rest of the buffer line after it, so
-- it reads as inserted: Neovim 0.7 has no inline virtual text); more lines go below.
function M.show(bufnr, row, col, lines)
  watch(bufnr)
  local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
  local virt_text = { { lines[1], 'ScribeGhost' } }
  if col < #line then
    table.insert(virt_text, { line:sub(col + 1), 'Normal' })
  end
  local opts = { virt_text = virt_text, virt_text_pos = 'overlay', hl_mode = 'combine' }
  if #lines > 1 then
    local virt_lines = {}
    for i = 2, #lines do
      table.insert(virt_lines, { { lines[i], 'ScribeGhost' } })
    end
    opts.virt_lines = virt_lines
  end
  vim.api.nvim_buf_set_extmark(bufnr, ns, row, col, opts)
end

function M.clear(bufnr)
  vim.api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
end

-- The ghost text as extmarks: {row, col, text} (for tests and bug reports).
function M.extmarks(bufnr)
  local marks = {}
  for _, mark in ipairs(vim.api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { details = true })) do
    local details = mark[4]
    local text = details.virt_text and details.virt_text[1][1] or ''
    table.insert(marks, { row = mark[2], col = mark[3], text = text,
      lines = details.virt_lines and #details.virt_lines or 0 })
  end
  return marks
end

return M
