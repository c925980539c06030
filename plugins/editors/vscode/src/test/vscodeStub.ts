// A stand-in for the `vscode` module (which only exists inside VS Code): just the API surface
// the extension uses, recording what it does. Importing this file installs it, so import it
// before the extension.

import Module = require('module');

type Listener = (event: { affectsConfiguration: (section: string) => boolean }) => void;

export interface FakeStatusBarItem {
  text: string;
  tooltip: string;
  command?: string;
  visible: boolean;
  show(): void;
  hide(): void;
  dispose(): void;
}

class FakeConfiguration {
  constructor(private readonly stub: VscodeStub) {}

  get(key: string): unknown {
    return this.stub.settings[key];
  }

  async update(key: string, value: unknown): Promise<void> {
    this.stub.settings[key] = value;
    for (const listener of this.stub.configListeners) {
      listener({ affectsConfiguration: (section) => section === 'scribe' });
    }
  }
}

export class VscodeStub {
  settings: Record<string, unknown> = {};
  messages: string[] = [];
  items: FakeStatusBarItem[] = [];
  commands = new Map<string, (...args: unknown[]) => unknown>();
  configListeners: Listener[] = [];

  readonly StatusBarAlignment = { Left: 1, Right: 2 };
  readonly ConfigurationTarget = { Global: 1, Workspace: 2, WorkspaceFolder: 3 };

  readonly window = {
    createStatusBarItem: (): FakeStatusBarItem => {
      const item: FakeStatusBarItem = {
        text: '',
        tooltip: '',
        visible: false,
        show: () => {
          item.visible = true;
        },
        hide: () => {
          item.visible = false;
        },
        dispose: () => undefined,
      };
      this.items.push(item);
      return item;
    },
    showInformationMessage: async (message: string): Promise<undefined> => {
      this.messages.push(message);
      return undefined;
    },
  };

  readonly workspace = {
    getConfiguration: (section: string) => {
      if (section !== 'scribe') {
        throw new Error(`unexpected configuration section ${section}`);
      }
      return new FakeConfiguration(this);
    },
    onDidChangeConfiguration: (listener: Listener) => {
      this.configListeners.push(listener);
      return { dispose: () => undefined };
    },
  };

  readonly commandsApi = {
    registerCommand: (name: string, run: (...args: unknown[]) => unknown) => {
      this.commands.set(name, run);
      return { dispose: () => this.commands.delete(name) };
    },
  };

  reset(settings: Record<string, unknown> = {}): void {
    this.settings = { ...settings };
    this.messages = [];
    this.items = [];
    this.commands.clear();
    this.configListeners = [];
  }

  async run(name: string): Promise<unknown> {
    const command = this.commands.get(name);
    if (!command) {
      throw new Error(`command ${name} is not registered`);
    }
    return command();
  }
}

export const vscodeStub = new VscodeStub();

const moduleApi = {
  get StatusBarAlignment() {
    return vscodeStub.StatusBarAlignment;
  },
  get ConfigurationTarget() {
    return vscodeStub.ConfigurationTarget;
  },
  get window() {
    return vscodeStub.window;
  },
  get workspace() {
    return vscodeStub.workspace;
  },
  get commands() {
    return vscodeStub.commandsApi;
  },
};

const loader = Module as unknown as {
  _load: (request: string, parent: unknown, isMain: boolean) => unknown;
};
const originalLoad = loader._load;
loader._load = function (request: string, parent: unknown, isMain: boolean): unknown {
  return request === 'vscode' ? moduleApi : originalLoad.call(this, request, parent, isMain);
};

/** A fake ExtensionContext. */
export function fakeContext(): { subscriptions: { dispose(): unknown }[] } {
  return { subscriptions: [] };
}
