/**
 * IPC handlers: one channel per contract method (`upit:<method>`). Each checks the sender,
 * lets the API service validate the arguments against the contract, and answers an
 * IpcResult (Electron would reduce a thrown error to its message).
 */
import type { ApiMethod, IpcResult } from '../../contract/index.js';
import { API_METHODS, ApiError, ipcChannel, toApiError } from '../../contract/index.js';
import type { IpcMainInvokeEventLike } from './electron-api.js';

export interface IpcService {
  call(method: string, request: unknown): Promise<unknown>;
}

export type IpcHandler = (event: IpcMainInvokeEventLike, ...args: unknown[]) => Promise<IpcResult<unknown>>;

export function createIpcHandler(
  method: ApiMethod,
  service: () => IpcService,
  trusted: (event: IpcMainInvokeEventLike) => boolean,
): IpcHandler {
  return async (event, ...args) => {
    if (!trusted(event)) {
      return { ok: false, error: new ApiError('unauthorized', 'IPC from an untrusted frame').toBody().error };
    }
    if (args.length > 1) {
      return { ok: false, error: new ApiError('bad_request', `${method} takes one argument`).toBody().error };
    }
    try {
      return { ok: true, result: await service().call(method, args[0]) };
    } catch (e) {
      return { ok: false, error: toApiError(e).toBody().error };
    }
  };
}

export interface IpcMainLike {
  handle(channel: string, listener: IpcHandler): void;
  removeHandler(channel: string): void;
}

/** Registers a handler for every contract method; returns the function that removes them. */
export function registerIpc(
  ipcMain: IpcMainLike,
  service: () => IpcService,
  trusted: (event: IpcMainInvokeEventLike) => boolean,
): () => void {
  for (const m of API_METHODS) ipcMain.handle(ipcChannel(m), createIpcHandler(m, service, trusted));
  return () => {
    for (const m of API_METHODS) ipcMain.removeHandler(ipcChannel(m));
  };
}
