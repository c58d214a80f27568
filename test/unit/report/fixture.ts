/**
 * Test data for the report: a hand-built ReportData (renderer tests) and a workspace database
 * filled through the Store API with what the batch runner records (collect and CLI tests).
 */
import { wilsonInterval } from '../../../src-main/eval/stats.js';
import type { ReportData } from '../../../src-main/report/types.js';
import type { Run, Store } from '../../../src-main/store/index.js';

export const SPECIAL = 'w/o "router" init, 50% & #2_x';

/** A small report: 3 variants (one with a name full of special characters), 2 domains. */
export function sampleReportData(): ReportData {
  const est = (values: number[], ci: [number, number] | null, method: 't' | 'wilson' = 't') => ({
    mean: values.reduce((a, b) => a + b, 0) / values.length,
    ci: ci ? { low: ci[0], high: ci[1], method } : null,
    n: values.length,
    values,
  });
  return {
    version: 1,
    title: 'UpIT report: demo <exp>',
    generatedAt: Date.UTC(2025, 0, 2, 3, 4),
    experiment: { id: 7, name: 'demo <exp>', createdAt: Date.UTC(2025, 0, 1), notes: null },
    domains: ['arith', 'mc'],
    domainMetrics: { arith: 'exact_match', mc: 'acc_norm' },
    seeds: [1, 2],
    variants: [
      {
        name: 'upit',
        kind: 'upit',
        runKind: 'upcycle',
        planned: true,
        runIds: [10, 20],
        seeds: [1, 2],
        domains: { arith: est([0.5, 0.54], [0.2659, 0.7741]), mc: est([0.6, 0.62], [0.483, 0.737]) },
        average: est([0.55, 0.58], [0.37, 0.76]),
      },
      {
        name: 'dense',
        kind: null,
        runKind: 'prepare',
        planned: true,
        runIds: [11, 21],
        seeds: [1, 2],
        domains: { arith: est([0.4, 0.44], [0.16, 0.67]), mc: est([0.7, 0.72], [0.58, 0.83]) },
        average: est([0.55, 0.58], [0.36, 0.77]),
      },
      {
        name: SPECIAL,
        kind: 'ablation',
        runKind: 'upcycle',
        planned: true,
        runIds: [12],
        seeds: [1],
        domains: { arith: est([0.45], [0.355, 0.548], 'wilson') },
        average: est([0.45], null),
      },
    ],
    bestByDomain: { arith: ['upit'], mc: ['dense'] },
    bestAverage: ['upit'],
    runs: [
      {
        runId: 10,
        variant: 'upit',
        seed: 1,
        kind: 'upcycle',
        checkpointId: 3,
        step: 40,
        scores: [
          {
            domain: 'arith',
            metric: 'exact_match',
            primary: true,
            score: 0.5,
            n: 100,
            ciLow: 0.4,
            ciHigh: 0.6,
          },
          { domain: 'mc', metric: 'acc_norm', primary: true, score: 0.6, n: 100, ciLow: 0.5, ciHigh: 0.69 },
          { domain: 'mc', metric: 'acc', primary: false, score: 0.58, n: 100, ciLow: 0.48, ciHigh: 0.67 },
        ],
        average: 0.55,
        finalLoss: 1.25,
      },
      {
        runId: 12,
        variant: SPECIAL,
        seed: 1,
        kind: 'upcycle',
        checkpointId: 5,
        step: 40,
        scores: [
          {
            domain: 'arith',
            metric: 'exact_match',
            primary: true,
            score: 0.45,
            n: 100,
            ciLow: 0.355,
            ciHigh: 0.548,
          },
        ],
        average: 0.45,
        finalLoss: null,
      },
    ],
    reference: 'upit',
    ablation: {
      reference: 'upit',
      referenceN: 2,
      rows: [
        {
          variant: 'dense',
          n: 2,
          domains: {
            arith: { delta: -0.1, ci: { low: -0.2217, high: 0.0217, method: 'welch' } },
            mc: { delta: 0.1, ci: { low: -0.02, high: 0.22, method: 'welch' } },
          },
          average: { delta: 0, ci: { low: -0.1, high: 0.1, method: 'welch' } },
        },
        {
          variant: SPECIAL,
          n: 1,
          domains: { arith: { delta: -0.07, ci: null } },
          average: { delta: -0.115, ci: null },
        },
      ],
    },
    notes: [`variant ${SPECIAL} seed 2: failed (out of memory) (run 22)`],
    profiles: [
      {
        runId: 1,
        variant: null,
        seed: 1,
        status: 'done',
        specialisation:
          'not shown: 2 different checkpoints are best, but no pair of them is each better on its own domain at p < 0.05 (paired)',
        domains: ['arith', 'mc'],
        rows: [
          {
            label: 'base',
            checkpointId: null,
            step: 0,
            epoch: null,
            scores: { arith: 0.1, mc: 0.3 },
            average: 0.2,
          },
          {
            label: 'step 10',
            checkpointId: 1,
            step: 10,
            epoch: 0.5,
            scores: { arith: 0.3, mc: 0.55 },
            average: 0.425,
          },
          {
            label: 'step 20',
            checkpointId: 2,
            step: 20,
            epoch: 1,
            scores: { arith: 0.4, mc: 0.5 },
            average: 0.45,
          },
        ],
        best: { arith: [2], mc: [1] },
      },
    ],
    lineages: [
      {
        runId: 2,
        variant: null,
        seed: 1,
        experts: [
          {
            idx: 0,
            name: 'ck10',
            source: 'checkpoint',
            checkpointId: 1,
            step: 10,
            parents: [],
            alpha: null,
            p: null,
            seed: null,
            method: null,
            distance: null,
          },
          {
            idx: 1,
            name: 'ck20',
            source: 'checkpoint',
            checkpointId: 2,
            step: 20,
            parents: [],
            alpha: null,
            p: null,
            seed: null,
            method: null,
            distance: null,
          },
          {
            idx: 2,
            name: 'merge-0',
            source: 'merge',
            checkpointId: null,
            step: null,
            parents: [0, 1],
            alpha: 0.3,
            p: 0.5,
            seed: 5,
            method: 'dare',
            distance: 0.42,
          },
        ],
        distance: {
          metric: 'cosine',
          labels: ['ck10', 'ck20', 'merge-0'],
          values: [
            [0, 0.42, 0.2],
            [0.42, 0, null],
            [0.2, null, 0],
          ],
        },
      },
    ],
    seedBuckets: [
      {
        runId: 3,
        variant: null,
        seed: 1,
        buckets: [
          { expert: 0, name: 'ck10', size: 12 },
          { expert: 1, name: 'ck20', size: 20 },
        ],
      },
    ],
    routing: [
      {
        runId: 10,
        variant: 'upit',
        seed: 1,
        domains: ['arith', 'mc'],
        experts: 2,
        layers: [0, 1],
        byLayer: [
          {
            layer: 0,
            fractions: [
              [0.7, 0.3],
              [0.4, 0.6],
            ],
          },
          {
            layer: 1,
            fractions: [
              [0.9, 0.1],
              [0.2, 0.8],
            ],
          },
        ],
        mean: [
          [0.8, 0.2],
          [0.3, 0.7],
        ],
        tokens: { arith: 120, mc: 80 },
      },
    ],
    losses: [
      {
        runId: 10,
        kind: 'upcycle',
        variant: 'upit',
        seed: 1,
        role: 'terminal',
        total: 3,
        downsampled: false,
        points: [
          [1, 2],
          [2, 1.5],
          [3, 1.25],
        ],
        first: 2,
        last: 1.25,
        min: 1.25,
      },
      {
        runId: 1,
        kind: 'prepare',
        variant: null,
        seed: 1,
        role: 'prepare',
        total: 2,
        downsampled: false,
        points: [
          [1, 3],
          [2, 2.5],
        ],
        first: 3,
        last: 2.5,
        min: 2.5,
      },
    ],
  };
}

