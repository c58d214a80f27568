/**
 * Runs registered jobs inside the worker process: a FIFO queue (one job at a time by
 * default: jobs are heavy and share the tensor engine), a run row per job where the kind
 * records one, streamed progress/metric/log events, cancellation through an AbortSignal.
 * Independent of the process plumbing (see worker.ts), so tests drive it in-process.
 */
import { UserError } from '../common/errors.js';
import type { JobEvent, JobProgress } from '../contract/index.js';
import { formatPath } from '../contract/index.js';
import { jobKindSpec } from './kinds/catalog.js';
import type { MetricSink, WorkspaceHandle } from './ports.js';

export type LogLevel = 'info' | 'warn' | 'error';

export interface JobContext {
  readonly jobId: string;
  /** The run this job records into, or null (no workspace, or a kind that records none). */
  readonly runId: number | null;
  /** Aborted when the job is cancelled: pass it on, check it between steps. */
  readonly signal: AbortSignal;
  readonly workspace: WorkspaceHandle | null;
  progress(p: JobProgress): void;
  /** Records a metric point in the run (if any) and streams it to the GUI. */
  metric(key: string, step: number, value: number, tokens?: number | null): void;
  log(message: string, level?: LogLevel): void;
  /** Passes the events of jobs this job runs itself (a plan's jobs) on to the host as they are. */
  forward(event: JobEvent): void;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each kind has its own config type
export type JobFn = (config: any, ctx: JobContext) => Promise<unknown>;

/** kind → loader of its implementation (lazy: the worker starts fast, heavy modules load on use). */
export type JobRegistry = Readonly<Record<string, () => Promise<JobFn>>>;

export interface JobRunnerOptions {
  registry: JobRegistry;
  workspace: WorkspaceHandle | null;
  emit(event: JobEvent): void;
  concurrency?: number;
  now?: () => number;
}

/** Where a job's run goes: a new run (in an experiment, for a variant) or an existing queued run. */
export interface RunPlacement {
  /** Resume this run (it must be queued, e.g. requeued after a failure): its folder and checkpoints are reused. */
  runId?: number;
  experimentId?: number | null;
  variant?: string | null;
}

interface QueuedJob {
  jobId: string;
  kind: string;
  config: Record<string, unknown>;
  run: RunPlacement;
  controller: AbortController;
  state: 'queued' | 'running';
}

export class JobRunner {
  private readonly queue: QueuedJob[] = [];
  private readonly jobs = new Map<string, QueuedJob>();
  private running = 0;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly concurrency: number;
  private readonly now: () => number;

  constructor(private readonly opts: JobRunnerOptions) {
    this.concurrency = opts.concurrency ?? 1;
    this.now = opts.now ?? Date.now;
  }

  get kinds(): string[] {
    return Object.keys(this.opts.registry);
  }

  /** Jobs queued or running. */
  get size(): number {
    return this.jobs.size;
  }

  start(jobId: string, kind: string, config: Record<string, unknown>, run: RunPlacement = {}): void {
    if (this.jobs.has(jobId)) {
      this.emitLog(jobId, `job ${jobId} is already known; duplicate start ignored`, 'warn');
      return;
    }
    const job: QueuedJob = { jobId, kind, config, run, controller: new AbortController(), state: 'queued' };
    this.jobs.set(jobId, job);
    this.queue.push(job);
    this.opts.emit({ type: 'job.queued', jobId, kind, at: this.now() });
    this.pump();
  }

  /** Returns false when the job is unknown here (never started, or already ended). */
  cancel(jobId: string): boolean {
    const job = this.jobs.get(jobId);
    if (!job) return false;
    if (job.state === 'queued') {
      this.queue.splice(this.queue.indexOf(job), 1);
      this.jobs.delete(jobId);
      this.opts.emit({ type: 'job.cancelled', jobId, runId: null, at: this.now() });
      this.settleIdle();
      return true;
    }
    job.controller.abort(new UserError('cancelled'));
    return true;
  }

  /** Marks runs left 'running' by a crashed worker as failed. */
  failRuns(runIds: number[], error: string): void {
    const recorder = this.opts.workspace?.recorder;
    if (!recorder) return;
    for (const id of runIds) {
      try {
        recorder.finishRun(id, { status: 'failed', error });
      } catch {
        // the run may be gone (deleted) or already final: nothing to repair
      }
    }
  }

