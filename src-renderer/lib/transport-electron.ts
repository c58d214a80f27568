/**
 * Transport for the Electron host: the preload's `window.upit` bridge (one function per
 * operation, results wrapped as `{ ok, result | error }` because Electron IPC flattens
 * thrown errors to a message).
 */
import type { ApiMethod, IpcResult, UpitBridge } from '../../src-main/contract/index.js';
import { ApiError } from '../../src-main/contract/index.js';
import type { Transport } from './api.js';

type AnyOp = (request: unknown) => Promise<IpcResult<unknown>>;

export function electronBridge(win: Window = window): UpitBridge | undefined {
  return (win as Window & { upit?: UpitBridge }).upit;
}

export function createElectronTransport(bridge: UpitBridge): Transport {
  return {
    name: 'electron',
    async call(method: ApiMethod, request: unknown): Promise<unknown> {
      const [domain, op] = method.split('.') as [keyof UpitBridge, string];
      const group = bridge[domain] as unknown as Record<string, AnyOp> | undefined;
      const fn = group?.[op];
      if (typeof fn !== 'function')
        throw new ApiError('unknown_method', `the desktop bridge has no ${method}`);
      const r = await fn(request);
      if (r.ok) return r.result;
      throw new ApiError(r.error.code, r.error.message, r.error.issues);
    },
    subscribe(listener) {
      return bridge.onEvent(listener);
    },
    onConnection(listener) {
      listener('open'); // IPC does not drop
      return () => {};
    },
    close() {},
  };
}
