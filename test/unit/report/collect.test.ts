/**
 * collectReport on a real temporary workspace: terminal runs scored at their final checkpoint,
 * means and t-intervals over seeds, Wilson intervals for a single seed, deltas against 'upit',
 * notes for failed/missing runs, and the stage sections (profile, lineage, routing, loss).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { collectReport, findExperiment } from '../../../src-main/report/collect.js';
import { renderMarkdown } from '../../../src-main/report/markdown.js';
import { openWorkspace, type Workspace } from '../../../src-main/store/index.js';
import { buildExperiment, SCORES, type BuiltExperiment } from './fixture.js';

const T975_DF1 = 12.706204736174707; // t_{0.975, 1}
const T975_DF2 = 4.302652729749464; // t_{0.975, 2}

describe('collectReport', () => {
  let dir: string;
  let ws: Workspace;
  let built: BuiltExperiment;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'upit-report-'));
    ws = openWorkspace(path.join(dir, 'ws'), { create: true });
    built = buildExperiment(ws.db);
  });
  afterEach(() => {
    ws.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds an experiment by id or name, and names an unknown one', () => {
    expect(findExperiment(ws.db, built.experimentId).name).toBe('paper-ablation');
    expect(findExperiment(ws.db, 'paper-ablation').id).toBe(built.experimentId);
    expect(findExperiment(ws.db, String(built.experimentId)).id).toBe(built.experimentId);
    expect(() => findExperiment(ws.db, 'nope')).toThrow(/experiment 'nope' not found/);
    ws.db.createExperiment({ name: 'paper-ablation' });
    expect(() => findExperiment(ws.db, 'paper-ablation')).toThrow(/ambiguous.*ids 1, 2/);
  });

  it('scores each terminal run at its final checkpoint, primary metric per domain', () => {
    const data = collectReport(ws.db, built.experimentId, { now: 0 });
    expect(data.domains).toEqual(['arith', 'code', 'qa', 'mc']);
    expect(data.domainMetrics).toEqual({
      arith: 'exact_match',
      code: 'exact_match',
      qa: 'exact_match',
      mc: 'acc_norm',
    });
    expect(data.seeds).toEqual([1, 2]);
    expect(data.runs.map((r) => [r.variant, r.seed])).toEqual([
      ['upit', 1],
      ['dense', 1],
      ['upit', 2],
      ['dense', 2],
      ['vanilla', 1],
    ]);
    const up1 = data.runs.find((r) => r.runId === built.upit[1]!.id)!;
    expect(up1.step).toBe(20); // the 'model' checkpoint, not the early one scored 0.9
    expect(up1.scores.filter((s) => s.primary).map((s) => [s.domain, s.metric, s.score])).toEqual([
      ['arith', 'exact_match', 0.5],
      ['code', 'exact_match', 0.3],
      ['qa', 'exact_match', 0.2],
      ['mc', 'acc_norm', 0.6],
    ]);
    expect(up1.scores.find((s) => s.metric === 'acc')?.primary).toBe(false);
    for (const r of data.runs) {
      const primary = Object.fromEntries(r.scores.filter((s) => s.primary).map((s) => [s.domain, s.score]));
      expect(primary).toEqual(SCORES[r.variant]![r.seed!]);
    }
    expect(up1.average).toBeCloseTo(0.4, 12);
    expect(up1.finalLoss).toBeCloseTo(2 / (1 + 0.1 * 19), 12);
    const dense2 = data.runs.find((r) => r.runId === built.dense[2]!.id)!;
    expect(dense2.scores.find((s) => s.domain === 'arith')?.score).toBe(0.44); // last checkpoint, not 0.99
  });

  it('means ± t-intervals over seeds, Wilson for one seed, best per column', () => {
    const data = collectReport(ws.db, built.experimentId, { now: 0 });
    expect(data.variants.map((v) => [v.name, v.kind, v.runKind, v.runIds.length])).toEqual([
      ['upit', 'upit', 'upcycle', 2],
      ['dense', 'dense', 'prepare', 2],
      ['vanilla', 'vanilla', 'upcycle', 1],
    ]);
    const upit = data.variants[0]!;
    const arith = upit.domains['arith']!;
    expect(arith.mean).toBeCloseTo(0.52, 12);
    expect(arith.n).toBe(2);
    expect(arith.values).toEqual([0.5, 0.54]);
    // sd of [0.50, 0.54] = 0.02·√2; s/√n = 0.02
    expect(arith.ci?.method).toBe('t');
    expect(arith.ci!.high - arith.mean).toBeCloseTo(T975_DF1 * 0.02, 9);
    expect(arith.mean - arith.ci!.low).toBeCloseTo(T975_DF1 * 0.02, 9);
    expect(upit.average!.mean).toBeCloseTo((0.4 + 0.43) / 2, 12);
    expect(upit.average!.ci!.high - upit.average!.mean).toBeCloseTo(T975_DF1 * 0.015, 9);

    const vanilla = data.variants[2]!;
    const va = vanilla.domains['arith']!;
    expect(va.mean).toBe(0.45);
    expect(va.ci?.method).toBe('wilson');
    expect(va.ci!.low).toBeCloseTo(0.3561, 3); // Wilson 45/100
    expect(va.ci!.high).toBeCloseTo(0.5475, 3);
    expect(vanilla.average?.ci).toBeNull();

    for (const d of data.domains) expect(data.bestByDomain[d]).toEqual(['upit']);
    expect(data.bestAverage).toEqual(['upit']);
  });

  it('ablation deltas against upit with Welch intervals', () => {
    const data = collectReport(ws.db, built.experimentId, { now: 0 });
    const a = data.ablation!;
    expect(a.reference).toBe('upit');
    expect(a.referenceN).toBe(2);
    expect(a.rows.map((r) => r.variant)).toEqual(['dense', 'vanilla']);
    const dense = a.rows[0]!;
    expect(dense.domains['arith']!.delta).toBeCloseTo(0.42 - 0.52, 12);
    // var([.40,.44])/2 = var([.50,.54])/2 = 0.0004 → df 2, half = t·√0.0008
    expect(dense.domains['arith']!.ci!.high - dense.domains['arith']!.delta).toBeCloseTo(
      T975_DF2 * Math.sqrt(0.0008),
      9,
    );
    expect(dense.average!.delta).toBeCloseTo((0.3 + 0.33) / 2 - 0.415, 12);
    const vanilla = a.rows[1]!;
    expect(vanilla.domains['mc']!.delta).toBeCloseTo(0.55 - 0.61, 12);
    expect(vanilla.domains['mc']!.ci).toBeNull(); // one seed

    const other = collectReport(ws.db, built.experimentId, { reference: 'dense', now: 0 });
    expect(other.ablation!.rows.map((r) => r.variant)).toEqual(['upit', 'vanilla']);
    const none = collectReport(ws.db, built.experimentId, { reference: 'moe-x', now: 0 });
    expect(none.ablation).toBeNull();
    expect(none.notes).toContain("no variant named 'moe-x': ablation table skipped");
  });

  it('notes failed and missing runs', () => {
    const data = collectReport(ws.db, built.experimentId, { now: 0 });
    expect(data.notes).toContain(
      `variant vanilla seed 2: failed (out of memory at step 3) (run ${built.vanillaFailed.id})`,
    );
    const exp = ws.db.createExperiment({ name: 'empty', plan: { variants: [{ name: 'upit' }], seeds: [3] } });
    const empty = collectReport(ws.db, exp.id, { now: 0 });
    expect(empty.runs).toEqual([]);
    expect(empty.notes).toEqual([
      'experiment empty has no finished runs to report',
      'variant upit seed 3: missing (no run)',
    ]);
    expect(empty.variants.map((v) => v.name)).toEqual(['upit']);
  });

  it('falls back to run order without a plan', () => {
    const exp = ws.db.createExperiment({ name: 'no-plan', plan: { variants: 'junk' } });
    for (const [variant, seed] of [
      ['b', 2],
      ['a', 1],
      ['b', 1],
    ] as const) {
      const r = ws.db.createRun({ kind: 'upcycle', experimentId: exp.id, variant, seed });
      const ck = ws.db.addCheckpoint({
        runId: r.id,
        step: 1,
        path: `runs/${r.id}/m`,
        sha256: 'b'.repeat(64),
        bytes: 1,
      });
      ws.db.addEvaluation({
        runId: r.id,
        checkpointId: ck.id,
        domain: 'x',
        metric: 'score',
        score: seed / 10,
      });
      ws.db.startRun(r.id, { backend: 'cpu' });
      ws.db.finishRun(r.id, 'done');
    }
    const data = collectReport(ws.db, exp.id, { now: 0 });
    expect(data.variants.map((v) => v.name)).toEqual(['b', 'a']);
    expect(data.seeds).toEqual([1, 2]);
    expect(data.domainMetrics).toEqual({ x: 'score' }); // neither acc_norm nor exact_match: the first
    expect(data.variants[0]!.domains['x']!.mean).toBeCloseTo(0.15, 12);
    expect(data.variants[1]!.domains['x']!.ci).toBeNull(); // no n, no stored interval
  });

  it('handles any domain names, even those of Object.prototype', () => {
    const exp = ws.db.createExperiment({ name: 'odd-domains' });
    const names = ['constructor', '__proto__', 'toString'];
    for (const seed of [1, 2]) {
      const r = ws.db.createRun({ kind: 'upcycle', experimentId: exp.id, variant: 'upit', seed });
      const ck = ws.db.addCheckpoint({
        runId: r.id,
        step: 1,
        path: `runs/${r.id}/m`,
        sha256: 'c'.repeat(64),
        bytes: 1,
      });
      names.forEach((domain, i) =>
        ws.db.addEvaluation({
          runId: r.id,
          checkpointId: ck.id,
          domain,
          metric: 'exact_match',
          score: 0.1 * (i + seed),
        }),
      );
      ws.db.startRun(r.id, { backend: 'cpu' });
      ws.db.finishRun(r.id, 'done');
    }
    const data = collectReport(ws.db, exp.id, { now: 0 });
    expect(data.domains).toEqual(names);
    const cells = data.variants[0]!.domains;
    expect(names.map((d) => Object.hasOwn(cells, d) && cells[d]!.mean)).toEqual([
      expect.closeTo(0.15, 12),
      expect.closeTo(0.25, 12),
      expect.closeTo(0.35, 12),
    ]);
    expect(data.domainMetrics['__proto__']).toBe('exact_match');
    const md = renderMarkdown(JSON.parse(JSON.stringify(data)) as typeof data);
    expect(md).toContain(
      '| upit | MoE | **15.0 ± 63.5** | **25.0 ± 63.5** | **35.0 ± 63.5** | **25.0 ± 63.5** | 2 |',
    );
  });

  it('collects the checkpoint profile, lineage, seed buckets, routing and loss curves', () => {
    const data = collectReport(ws.db, built.experimentId, { now: 0 });
    // prepare runs: the two intermediate ones and the two dense variant runs
    expect(data.profiles.map((p) => p.runId)).toEqual([
      built.prepare[1]!.id,
      built.dense[1]!.id,
      built.prepare[2]!.id,
      built.dense[2]!.id,
    ]);
    const p = data.profiles[0]!;
    expect(p.rows.map((r) => r.label)).toEqual(['base', 'step 10', 'step 20', 'step 30', 'step 40']);
    expect(p.rows[0]!.checkpointId).toBeNull();
    const label = (d: string) => p.best[d]!.map((i) => p.rows[i]!.label);
    expect(label('arith')).toEqual(['step 40']);
    expect(label('qa')).toEqual(['step 10']); // the base row (0.05) never counts
    expect(label('mc')).toEqual(['step 20']);
    expect(p.rows[2]!.scores['mc']).toBe(0.5); // acc_norm, not acc
    expect(p.specialisation).toBeNull(); // these evaluations carry no per-item outcomes

    expect(data.lineages.map((l) => l.runId)).toEqual([built.expand[1]!.id, built.expand[2]!.id]);
    const l = data.lineages[0]!;
    expect(l.experts.map((x) => [x.idx, x.source, x.step])).toEqual([
      [0, 'checkpoint', 10],
      [1, 'checkpoint', 20],
      [2, 'checkpoint', 30],
      [3, 'checkpoint', 40],
      [4, 'merge', null],
      [5, 'merge', null],
    ]);
    expect(l.experts[5]).toMatchObject({ parents: [1, 4], alpha: 0.6, p: 0.5, seed: 12, distance: 0.6 });
    expect(l.distance!.metric).toBe('cosine');
    expect(l.distance!.labels).toEqual(['ck-10', 'ck-20', 'ck-30', 'ck-40', 'merge-0', 'merge-1']);
    expect(l.distance!.values[0]![3]).toBeCloseTo(0.3, 12);
    expect(l.distance!.values[3]![0]).toBeCloseTo(0.3, 12);
    expect(l.distance!.values[2]![2]).toBe(0);

    expect(data.seedBuckets[0]!.buckets.map((b) => b.size)).toEqual([10, 11, 12, 13, 14, 15]);

    expect(data.routing.map((r) => r.runId)).toEqual([built.upit[1]!.id, built.upit[2]!.id]);
    const r = data.routing[0]!;
    expect(r.layers).toEqual([0, 1]);
    expect(r.domains).toEqual(['arith', 'code', 'qa', 'mc']); // the main table's order
    expect(r.experts).toBe(4);
    // arith (domain 0 when built) → expert 0: 0.4 at layer 0, 0.6 at layer 1
    expect(r.byLayer[1]!.fractions[0]![0]).toBeCloseTo(0.6, 12);
    expect(r.mean[0]![0]).toBeCloseTo(0.5, 12);
    expect(r.tokens['qa']).toBe(102);
    expect(r.mean[3]![3]).toBeCloseTo(0.5, 12); // mc → expert 3

    const terminal = data.losses.filter((s) => s.role === 'terminal');
    expect(terminal.map((s) => s.runId)).toEqual(
      data.runs.filter((x) => x.finalLoss !== null).map((x) => x.runId),
    );
    const prep = data.losses.filter((s) => s.role === 'prepare').map((s) => s.runId);
    expect(prep).toEqual([built.prepare[1]!.id, built.prepare[2]!.id]); // found through poolRun → prepareRun
    expect(terminal[0]!.points).toHaveLength(20);
    expect(terminal[0]!.first).toBe(2);
    const long = collectReport(ws.db, built.experimentId, { now: 0, maxLossPoints: 8 });
    const lp = long.losses.find((s) => s.runId === built.prepare[1]!.id)!;
    expect(lp.downsampled).toBe(true);
    expect(lp.total).toBe(40);
    expect(lp.points.length).toBeLessThanOrEqual(8);
    expect(JSON.parse(JSON.stringify(data))).toEqual(data); // plain JSON
  });
});