  /** Resolves when no job is queued or running. */
  idle(): Promise<void> {
    if (this.jobs.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Cancels everything and waits for the running jobs to stop. */
  async shutdown(): Promise<void> {
    for (const id of [...this.jobs.keys()]) this.cancel(id);
    await this.idle();
  }

  private settleIdle(): void {
    if (this.jobs.size > 0) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private pump(): void {
    while (this.running < this.concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      job.state = 'running';
      this.running++;
      void this.execute(job).finally(() => {
        this.running--;
        this.jobs.delete(job.jobId);
        this.settleIdle();
        this.pump();
      });
    }
  }

  private emitLog(jobId: string, message: string, level: LogLevel): void {
    this.opts.emit({ type: 'job.log', jobId, level, message: message.slice(0, 10_000), at: this.now() });
  }

  private async execute(job: QueuedJob): Promise<void> {
    const { jobId, kind } = job;
    const emit = this.opts.emit;
    const spec = jobKindSpec(kind);
    const load = this.opts.registry[kind];
    if (!spec || !load) {
      emit({ type: 'job.failed', jobId, runId: null, error: `unknown job kind '${kind}'`, at: this.now() });
      return;
    }
    const parsed = spec.config.safeParse(job.config);
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      const where = first ? formatPath(['config', ...first.path]) : 'config';
      emit({
        type: 'job.failed',
        jobId,
        runId: null,
        error: `invalid ${kind} config: ${where}: ${first?.message ?? 'invalid'}`,
        at: this.now(),
      });
      return;
    }
    const config = parsed.data as Record<string, unknown>;
    const recorder = spec.createsRun ? this.opts.workspace?.recorder : undefined;
    let runId: number | null = null;
    let sink: MetricSink | null = null;
    try {
      if (recorder) {
        runId =
          job.run.runId ??
          recorder.createRun({
            kind,
            config,
            seed: typeof config['seed'] === 'number' ? config['seed'] : null,
            experimentId: job.run.experimentId ?? null,
            variant: job.run.variant ?? null,
          });
        recorder.startRun(runId, {
          backend: typeof config['backend'] === 'string' ? config['backend'] : null,
          pid: process.pid,
        });
        sink = recorder.metricSink(runId);
      }
    } catch (e) {
      emit({
        type: 'job.failed',
        jobId,
        runId,
        error: `cannot record the run: ${errorMessage(e)}`,
        at: this.now(),
      });
      return;
    }
    emit({ type: 'job.started', jobId, kind, runId, at: this.now() });

    const signal = job.controller.signal;
    const ctx: JobContext = {
      jobId,
      runId,
      signal,
      workspace: this.opts.workspace,
      progress: (p) => emit({ type: 'job.progress', jobId, at: this.now(), ...p }),
      metric: (key, step, value, tokens) => {
        sink?.write(key, step, value, tokens ?? null);
        emit({
          type: 'job.metric',
          jobId,
          runId,
          step,
          key,
          value: Number.isFinite(value) ? value : null,
          tokens: tokens ?? null,
          at: this.now(),
        });
      },
      log: (message, level = 'info') => this.emitLog(jobId, message, level),
      forward: (event) => emit(event),
    };

    let outcome: { status: 'done'; result: unknown } | { status: 'failed' | 'cancelled'; error: string };
    let rejected = false;
    try {
      const fn = await load();
      signal.throwIfAborted();
      const result = await fn(config, ctx);
      outcome = { status: 'done', result: result ?? null };
    } catch (e) {
      if (signal.aborted) {
        outcome = { status: 'cancelled', error: 'cancelled' };
      } else {
        if (!(e instanceof UserError) && e instanceof Error && e.stack) this.emitLog(jobId, e.stack, 'error');
        outcome = { status: 'failed', error: errorMessage(e) };
        rejected = e instanceof UserError && job.run.runId === undefined;
      }
    }

    try {
      sink?.close();
      // a new run refused for bad input before it recorded anything leaves no trace: the error
      // goes to the caller (CLI message, GUI job event), the workspace stays as it was
      if (rejected && recorder?.discardIfEmpty && runId !== null && recorder.discardIfEmpty(runId))
        runId = null;
      else if (recorder && runId !== null) {
        recorder.finishRun(runId, {
          status: outcome.status,
          error: outcome.status === 'done' ? null : outcome.error,
        });
      }
    } catch (e) {
      if (outcome.status === 'done') {
        outcome = { status: 'failed', error: `cannot finish the run record: ${errorMessage(e)}` };
      }
    }

    const at = this.now();
    if (outcome.status === 'done') emit({ type: 'job.finished', jobId, runId, result: outcome.result, at });
    else if (outcome.status === 'cancelled') emit({ type: 'job.cancelled', jobId, runId, at });
    else emit({ type: 'job.failed', jobId, runId, error: outcome.error, at });
  }
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
