import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src-main/common/errors.js';
import { fileSha256 } from '../../../src-main/store/hash.js';
import { Store } from '../../../src-main/store/store.js';
import type { NewEvaluation } from '../../../src-main/store/types.js';
import { tempDir } from './helpers.js';

function setup() {
  const dir = tempDir();
  const store = Store.open(path.join(dir, 'upit.db'));
  const exp = store.createExperiment({ name: 'e' });
  const prep = store.createRun({ kind: 'prepare', experimentId: exp.id });
  return { dir, store, exp, prep };
}

const SHA = 'AB'.repeat(32);

describe('checkpoints', () => {
  it('records caller-computed hashes with normalized relative paths', async () => {
    const { dir, store, prep } = setup();
    const file = path.join(dir, 'ckpt.bin');
    const data = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    writeFileSync(file, data);
    const digest = await fileSha256(file);
    expect(digest).toEqual({ sha256: createHash('sha256').update(data).digest('hex'), bytes: data.length });

    const c2 = store.addCheckpoint({
      runId: prep.id,
      step: 200,
      epoch: 0.5,
      path: 'runs/1/./step-200.safetensors',
      ...digest,
    });
    const c1 = store.addCheckpoint({
      runId: prep.id,
      step: 100,
      epoch: 0.25,
      path: 'runs\\1\\step-100.safetensors',
      sha256: SHA,
      bytes: 10,
      tag: 'lora',
      meta: { mode: 'lora', r: 8 },
    });
    expect(c1).toMatchObject({
      path: 'runs/1/step-100.safetensors',
      sha256: SHA.toLowerCase(),
      meta: { mode: 'lora', r: 8 },
    });
    expect(c2).toMatchObject({ path: 'runs/1/step-200.safetensors', epoch: 0.5, tag: null, meta: null });
    expect(store.listCheckpoints(prep.id).map((c) => c.step)).toEqual([100, 200]);
    expect(store.getCheckpoint(c1.id)).toEqual(c1);
    const bad = { runId: prep.id, step: 1, sha256: SHA, bytes: 1 };
    expect(() => store.addCheckpoint({ ...bad, path: '/abs/x' })).toThrow(UserError);
    expect(() => store.addCheckpoint({ ...bad, path: '../x' })).toThrow(UserError);
    expect(() => store.addCheckpoint({ ...bad, path: 'x', sha256: 'nothex' })).toThrow(/sha256/);
    expect(() => store.addCheckpoint({ ...bad, path: 'x', bytes: -1 })).toThrow(UserError);
    store.close();
  });
});

describe('evaluations', () => {
  it('stores the checkpoint × domain table, evaluated by another run', () => {
    const { store, prep } = setup();
    const ck = [1, 2].map((k) =>
      store.addCheckpoint({
        runId: prep.id,
        step: k * 100,
        path: `runs/${prep.id}/c${k}`,
        sha256: SHA,
        bytes: 1,
      }),
    );
    const ev = store.createRun({ kind: 'eval', parentRunId: prep.id });
    const rows = store.addEvaluations(
      ck.flatMap((c, k) =>
        ['math', 'code'].map((domain, d) => ({
          runId: ev.id,
          checkpointId: c.id,
          modelRef: `run:${prep.id}/checkpoint:${c.id}`,
          domain,
          metric: 'exact_match',
          score: 0.1 * (k + 1) + d,
          n: 200,
          ciLow: 0,
          ciHigh: 1,
        })),
      ),
    );
    expect(rows).toHaveLength(4);
    expect(store.listEvaluations(ev.id)).toEqual(rows);
    expect(store.listEvaluations(ev.id, { checkpointId: ck[1]?.id ?? -1 }).map((e) => e.domain)).toEqual([
      'math',
      'code',
    ]);
    const table = store.listCheckpointEvaluations(prep.id);
    expect(table.map((e) => [e.checkpointId, e.domain, e.score])).toEqual([
      [ck[0]?.id, 'code', 1.1],
      [ck[0]?.id, 'math', 0.1],
      [ck[1]?.id, 'code', 1.2],
      [ck[1]?.id, 'math', 0.2],
    ]);
    // all-or-nothing
    expect(() =>
      store.addEvaluations([
        { runId: ev.id, domain: 'qa', metric: 'em', score: 1 },
        { runId: ev.id, domain: 'qa', metric: 'em', score: Number.NaN },
      ]),
    ).toThrow(UserError);
    expect(store.listEvaluations(ev.id)).toHaveLength(4);
    store.close();
  });

  it('keeps per-item outcomes with their items key, and refuses inconsistent ones', () => {
    const { store, prep } = setup();
    const key = 'ab'.repeat(32);
    const [withItems, without] = store.addEvaluations([
      {
        runId: prep.id,
        domain: 'qa',
        metric: 'exact_match',
        score: 0.5,
        n: 4,
        outcomes: '1010',
        itemsKey: key,
      },
      { runId: prep.id, domain: 'mc', metric: 'acc', score: 0.5, n: 4 },
    ]);
    expect(store.listEvaluationOutcomes(prep.id)).toEqual([
      { evaluationId: withItems!.id, outcomes: '1010', itemsKey: key },
    ]);
    expect(without).toBeDefined();
    const bad = (e: Partial<NewEvaluation>, message: RegExp) =>
      expect(() =>
        store.addEvaluation({ runId: prep.id, domain: 'qa', metric: 'em', score: 0.5, n: 4, ...e }),
      ).toThrow(message);
    bad({ outcomes: '101', itemsKey: key }, /qa\/em: 3 outcomes for n = 4/);
    bad({ outcomes: '10x1', itemsKey: key }, /outcomes must be a string of 0 and 1/);
    bad({ outcomes: '1010' }, /outcomes need an itemsKey/);
    bad({ outcomes: '1010', itemsKey: 'abc' }, /itemsKey: not a hex SHA-256/);
    expect(store.listEvaluations(prep.id)).toHaveLength(2);
    store.close();
  });
});

