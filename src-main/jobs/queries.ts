/**
 * Read-only questions the host asks the worker because answering loads the tensor engine
 * (which never loads in a host process).
 */
import type { BackendInfo } from '../contract/index.js';
import type { WorkerQueryName } from '../contract/worker.js';

export const WORKER_QUERIES: Record<WorkerQueryName, () => Promise<unknown>> = {
  backends: async (): Promise<BackendInfo[]> => {
    // loaded on first use: the worker starts without the tensor engine
    const { probeBackends } = await import('../tensor/backend.js');
    const attempts = await probeBackends();
    return attempts.map((a) => ({ name: a.name, status: a.status, detail: a.detail }));
  },
};
