/**
 * The Electron security checklist, without Electron (its binary is not installed on build
 * machines). Two kinds of checks:
 *   - static: main.ts builds its BrowserWindow options and session handlers inline, so the test
 *     reads the source and asserts the settings (context isolation, sandbox, no Node, no webview,
 *     navigation/redirects/new windows/webviews/permissions denied, the app:// entry only) and
 *     that no file of the Electron host weakens them;
 *   - behavioural: the IPC handlers that main.ts registers (ipc.ts + security.ts, importable without
 *     Electron) in front of the real API service refuse every untrusted sender on every channel and
 *     answer wrong-typed arguments with bad_request; the app:// handler keeps to its root.
 * test/e2e/electron.test.ts checks the same against a running app where Electron is installed.
 */
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BackendInfo } from '../../../src-main/contract/index.js';
import { API_METHODS, ipcChannel } from '../../../src-main/contract/index.js';
import { createAppProtocolHandler } from '../../../src-main/host/electron/app-protocol.js';
import type { IpcMainInvokeEventLike } from '../../../src-main/host/electron/electron-api.js';
import { registerIpc, type IpcHandler } from '../../../src-main/host/electron/ipc.js';
import { APP_ENTRY, ELECTRON_CSP, isTrustedSender } from '../../../src-main/host/electron/security.js';
import { createApiService } from '../../../src-main/jobs/api-service.js';
import type { JobsPort } from '../../../src-main/jobs/ports.js';
import { MemoryWorkspace } from '../jobs/memory-workspace.js';
import { ROOT } from '../../integration/cli-helpers.js';

const ELECTRON_DIR = path.join(ROOT, 'src-main', 'host', 'electron');
const mainSrc = readFileSync(path.join(ELECTRON_DIR, 'main.ts'), 'utf8');

/** The object literal passed as `webPreferences` in main.ts. */
function webPreferences(): Record<string, string> {
  const block = /webPreferences:\s*\{([^}]*)\}/.exec(mainSrc)?.[1];
  if (!block) throw new Error('main.ts: no webPreferences block found');
  return Object.fromEntries([...block.matchAll(/(\w+)\s*:\s*([^,\n]+)/g)].map((m) => [m[1]!, m[2]!.trim()]));
}