// ---- a workspace database as the batch runner fills it ----------------------------------------

const SHA = 'a'.repeat(64);
const DOMAINS = ['arith', 'code', 'qa', 'mc'] as const;
const N = 100;

/** Final primary scores per variant and seed (vanilla seed 2 fails). */
export const SCORES: Record<string, Record<number, Record<string, number>>> = {
  upit: {
    1: { arith: 0.5, code: 0.3, qa: 0.2, mc: 0.6 },
    2: { arith: 0.54, code: 0.34, qa: 0.22, mc: 0.62 },
  },
  dense: {
    1: { arith: 0.4, code: 0.2, qa: 0.1, mc: 0.5 },
    2: { arith: 0.44, code: 0.22, qa: 0.14, mc: 0.52 },
  },
  vanilla: { 1: { arith: 0.45, code: 0.25, qa: 0.15, mc: 0.55 } },
};

export interface BuiltExperiment {
  experimentId: number;
  name: string;
  prepare: Record<number, Run>;
  expand: Record<number, Run>;
  route: Record<number, Run>;
  upit: Record<number, Run>;
  dense: Record<number, Run>;
  vanilla: Record<number, Run>;
  vanillaFailed: Run;
}

function done(store: Store, run: Run): Run {
  store.startRun(run.id, { backend: 'cpu' });
  return store.finishRun(run.id, 'done');
}

