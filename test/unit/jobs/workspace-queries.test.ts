/**
 * The API methods behind the stage views (experiments, experts, routing, compare, reports,
 * plans) on a real workspace database built through the Store API.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { BackendInfo, JobEvent } from '../../../src-main/contract/index.js';
import { ApiError } from '../../../src-main/contract/index.js';
import { createApiService } from '../../../src-main/jobs/api-service.js';
import type { JobsPort } from '../../../src-main/jobs/ports.js';
import { openWorkspaceHandle } from '../../../src-main/jobs/store-adapter.js';
import { buildExperiment } from '../report/fixture.js';

class FakeJobs implements JobsPort {
  readonly started: { kind: string; config: Record<string, unknown> }[] = [];
  startJob(kind: string, config: Record<string, unknown>): string {
    this.started.push({ kind, config });
    return `job${this.started.length}`;
  }
  cancelJob(): boolean {
    return true;
  }
  onEvent(_l: (e: JobEvent) => void): () => void {
    return () => undefined;
  }
  async queryBackends(): Promise<BackendInfo[]> {
    return [];
  }
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'upit-queries-'));
  dirs.push(dir);
  const ws = openWorkspaceHandle(dir, { create: true });
  const built = buildExperiment(ws.store!);
  const jobs = new FakeJobs();
  const service = createApiService({ workspace: ws, jobs, host: 'web', appVersion: '1', now: () => 5 });
  return { ws, built, jobs, service, dir };
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

describe('stage-view API methods', () => {
  it('lists experiments with run counts and variants in plan order, and gets one with its runs', async () => {
    const { ws, built, service } = setup();
    try {
      const list = (await service.call('experiments.list', {})) as {
        experiments: {
          id: number;
          name: string;
          runs: number;
          byStatus: Record<string, number>;
          variants: string[];
        }[];
      };
      expect(list.experiments).toHaveLength(1);
      const e = list.experiments[0]!;
      expect(e).toMatchObject({ id: built.experimentId, name: 'paper-ablation' });
      expect(e.variants).toEqual(['upit', 'dense', 'vanilla']);
      expect(e.byStatus['failed']).toBe(1);
      expect(e.runs).toBe(Object.values(e.byStatus).reduce((a, b) => a + b, 0));
      const got = (await service.call('experiments.get', { experimentId: built.experimentId })) as {
        runs: { id: number }[];
        experiment: { plan: unknown };
      };
      expect(got.runs).toHaveLength(e.runs);
      expect(got.experiment.plan).toMatchObject({ seeds: [1, 2] });
      expect((await failure(service.call('experiments.get', { experimentId: 999 }))).code).toBe('not_found');
    } finally {
      ws.close();
    }
  });

  it("answers a run's experts with lineage and distances, and its routing and seed buckets", async () => {
    const { ws, built, service } = setup();
    try {
      const ex = (await service.call('runs.experts', { runId: built.expand[1]!.id })) as {
        experts: { idx: number; source: string; lineage: { parents: number[] } | null }[];
        distances: { metric: string; matrix: (number | null)[][] } | null;
      };
      expect(ex.experts.map((x) => x.idx)).toEqual([0, 1, 2, 3, 4, 5]);
      expect(ex.experts[4]!.lineage!.parents).toHaveLength(2);
      expect(ex.distances!.matrix).toHaveLength(6);
      expect(ex.distances!.matrix[2]![2]).toBe(0);
      const routing = (await service.call('runs.routing', { runId: built.upit[1]!.id })) as {
        stats: { layer: number; domain: string; fraction: number }[];
      };
      expect(routing.stats.length).toBeGreaterThan(0);
      const buckets = (await service.call('runs.routing', { runId: built.route[1]!.id })) as {
        seedBuckets: { size: number }[];
      };
      expect(buckets.seedBuckets.length).toBeGreaterThan(0);
      expect((await failure(service.call('runs.experts', { runId: 4242 }))).code).toBe('not_found');
    } finally {
      ws.close();
    }
  });

  it("answers a Stage 1 run's evaluations with the paired specialisation verdict", async () => {
    const { ws, service } = setup();
    const db = ws.store!;
    const run = db.createRun({ kind: 'prepare' });
    const key = 'cd'.repeat(32);
    const bits = (ones: number) => '1'.repeat(ones) + '0'.repeat(120 - ones);
    // step 10 is far better on arith, step 20 far better on code: a crossing
    for (const [step, arith, code] of [
      [10, 40, 12],
      [20, 15, 45],
    ] as const) {
      const ck = db.addCheckpoint({
        runId: run.id,
        step,
        path: `runs/${run.id}/s${step}`,
        sha256: 'ab'.repeat(32),
        bytes: 1,
      });
      for (const [domain, ones] of [
        ['arith', arith],
        ['code', code],
      ] as const)
        db.addEvaluation({
          runId: run.id,
          checkpointId: ck.id,
          modelRef: `step-${step}`,
          domain,
          metric: 'exact_match',
          score: ones / 120,
          n: 120,
          outcomes: bits(ones),
          itemsKey: key,
        });
    }
    const r = (await service.call('runs.evaluations', { runId: run.id })) as {
      specialisation: string | null;
    };
    expect(r.specialisation).toMatch(/^yes: step-10 beats step-20 on arith \(\+20\.8, p < 0\.001\)/);
  });

  it('compares runs: config, last metric values and final per-domain scores', async () => {
    const { ws, built, service } = setup();
    try {
      const ids = [built.upit[1]!.id, built.dense[1]!.id];
      const r = (await service.call('runs.compare', { runIds: [...ids, 99999] })) as {
        runs: {
          id: number;
          metrics: Record<string, number | null>;
          scores: Record<string, number>;
          average: number;
        }[];
      };
      expect(r.runs.map((x) => x.id)).toEqual(ids); // unknown ids are left out
      const upit = r.runs[0]!;
      expect(upit.metrics['loss']).toBeTypeOf('number');
      expect(Object.keys(upit.scores).sort()).toEqual(['arith', 'code', 'mc', 'qa']);
      const mean = Object.values(upit.scores).reduce((a, b) => a + b, 0) / 4;
      expect(upit.average).toBeCloseTo(mean, 12);
    } finally {
      ws.close();
    }
  });

  it('renders reports for preview and export', async () => {
    const { ws, built, service } = setup();
    try {
      for (const format of ['md', 'html', 'csv', 'tex'] as const) {
        const r = (await service.call('reports.render', { experimentId: built.experimentId, format })) as {
          filename: string;
          content: string;
        };
        expect(r.filename).toBe(`paper-ablation.${format}`);
        for (const v of ['upit', 'dense', 'vanilla']) expect(r.content).toContain(v);
      }
      expect((await failure(service.call('reports.render', { experimentId: 7, format: 'md' }))).code).toBe(
        'not_found',
      );
      expect((await failure(service.call('reports.render', { experimentId: 1, format: 'pdf' }))).code).toBe(
        'bad_request',
      );
    } finally {
      ws.close();
    }
  });

  it('lists the shipped plans and runs one by name or from text, never from a path', async () => {
    const { ws, jobs, service, dir } = setup();
    try {
      const plans = (await service.call('plans.list', {})) as {
        plans: { name: string; source: string; jobs: number }[];
      };
      expect(plans.plans.find((p) => p.name === 'smoke')).toMatchObject({ source: 'shipped', jobs: 7 });
      const r = (await service.call('plans.run', { name: 'smoke' })) as { jobId: string; experiment: string };
      expect(r.experiment).toBe('smoke');
      expect(jobs.started[0]!.kind).toBe('plan');
      expect(String(jobs.started[0]!.config['file'])).toMatch(/resources\/plans\/smoke\.yaml$/);

      const text =
        'name: mine\ndata: { source: embedded, trainPerDomain: 4, evalPerDomain: 1 }\nvariants: [dense]\n';
      const t = (await service.call('plans.run', { text })) as { file: string };
      expect(t.file).toBe('mine.yaml');
      expect(readFileSync(join(dir, 'plans', 'mine.yaml'), 'utf8')).toBe(text);
      const listed = (await service.call('plans.list', {})) as { plans: { name: string; source: string }[] };
      expect(listed.plans).toContainEqual(expect.objectContaining({ name: 'mine', source: 'workspace' }));

      expect((await failure(service.call('plans.run', { name: '../../etc/passwd' }))).code).toBe(
        'bad_request',
      );
      expect((await failure(service.call('plans.run', { name: 'nope' }))).message).toMatch(
        /no shipped plan named 'nope'/,
      );
      const bad = await failure(service.call('plans.run', { text: 'name: x\nvariants: [warp]\n' }));
      expect(bad.code).toBe('bad_request');
      expect(bad.message).toMatch(/variants\.0/);
      expect(existsSync(join(dir, 'plans', 'x.yaml'))).toBe(false);
      expect(jobs.started).toHaveLength(2);
    } finally {
      ws.close();
    }
  });
});
