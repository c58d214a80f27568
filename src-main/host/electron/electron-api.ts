/**
 * The slice of Electron's main-process API the workbench uses, declared locally: `electron`
 * is an optional dependency (its binary cannot be downloaded on build machines), so the
 * code type-checks without it and loads it only at run time, inside Electron.
 */

export interface WebFrameMainLike {
  readonly url: string;
  readonly parent: WebFrameMainLike | null;
}

export interface IpcMainInvokeEventLike {
  readonly sender: { readonly id: number };
  readonly senderFrame: WebFrameMainLike | null;
}

export interface WebContentsLike {
  readonly id: number;
  readonly mainFrame: WebFrameMainLike;
  send(channel: string, ...args: unknown[]): void;
  on(
    event: 'will-navigate' | 'will-redirect' | 'will-attach-webview',
    listener: (e: { preventDefault(): void }) => void,
  ): void;
  setWindowOpenHandler(handler: (details: { url: string }) => { action: 'deny' }): void;
  isDestroyed(): boolean;
}

export interface BrowserWindowLike {
  readonly webContents: WebContentsLike;
  loadURL(url: string): Promise<void>;
  once(event: 'ready-to-show', listener: () => void): void;
  on(event: 'closed', listener: () => void): void;
  show(): void;
  isDestroyed(): boolean;
}

export interface BrowserWindowOptions {
  width: number;
  height: number;
  minWidth?: number;
  minHeight?: number;
  show?: boolean;
  title?: string;
  backgroundColor?: string;
  webPreferences: {
    preload: string;
    contextIsolation: true;
    sandbox: true;
    nodeIntegration: false;
    nodeIntegrationInWorker?: false;
    webSecurity?: true;
    allowRunningInsecureContent?: false;
    webviewTag?: false;
    spellcheck?: boolean;
  };
}

export interface MenuItemOptions {
  label?: string;
  role?: string;
  type?: 'separator' | 'normal' | 'submenu';
  accelerator?: string;
  click?: () => void;
  submenu?: MenuItemOptions[];
}

export interface UtilityProcessLike {
  readonly pid: number | undefined;
  readonly stderr: NodeJS.ReadableStream | null;
  postMessage(message: unknown): void;
  on(event: 'message', listener: (message: unknown) => void): void;
  on(event: 'exit', listener: (code: number) => void): void;
  kill(): boolean;
}

export interface ElectronMain {
  app: {
    readonly isPackaged: boolean;
    whenReady(): Promise<void>;
    on(event: 'window-all-closed' | 'activate', listener: () => void): void;
    on(event: 'before-quit', listener: (e: { preventDefault(): void }) => void): void;
    on(event: 'web-contents-created', listener: (e: unknown, contents: WebContentsLike) => void): void;
    quit(): void;
    exit(code?: number): void;
    enableSandbox(): void;
    requestSingleInstanceLock(): boolean;
    getAppPath(): string;
  };
  BrowserWindow: {
    new (options: BrowserWindowOptions): BrowserWindowLike;
    getAllWindows(): BrowserWindowLike[];
  };
  ipcMain: {
    handle(channel: string, listener: (event: IpcMainInvokeEventLike, ...args: unknown[]) => unknown): void;
    removeHandler(channel: string): void;
  };
  Menu: {
    buildFromTemplate(template: MenuItemOptions[]): unknown;
    setApplicationMenu(menu: unknown): void;
  };
  protocol: {
    registerSchemesAsPrivileged(
      schemes: {
        scheme: string;
        privileges: { standard?: boolean; secure?: boolean; supportFetchAPI?: boolean };
      }[],
    ): void;
    handle(scheme: string, handler: (request: Request) => Response | Promise<Response>): void;
  };
  utilityProcess: {
    fork(
      modulePath: string,
      args?: string[],
      options?: { serviceName?: string; stdio?: 'pipe' | 'inherit' | 'ignore'; env?: NodeJS.ProcessEnv },
    ): UtilityProcessLike;
  };
  dialog: {
    showOpenDialog(
      window: BrowserWindowLike,
      options: { title?: string; properties: string[]; filters?: { name: string; extensions: string[] }[] },
    ): Promise<{ canceled: boolean; filePaths: string[] }>;
    showMessageBox(
      window: BrowserWindowLike,
      options: { type?: string; message: string; detail?: string },
    ): Promise<unknown>;
    showErrorBox(title: string, content: string): void;
  };
  session: {
    defaultSession: {
      setPermissionRequestHandler(
        handler: (wc: unknown, permission: string, cb: (granted: boolean) => void) => void,
      ): void;
    };
  };
}

// A variable specifier: TypeScript does not try to resolve the (optional) package.
const ELECTRON = 'electron';

export async function loadElectron(): Promise<ElectronMain> {
  const mod = (await import(ELECTRON)) as ElectronMain & { default?: ElectronMain };
  return mod.default ?? mod;
}
