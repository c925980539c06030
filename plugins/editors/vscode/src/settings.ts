// Settings and the values derived from them. No `vscode` import here: this logic is tested
// with plain node.

export interface ScribeSettings {
  enabled: boolean;
  command: string;
  model: string;
  languages: string[];
  /** A fixed debounce in ms; null lets the server adapt it (at most 150 ms). */
  debounceMs: number | null;
  maxTokens: number;
}

export const DEFAULTS: ScribeSettings = {
  enabled: true,
  command: 'scribe',
  model: '',
  languages: ['markdown', 'plaintext'],
  debounceMs: null,
  maxTokens: 32,
};

/** Reads `scribe.*` through `get` (WorkspaceConfiguration.get); bad values fall back to defaults. */
export function readSettings(get: (key: string) => unknown): ScribeSettings {
  const text = (key: keyof ScribeSettings): string => {
    const value = get(key);
    return typeof value === 'string' ? value.trim() : (DEFAULTS[key] as string);
  };
  const integer = <K extends 'debounceMs' | 'maxTokens'>(
    key: K,
    min: number,
    max: number,
  ): ScribeSettings[K] => {
    const value = get(key);
    return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max
      ? (value as ScribeSettings[K])
      : DEFAULTS[key];
  };
  const languages = get('languages');
  const enabled = get('enabled');
  return {
    enabled: typeof enabled === 'boolean' ? enabled : DEFAULTS.enabled,
    command: text('command') || DEFAULTS.command,
    model: text('model'),
    languages:
      Array.isArray(languages) && languages.every((l) => typeof l === 'string')
        ? languages
        : DEFAULTS.languages,
    debounceMs: integer('debounceMs', 0, 60_000),
    maxTokens: integer('maxTokens', 1, 512),
  };
}

/** How to start the server: `scribe lsp [--model M]`. */
export function serverCommand(settings: ScribeSettings): { command: string; args: string[] } {
  const args = ['lsp'];
  if (settings.model) {
    args.push('--model', settings.model);
  }
  return { command: settings.command, args };
}

/** Which documents get suggestions: the configured languages, in files and unsaved editors. */
export function documentSelector(settings: ScribeSettings): { language: string; scheme: string }[] {
  return settings.languages.flatMap((language) => [
    { language, scheme: 'file' },
    { language, scheme: 'untitled' },
  ]);
}

/** Sent with `initialize`; the server reads these names (no debounceMs: it adapts its own). */
export function initializationOptions(settings: ScribeSettings): {
  debounceMs?: number;
  maxTokens: number;
} {
  return settings.debounceMs === null
    ? { maxTokens: settings.maxTokens }
    : { debounceMs: settings.debounceMs, maxTokens: settings.maxTokens };
}

/** What `scribe/status` answers. */
export interface ServerStatus {
  model?: string;
  state?: string;
  requests?: number;
  served?: number;
  latency_ms?: { p50?: number | null; p95?: number | null };
  error?: string;
}

export type ClientState = 'off' | 'starting' | 'running' | 'failed';

/** The status bar item's text and tooltip. */
export function statusText(
  state: ClientState,
  status?: ServerStatus,
  error?: string,
): { text: string; tooltip: string } {
  if (state === 'off') {
    return { text: '$(circle-slash) scribe', tooltip: 'scribe: off (run "scribe: Toggle suggestions")' };
  }
  if (state === 'failed') {
    return { text: '$(error) scribe', tooltip: `scribe: ${error ?? 'the server failed'}` };
  }
  if (state === 'starting' || !status || status.state === 'loading') {
    return { text: '$(loading~spin) scribe', tooltip: 'scribe: loading the model' };
  }
  if (status.state === 'error') {
    return { text: '$(error) scribe', tooltip: `scribe: ${status.error ?? 'the model failed to load'}` };
  }
  const p50 = status.latency_ms?.p50;
  const p95 = status.latency_ms?.p95;
  const latency = typeof p50 === 'number' ? ` ${Math.round(p50)} ms` : '';
  const tooltip =
    `scribe: ${status.model ?? 'model'} ready; ${status.served ?? 0} of ` +
    `${status.requests ?? 0} requests served` +
    (typeof p50 === 'number' && typeof p95 === 'number'
      ? `; latency p50 ${Math.round(p50)} ms, p95 ${Math.round(p95)} ms`
      : '');
  return { text: `$(sparkle) scribe${latency}`, tooltip };
}
