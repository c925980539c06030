// The extension's wiring, with the `vscode` module stubbed and a fake language client.

import { fakeContext, vscodeStub } from './vscodeStub';

import { strict as assert } from 'node:assert';
import { beforeEach, test } from 'node:test';

import { activate, ClientOptions, ScribeClient } from '../extension';

class FakeClient implements ScribeClient {
  started = 0;
  stopped = 0;
  requests: string[] = [];
  constructor(
    readonly server: { command: string; args: string[] },
    readonly options: ClientOptions,
  ) {}
  async start(): Promise<void> {
    this.started += 1;
  }
  async stop(): Promise<void> {
    this.stopped += 1;
  }
  async sendRequest<R>(method: string): Promise<R> {
    this.requests.push(method);
    const status = { model: 'tiny', state: 'warm', requests: 2, served: 2, latency_ms: { p50: 30, p95: 60 } };
    return status as R;
  }
}

let clients: FakeClient[] = [];
const factory = (server: { command: string; args: string[] }, options: ClientOptions) => {
  const client = new FakeClient(server, options);
  clients.push(client);
  return client;
};

beforeEach(() => {
  clients = [];
  vscodeStub.reset({ model: '/models/tiny', debounceMs: 40, maxTokens: 8 });
});

test('activate starts `scribe lsp` for Markdown and text, with the settings', async () => {
  const ext = await activate(fakeContext() as never, factory);
  assert.equal(clients.length, 1);
  const [client] = clients;
  assert.equal(client.started, 1);
  assert.deepEqual(client.server, { command: 'scribe', args: ['lsp', '--model', '/models/tiny'] });
  assert.deepEqual(
    client.options.documentSelector.map((s) => s.language),
    ['markdown', 'markdown', 'plaintext', 'plaintext'],
  );
  assert.deepEqual(client.options.initializationOptions, { debounceMs: 40, maxTokens: 8 });
  assert.equal(ext.state, 'running');
  assert.deepEqual([...vscodeStub.commands.keys()].sort(), [
    'scribe.restart',
    'scribe.status',
    'scribe.toggle',
  ]);
  const [item] = vscodeStub.items;
  assert.ok(item.visible);
  assert.equal(item.command, 'scribe.status');
  assert.equal(item.text, '$(sparkle) scribe 30 ms');
  await ext.stop();
});

test('the status command asks the server and shows its figures', async () => {
  const ext = await activate(fakeContext() as never, factory);
  await vscodeStub.run('scribe.status');
  assert.ok(clients[0].requests.includes('scribe/status'));
  assert.deepEqual(vscodeStub.messages, [
    'scribe: tiny ready; 2 of 2 requests served; latency p50 30 ms, p95 60 ms',
  ]);
  await ext.stop();
});

test('toggle stops the server and turns the completions off, then back on', async () => {
  const ext = await activate(fakeContext() as never, factory);
  await vscodeStub.run('scribe.toggle');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(vscodeStub.settings.enabled, false);
  assert.equal(clients[0].stopped, 1);
  assert.equal(ext.state, 'off');
  assert.match(vscodeStub.items[0].text, /circle-slash/);
  const next = async () => ['should not be asked'];
  const middleware = clients[0].options.middleware;
  assert.equal(await middleware.provideInlineCompletionItems({}, {}, {}, {}, next), null);

  await vscodeStub.run('scribe.toggle');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(clients.length, 2);
  assert.equal(ext.state, 'running');
  await ext.stop();
});

test('a server that cannot start is reported, not thrown', async () => {
  const failing = (server: { command: string; args: string[] }, options: ClientOptions) => {
    const client = factory(server, options);
    client.start = async () => {
      throw new Error('spawn scribe ENOENT');
    };
    return client;
  };
  const ext = await activate(fakeContext() as never, failing);
  assert.equal(ext.state, 'failed');
  assert.match(vscodeStub.items[0].tooltip, /ENOENT.*scribe\.command/);
});
