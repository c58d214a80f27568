import { describe, expect, it } from 'vitest';
import type { JobEvent } from '../../../src-main/contract/index.js';
import { JobRunner, type JobFn } from '../../../src-main/jobs/job-runner.js';
import { JOB_KINDS } from '../../../src-main/jobs/kinds/catalog.js';
import { JOB_REGISTRY } from '../../../src-main/jobs/kinds/registry.js';
import { MemoryWorkspace } from './memory-workspace.js';

function setup(registry: Record<string, () => Promise<JobFn>> = JOB_REGISTRY, withWorkspace = true) {
  const events: JobEvent[] = [];
  const ws = withWorkspace ? new MemoryWorkspace() : null;
  const runner = new JobRunner({ registry, workspace: ws, emit: (e) => events.push(e) });
  const of = <T extends JobEvent['type']>(type: T) =>
    events.filter((e): e is Extract<JobEvent, { type: T }> => e.type === type);
  return { events, ws, runner, of };
}

describe('JobRunner', () => {
  it('every catalog kind has an implementation', () => {
    expect(Object.keys(JOB_REGISTRY).sort()).toEqual(Object.keys(JOB_KINDS).sort());
  });

  it('runs the demo job: run recorded, progress and metrics streamed and stored', async () => {
    const { ws, runner, of, events } = setup();
    runner.start('j1', 'demo', { steps: 5, intervalMs: 0, seed: 3 });
    await runner.idle();
    expect(events[0]).toMatchObject({ type: 'job.queued', jobId: 'j1', kind: 'demo' });
    const started = of('job.started')[0]!;
    expect(started.runId).toBe(1);
    expect(of('job.progress').map((p) => p.step)).toEqual([1, 2, 3, 4, 5]);
    const metrics = of('job.metric');
    expect(metrics.map((m) => [m.step, m.key, m.tokens])).toEqual(
      [1, 2, 3, 4, 5].map((s) => [s, 'loss', s * 512]),
    );
    expect(of('job.finished')[0]).toMatchObject({ runId: 1, result: { steps: 5 } });
    const run = ws!.runsById.get(1)!;
    expect(run).toMatchObject({ kind: 'demo', status: 'done', seed: 3, error: null, backend: 'none' });
    expect(
      ws!.metrics
        .get(1)
        ?.get('loss')
        ?.map((p) => p.value),
    ).toEqual(metrics.map((m) => m.value));
  });

  it('is deterministic by seed', async () => {
    const a = setup();
    const b = setup();
    a.runner.start('x', 'demo', { steps: 4, intervalMs: 0, seed: 7 });
    b.runner.start('x', 'demo', { steps: 4, intervalMs: 0, seed: 7 });
    await Promise.all([a.runner.idle(), b.runner.idle()]);
    expect(a.of('job.metric').map((m) => m.value)).toEqual(b.of('job.metric').map((m) => m.value));
  });

  it('runs jobs one at a time in order', async () => {
    const { runner, events } = setup();
    runner.start('a', 'demo', { steps: 2, intervalMs: 1 });
    runner.start('b', 'demo', { steps: 2, intervalMs: 1 });
    await runner.idle();
    const order = events.filter(
      (e) => e.type !== 'job.progress' && e.type !== 'job.metric' && e.type !== 'job.log',
    );
    expect(order.map((e) => `${e.type}:${e.jobId}`)).toEqual([
      'job.queued:a',
      'job.started:a',
      'job.queued:b',
      'job.finished:a',
      'job.started:b',
      'job.finished:b',
    ]);
  });

  it('cancels a running job through its AbortSignal and a queued one before it starts', async () => {
    const { ws, runner, of } = setup();
    runner.start('long', 'demo', { steps: 1000, intervalMs: 5 });
    runner.start('next', 'demo', { steps: 3, intervalMs: 0 });
    await new Promise((r) => setTimeout(r, 30));
    expect(runner.cancel('next')).toBe(true);
    expect(runner.cancel('long')).toBe(true);
    await runner.idle();
    expect(
      of('job.cancelled')
        .map((e) => e.jobId)
        .sort(),
    ).toEqual(['long', 'next']);
    expect(of('job.started').map((e) => e.jobId)).toEqual(['long']);
    expect(ws!.runsById.get(1)?.status).toBe('cancelled');
    expect(of('job.progress').length).toBeLessThan(1000);
    expect(runner.cancel('long')).toBe(false);
  });

  it('reports a failing job with its message and marks the run failed', async () => {
    const { ws, runner, of } = setup();
    runner.start('f', 'demo', { steps: 5, intervalMs: 0, failAt: 3 });
    await runner.idle();
    expect(of('job.failed')[0]).toMatchObject({
      jobId: 'f',
      runId: 1,
      error: expect.stringContaining('step 3'),
    });
    expect(ws!.runsById.get(1)).toMatchObject({ status: 'failed', error: expect.stringContaining('step 3') });
    expect(of('job.metric')).toHaveLength(2);
  });

  it('fails unknown kinds and invalid configs without recording a run', async () => {
    const { ws, runner, of } = setup();
    runner.start('u', 'nope', {});
    runner.start('v', 'demo', { steps: -1 });
    await runner.idle();
    expect(of('job.failed').map((e) => e.error)).toEqual([
      "unknown job kind 'nope'",
      expect.stringContaining('config.steps'),
    ]);
    expect(ws!.runsById.size).toBe(0);
  });

  it('runs without a workspace (no run, metrics still streamed)', async () => {
    const { runner, of } = setup(JOB_REGISTRY, false);
    runner.start('n', 'demo', { steps: 2, intervalMs: 0 });
    await runner.idle();
    expect(of('job.started')[0]?.runId).toBeNull();
    expect(of('job.metric').map((m) => m.runId)).toEqual([null, null]);
    expect(of('job.finished')).toHaveLength(1);
  });

  it('turns NaN metrics into null events', async () => {
    const registry = {
      demo: async (): Promise<JobFn> => async (_c, ctx) => ctx.metric('loss', 1, NaN),
    };
    const { runner, of } = setup(registry);
    runner.start('nan', 'demo', {});
    await runner.idle();
    expect(of('job.metric')[0]?.value).toBeNull();
  });

  it('marks orphaned runs failed on request', () => {
    const { ws, runner } = setup();
    const id = ws!.recorder.createRun({ kind: 'demo', config: {} });
    ws!.recorder.startRun(id, {});
    runner.failRuns([id, 999], 'worker crashed');
    expect(ws!.runsById.get(id)).toMatchObject({ status: 'failed', error: 'worker crashed' });
  });
});
