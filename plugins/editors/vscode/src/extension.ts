// The scribe extension: starts `scribe lsp` through vscode-languageclient, whose inline
// completion feature turns the server's `textDocument/inlineCompletion` answers into VS Code's
// ghost text (Tab accepts, Ctrl+Right accepts a word: VS Code's own keys). Adds settings, a
// status bar item fed by the server's `scribe/status`, and toggle/status/restart commands.

import * as vscode from 'vscode';
import {
  ClientState,
  documentSelector,
  initializationOptions,
  readSettings,
  ScribeSettings,
  serverCommand,
  ServerStatus,
  statusText,
} from './settings';

/** The part of vscode-languageclient's LanguageClient this extension uses. */
export interface ScribeClient {
  start(): Promise<void>;
  stop(): Promise<void>;
  sendRequest<R>(method: string, params?: unknown): Promise<R>;
}

export interface ClientOptions {
  documentSelector: { language: string; scheme: string }[];
  initializationOptions: { debounceMs?: number; maxTokens: number };
  middleware: {
    provideInlineCompletionItems: (
      document: unknown,
      position: unknown,
      context: unknown,
      token: unknown,
      next: (...args: unknown[]) => unknown,
    ) => Promise<unknown>;
  };
}

export type ClientFactory = (
  server: { command: string; args: string[] },
  options: ClientOptions,
) => ScribeClient;

/** The real client; vscode-languageclient is loaded only here, so tests can stub `vscode`. */
export const languageClientFactory: ClientFactory = (server, options) => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const lc = require('vscode-languageclient/node') as typeof import('vscode-languageclient/node');
  const serverOptions = { command: server.command, args: server.args, transport: lc.TransportKind.stdio };
  return new lc.LanguageClient('scribe', 'scribe', serverOptions, {
    documentSelector: options.documentSelector,
    initializationOptions: options.initializationOptions,
    middleware: options.middleware as never,
    outputChannelName: 'scribe',
  });
};

const STATUS_REFRESH_MS = 1000;

export class ScribeExtension {
  state: ClientState = 'off';
  settings: ScribeSettings = readSettings(() => undefined);
  client?: ScribeClient;
  lastStatus?: ServerStatus;
  error?: string;
  readonly item: vscode.StatusBarItem;
  private refreshTimer?: NodeJS.Timeout;

  constructor(private readonly createClient: ClientFactory) {
    this.item = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
    this.item.command = 'scribe.status';
  }

  async activate(context: vscode.ExtensionContext): Promise<void> {
    context.subscriptions.push(
      this.item,
      vscode.commands.registerCommand('scribe.toggle', () => this.toggle()),
      vscode.commands.registerCommand('scribe.status', () => this.showStatus()),
      vscode.commands.registerCommand('scribe.restart', () => this.restart()),
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration('scribe')) {
          void this.restart();
        }
      }),
    );
    this.item.show();
    await this.start();
  }

  async start(): Promise<void> {
    const config = vscode.workspace.getConfiguration('scribe');
    this.settings = readSettings((key) => config.get(key));
    if (!this.settings.enabled) {
      this.setState('off');
      return;
    }
    this.setState('starting');
    this.client = this.createClient(serverCommand(this.settings), {
      documentSelector: documentSelector(this.settings),
      initializationOptions: initializationOptions(this.settings),
      middleware: {
        provideInlineCompletionItems: async (document, position, context, token, next) => {
          if (this.state !== 'running') {
            return null;
          }
          const result = await next(document, position, context, token);
          this.scheduleRefresh();
          return result;
        },
      },
    });
    try {
      await this.client.start();
      this.setState('running');
      await this.refreshStatus();
    } catch (err) {
      this.error = `cannot start "${this.settings.command} lsp": ${String(err)}; check the scribe.command setting`;
      this.client = undefined;
      this.setState('failed');
    }
  }

  async stop(): Promise<void> {
    clearTimeout(this.refreshTimer);
    const client = this.client;
    this.client = undefined;
    this.lastStatus = undefined;
    if (client) {
      await client.stop();
    }
    this.setState('off');
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async toggle(): Promise<void> {
    const config = vscode.workspace.getConfiguration('scribe');
    // The configuration change event restarts (or stops) the server.
    await config.update('enabled', !this.settings.enabled, vscode.ConfigurationTarget.Global);
  }

  async showStatus(): Promise<void> {
    if (this.client && this.state === 'running') {
      await this.refreshStatus();
    }
    await vscode.window.showInformationMessage(this.currentText().tooltip);
  }

  /** Asks the server for `scribe/status`; polls while the model is still loading. */
  async refreshStatus(): Promise<void> {
    if (!this.client) {
      return;
    }
    try {
      this.lastStatus = await this.client.sendRequest<ServerStatus>('scribe/status', {});
    } catch (err) {
      this.lastStatus = { state: 'error', error: String(err) };
    }
    this.render();
    if (this.lastStatus?.state === 'loading') {
      this.scheduleRefresh();
    }
  }

  private scheduleRefresh(): void {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => void this.refreshStatus(), STATUS_REFRESH_MS);
    this.refreshTimer.unref?.();
  }

  private setState(state: ClientState): void {
    this.state = state;
    this.render();
  }

  private currentText(): { text: string; tooltip: string } {
    return statusText(this.state, this.lastStatus, this.error);
  }

  private render(): void {
    const { text, tooltip } = this.currentText();
    this.item.text = text;
    this.item.tooltip = tooltip;
  }
}

let extension: ScribeExtension | undefined;

export async function activate(
  context: vscode.ExtensionContext,
  createClient: ClientFactory = languageClientFactory,
): Promise<ScribeExtension> {
  extension = new ScribeExtension(createClient);
  await extension.activate(context);
  return extension;
}

export async function deactivate(): Promise<void> {
  await extension?.stop();
  extension = undefined;
}
