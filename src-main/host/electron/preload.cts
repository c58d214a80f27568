/**
 * Preload (sandboxed, so CommonJS and self-contained: a sandboxed preload can require only
 * 'electron'). Exposes `window.upit`: one function per contract operation, grouped by domain,
 * and `onEvent`. No ipcRenderer, no generic invoke. The method list must match the contract's
 * API table (a unit test checks it).
 */
import type { UpitBridge } from '../../contract/index.js';

// eslint-disable-next-line @typescript-eslint/no-require-imports -- sandboxed preloads are CommonJS
const { contextBridge, ipcRenderer } = require('electron') as {
  contextBridge: { exposeInMainWorld(key: string, api: unknown): void };
  ipcRenderer: {
    invoke(channel: string, ...args: unknown[]): Promise<unknown>;
    on(channel: string, listener: (event: unknown, ...args: unknown[]) => void): void;
    removeListener(channel: string, listener: (event: unknown, ...args: unknown[]) => void): void;
  };
};

const METHODS = [
  'workspace.info',
  'runs.list',
  'runs.get',
  'runs.metricSeries',
  'runs.metricsSummary',
  'runs.checkpoints',
  'runs.evaluations',
  'runs.experts',
  'runs.routing',
  'runs.compare',
  'experiments.list',
  'experiments.get',
  'plans.list',
  'plans.run',
  'reports.render',
  'jobs.start',
  'jobs.cancel',
  'jobs.list',
  'jobs.kinds',
  'backends.list',
] as const;

const EVENT_CHANNEL = 'upit:event';

const bridge: Record<string, Record<string, (request: unknown) => Promise<unknown>>> = {};
for (const method of METHODS) {
  const [domain, op] = method.split('.') as [string, string];
  const group = (bridge[domain] ??= {});
  // exactly one argument crosses: whatever else a page passes is dropped here
  group[op] = (request: unknown) => ipcRenderer.invoke(`upit:${method}`, request);
}

const onEvent: UpitBridge['onEvent'] = (listener) => {
  const handler = (_event: unknown, payload: unknown): void => listener(payload);
  ipcRenderer.on(EVENT_CHANNEL, handler);
  return () => ipcRenderer.removeListener(EVENT_CHANNEL, handler);
};

contextBridge.exposeInMainWorld('upit', { ...bridge, onEvent });
