// The extension's pure logic: settings, the server command, the status bar text.

import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import {
  DEFAULTS,
  documentSelector,
  initializationOptions,
  readSettings,
  serverCommand,
  statusText,
} from '../settings';

test('defaults when nothing is set: Markdown and plain text on', () => {
  const settings = readSettings(() => undefined);
  assert.deepEqual(settings, DEFAULTS);
  assert.deepEqual(settings.languages, ['markdown', 'plaintext']);
});

test('bad values fall back to the defaults', () => {
  const values: Record<string, unknown> = {
    enabled: 'yes',
    command: 42,
    languages: ['markdown', 3],
    debounceMs: -5,
    maxTokens: 1.5,
  };
  assert.deepEqual(readSettings((key) => values[key]), DEFAULTS);
});

test('server command: scribe lsp, with --model only when a model is set', () => {
  assert.deepEqual(serverCommand(DEFAULTS), { command: 'scribe', args: ['lsp'] });
  const settings = readSettings((key) => ({ command: '/opt/scribe', model: 'gpt2' })[key]);
  assert.deepEqual(serverCommand(settings), {
    command: '/opt/scribe',
    args: ['lsp', '--model', 'gpt2'],
  });
});

test('document selector and initialization options follow the settings', () => {
  const settings = readSettings(
    (key) => ({ languages: ['python'], debounceMs: 0, maxTokens: 12 })[key],
  );
  assert.deepEqual(documentSelector(settings), [
    { language: 'python', scheme: 'file' },
    { language: 'python', scheme: 'untitled' },
  ]);
  assert.deepEqual(initializationOptions(settings), { debounceMs: 0, maxTokens: 12 });
});

test('by default the debounce is left to the server, which adapts it', () => {
  const settings = readSettings(() => undefined);
  assert.equal(settings.debounceMs, null);
  assert.deepEqual(initializationOptions(settings), { maxTokens: 32 });
  const fixed = readSettings((key) => ({ debounceMs: 150 })[key]);
  assert.deepEqual(initializationOptions(fixed), { debounceMs: 150, maxTokens: 32 });
});

test('status bar text for each state', () => {
  assert.match(statusText('off').text, /circle-slash/);
  assert.match(statusText('starting').text, /loading/);
  assert.match(statusText('running', { state: 'loading' }).tooltip, /loading the model/);
  const ready = statusText('running', {
    model: 'tiny',
    state: 'warm',
    requests: 5,
    served: 4,
    latency_ms: { p50: 41.7, p95: 88.2 },
  });
  assert.equal(ready.text, '$(sparkle) scribe 42 ms');
  assert.equal(ready.tooltip, 'scribe: tiny ready; 4 of 5 requests served; latency p50 42 ms, p95 88 ms');
  assert.match(statusText('failed', undefined, 'cannot start').tooltip, /cannot start/);
});
