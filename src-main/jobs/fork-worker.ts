/**
 * Spawns the job worker with Node's child_process.fork (web host, CLI). From the compiled
 * build it runs dist/main/jobs/worker.js; from sources (tests) worker.ts through tsx.
 */
import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { WorkerProcess, WorkerSpawner } from './worker-supervisor.js';

export interface ForkWorkerOptions {
  /** Workspace directory the worker records runs in (null: record nothing). */
  workspace: string | null;
  env?: NodeJS.ProcessEnv;
  /** Forward the worker's stderr to ours as well as keeping its tail (default true). */
  inheritStderr?: boolean;
}

export function workerEntry(): { file: string; execArgv: string[] } {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) {
    const tsx = createRequire(import.meta.url).resolve('tsx');
    return {
      file: path.join(path.dirname(here), 'worker.ts'),
      execArgv: ['--import', pathToFileURL(tsx).href],
    };
  }
  return { file: path.join(path.dirname(here), 'worker.js'), execArgv: [] };
}

const TAIL_BYTES = 4096;

export function forkWorkerSpawner(opts: ForkWorkerOptions): WorkerSpawner {
  return (): WorkerProcess => {
    const { file, execArgv } = workerEntry();
    const args = opts.workspace !== null ? ['--workspace', opts.workspace] : [];
    const child = fork(file, args, {
      execArgv,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      serialization: 'json',
    });
    let tail = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      if (opts.inheritStderr !== false) process.stderr.write(chunk);
      tail = (tail + chunk.toString('utf8')).slice(-TAIL_BYTES);
    });
    return {
      pid: child.pid,
      send: (m) => {
        if (child.connected) child.send(m);
      },
      onMessage: (l) => void child.on('message', l),
      onExit: (l) => {
        let called = false;
        const once = (exit: { code: number | null; signal: string | null }): void => {
          if (!called) l(exit);
          called = true;
        };
        child.once('exit', (code, signal) => once({ code, signal }));
        // a fork that could not start emits 'error' and no 'exit'
        child.once('error', (e) => {
          tail += `\n${e.message}`;
          if (child.pid === undefined) once({ code: null, signal: null });
        });
      },
      stderrTail: () => tail,
      kill: () => void child.kill('SIGKILL'),
    };
  };
}
