/**
 * Electron main process: one window on the app:// renderer, the typed API over IPC, the app
 * menu, and the job worker in a utilityProcess. Thin glue: the API service and the job
 * layer do the work; this file only wires Electron to them.
 *
 * Security (Electron checklist): context isolation, sandbox, no Node in the renderer, CSP
 * on every app:// response, navigation and new windows denied, permission requests denied,
 * every IPC message's sender frame and arguments checked.
 *
 * argv: [--workspace DIR] (default: $UPIT_WORKSPACE or ~/.upit/workspace) [--batch PLAN]: with
 * --batch no window opens; the plan runs on the workspace and the app exits with its status.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { VERSION } from '../../common/version.js';
import type { AppEvent } from '../../contract/index.js';
import { IPC_EVENT_CHANNEL } from '../../contract/index.js';
import { createApiService, type ApiService } from '../../jobs/api-service.js';
import type { WorkspaceHandle } from '../../jobs/ports.js';
import { WorkerSupervisor } from '../../jobs/worker-supervisor.js';
import { createAppProtocolHandler } from './app-protocol.js';
import {
  loadElectron,
  type BrowserWindowLike,
  type ElectronMain,
  type MenuItemOptions,
} from './electron-api.js';
import { registerIpc } from './ipc.js';
import { APP_ENTRY, APP_SCHEME, isTrustedSender } from './security.js';
import { utilityWorkerSpawner } from './utility-worker.js';

interface Session {
  workspace: WorkspaceHandle;
  supervisor: WorkerSupervisor;
  service: ApiService;
  unsubscribe: () => void;
}

function argValue(name: string): string | null {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : null;
}

const here = path.dirname(fileURLToPath(import.meta.url));

async function main(): Promise<void> {
  const electron: ElectronMain = await loadElectron();
  const { app, BrowserWindow, Menu, dialog, ipcMain, protocol, session } = electron;

  const batch = argValue('--batch');
  if (batch !== null) {
    const { runBatch } = await import('./batch.js');
    const { defaultWorkspaceDir } = await import('../../store/index.js');
    const controller = new AbortController();
    process.on('SIGINT', () => controller.abort());
    const code = await runBatch({
      plan: batch,
      workspace: argValue('--workspace') ?? defaultWorkspaceDir(),
      signal: controller.signal,
    });
    app.exit(code);
    return;
  }

  protocol.registerSchemesAsPrivileged([
    { scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } },
  ]);
  app.enableSandbox();
  if (!app.requestSingleInstanceLock()) {
    app.quit();
    return;
  }

  const { openWorkspaceHandle } = await import('../../jobs/store-adapter.js');
  const { defaultWorkspaceDir } = await import('../../store/index.js');

  const windowIds = new Set<number>();
  let win: BrowserWindowLike | null = null;
  let current: Session | null = null;

  const broadcast = (event: AppEvent): void => {
    if (win && !win.isDestroyed() && !win.webContents.isDestroyed())
      win.webContents.send(IPC_EVENT_CHANNEL, event);
  };

  async function openSession(dir: string): Promise<Session> {
    const workspace = openWorkspaceHandle(dir, { create: true });
    const supervisor = new WorkerSupervisor({ spawn: utilityWorkerSpawner(electron, workspace.dir) });
    try {
      await supervisor.start();
    } catch (e) {
      workspace.close();
      throw e;
    }
    const service = createApiService({ workspace, jobs: supervisor, host: 'electron', appVersion: VERSION });
    const unsubscribe = service.subscribe(broadcast);
    return { workspace, supervisor, service, unsubscribe };
  }

  async function closeSession(s: Session): Promise<void> {
    s.unsubscribe();
    s.service.close();
    await s.supervisor.stop();
    s.workspace.close();
  }

  await app.whenReady();

  session.defaultSession.setPermissionRequestHandler((_wc, _permission, cb) => cb(false));
  app.on('web-contents-created', (_e, contents) => {
    contents.on('will-navigate', (e) => e.preventDefault());
    contents.on('will-redirect', (e) => e.preventDefault());
    contents.on('will-attach-webview', (e) => e.preventDefault());
    contents.setWindowOpenHandler(() => ({ action: 'deny' }));
  });

  const rendererDir = path.join(app.getAppPath(), 'dist', 'renderer');
  protocol.handle(APP_SCHEME, createAppProtocolHandler(rendererDir));

  try {
    current = await openSession(argValue('--workspace') ?? defaultWorkspaceDir());
  } catch (e) {
    dialog.showErrorBox(
      'UpIT Workbench',
      `Cannot open the workspace: ${e instanceof Error ? e.message : String(e)}`,
    );
    app.exit(1);
    return;
  }

  registerIpc(
    ipcMain,
    () => current!.service,
    (event) => isTrustedSender(event, windowIds),
  );

  function createWindow(): BrowserWindowLike {
    const w = new BrowserWindow({
      width: 1280,
      height: 800,
      minWidth: 960,
      minHeight: 600,
      show: false,
      title: 'UpIT Workbench',
      webPreferences: {
        preload: path.join(here, 'preload.cjs'),
        contextIsolation: true,
        sandbox: true,
        nodeIntegration: false,
        nodeIntegrationInWorker: false,
        webSecurity: true,
        allowRunningInsecureContent: false,
        webviewTag: false,
        spellcheck: false,
      },
    });
    const id = w.webContents.id;
    windowIds.add(id);
    w.on('closed', () => {
      windowIds.delete(id);
      if (win === w) win = null;
    });
    w.once('ready-to-show', () => w.show());
    void w.loadURL(APP_ENTRY);
    return w;
  }

  const command = (c: 'new-experiment' | 'export-report'): void =>
    broadcast({ type: 'ui.command', command: c, at: Date.now() });

  async function openWorkspaceDialog(): Promise<void> {
    if (!win) return;
    const r = await dialog.showOpenDialog(win, {
      title: 'Open workspace',
      properties: ['openDirectory', 'createDirectory'],
    });
    const dir = r.filePaths[0];
    if (r.canceled || !dir) return;
    let next: Session;
    try {
      next = await openSession(dir);
    } catch (e) {
      await dialog.showMessageBox(win, {
        type: 'error',
        message: 'Cannot open this workspace',
        detail: e instanceof Error ? e.message : String(e),
      });
      return;
    }
    const previous = current;
    current = next;
    if (previous) await closeSession(previous);
    const info = (await next.service.call('workspace.info', {})) as Extract<
      AppEvent,
      { type: 'workspace.changed' }
    >['workspace'];
    broadcast({ type: 'workspace.changed', at: Date.now(), workspace: info });
  }

  async function runPlanDialog(): Promise<void> {
    if (!win) return;
    const r = await dialog.showOpenDialog(win, {
      title: 'Run batch plan',
      properties: ['openFile'],
      filters: [{ name: 'Plans', extensions: ['yaml', 'yml'] }],
    });
    if (r.canceled || r.filePaths.length === 0 || !current) return;
    try {
      const { readFileSync } = await import('node:fs');
      // the plan is validated and saved into the workspace's plans/ folder, then run by the worker
      await current.service.call('plans.run', { text: readFileSync(r.filePaths[0]!, 'utf8') });
      broadcast({ type: 'ui.command', command: 'show-view', view: 'experiments', at: Date.now() });
    } catch (e) {
      dialog.showErrorBox('Run batch plan', e instanceof Error ? e.message : String(e));
    }
  }

  const template: MenuItemOptions[] = [
    {
      label: 'File',
      submenu: [
        { label: 'New experiment', accelerator: 'CmdOrCtrl+N', click: () => command('new-experiment') },
        { label: 'Open workspace…', accelerator: 'CmdOrCtrl+O', click: () => void openWorkspaceDialog() },
        { type: 'separator' },
        { label: 'Run batch plan…', click: () => void runPlanDialog() },
        { label: 'Export report…', accelerator: 'CmdOrCtrl+E', click: () => command('export-report') },
        { type: 'separator' },
        { label: 'Quit', role: 'quit' },
      ],
    },
    { label: 'Edit', submenu: [{ role: 'copy' }, { role: 'paste' }, { role: 'selectAll' }] },
    {
      label: 'View',
      submenu: [
        { role: 'reload' },
        { role: 'toggleDevTools' },
        { type: 'separator' },
        { role: 'togglefullscreen' },
      ],
    },
  ];
  Menu.setApplicationMenu(Menu.buildFromTemplate(template));

  win = createWindow();
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) win = createWindow();
  });
  app.on('window-all-closed', () => app.quit());

  let quitting = false;
  app.on('before-quit', (e) => {
    if (quitting || !current) return;
    e.preventDefault();
    quitting = true;
    const s = current;
    current = null;
    void closeSession(s).finally(() => app.quit());
  });
}

main().catch((e: unknown) => {
  process.stderr.write(`upit: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
