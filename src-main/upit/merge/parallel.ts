/**
 * Worker threads that merge whole tensors, so a model merge uses several cores and its reads and
 * writes (on the main thread) overlap the arithmetic. Each tensor is merged by one worker with
 * the same `mergeTensor` code as on the main thread, so the output is bit for bit the same
 * whatever the thread count (DARE masks depend only on the seed, model index and tensor name).
 * Buffers move to the worker and back by transfer (no copy).
 *
 * The workers run `merge-worker.js` next to this file; from the TypeScript sources (tsx, vitest)
 * they load `merge-worker.ts` through tsx's API. Where workers cannot start, `shared` returns
 * null and the caller merges on its own thread. The workers are kept for the process's later
 * merges (starting one and warming up its JIT costs about as much as merging a few tensors) and
 * do not keep the process alive while idle.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { UserError } from '../../common/errors.js';
import type { MergeParams } from './methods.js';

/** One tensor to merge: `numel` float32 values at the start of each buffer. */
export interface MergeJob {
  method: string;
  params: MergeParams;
  name: string;
  seed: number;
  numel: number;
  base: ArrayBuffer;
  models: ArrayBuffer[];
  out: ArrayBuffer;
}

/** A job's buffers back (the output filled), or the error that stopped it. */
export interface MergeReply {
  base: ArrayBuffer;
  models: ArrayBuffer[];
  out: ArrayBuffer;
  error: { message: string; user: boolean } | null;
}

/**
 * Worker threads a merge uses by default: one per core but one (left to the calling thread's
 * reads and writes), at most 4; 0 on a single core.
 */
export function defaultMergeThreads(): number {
  return Math.min(4, os.availableParallelism() - 1);
}

function spawn(): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./merge-worker.js', import.meta.url));
  // running from the TypeScript sources: load the worker's module graph through tsx's ESM API
  // (its CommonJS build cannot register the loader inside a worker)
  const api = createRequire(import.meta.url)
    .resolve('tsx/esm/api')
    .replace(/\.cjs$/, '.mjs');
  const entry = new URL('./merge-worker.ts', import.meta.url).href;
  const code = `import(${JSON.stringify(pathToFileURL(api).href)}).then((m) => m.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(import.meta.url)}))`;
  return new Worker(code, { eval: true });
}

export class MergeWorkers {
  private readonly idle: Worker[];
  private readonly queue: { job: MergeJob; resolve: (r: MergeReply) => void; reject: (e: Error) => void }[] =
    [];
  private readonly running = new Map<Worker, (r: MergeReply | Error) => void>();
  private failure: Error | null = null;

  private constructor(private readonly workers: Worker[]) {
    this.idle = [...workers];
    for (const w of workers) {
      w.on('message', (r: MergeReply) => this.finished(w, r));
      w.on('error', (e) => this.fail(e));
      w.on('exit', () => this.fail(this.failure ?? new Error('merge worker exited')));
      w.unref(); // referenced only while it has a job
    }
  }

  get size(): number {
    return this.workers.length;
  }

  private static pool: { count: number; workers: Promise<MergeWorkers | null> } | null = null;

  /**
   * The process's `count` merge workers, started on first use and kept (restarted after a
   * failure, or for another count); null where workers cannot start (remembered).
   */
  static async shared(count: number): Promise<MergeWorkers | null> {
    const cur = MergeWorkers.pool;
    if (cur !== null && cur.count === count) {
      const w = await cur.workers;
      if (w === null || w.failure === null) return w;
    }
    if (cur !== null) void cur.workers.then((w) => w?.close());
    const workers = MergeWorkers.start(count);
    MergeWorkers.pool = { count, workers };
    return workers;
  }

  /** `count` workers, each having loaded the merge code; null when they cannot start here. */
  private static async start(count: number): Promise<MergeWorkers | null> {
    const workers: Worker[] = [];
    const hello = (w: Worker) =>
      new Promise<void>((resolve, reject) => {
        const done = (e?: Error) => {
          w.off('message', onMessage);
          w.off('error', done);
          w.off('exit', onExit);
          if (e) reject(e);
          else resolve();
        };
        const onMessage = (m: unknown) => done(m === 'ready' ? undefined : new Error('unexpected hello'));
        const onExit = () => done(new Error('merge worker exited'));
        w.on('message', onMessage);
        w.on('error', done);
        w.on('exit', onExit);
      });
    try {
      for (let i = 0; i < count; i++) workers.push(spawn());
      await Promise.all(workers.map(hello));
    } catch {
      await Promise.all(workers.map((w) => w.terminate()));
      return null;
    }
    return new MergeWorkers(workers);
  }

  /** Merge one tensor on the next idle worker. Rejects with a UserError for the method's own errors. */
  merge(job: MergeJob): Promise<MergeReply> {
    return new Promise((resolve, reject) => {
      if (this.failure) reject(this.failure);
      else {
        this.queue.push({ job, resolve, reject });
        this.dispatch();
      }
    });
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop()!;
      const { job, resolve, reject } = this.queue.shift()!;
      this.running.set(w, (r) => {
        if (r instanceof Error) reject(r);
        else if (r.error) reject(r.error.user ? new UserError(r.error.message) : new Error(r.error.message));
        else resolve(r);
      });
      w.ref();
      w.postMessage(job, [job.base, ...job.models, job.out]);
    }
  }

  private finished(w: Worker, r: MergeReply): void {
    const done = this.running.get(w);
    this.running.delete(w);
    w.unref();
    this.idle.push(w);
    done?.(r);
    this.dispatch();
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    for (const done of this.running.values()) done(e);
    this.running.clear();
    for (const q of this.queue.splice(0)) q.reject(e);
  }

  async close(): Promise<void> {
    this.failure ??= new Error('merge workers closed');
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