describe('Electron checklist (static, from src-main/host/electron/main.ts)', () => {
  it('BrowserWindow: context isolation, sandbox, no Node, no webview, web security on', () => {
    const prefs = webPreferences();
    expect(prefs).toMatchObject({
      contextIsolation: 'true',
      sandbox: 'true',
      nodeIntegration: 'false',
      nodeIntegrationInWorker: 'false',
      webSecurity: 'true',
      allowRunningInsecureContent: 'false',
      webviewTag: 'false',
    });
    expect(mainSrc).toMatch(/preload: path\.join\(here, 'preload\.cjs'\)/);
    expect(prefs).not.toHaveProperty('nodeIntegrationInSubFrames');
    expect(prefs).not.toHaveProperty('experimentalFeatures');
    expect(mainSrc).toMatch(/app\.enableSandbox\(\)/);
  });

  it('denies navigation, redirects, new windows, webviews and permission requests', () => {
    const created = /app\.on\('web-contents-created',[\s\S]*?\n {2}\}\);/.exec(mainSrc)?.[0] ?? '';
    expect(created).toMatch(/on\('will-navigate', \(e\) => e\.preventDefault\(\)\)/);
    expect(created).toMatch(/on\('will-redirect', \(e\) => e\.preventDefault\(\)\)/);
    expect(created).toMatch(/on\('will-attach-webview', \(e\) => e\.preventDefault\(\)\)/);
    expect(created).toMatch(/setWindowOpenHandler\(\(\) => \(\{ action: 'deny' \}\)\)/);
    expect(mainSrc).toMatch(/setPermissionRequestHandler\(\(_wc, _permission, cb\) => cb\(false\)\)/);
  });

  it('loads only the app:// entry and registers IPC behind the sender check', () => {
    expect([...mainSrc.matchAll(/loadURL\(([^)]*)\)/g)].map((m) => m[1])).toEqual(['APP_ENTRY']);
    expect(mainSrc).not.toMatch(/loadFile\(|https?:\/\/|file:\/\//);
    expect(mainSrc).toMatch(/registerIpc\(\s*ipcMain,[\s\S]*?isTrustedSender\(event, windowIds\)/);
    expect(mainSrc).toMatch(/protocol\.handle\(APP_SCHEME, createAppProtocolHandler\(/);
    expect(ELECTRON_CSP).toMatch(/default-src 'none'/);
    expect(ELECTRON_CSP).toMatch(/script-src 'self'/);
    expect(ELECTRON_CSP).not.toMatch(/unsafe|\*/);
  });

  it('no file of the Electron host weakens a setting or opens a raw channel', () => {
    for (const f of readdirSync(ELECTRON_DIR)) {
      const src = readFileSync(path.join(ELECTRON_DIR, f), 'utf8');
      for (const bad of [
        /sandbox:\s*false/,
        /contextIsolation:\s*false/,
        /nodeIntegration\w*:\s*true/,
        /webSecurity:\s*false/,
        /allowRunningInsecureContent:\s*true/,
        /webviewTag:\s*true/,
        /\bshell\.openExternal\(/,
        /exposeInMainWorld\([^)]*ipcRenderer[,)]/,
        /\bipcMain\.on\(/, // fire-and-forget channels bypass the handler's sender check
        /\beval\(|new Function\(/,
      ])
        expect(src, `${f}: ${bad}`).not.toMatch(bad);
    }
  });
});

class FakeJobs implements JobsPort {
  readonly started: string[] = [];
  startJob(kind: string): string {
    this.started.push(kind);
    return 'j1';
  }
  cancelJob(): boolean {
    return false;
  }
  onEvent(): () => void {
    return () => undefined;
  }
  async queryBackends(): Promise<BackendInfo[]> {
    return [];
  }
}

describe('IPC in front of the real API service', () => {
  const jobs = new FakeJobs();
  const service = createApiService({
    workspace: new MemoryWorkspace('/tmp/ws'),
    jobs,
    host: 'electron',
    appVersion: '0.0.0',
  });
  const windows = new Set([7]);
  const handlers = new Map<string, IpcHandler>();
  registerIpc(
    { handle: (c, h) => void handlers.set(c, h), removeHandler: (c) => void handlers.delete(c) },
    () => service,
    (e) => isTrustedSender(e, windows),
  );
  const ev = (url: string | null, sender = 7, parent: unknown = null): IpcMainInvokeEventLike => ({
    sender: { id: sender },
    senderFrame: url === null ? null : ({ url, parent } as IpcMainInvokeEventLike['senderFrame']),
  });

  it('refuses every untrusted sender on every channel, before the service sees the call', async () => {
    const untrusted = [
      ev('https://evil.example/'),
      ev('file:///etc/passwd'),
      ev('app://workbench.evil/index.html'),
      ev('app://evil/index.html'),
      ev('javascript:alert(1)'),
      ev('not a url'),
      ev(APP_ENTRY, 8), // another window
      ev(APP_ENTRY, 7, { url: APP_ENTRY }), // a subframe of ours
      ev(null),
    ];
    expect([...handlers.keys()].sort()).toEqual(API_METHODS.map(ipcChannel).sort());
    for (const [channel, h] of handlers)
      for (const e of untrusted)
        expect(await h(e, { kind: 'demo', config: {} }), `${channel} ${e.senderFrame?.url}`).toMatchObject({
          ok: false,
          error: { code: 'unauthorized' },
        });
    expect(jobs.started).toEqual([]);
  });

  it('answers wrong-typed or extra arguments from our own window with bad_request', async () => {
    const call = (method: string, ...args: unknown[]) =>
      handlers.get(ipcChannel(method as never))!(ev(APP_ENTRY), ...args);
    for (const [method, args] of [
      ['runs.get', [{ runId: '1' }]],
      ['runs.list', [{ limit: -1 }]],
      ['runs.list', [{}, { extra: true }]],
      ['jobs.start', [{ kind: 'prepare', config: { base: 42 } }]],
      ['jobs.start', ['prepare']],
      ['jobs.start', [{ kind: 'pretrain', config: { corpus: { source: 'file', path: '' } } }]],
    ] as const) {
      const r = await call(method, ...args);
      expect(r, `${method} ${JSON.stringify(args)}`).toMatchObject({
        ok: false,
        error: { code: 'bad_request' },
      });
    }
    expect(jobs.started).toEqual([]);
    expect(await call('runs.list', {})).toMatchObject({ ok: true });
  });
});

describe('app:// protocol handler', () => {
  const base = mkdtempSync(path.join(os.tmpdir(), 'upit-appsec-'));
  const root = path.join(base, 'renderer');
  mkdirSync(root);
  writeFileSync(path.join(root, 'index.html'), '<!doctype html>');
  writeFileSync(path.join(base, 'secret.json'), '{"s": "SECRET"}');
  symlinkSync(path.join(base, 'secret.json'), path.join(root, 'link.json'));
  symlinkSync(base, path.join(root, 'up'));
  afterAll(() => rmSync(base, { recursive: true, force: true }));
  const handle = createAppProtocolHandler(root);

  it.each([
    'app://workbench/link.json',
    'app://workbench/up/secret.json',
    'app://workbench//etc/passwd',
    'app://workbench/%2fetc%2fpasswd',
    'app://workbench/%252e%252e/secret.json',
  ])('%s stays inside the build directory', async (url) => {
    const r = await handle(new Request(url));
    expect(r.status).toBeGreaterThanOrEqual(400);
    const body = await r.text();
    expect(body).not.toMatch(/SECRET|root:/);
    expect(r.headers.get('content-security-policy')).toBe(ELECTRON_CSP);
  });

  it('refuses methods other than GET and HEAD', async () => {
    expect((await handle(new Request(APP_ENTRY, { method: 'POST', body: 'x' }))).status).toBe(405);
  });
});
