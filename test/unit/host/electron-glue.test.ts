/**
 * The Electron host's logic that runs without Electron: IPC sender and argument checks, the
 * app:// protocol handler, and the preload's method list against the contract.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { API_METHODS, ApiError, ipcChannel } from '../../../src-main/contract/index.js';
import { createAppProtocolHandler } from '../../../src-main/host/electron/app-protocol.js';
import type { IpcMainInvokeEventLike } from '../../../src-main/host/electron/electron-api.js';
import { createIpcHandler, registerIpc, type IpcHandler } from '../../../src-main/host/electron/ipc.js';
import { APP_ENTRY, isTrustedSender } from '../../../src-main/host/electron/security.js';

const here = path.dirname(fileURLToPath(import.meta.url));

function event(url: string | null, senderId = 1, parent: unknown = null): IpcMainInvokeEventLike {
  return {
    sender: { id: senderId },
    senderFrame: url === null ? null : ({ url, parent } as IpcMainInvokeEventLike['senderFrame']),
  };
}

describe('IPC sender validation', () => {
  const ours = new Set([1]);
  it('trusts only the top frame of our window on app://workbench', () => {
    expect(isTrustedSender(event(APP_ENTRY), ours)).toBe(true);
    expect(isTrustedSender(event('app://workbench/index.html#/runs/3'), ours)).toBe(true);
    expect(isTrustedSender(event('https://evil.example/'), ours)).toBe(false);
    expect(isTrustedSender(event('app://elsewhere/index.html'), ours)).toBe(false);
    expect(isTrustedSender(event('file:///tmp/x.html'), ours)).toBe(false);
    expect(isTrustedSender(event(APP_ENTRY, 2), ours)).toBe(false);
    expect(isTrustedSender(event(APP_ENTRY, 1, { url: APP_ENTRY }), ours)).toBe(false);
    expect(isTrustedSender(event(null), ours)).toBe(false);
  });
});

describe('IPC handlers', () => {
  const calls: { method: string; request: unknown }[] = [];
  const service = {
    async call(method: string, request: unknown) {
      calls.push({ method, request });
      if (method === 'runs.get')
        throw new ApiError('bad_request', 'runId: expected number', [{ path: 'runId', message: 'x' }]);
      return { ok: 1 };
    },
  };

  it('answers results and errors as data, and refuses untrusted senders', async () => {
    const trusted = (e: IpcMainInvokeEventLike) => e.sender.id === 1;
    const list = createIpcHandler('runs.list', () => service, trusted);
    expect(await list(event(APP_ENTRY), { limit: 1 })).toEqual({ ok: true, result: { ok: 1 } });
    expect(calls).toEqual([{ method: 'runs.list', request: { limit: 1 } }]);

    const get = createIpcHandler('runs.get', () => service, trusted);
    expect(await get(event(APP_ENTRY), { runId: 'x' })).toEqual({
      ok: false,
      error: {
        code: 'bad_request',
        message: 'runId: expected number',
        issues: [{ path: 'runId', message: 'x' }],
      },
    });

    calls.length = 0;
    expect(await list(event(APP_ENTRY, 9), {})).toMatchObject({ ok: false, error: { code: 'unauthorized' } });
    expect(await list(event(APP_ENTRY), {}, 'extra')).toMatchObject({
      ok: false,
      error: { code: 'bad_request' },
    });
    expect(calls).toEqual([]);
  });

  it('registers one channel per contract method and removes them', () => {
    const handlers = new Map<string, IpcHandler>();
    const off = registerIpc(
      { handle: (c, h) => void handlers.set(c, h), removeHandler: (c) => void handlers.delete(c) },
      () => service,
      () => true,
    );
    expect([...handlers.keys()].sort()).toEqual(API_METHODS.map(ipcChannel).sort());
    off();
    expect(handlers.size).toBe(0);
  });
});

describe('preload', () => {
  it('exposes exactly the contract methods, through ipcRenderer.invoke only', () => {
    const src = readFileSync(path.join(here, '../../../src-main/host/electron/preload.cts'), 'utf8');
    const list = src.match(/const METHODS = \[([\s\S]*?)\] as const/)?.[1] ?? '';
    const methods = [...list.matchAll(/'([^']+)'/g)].map((m) => m[1]);
    expect(methods).toEqual(API_METHODS);
    expect(src).not.toMatch(/exposeInMainWorld\([^)]*ipcRenderer/);
    expect(src).not.toMatch(/ipcRenderer\.send\(/);
  });
});

describe('app:// protocol', () => {
  const base = mkdtempSync(path.join(os.tmpdir(), 'upit-proto-'));
  const root = path.join(base, 'renderer');
  mkdirSync(path.join(root, 'assets'), { recursive: true });
  writeFileSync(path.join(root, 'index.html'), '<!doctype html>');
  writeFileSync(path.join(root, 'assets', 'a.js'), 'x');
  writeFileSync(path.join(base, 'secret.json'), '{"secret":1}');
  afterAll(() => rmSync(base, { recursive: true, force: true }));
  const handle = createAppProtocolHandler(root);

  it('serves the renderer with the CSP', async () => {
    const r = await handle(new Request(APP_ENTRY));
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/text\/html/);
    expect(r.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect((await handle(new Request('app://workbench/assets/a.js'))).status).toBe(200);
  });

  it('stays inside the build directory and on its host', async () => {
    for (const u of [
      'app://workbench/%2e%2e/secret.json',
      'app://workbench/assets/..%2f..%2fsecret.json',
      'app://workbench/../secret.json',
      'app://other/index.html',
    ]) {
      const r = await handle(new Request(u));
      expect([400, 404]).toContain(r.status);
      expect(await r.text()).not.toContain('secret');
    }
  });
});
