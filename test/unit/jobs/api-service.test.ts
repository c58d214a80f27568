import { describe, expect, it } from 'vitest';
import type { AppEvent, BackendInfo, JobEvent } from '../../../src-main/contract/index.js';
import { ApiError } from '../../../src-main/contract/index.js';
import { createApiService } from '../../../src-main/jobs/api-service.js';
import { MemoryWorkspace } from './memory-workspace.js';
import type { JobsPort } from '../../../src-main/jobs/ports.js';

class FakeJobs implements JobsPort {
  readonly started: { kind: string; config: Record<string, unknown> }[] = [];
  readonly cancelled: string[] = [];
  private listener: ((e: JobEvent) => void) | null = null;
  startJob(kind: string, config: Record<string, unknown>): string {
    this.started.push({ kind, config });
    return `job${this.started.length}`;
  }
  cancelJob(jobId: string): boolean {
    this.cancelled.push(jobId);
    return true;
  }
  onEvent(l: (e: JobEvent) => void): () => void {
    this.listener = l;
    return () => (this.listener = null);
  }
  async queryBackends(): Promise<BackendInfo[]> {
    return [{ name: 'cpu', status: 'ok', detail: 'reference' }];
  }
  emit(e: JobEvent): void {
    this.listener?.(e);
  }
}

function setup() {
  const ws = new MemoryWorkspace('/tmp/my-workspace', () => 1000);
  const jobs = new FakeJobs();
  const service = createApiService({ workspace: ws, jobs, host: 'web', appVersion: '9.9.9', now: () => 5 });
  return { ws, jobs, service };
}

async function failure(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ApiError);
    return e as ApiError;
  }
  throw new Error('expected a failure');
}

describe('API service', () => {
  it('answers workspace.info', async () => {
    const { service } = setup();
    expect(await service.call('workspace.info', {})).toEqual({
      dir: '/tmp/my-workspace',
      name: 'my-workspace',
      schemaVersion: 1,
      appVersion: '9.9.9',
      host: 'web',
    });
  });

  it('lists and reads runs through the repository', async () => {
    const { ws, service } = setup();
    const id = ws.recorder.createRun({ kind: 'pretrain', config: { lr: 1 } });
    ws.addMetrics(id, 'loss', [
      { step: 1, value: 3, tokens: 10 },
      { step: 2, value: 2, tokens: 20 },
    ]);
    expect(await service.call('runs.list', {})).toMatchObject({ total: 1, runs: [{ id, kind: 'pretrain' }] });
    expect(await service.call('runs.get', { runId: id })).toMatchObject({ run: { id, config: { lr: 1 } } });
    expect(await service.call('runs.metricSeries', { runId: id, key: 'loss' })).toEqual({
      runId: id,
      key: 'loss',
      steps: [1, 2],
      values: [3, 2],
      tokens: [10, 20],
      total: 2,
    });
    expect(await service.call('runs.metricsSummary', { runId: id })).toMatchObject({
      metrics: [{ key: 'loss' }],
    });
    expect(await service.call('runs.checkpoints', { runId: id })).toEqual({ runId: id, checkpoints: [] });
    expect(await service.call('runs.evaluations', { runId: id })).toEqual({
      runId: id,
      evaluations: [],
      specialisation: null,
    });
  });

  it('answers not_found for a missing run and bad_request with field paths', async () => {
    const { service } = setup();
    expect((await failure(service.call('runs.get', { runId: 42 }))).code).toBe('not_found');
    expect((await failure(service.call('runs.metricSeries', { runId: 42, key: 'x' }))).code).toBe(
      'not_found',
    );
    const bad = await failure(service.call('runs.get', { runId: 'x' }));
    expect(bad.code).toBe('bad_request');
    expect(bad.issues?.[0]?.path).toBe('runId');
    expect((await failure(service.call('runs.drop', {}))).code).toBe('unknown_method');
    expect((await failure(service.call('constructor', {}))).code).toBe('unknown_method');
  });

  it('validates a job config against its kind before starting it', async () => {
    const { jobs, service } = setup();
    const e = await failure(service.call('jobs.start', { kind: 'demo', config: { steps: 'many' } }));
    expect(e.issues?.[0]?.path).toBe('config.steps');
    expect((await failure(service.call('jobs.start', { kind: 'transmogrify' }))).issues?.[0]?.path).toBe(
      'kind',
    );
    expect(jobs.started).toEqual([]);

    expect(await service.call('jobs.start', { kind: 'demo', config: { steps: 3 } })).toEqual({
      jobId: 'job1',
    });
    expect(jobs.started[0]).toEqual({
      kind: 'demo',
      config: { steps: 3, intervalMs: 100, seed: 0, tokensPerStep: 512 },
    });
    expect(await service.call('jobs.list', {})).toEqual({
      jobs: [
        {
          jobId: 'job1',
          kind: 'demo',
          state: 'queued',
          runId: null,
          queuedAt: 5,
          progress: null,
          error: null,
        },
      ],
    });
  });

  it('tracks job state from events and forwards them to subscribers', async () => {
    const { jobs, service } = setup();
    const seen: AppEvent[] = [];
    service.subscribe((e) => seen.push(e));
    await service.call('jobs.start', { kind: 'demo' });
    jobs.emit({ type: 'job.started', jobId: 'job1', kind: 'demo', runId: 7, at: 6 });
    jobs.emit({ type: 'job.progress', jobId: 'job1', step: 2, total: 9, loss: 1.5, at: 7 });
    expect(await service.call('jobs.list', {})).toMatchObject({
      jobs: [{ jobId: 'job1', state: 'running', runId: 7, progress: { step: 2, total: 9, loss: 1.5 } }],
    });
    expect(await service.call('jobs.cancel', { jobId: 'job1' })).toEqual({ cancelled: true });
    expect(jobs.cancelled).toEqual(['job1']);
    jobs.emit({ type: 'job.failed', jobId: 'job1', runId: 7, error: 'boom', at: 8 });
    expect(await service.call('jobs.list', {})).toMatchObject({ jobs: [{ state: 'failed', error: 'boom' }] });
    expect(seen.map((e) => e.type)).toEqual(['job.started', 'job.progress', 'job.failed']);
    expect((await failure(service.call('jobs.cancel', { jobId: 'nope' }))).code).toBe('not_found');
  });

  it('lists job kinds and backends', async () => {
    const { service } = setup();
    const { kinds } = (await service.call('jobs.kinds', {})) as {
      kinds: { kind: string; createsRun: boolean }[];
    };
    expect(kinds.map((k) => k.kind)).toEqual([
      'demo',
      'pretrain',
      'prepare',
      'eval',
      'expand',
      'route',
      'upcycle',
      'plan',
    ]);
    // every kind records a run, except the plan runner (its jobs do)
    expect(kinds.filter((k) => !k.createsRun).map((k) => k.kind)).toEqual(['plan']);
    expect(await service.call('backends.list', {})).toEqual({
      backends: [{ name: 'cpu', status: 'ok', detail: 'reference' }],
    });
  });

  it('refuses to return a response that breaks the contract', async () => {
    const { ws, service } = setup();
    const id = ws.recorder.createRun({ kind: 'pretrain', config: {} });
    ws.runsById.get(id)!.status = 'exploded' as never;
    const e = await failure(service.call('runs.get', { runId: id }));
    expect(e.code).toBe('internal');
    expect(e.message).toContain('run.status');
  });
});
