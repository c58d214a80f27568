/**
 * The host's view of recent jobs, folded from job events (for `jobs.list`). Keeps every
 * queued/running job and the last `keepFinished` ended ones.
 */
import type { JobEvent, JobInfo } from '../contract/index.js';

export class JobTracker {
  private readonly jobs = new Map<string, JobInfo>();

  constructor(private readonly keepFinished = 50) {}

  /** Registers a job the host just asked the worker to start. */
  add(jobId: string, kind: string, at: number): void {
    if (!this.jobs.has(jobId)) {
      this.jobs.set(jobId, {
        jobId,
        kind,
        state: 'queued',
        runId: null,
        queuedAt: at,
        progress: null,
        error: null,
      });
    }
  }

  has(jobId: string): boolean {
    return this.jobs.has(jobId);
  }

  get(jobId: string): JobInfo | undefined {
    return this.jobs.get(jobId);
  }

  apply(e: JobEvent): void {
    let job = this.jobs.get(e.jobId);
    if (!job) {
      if (e.type !== 'job.queued' && e.type !== 'job.started') return;
      this.add(e.jobId, e.kind, e.at);
      job = this.jobs.get(e.jobId)!;
    }
    switch (e.type) {
      case 'job.started':
        job.state = 'running';
        job.runId = e.runId;
        break;
      case 'job.progress':
        job.progress = { step: e.step, total: e.total, loss: e.loss ?? null, tokensPerSec: e.tokensPerSec };
        break;
      case 'job.finished':
        job.state = 'finished';
        break;
      case 'job.failed':
        job.state = 'failed';
        job.error = e.error;
        if (e.runId !== null) job.runId = e.runId;
        break;
      case 'job.cancelled':
        job.state = 'cancelled';
        break;
      default:
        break;
    }
    this.prune();
  }

  /** Newest first. */
  list(): JobInfo[] {
    return [...this.jobs.values()]
      .reverse()
      .map((j) => ({ ...j, progress: j.progress && { ...j.progress } }));
  }

  private prune(): void {
    const ended = [...this.jobs.values()].filter((j) => j.state !== 'queued' && j.state !== 'running');
    for (const j of ended.slice(0, Math.max(0, ended.length - this.keepFinished))) this.jobs.delete(j.jobId);
  }
}