function evals(
  store: Store,
  runId: number,
  checkpointId: number | null,
  scores: Record<string, number>,
  modelRef?: string,
): void {
  store.addEvaluations(
    Object.entries(scores).flatMap(([domain, score]) => {
      const k = Math.round(score * N);
      const w = wilsonInterval(k, N);
      const row = {
        runId,
        checkpointId,
        modelRef: modelRef ?? null,
        domain,
        score,
        n: N,
        ciLow: w.low,
        ciHigh: w.high,
      };
      if (domain !== 'mc') return [{ ...row, metric: 'exact_match' }];
      const acc = Math.max(0, score - 0.05);
      const wa = wilsonInterval(Math.round(acc * N), N);
      return [
        { ...row, metric: 'acc', score: acc, ciLow: wa.low, ciHigh: wa.high },
        { ...row, metric: 'acc_norm' },
      ];
    }),
  );
}

function loss(store: Store, runId: number, steps: number, start: number): void {
  store.insertMetrics(
    runId,
    Array.from({ length: steps }, (_, i) => ({
      key: 'loss',
      step: i + 1,
      value: start / (1 + 0.1 * i),
      tokens: null,
      wallTime: null,
    })),
  );
}

function checkpoint(store: Store, runId: number, step: number, tag = 'cadence'): number {
  return store.addCheckpoint({
    runId,
    step,
    epoch: step / 20,
    path: `runs/${runId}/ck-${step}`,
    sha256: SHA,
    bytes: 1,
    tag,
  }).id;
}

/**
 * Experiment 'paper-ablation' (plan: upit, dense, vanilla × seeds 1, 2): per seed a prepare run
 * (4 evaluated checkpoints), an expand run (4 checkpoint experts + 2 merges, cosine distances), a
 * route run (seed buckets), the 'upit' upcycle run (routing stats, loss, an early and a final
 * evaluation) and the 'dense' prepare run; 'vanilla' finishes for seed 1 and fails for seed 2.
 */
