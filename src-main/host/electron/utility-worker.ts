/** Spawns the job worker as an Electron utilityProcess (same entry file as the fork path). */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WorkerProcess, WorkerSpawner } from '../../jobs/worker-supervisor.js';
import type { ElectronMain } from './electron-api.js';

const TAIL_BYTES = 4096;

/** dist/main/jobs/worker.js, next to this file's dist/main/host/electron/. */
export function compiledWorkerEntry(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../jobs/worker.js');
}

export function utilityWorkerSpawner(electron: ElectronMain, workspace: string | null): WorkerSpawner {
  return (): WorkerProcess => {
    const args = workspace !== null ? ['--workspace', workspace] : [];
    const child = electron.utilityProcess.fork(compiledWorkerEntry(), args, {
      serviceName: 'UpIT job worker',
      stdio: 'pipe',
    });
    let tail = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      process.stderr.write(chunk);
      tail = (tail + chunk.toString('utf8')).slice(-TAIL_BYTES);
    });
    return {
      get pid() {
        return child.pid;
      },
      send: (m) => child.postMessage(m),
      onMessage: (l) => child.on('message', l),
      onExit: (l) => child.on('exit', (code) => l({ code, signal: null })),
      stderrTail: () => tail,
      kill: () => void child.kill(),
    };
  };
}
