import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseResponse } from '../../../src-main/contract/index.js';
import type { JobEvent } from '../../../src-main/contract/index.js';
import { forkWorkerSpawner } from '../../../src-main/jobs/fork-worker.js';
import { openWorkspaceHandle } from '../../../src-main/jobs/store-adapter.js';
import { WorkerSupervisor } from '../../../src-main/jobs/worker-supervisor.js';
import { openWorkspace } from '../../../src-main/store/index.js';

const cleanup: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function tempWorkspace(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'upit-adapter-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe('store adapter', () => {
  it('maps store rows to valid contract responses', () => {
    const dir = tempWorkspace();
    const ws = openWorkspace(dir, { create: true });
    const a = ws.db.createRun({ kind: 'pretrain', seed: 1, config: { lr: 0.001 } });
    ws.db.startRun(a.id, { backend: 'wasm' });
    ws.db.insertMetrics(a.id, [
      { key: 'loss', step: 1, value: 2, tokens: 100, wallTime: null },
      { key: 'loss', step: 2, value: NaN, tokens: 200, wallTime: null },
      { key: 'loss', step: 3, value: 1, tokens: 300, wallTime: null },
    ]);
    ws.db.addCheckpoint({
      runId: a.id,
      step: 3,
      path: 'runs/1/c.safetensors',
      sha256: 'a'.repeat(64),
      bytes: 10,
    });
    ws.db.addEvaluation({ runId: a.id, domain: 'math', metric: 'em', score: 0.5 });
    const b = ws.db.createRun({ kind: 'eval', variant: 'UpIT' });
    ws.close();

    const h = openWorkspaceHandle(dir, { create: false });
    cleanup.push(() => h.close());
    const list = parseResponse('runs.list', h.runs.listRuns({ limit: 10, offset: 0 }));
    expect(list.runs.map((r) => r.id)).toEqual([b.id, a.id]);
    expect(list.total).toBe(2);
    expect(h.runs.listRuns({ limit: 10, offset: 0, search: 'upit' }).runs.map((r) => r.id)).toEqual([b.id]);
    expect(h.runs.listRuns({ limit: 10, offset: 0, statuses: ['running'] }).runs.map((r) => r.id)).toEqual([
      a.id,
    ]);
    expect(h.runs.listRuns({ limit: 1, offset: 1 })).toMatchObject({ total: 2, runs: [{ id: a.id }] });

    const series = parseResponse(
      'runs.metricSeries',
      h.runs.getMetricSeries({ runId: a.id, key: 'loss', maxPoints: 100 }),
    );
    expect(series).toEqual({
      runId: a.id,
      key: 'loss',
      steps: [1, 2, 3],
      values: [2, null, 1],
      tokens: [100, 200, 300],
      total: 3,
    });
    expect(h.runs.getMetricSeries({ runId: 999, key: 'loss', maxPoints: 10 })).toBeNull();
    const summary = h.runs.metricsSummary(a.id)!;
    expect(summary).toEqual([{ key: 'loss', count: 3, firstStep: 1, lastStep: 3, last: 1, min: 1, max: 2 }]);
    parseResponse('runs.checkpoints', { runId: a.id, checkpoints: h.runs.listCheckpoints(a.id) });
    parseResponse('runs.evaluations', { runId: a.id, evaluations: h.runs.listEvaluations(a.id) });
    expect(parseResponse('runs.get', { run: h.runs.getRun(a.id) }).run.config).toEqual({ lr: 0.001 });
    expect(h.runs.schemaVersion()).toBeGreaterThan(0);
  });

  it('a job in a forked worker records its run; after a SIGKILL the next worker marks it failed', async () => {
    const dir = tempWorkspace();
    const reader = openWorkspaceHandle(dir, { create: true });
    cleanup.push(() => reader.close());
    const sup = new WorkerSupervisor({ spawn: forkWorkerSpawner({ workspace: dir, inheritStderr: false }) });
    cleanup.push(() => sup.stop());
    const events: JobEvent[] = [];
    sup.onEvent((e) => events.push(e));
    const until = async (pred: () => boolean): Promise<void> => {
      for (let i = 0; i < 1500 && !pred(); i++) await new Promise((r) => setTimeout(r, 10));
      expect(pred()).toBe(true);
    };
    await sup.start();

    const ok = sup.startJob('demo', { steps: 3, intervalMs: 1 });
    const ended = (id: string) =>
      events.find((e) => e.jobId === id && (e.type === 'job.finished' || e.type === 'job.failed'));
    await until(() => ended(ok) !== undefined);
    // the store must know the 'demo' run kind (RUN_KINDS) for the demo job to record its run
    expect(ended(ok)?.type, JSON.stringify(ended(ok))).toBe('job.finished');
    const runId = (events.find((e) => e.type === 'job.started' && e.jobId === ok) as { runId: number }).runId;
    expect(reader.runs.getRun(runId)).toMatchObject({ kind: 'demo', status: 'done' });
    expect(reader.runs.getMetricSeries({ runId, key: 'loss', maxPoints: 100 })?.steps).toEqual([1, 2, 3]);

    const doomed = sup.startJob('demo', { steps: 100_000, intervalMs: 5 });
    await until(() => events.some((e) => e.type === 'job.progress' && e.jobId === doomed));
    const doomedRun = (
      events.find((e) => e.type === 'job.started' && e.jobId === doomed) as { runId: number }
    ).runId;
    expect(reader.runs.getRun(doomedRun)?.status).toBe('running');
    process.kill(sup.pid!, 'SIGKILL');
    await until(() => events.some((e) => e.type === 'job.failed' && e.jobId === doomed));
    await until(() => reader.runs.getRun(doomedRun)?.status === 'failed');
    expect(reader.runs.getRun(doomedRun)?.error).toMatch(/SIGKILL/);
  });
});