export function buildExperiment(store: Store, name = 'paper-ablation'): BuiltExperiment {
  const exp = store.createExperiment({
    name,
    plan: {
      variants: [
        { name: 'upit', kind: 'upit' },
        { name: 'dense', kind: 'dense' },
        { name: 'vanilla', kind: 'vanilla' },
      ],
      seeds: [1, 2],
    },
  });
  const b: BuiltExperiment = {
    experimentId: exp.id,
    name,
    prepare: {},
    expand: {},
    route: {},
    upit: {},
    dense: {},
    vanilla: {},
    vanillaFailed: undefined as unknown as Run,
  };
  for (const seed of [1, 2]) {
    const prep = store.createRun({ kind: 'prepare', experimentId: exp.id, seed });
    evals(store, prep.id, null, { arith: 0.05, code: 0.05, qa: 0.05, mc: 0.25 }, 'base');
    const cks: number[] = [];
    for (const [i, step] of [10, 20, 30, 40].entries()) {
      const ck = checkpoint(store, prep.id, step);
      cks.push(ck);
      // arith peaks at the last checkpoint, qa at the first, mc at step 20
      evals(store, prep.id, ck, {
        arith: 0.2 + 0.05 * i + 0.01 * seed,
        code: 0.1 + 0.02 * i,
        qa: 0.3 - 0.05 * i,
        mc: [0.4, 0.5, 0.45, 0.42][i]!,
      });
    }
    loss(store, prep.id, 40, 3);
    b.prepare[seed] = done(store, prep);

    const expand = store.createRun({
      kind: 'expand',
      experimentId: exp.id,
      seed,
      config: { prepareRun: prep.id },
    });
    store.setExperts(expand.id, [
      ...cks.map((ck, idx) => ({
        idx,
        name: `ck-${(idx + 1) * 10}`,
        source: 'checkpoint' as const,
        checkpointId: ck,
      })),
      {
        idx: 4,
        name: 'merge-0',
        source: 'merge',
        lineage: { parents: [0, 3], alpha: 0.3, p: 0.5, seed: 11, extra: { distance: 0.8 } },
      },
      {
        idx: 5,
        name: 'merge-1',
        source: 'merge',
        lineage: { parents: [1, 4], alpha: 0.6, p: 0.5, seed: 12, extra: { distance: 0.6 } },
      },
    ]);
    const dist = [];
    for (let i = 0; i < 6; i++)
      for (let j = i + 1; j < 6; j++) dist.push({ i, j, value: 0.1 * (j - i) + 0.01 * i });
    store.upsertDistances(expand.id, 'cosine', dist);
    b.expand[seed] = done(store, expand);

    const route = store.createRun({
      kind: 'route',
      experimentId: exp.id,
      seed,
      config: { poolRun: expand.id },
    });
    store.setSeedBuckets(
      route.id,
      [0, 1, 2, 3, 4, 5].map((expert) => ({ expert, size: 10 + expert })),
    );
    b.route[seed] = done(store, route);

    const up = store.createRun({
      kind: 'upcycle',
      experimentId: exp.id,
      variant: 'upit',
      seed,
      config: { poolRun: route.id },
    });
    const early = checkpoint(store, up.id, 5, 'cadence');
    evals(store, up.id, early, { arith: 0.9, code: 0.9, qa: 0.9, mc: 0.9 }); // not the final checkpoint
    const final = checkpoint(store, up.id, 20, 'model');
    evals(store, up.id, final, SCORES.upit![seed]!);
    store.setRoutingStats(
      up.id,
      [0, 1].flatMap((layer) =>
        DOMAINS.flatMap((domain, di) =>
          [0, 1, 2, 3].map((expert) => ({
            layer,
            domain,
            expert,
            fraction: expert === di ? 0.4 + 0.2 * layer : (0.6 - 0.2 * layer) / 3,
            tokens: 100 + di,
          })),
        ),
      ),
    );
    loss(store, up.id, 20, 2);
    b.upit[seed] = done(store, up);

    const dense = store.createRun({ kind: 'prepare', experimentId: exp.id, variant: 'dense', seed });
    const d1 = checkpoint(store, dense.id, 10);
    evals(store, dense.id, d1, { arith: 0.99, code: 0.99, qa: 0.99, mc: 0.99 });
    const d2 = checkpoint(store, dense.id, 20);
    evals(store, dense.id, d2, SCORES.dense![seed]!);
    loss(store, dense.id, 20, 2.5);
    b.dense[seed] = done(store, dense);
  }
  const van = store.createRun({
    kind: 'upcycle',
    experimentId: exp.id,
    variant: 'vanilla',
    seed: 1,
    config: { poolRun: b.route[1]!.id },
  });
  const vck = checkpoint(store, van.id, 20, 'model');
  evals(store, van.id, vck, SCORES.vanilla![1]!);
  b.vanilla[1] = done(store, van);
  const vf = store.createRun({ kind: 'upcycle', experimentId: exp.id, variant: 'vanilla', seed: 2 });
  store.startRun(vf.id, { backend: 'cpu' });
  b.vanillaFailed = store.finishRun(vf.id, 'failed', 'out of memory\nat step 3');
  return b;
}
