/**
 * Keeps one job worker process alive for a host: spawns it, forwards job starts/cancels to
 * it and its events to listeners, and when it dies unexpectedly reports the jobs it was
 * running as failed and starts a fresh one. No business logic: what a job does, and how a
 * job list is kept, live elsewhere. The process plumbing (fork vs utilityProcess) is the
 * spawner's.
 */
import { randomUUID } from 'node:crypto';
import type { BackendInfo, JobEvent } from '../contract/index.js';
import { ApiError, isTerminalJobEvent } from '../contract/index.js';
import {
  type HostToWorker,
  WorkerQueryResults,
  WorkerToHost,
  type WorkerQueryName,
} from '../contract/worker.js';
import type { JobsPort } from './ports.js';

export interface WorkerExit {
  code: number | null;
  signal: string | null;
}

/** The host's handle on one worker process. */
export interface WorkerProcess {
  readonly pid: number | undefined;
  send(message: HostToWorker): void;
  onMessage(listener: (message: unknown) => void): void;
  onExit(listener: (exit: WorkerExit) => void): void;
  /** The last lines the process wrote to stderr, when captured (crash reports). */
  stderrTail?(): string;
  kill(): void;
}

export type WorkerSpawner = () => WorkerProcess;

export interface SupervisorOptions {
  spawn: WorkerSpawner;
  /** Give up after this many crashes within `restartWindowMs` (default 5 in 60 s). */
  maxRestarts?: number;
  restartWindowMs?: number;
  /** How long `stop()` waits for a clean exit before killing (default 3 s). */
  shutdownTimeoutMs?: number;
  now?: () => number;
  newJobId?: () => string;
}

interface InFlight {
  kind: string;
  runId: number | null;
}

interface PendingQuery {
  name: WorkerQueryName;
  resolve(value: unknown): void;
  reject(e: Error): void;
}

export class WorkerSupervisor implements JobsPort {
  private worker: WorkerProcess | null = null;
  private ready = false;
  private outbox: HostToWorker[] = [];
  private readonly inFlight = new Map<string, InFlight>();
  private readonly listeners = new Set<(e: JobEvent) => void>();
  private readonly queries = new Map<number, PendingQuery>();
  private readonly readyWaiters: { resolve(): void; reject(e: Error): void }[] = [];
  private nextQueryId = 0;
  private crashes: number[] = [];
  private stopping = false;
  private gaveUp: string | null = null;
  private spawned = 0;
  private readonly now: () => number;
  private readonly newJobId: () => string;

  constructor(private readonly opts: SupervisorOptions) {
    this.now = opts.now ?? Date.now;
    this.newJobId = opts.newJobId ?? (() => randomUUID());
  }

  /** Starts the worker (idempotent). Resolves when it reported ready. */
  start(): Promise<void> {
    if (!this.worker && !this.stopping) this.spawn();
    return this.whenReady();
  }

