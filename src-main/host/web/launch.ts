/**
 * Composes the web host: opens the workspace (reads), starts the job worker (writes, heavy
 * work) under a supervisor, builds the API service and serves it. Used by `upit serve` and
 * the E2E tests.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../common/errors.js';
import { VERSION } from '../../common/version.js';
import { createApiService, type ApiService } from '../../jobs/api-service.js';
import { forkWorkerSpawner } from '../../jobs/fork-worker.js';
import type { WorkspaceHandle } from '../../jobs/ports.js';
import { WorkerSupervisor } from '../../jobs/worker-supervisor.js';
import { startWebServer, type WebServer } from './server.js';

export interface LaunchWebHostOptions {
  workspaceDir: string;
  port?: number;
  /** Default: `<package root>/dist/renderer`. */
  staticDir?: string;
  token?: string;
  /** Opens the workspace for reading (default: the SQLite store adapter). */
  openWorkspace?: (dir: string) => WorkspaceHandle | Promise<WorkspaceHandle>;
}

export interface WebHost {
  readonly server: WebServer;
  readonly supervisor: WorkerSupervisor;
  readonly service: ApiService;
  readonly workspace: WorkspaceHandle;
  stop(): Promise<void>;
}

/** The directory holding the workbench's package.json (from src-main/… or dist/main/…). */
export function packageRoot(from: string = fileURLToPath(import.meta.url)): string {
  let dir = path.dirname(from);
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'upit-workbench')
          return dir;
      } catch {
        // not ours; keep looking
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the upit-workbench package root');
    dir = up;
  }
}

export function rendererDir(): string {
  return path.join(packageRoot(), 'dist', 'renderer');
}

export async function launchWebHost(opts: LaunchWebHostOptions): Promise<WebHost> {
  const open =
    opts.openWorkspace ??
    (async (dir: string) =>
      (await import('../../jobs/store-adapter.js')).openWorkspaceHandle(dir, { create: true }));
  const workspace = await open(opts.workspaceDir);
  const supervisor = new WorkerSupervisor({ spawn: forkWorkerSpawner({ workspace: workspace.dir }) });
  let service: ApiService | undefined;
  try {
    await supervisor.start();
    service = createApiService({ workspace, jobs: supervisor, host: 'web', appVersion: VERSION });
    const server = await startWebServer({
      service,
      staticDir: opts.staticDir ?? rendererDir(),
      ...(opts.port !== undefined ? { port: opts.port } : {}),
      ...(opts.token !== undefined ? { token: opts.token } : {}),
    }).catch((e: unknown) => {
      if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') {
        throw new UserError(`--port ${opts.port}: already in use (pick another, or 0 for any free port)`);
      }
      throw e;
    });
    const svc = service;
    return {
      server,
      supervisor,
      service: svc,
      workspace,
      async stop() {
        await server.close();
        svc.close();
        await supervisor.stop();
        workspace.close();
      },
    };
  } catch (e) {
    service?.close();
    await supervisor.stop();
    workspace.close();
    throw e;
  }
}
