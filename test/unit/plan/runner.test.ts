/**
 * The batch runner (jobs/plan/runner.ts) on a real workspace database with stand-in jobs: runs the
 * graph in order under one experiment, marks each variant's result run, skips finished jobs on a
 * rerun, and resumes a failed or interrupted job in its own run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { JobContext, JobFn, JobRegistry } from '../../../src-main/jobs/job-runner.js';
import { runPlan } from '../../../src-main/jobs/plan/runner.js';
import { parsePlan } from '../../../src-main/jobs/plan/schema.js';
import { openWorkspaceHandle } from '../../../src-main/jobs/store-adapter.js';

const PLAN = parsePlan(
  `name: runner-test
data: { source: embedded, trainPerDomain: 4, evalPerDomain: 1 }
prepare: { epochs: 1, checkpointEvery: 0.5 }
expand: { n: 4 }
variants: [dense, upit, no-router-init, vanilla]
`,
  'runner-test.yaml',
);

interface Call {
  kind: string;
  runId: number | null;
  config: Record<string, unknown>;
}

/** Stand-in jobs: record the call; `failOnce` kinds fail their first call. */
function fakeRegistry(calls: Call[], failOnce: Set<string> = new Set()): JobRegistry {
  const fn =
    (kind: string): JobFn =>
    async (config: Record<string, unknown>, ctx: JobContext) => {
      calls.push({ kind, runId: ctx.runId, config });
      ctx.progress({ step: 1, total: 1 });
      if (failOnce.delete(kind)) throw new Error(`${kind} exploded`);
      return { ok: true };
    };
  return Object.fromEntries(['prepare', 'expand', 'route', 'upcycle'].map((k) => [k, async () => fn(k)]));
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function workspace() {
  const d = mkdtempSync(join(tmpdir(), 'upit-plan-run-'));
  dirs.push(d);
  return openWorkspaceHandle(d, { create: true });
}

describe('plan runner', () => {
  it('runs every job once, in dependency order, wiring run ids and marking variants; a rerun skips them', async () => {
    const ws = workspace();
    try {
      const calls: Call[] = [];
      const r = await runPlan(PLAN, ws, { registry: fakeRegistry(calls) });
      expect(r.status).toBe('done');
      expect(calls.map((c) => c.kind)).toEqual([
        'prepare',
        'expand',
        'route',
        'upcycle',
        'upcycle',
        'upcycle',
      ]);
      const runs = ws.store!.listRuns({ experimentId: r.experimentId });
      expect(runs).toHaveLength(6);
      expect(runs.every((x) => x.status === 'done')).toBe(true);
      const [prep, expand, route] = runs;
      expect(calls[1]!.config['prepareRun']).toBe(prep!.id);
      expect(calls[2]!.config['poolRun']).toBe(expand!.id);
      expect(calls[3]!.config).toMatchObject({ poolRun: route!.id, router: 'pretrained' });
      expect(runs.map((x) => x.variant)).toEqual(['dense', null, null, 'upit', 'no-router-init', 'vanilla']);
      expect(ws.store!.findExperiment('runner-test')!.plan).toMatchObject({ name: 'runner-test' });

      const again: Call[] = [];
      const r2 = await runPlan(PLAN, ws, { registry: fakeRegistry(again) });
      expect(r2.status).toBe('done');
      expect(again).toHaveLength(0);
      expect(r2.jobs.every((j) => j.status === 'skipped')).toBe(true);
      expect(ws.store!.listRuns({ experimentId: r.experimentId })).toHaveLength(6);
    } finally {
      ws.close();
    }
  });

  it('stops at a failed job and resumes it in the same run on the next try', async () => {
    const ws = workspace();
    try {
      const calls: Call[] = [];
      const r = await runPlan(PLAN, ws, { registry: fakeRegistry(calls, new Set(['route'])) });
      expect(r.status).toBe('failed');
      expect(r.error).toMatch(/route job for upit \(seed 1, run \d+\) failed: route exploded/);
      expect(r.jobs.map((j) => j.status)).toEqual([
        'done',
        'done',
        'failed',
        'pending',
        'pending',
        'pending',
      ]);
      const failed = r.jobs[2]!.runId!;

      const next: Call[] = [];
      const r2 = await runPlan(PLAN, ws, { registry: fakeRegistry(next) });
      expect(r2.status).toBe('done');
      expect(next.map((c) => [c.kind, c.runId === failed])).toEqual([
        ['route', true], // the same run: its folder and checkpoints are reused
        ['upcycle', false],
        ['upcycle', false],
        ['upcycle', false],
      ]);
      expect(ws.store!.getRun(failed)!.status).toBe('done');
    } finally {
      ws.close();
    }
  });

  it('resumes a run left running by a killed process, and refuses one that is alive', async () => {
    const ws = workspace();
    try {
      const store = ws.store!;
      const first = await runPlan(PLAN, ws, { registry: fakeRegistry([], new Set(['upcycle'])) });
      expect(first.status).toBe('failed');
      const failedRun = store.getRun(first.jobs[3]!.runId!)!;
      // a runner killed mid-job leaves its run 'running' with a dead pid
      const orphan = store.createRun({
        kind: 'upcycle',
        config: failedRun.config,
        experimentId: first.experimentId,
      });
      store.startRun(orphan.id, { backend: 'wasm', pid: 0x3ffffe });
      const calls: Call[] = [];
      const r = await runPlan(PLAN, ws, { registry: fakeRegistry(calls) });
      expect(r.status).toBe('done');
      expect(calls[0]).toMatchObject({ kind: 'upcycle', runId: orphan.id });
      expect(store.getRun(orphan.id)!.status).toBe('done');

      // a live one (this process) is another runner's: refused, nothing started
      const p2 = parsePlan(
        `name: runner-test\ndata: { source: embedded, trainPerDomain: 4, evalPerDomain: 1 }\nvariants: [dense]\n`,
        'p2.yaml',
      );
      const cfg = (await import('../../../src-main/jobs/kinds/catalog.js')).PrepareConfig.parse({
        backend: 'auto',
        seed: 1,
        data: { source: 'embedded', trainPerDomain: 4, evalPerDomain: 1 },
      });
      const busy = store.createRun({ kind: 'prepare', config: cfg, experimentId: first.experimentId });
      store.startRun(busy.id, { backend: 'wasm' });
      await expect(runPlan(p2, ws, { registry: fakeRegistry([]) })).rejects.toThrow(
        new RegExp(`run ${busy.id} \\(prepare of plan runner-test\\) is running in another process`),
      );
    } finally {
      ws.close();
    }
  });
});