  whenReady(): Promise<void> {
    if (this.ready) return Promise.resolve();
    if (this.gaveUp) return Promise.reject(new ApiError('unavailable', this.gaveUp));
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /** The current worker's pid (undefined while none runs). */
  get pid(): number | undefined {
    return this.worker?.pid;
  }

  /** How many workers were spawned so far (1 + restarts). */
  get generation(): number {
    return this.spawned;
  }

  onEvent(listener: (e: JobEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  startJob(kind: string, config: Record<string, unknown>): string {
    this.assertUsable();
    const jobId = this.newJobId();
    this.inFlight.set(jobId, { kind, runId: null });
    this.post({ type: 'start', jobId, kind, config });
    return jobId;
  }

  cancelJob(jobId: string): boolean {
    if (!this.inFlight.has(jobId)) return false;
    this.post({ type: 'cancel', jobId });
    return true;
  }

  queryBackends(): Promise<BackendInfo[]> {
    return this.query('backends') as Promise<BackendInfo[]>;
  }

  private query(name: WorkerQueryName): Promise<unknown> {
    this.assertUsable();
    const id = this.nextQueryId++;
    return new Promise((resolve, reject) => {
      this.queries.set(id, { name, resolve, reject });
      this.post({ type: 'query', id, query: name });
    });
  }

  /** Asks the worker to cancel its jobs and exit; kills it if it does not in time. */
  async stop(): Promise<void> {
    this.stopping = true;
    const w = this.worker;
    if (!w) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        w.kill();
        resolve();
      }, this.opts.shutdownTimeoutMs ?? 3000);
      w.onExit(() => {
        clearTimeout(timer);
        resolve();
      });
      try {
        w.send({ type: 'shutdown' });
      } catch {
        w.kill();
      }
    });
  }

  private assertUsable(): void {
    if (this.gaveUp) throw new ApiError('unavailable', this.gaveUp);
    if (this.stopping) throw new ApiError('unavailable', 'the job worker is shutting down');
    if (!this.worker) this.spawn();
  }

  private post(msg: HostToWorker): void {
    if (this.ready && this.worker) this.worker.send(msg);
    else this.outbox.push(msg);
  }

  private emit(e: JobEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        process.stderr.write(`upit: job event listener failed: ${String(err)}\n`);
      }
    }
  }

  private spawn(): void {
    const w = this.opts.spawn();
    this.spawned++;
    this.worker = w;
    this.ready = false;
    w.onMessage((raw) => {
      if (this.worker === w) this.receive(raw);
    });
    w.onExit((exit) => {
      if (this.worker === w) this.exited(w, exit);
    });
  }

  private receive(raw: unknown): void {
    const parsed = WorkerToHost.safeParse(raw);
    if (!parsed.success) {
      process.stderr.write(
        `upit: ignoring an invalid message from the job worker: ${parsed.error.message}\n`,
      );
      return;
    }
    const msg = parsed.data;
    if (msg.type === 'ready') {
      this.ready = true;
      for (const m of this.outbox.splice(0)) this.worker!.send(m);
      for (const w of this.readyWaiters.splice(0)) w.resolve();
      return;
    }
    if (msg.type === 'reply') {
      const q = this.queries.get(msg.id);
      if (!q) return;
      this.queries.delete(msg.id);
      if (!msg.ok) {
        q.reject(new ApiError('internal', msg.error ?? `${q.name} query failed`));
        return;
      }
      const checked = WorkerQueryResults[q.name].safeParse(msg.result);
      if (checked.success) q.resolve(checked.data);
      else q.reject(new ApiError('internal', `the worker answered ${q.name} with invalid data`));
      return;
    }
    const e = msg.event;
    const job = this.inFlight.get(e.jobId);
    if (job && e.type === 'job.started') job.runId = e.runId;
    if (isTerminalJobEvent(e)) this.inFlight.delete(e.jobId);
    this.emit(e);
  }

  private exited(w: WorkerProcess, exit: WorkerExit): void {
    this.worker = null;
    this.ready = false;
    if (this.stopping) return;
    const how = exit.signal ? `killed by ${exit.signal}` : `exit code ${String(exit.code)}`;
    const tail = w.stderrTail?.().trim().split('\n').pop()?.trim();
    const error = `the job worker stopped unexpectedly (${how})${tail ? `: ${tail}` : ''}`;

    const orphanedRuns: number[] = [];
    const at = this.now();
    const lost = [...this.inFlight.entries()];
    this.inFlight.clear();
    this.outbox = [];
    for (const [jobId, job] of lost) {
      if (job.runId !== null) orphanedRuns.push(job.runId);
      this.emit({ type: 'job.failed', jobId, runId: job.runId, error, at });
    }
    for (const [id, q] of this.queries) {
      this.queries.delete(id);
      q.reject(new ApiError('unavailable', error));
    }

    const windowMs = this.opts.restartWindowMs ?? 60_000;
    this.crashes = [...this.crashes.filter((t) => at - t < windowMs), at];
    if (this.crashes.length > (this.opts.maxRestarts ?? 5)) {
      this.gaveUp = `${error}; it crashed ${this.crashes.length} times within ${Math.round(windowMs / 1000)} s, not restarting`;
      for (const r of this.readyWaiters.splice(0)) r.reject(new ApiError('unavailable', this.gaveUp));
      return;
    }
    this.spawn();
    if (orphanedRuns.length > 0) this.post({ type: 'fail-runs', runIds: orphanedRuns, error });
  }
}