describe('experts, distances, routing, reports', () => {
  it('round-trips experts with lineage and replaces the pool', () => {
    const { store, prep } = setup();
    const ck = store.addCheckpoint({ runId: prep.id, step: 1, path: 'runs/1/c', sha256: SHA, bytes: 1 });
    const x = store.createRun({ kind: 'expand', parentRunId: prep.id });
    store.setExperts(x.id, [
      { idx: 0, source: 'checkpoint', checkpointId: ck.id, name: 'ckpt-0.25' },
      { idx: 1, source: 'checkpoint', checkpointId: ck.id },
    ]);
    const pool = store.setExperts(x.id, [
      { idx: 0, source: 'checkpoint', checkpointId: ck.id },
      { idx: 1, source: 'checkpoint', checkpointId: ck.id },
      {
        idx: 2,
        source: 'merge',
        path: 'runs/2/expert-2.safetensors',
        sha256: SHA,
        bytes: 123,
        lineage: { parents: [0, 1], alpha: 0.37, p: 0.5, seed: 11, method: 'dare', extra: { rescale: 'l1' } },
      },
    ]);
    expect(pool).toHaveLength(3);
    expect(store.listExperts(x.id)).toEqual(pool);
    expect(store.getExpert(x.id, 2)?.lineage).toEqual({
      parents: [0, 1],
      alpha: 0.37,
      p: 0.5,
      seed: 11,
      method: 'dare',
      extra: { rescale: 'l1' },
    });
    expect(store.getExpert(x.id, 0)).toMatchObject({ name: null, lineage: null, source: 'checkpoint' });
    // @ts-expect-error: not an expert source
    expect(() => store.addExpert({ runId: x.id, idx: 9, source: 'magic' })).toThrow(/unknown source/);
    expect(() => store.addExpert({ runId: x.id, idx: 2, source: 'random' })).toThrow(/UNIQUE/);
    store.close();
  });

  it('upserts distances and builds a symmetric matrix', () => {
    const { store } = setup();
    const x = store.createRun({ kind: 'expand' });
    store.upsertDistances(x.id, 'cosine', [
      { i: 0, j: 1, value: 0.2 },
      { i: 0, j: 2, value: 0.9 },
    ]);
    store.upsertDistances(x.id, 'cosine', [
      { i: 2, j: 1, value: 0.4 },
      { i: 0, j: 1, value: 0.25 },
    ]);
    store.upsertDistances(x.id, 'l2', [{ i: 0, j: 1, value: 3 }]);
    expect(store.getDistances(x.id, 'cosine')).toHaveLength(3);
    expect(store.getDistances(x.id)).toHaveLength(4);
    expect(store.getDistanceMatrix(x.id, 'cosine')).toEqual([
      [0, 0.25, 0.9],
      [0.25, 0, 0.4],
      [0.9, 0.4, 0],
    ]);
    const m4 = store.getDistanceMatrix(x.id, 'l2', 3);
    expect(m4[1]?.[0]).toBe(3);
    expect(m4[2]?.[0]).toBeNaN();
    store.close();
  });

  it('replaces routing statistics and seed buckets', () => {
    const { store } = setup();
    const r = store.createRun({ kind: 'route' });
    store.setSeedBuckets(r.id, [
      { expert: 0, size: 40 },
      { expert: 1, size: 60 },
    ]);
    store.setSeedBuckets(r.id, [
      { expert: 1, size: 33 },
      { expert: 0, size: 35 },
    ]);
    expect(store.getSeedBuckets(r.id)).toEqual([
      { expert: 0, size: 35 },
      { expert: 1, size: 33 },
    ]);
    const stats = [0, 1].flatMap((layer) =>
      ['math', 'code'].flatMap((domain) =>
        [0, 1].map((expert) => ({ layer, domain, expert, fraction: expert === 0 ? 0.7 : 0.3, tokens: 100 })),
      ),
    );
    store.setRoutingStats(r.id, stats);
    store.setRoutingStats(r.id, stats);
    expect(store.getRoutingStats(r.id)).toHaveLength(8);
    expect(store.getRoutingStats(r.id, { layer: 1 })).toEqual([
      { layer: 1, domain: 'code', expert: 0, fraction: 0.7, tokens: 100 },
      { layer: 1, domain: 'code', expert: 1, fraction: 0.3, tokens: 100 },
      { layer: 1, domain: 'math', expert: 0, fraction: 0.7, tokens: 100 },
      { layer: 1, domain: 'math', expert: 1, fraction: 0.3, tokens: 100 },
    ]);
    expect(() => store.setSeedBuckets(999, [{ expert: 0, size: 1 }])).toThrow(UserError);
    store.close();
  });

  it('records reports per experiment and per run', () => {
    const { store, exp, prep } = setup();
    const a = store.addReport({ experimentId: exp.id, format: 'html', path: 'reports/e1.html', title: 'E1' });
    const b = store.addReport({ runId: prep.id, format: 'md', path: 'reports/run.md' });
    expect(store.listReports({ experimentId: exp.id })).toEqual([a]);
    expect(store.listReports({ runId: prep.id })).toEqual([b]);
    expect(store.listReports()).toEqual([a, b]);
    expect(() => store.addReport({ format: 'md', path: '/tmp/x.md' })).toThrow(UserError);
    store.close();
  });
});
