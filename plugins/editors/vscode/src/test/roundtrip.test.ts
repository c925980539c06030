// A real round trip: the extension (with `vscode` stubbed) starts the real `scribe lsp` from its
// settings and talks LSP over stdio with vscode-jsonrpc (the transport vscode-languageclient
// uses). The pytest suite runs this with SCRIBE_TEST_COMMAND and SCRIBE_TEST_MODEL set.

import { fakeContext, vscodeStub } from './vscodeStub';

import { ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import * as rpc from 'vscode-jsonrpc/node';

import { activate, ClientOptions, ScribeClient } from '../extension';

const COMMAND = process.env.SCRIBE_TEST_COMMAND;
const MODEL = process.env.SCRIBE_TEST_MODEL;
const WAIT_MS = 180_000;
const PROMPT = 'It was a bright cold day in April, and the';

/** What LanguageClient does over stdio, without VS Code around it. */
class StdioClient implements ScribeClient {
  proc?: ChildProcess;
  connection?: rpc.MessageConnection;
  initializeResult?: { capabilities: Record<string, unknown> };
  exitCode?: number | null;

  constructor(
    readonly server: { command: string; args: string[] },
    readonly options: ClientOptions,
  ) {}

  async start(): Promise<void> {
    const proc = spawn(this.server.command, this.server.args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc = proc;
    proc.on('exit', (code) => {
      this.exitCode = code;
    });
    this.connection = rpc.createMessageConnection(
      new rpc.StreamMessageReader(proc.stdout!),
      new rpc.StreamMessageWriter(proc.stdin!),
    );
    this.connection.listen();
    this.initializeResult = await this.connection.sendRequest('initialize', {
      processId: process.pid,
      rootUri: null,
      capabilities: {},
      initializationOptions: this.options.initializationOptions,
    });
    await this.connection.sendNotification('initialized', {});
  }

  async sendRequest<R>(method: string, params?: unknown): Promise<R> {
    return this.connection!.sendRequest(method, params ?? {}) as Promise<R>;
  }

  async stop(): Promise<void> {
    const exited = this.exitCode === undefined ? once(this.proc!, 'exit') : Promise.resolve();
    await this.connection!.sendRequest('shutdown');
    await this.connection!.sendNotification('exit');
    await exited;
    this.connection!.dispose();
  }
}

const skip = COMMAND && MODEL ? false : 'set SCRIBE_TEST_COMMAND and SCRIBE_TEST_MODEL (pytest does)';

test('the extension gets inline completions from the real scribe lsp', { skip, timeout: WAIT_MS }, async () => {
  vscodeStub.reset({ command: COMMAND, model: MODEL, debounceMs: 0, maxTokens: 8 });
  const clients: StdioClient[] = [];
  const ext = await activate(fakeContext() as never, (server, options) => {
    const client = new StdioClient(server, options);
    clients.push(client);
    return client;
  });
  const [client] = clients;
  assert.deepEqual(client.server.args, ['lsp', '--model', MODEL]);
  assert.ok(client.initializeResult?.capabilities.inlineCompletionProvider);

  const deadline = Date.now() + WAIT_MS;
  while (ext.lastStatus?.state !== 'warm' && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    await ext.refreshStatus();
  }
  assert.equal(ext.lastStatus?.state, 'warm');

  const uri = 'file:///tmp/scribe-roundtrip.md';
  await client.connection!.sendNotification('textDocument/didOpen', {
    textDocument: { uri, languageId: 'markdown', version: 1, text: PROMPT },
  });
  const position = { line: 0, character: PROMPT.length };
  const next = (_doc: unknown, pos: unknown, context: unknown) =>
    client.sendRequest('textDocument/inlineCompletion', {
      textDocument: { uri },
      position: pos,
      context,
    });
  const middleware = client.options.middleware;
  const items = (await middleware.provideInlineCompletionItems(
    {},
    position,
    { triggerKind: 1 },
    {},
    next,
  )) as { insertText: string; range: { start: unknown } }[];
  assert.equal(items.length, 1);
  assert.ok(items[0].insertText.trim().length > 0);
  assert.deepEqual(items[0].range.start, position);

  await ext.refreshStatus();
  assert.equal(ext.lastStatus?.served, 1);
  assert.match(vscodeStub.items[0].text, /^\$\(sparkle\) scribe \d+ ms$/);

  await ext.stop();
  assert.equal(client.exitCode, 0);
});
