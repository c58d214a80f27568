import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src-main/common/errors.js';
import { Rng } from '../../../src-main/common/rng.js';
import type { HostTensor } from '../../../src-main/io/host-tensor.js';
import {
  distanceMatrix,
  expandPool,
  ffnTaskVectors,
  loraDeltaW,
  memorySource,
  type ExpandResult,
  type LoraExpert,
  type TensorSource,
} from '../../../src-main/upit/expand.js';
import { truncatedSvd } from '../../../src-main/upit/linalg.js';
import { mergeTensor } from '../../../src-main/upit/merge/methods.js';
import { expectBitwiseEqual, randn } from './helpers.js';

// ---- brute force ---------------------------------------------------------------------------

function bruteDistances(vectors: number[][], metric: 'cosine' | 'l2'): number[][] {
  return vectors.map((a) =>
    vectors.map((b) => {
      let ab = 0;
      let aa = 0;
      let bb = 0;
      let d2 = 0;
      for (let t = 0; t < a.length; t++) {
        ab += a[t]! * b[t]!;
        aa += a[t]! * a[t]!;
        bb += b[t]! * b[t]!;
        d2 += (a[t]! - b[t]!) ** 2;
      }
      if (a === b) return 0;
      if (metric === 'l2') return Math.sqrt(d2);
      return aa * bb > 0 ? 1 - ab / Math.sqrt(aa * bb) : 1; // a zero task vector: distance 1
    }),
  );
}

function expectMatrixClose(a: number[][], b: number[][], tol: number): void {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) {
    for (let j = 0; j < a.length; j++) expect(Math.abs(a[i]![j]! - b[i]![j]!)).toBeLessThan(tol);
  }
}

// ---- FFN fixtures -----------------------------------------------------------------------------

const MLP: [string, number[]][] = [];
for (let l = 0; l < 2; l++) {
  MLP.push([`model.layers.${l}.mlp.gate_proj.weight`, [6, 4]]);
  MLP.push([`model.layers.${l}.mlp.up_proj.weight`, [6, 4]]);
  MLP.push([`model.layers.${l}.mlp.down_proj.weight`, [4, 6]]);
}
const NAMES = MLP.map(([n]) => n);

function baseModel(): Map<string, HostTensor> {
  const rng = new Rng(100);
  const m = new Map<string, HostTensor>();
  m.set('model.embed_tokens.weight', { shape: [5, 4], data: randn(rng, 20) });
  for (const [name, shape] of MLP) m.set(name, { shape, data: randn(rng, shape[0]! * shape[1]!, 0.5) });
  return m;
}

/** An expert = base + δ, δ given as one flat vector over NAMES in order. */
function expertFrom(base: Map<string, HostTensor>, flat: ArrayLike<number>): Map<string, HostTensor> {
  const m = new Map(base);
  let off = 0;
  for (const [name, shape] of MLP) {
    const b = base.get(name)!.data;
    const d = new Float32Array(b.length);
    for (let t = 0; t < b.length; t++) d[t] = b[t]! + flat[off + t]!;
    off += b.length;
    m.set(name, { shape, data: d });
  }
  return m;
}

const FLAT = MLP.reduce((a, [, s]) => a + s[0]! * s[1]!, 0);

/** δ (float32, as the code sees it) of an expert, flattened over NAMES. */
function flatDelta(base: Map<string, HostTensor>, expert: TensorSource | Map<string, HostTensor>): number[] {
  const src = expert instanceof Map ? memorySource(expert) : expert;
  const out: number[] = [];
  for (const name of NAMES) {
    const b = base.get(name)!.data;
    const x = src.read(name).data;
    for (let t = 0; t < b.length; t++) out.push(Math.fround(x[t]! - b[t]!));
  }
  return out;
}

function randomExperts(base: Map<string, HostTensor>, m: number, seed: number): Map<string, HostTensor>[] {
  const rng = new Rng(seed);
  return Array.from({ length: m }, () => expertFrom(base, randn(rng, FLAT, 0.1)));
}

/** Every step picked the most distant unused pair of the pool at that time, and no pair twice. */
function expectArgmaxSelection(res: ExpandResult<unknown>, m: number): void {
  const used = new Set<string>();
  for (const l of res.lineage) {
    const c = l.child;
    let best: [number, number] = [-1, -1];
    let bestD = -Infinity;
    for (let i = 0; i < c; i++) {
      for (let j = i + 1; j < c; j++) {
        if (used.has(`${i},${j}`)) continue;
        if (res.distances[i]![j]! > bestD + 1e-12) {
          bestD = res.distances[i]![j]!;
          best = [i, j];
        }
      }
    }
    expect(l.parents).toEqual(best);
    expect(l.distance).toBeCloseTo(bestD, 12);
    const key = l.parents.join(',');
    expect(used.has(key)).toBe(false);
    used.add(key);
  }
  expect(res.lineage.map((l) => l.child)).toEqual(res.lineage.map((_, i) => m + i));
}

describe('distanceMatrix', () => {
  it('is symmetric with a zero diagonal and matches brute force (FFN task vectors, both metrics)', () => {
    const base = baseModel();
    const experts = randomExperts(base, 5, 1);
    const tv = ffnTaskVectors(
      memorySource(base),
      experts.map((e) => memorySource(e)),
    );
    expect(tv.names).toEqual(NAMES); // the embedding is not an expert tensor
    const flat = experts.map((e) => flatDelta(base, e));
    for (const metric of ['cosine', 'l2'] as const) {
      const d = distanceMatrix(tv, metric);
      for (let i = 0; i < 5; i++) {
        expect(d[i]![i]).toBe(0);
        for (let j = 0; j < 5; j++) expect(d[i]![j]).toBe(d[j]![i]);
      }
      expectMatrixClose(d, bruteDistances(flat, metric), 1e-12);
    }
    // in-memory δ maps give the same
    const maps = experts.map((e) => new Map(NAMES.map((n) => [n, tv.delta(experts.indexOf(e), n)])));
    expectMatrixClose(distanceMatrix(maps, 'cosine'), distanceMatrix(tv, 'cosine'), 1e-15);
  });

  it('names the expert and tensor when shapes disagree', () => {
    const base = baseModel();
    const bad = new Map(base);
    bad.set(NAMES[2]!, { shape: [6, 3], data: new Float32Array(18) });
    expect(() =>
      ffnTaskVectors(memorySource(base), [memorySource(base), memorySource(bad, 'ckpt-2')]),
    ).toThrow(`ckpt-2: tensor "${NAMES[2]}" has shape [6, 3], the base has [4, 6]`);
  });
});

describe('expandPool (FFN)', () => {
  const base = baseModel();
  const baseSrc = memorySource(base);

  it('picks the most distant unused pair each round, never repeating a pair (known distances)', () => {
    // task vectors in the first 4 coordinates only:
    //   δ0 = e1, δ1 = e2, δ2 = −e1 + 0.2 e2 (nearly opposite δ0), δ3 = 0.6 e1 + 0.6 e2 + 0.5 e3
    const dirs = [
      [1, 0, 0, 0],
      [0, 1, 0, 0],
      [-1, 0.2, 0, 0],
      [0.6, 0.6, 0.5, 0],
    ];
    const experts = dirs.map((v) => {
      const flat = new Float32Array(FLAT);
      flat.set(v);
      return memorySource(expertFrom(base, flat));
    });
    const res = expandPool({ mode: 'ffn', base: baseSrc, experts, n: 9, p: 0.3, seed: 4 });
    expect(res.lineage[0]!.parents).toEqual([0, 2]);
    expect(res.lineage[0]!.distance).toBeCloseTo(1 + 1 / Math.sqrt(1.04), 6);
    expect(res.children.length).toBe(5);
    expectArgmaxSelection(res, 4);
    // the final distance matrix is the brute-force one over originals + children
    const flat = [...experts.map((e) => flatDelta(base, e)), ...res.children.map((c) => flatDelta(base, c))];
    expectMatrixClose(res.distances, bruteDistances(flat, 'cosine'), 1e-9);
  });

  it('makes child = θ0 + α·DARE(δ_j) + β·DARE(δ_k), reproducible from its lineage record', () => {
    const experts = randomExperts(base, 3, 2).map((e) => memorySource(e));
    const res = expandPool({ mode: 'ffn', base: baseSrc, experts, n: 6, p: 0.5, seed: 9, metric: 'l2' });
    const pool: TensorSource[] = [...experts, ...res.children.map((c) => memorySource(c))];
    for (const [i, l] of res.lineage.entries()) {
      expect(l.alpha + l.beta).toBe(1);
      expect(l.p).toBe(0.5);
      const [j, k] = l.parents;
      for (const name of NAMES) {
        const want = mergeTensor(
          'dare_linear',
          base.get(name)!.data,
          [pool[j]!.read(name).data, pool[k]!.read(name).data],
          { weights: [l.alpha, l.beta], drop: 0.5 },
          { name, seed: l.seed },
        );
        expectBitwiseEqual(res.children[i]!.get(name)!.data, want);
      }
    }
    expectArgmaxSelection(res, 3);
    const flat = pool.map((e) => flatDelta(base, e));
    expectMatrixClose(res.distances, bruteDistances(flat, 'l2'), 1e-9);
  });

  it('with p = 0 the child is the α/β interpolation of its parents', () => {
    const experts = randomExperts(base, 2, 3).map((e) => memorySource(e));
    const res = expandPool({
      mode: 'ffn',
      base: baseSrc,
      experts,
      n: 3,
      p: 0,
      seed: 1,
      alphaClamp: [0.2, 0.4],
    });
    const { alpha, beta } = res.lineage[0]!;
    expect(alpha).toBeGreaterThanOrEqual(0.2);
    expect(alpha).toBeLessThanOrEqual(0.4);
    const dj = flatDelta(base, experts[0]!);
    const dk = flatDelta(base, experts[1]!);
    const dc = flatDelta(base, res.children[0]!);
    for (let t = 0; t < dc.length; t++)
      expect(Math.abs(dc[t]! - (alpha * dj[t]! + beta * dk[t]!))).toBeLessThan(1e-6);
    // non-expert tensors are not part of a child
    expect([...res.children[0]!.keys()]).toEqual(NAMES);
  });

  it('is deterministic for a seed; random selection follows the seed', () => {
    const experts = randomExperts(base, 4, 5).map((e) => memorySource(e));
    const run = (seed: number, selection: 'most-distant' | 'random') =>
      expandPool({ mode: 'ffn', base: baseSrc, experts, n: 10, seed, selection });
    const a = run(7, 'most-distant');
    const b = run(7, 'most-distant');
    expect(b.lineage).toEqual(a.lineage);
    for (let i = 0; i < a.children.length; i++)
      for (const name of NAMES)
        expectBitwiseEqual(b.children[i]!.get(name)!.data, a.children[i]!.get(name)!.data);
    expect(run(8, 'most-distant').lineage.map((l) => l.alpha)).not.toEqual(a.lineage.map((l) => l.alpha));

    const r1 = run(1, 'random');
    const r1again = run(1, 'random');
    const r2 = run(2, 'random');
    const pairs = (r: ExpandResult<unknown>) => r.lineage.map((l) => l.parents.join(','));
    expect(pairs(r1again)).toEqual(pairs(r1));
    expect(pairs(r2)).not.toEqual(pairs(r1));
    for (const r of [r1, r2]) expect(new Set(pairs(r)).size).toBe(6);
    expect(pairs(r1)).not.toEqual(pairs(a));
  });

  it('rejects bad options', () => {
    const experts = randomExperts(base, 2, 6).map((e) => memorySource(e));
    const go = (o: object) => () => expandPool({ mode: 'ffn', base: baseSrc, experts, n: 3, seed: 0, ...o });
    expect(go({ p: 1 })).toThrow(UserError);
    expect(go({ p: 1 })).toThrow('expand.p: must be in [0, 1), got 1');
    expect(go({ p: -0.5 })).toThrow(/expand.p/);
    expect(go({ n: 1 })).toThrow(/expand.n/);
    expect(go({ alphaClamp: [0.7, 0.3] })).toThrow(/expand.alphaClamp/);
    expect(() =>
      expandPool({ mode: 'ffn', base: baseSrc, experts: experts.slice(0, 1), n: 2, seed: 0 }),
    ).toThrow(/at least 2 experts/);
  });
});

// ---- LoRA -------------------------------------------------------------------------------------

const MODS: [string, number, number][] = [
  ['model.layers.0.mlp.gate_proj', 12, 8],
  ['model.layers.0.mlp.down_proj', 8, 12],
];
const SPEC = { r: 3, alpha: 6, targets: ['gate_proj', 'down_proj'] };

function loraExperts(count: number, seed: number, sharedA = false): LoraExpert[] {
  const rng = new Rng(seed);
  const As = new Map(MODS.map(([m, , inn]) => [m, { shape: [3, inn], data: randn(rng, 3 * inn, 0.3) }]));
  return Array.from({ length: count }, () => {
    const A = new Map<string, HostTensor>();
    const B = new Map<string, HostTensor>();
    for (const [m, out, inn] of MODS) {
      A.set(m, sharedA ? As.get(m)! : { shape: [3, inn], data: randn(rng, 3 * inn, 0.3) });
      B.set(m, { shape: [out, 3], data: randn(rng, out * 3, 0.1) });
    }
    return { A, B, spec: SPEC };
  });
}

/** ΔW of every module, in float64, concatenated. */
function flatLora(e: LoraExpert): number[] {
  const out: number[] = [];
  const s = e.spec.alpha / e.spec.r;
  for (const [m, o, inn] of MODS) {
    const A = e.A.get(m)!;
    const B = e.B.get(m)!;
    const r = A.shape[0]!;
    for (let i = 0; i < o; i++)
      for (let j = 0; j < inn; j++) {
        let v = 0;
        for (let k = 0; k < r; k++) v += B.data[i * r + k]! * A.data[k * inn + j]!;
        out.push(s * v);
      }
  }
  return out;
}

describe('expandPool (LoRA)', () => {
  it('distances in factor space match brute force over ΔW = (α/r)·B·A', () => {
    const experts = loraExperts(4, 1);
    const flat = experts.map(flatLora);
    for (const metric of ['cosine', 'l2'] as const)
      expectMatrixClose(distanceMatrix(experts, metric), bruteDistances(flat, metric), 1e-12);
  });

  it('delta space: DARE on ΔW, then the best rank-r approximation (children have rank ≤ r)', () => {
    const experts = loraExperts(3, 2);
    const res = expandPool({ mode: 'lora', experts, n: 6, p: 0.5, seed: 3 });
    const pool = [...experts, ...res.children];
    expectArgmaxSelection(res, 3);
    for (const [i, l] of res.lineage.entries()) {
      const child = res.children[i]!;
      expect(child.spec.r).toBe(3);
      expect(child.spec.alpha / child.spec.r).toBe(2);
      for (const [m, out, inn] of MODS) {
        expect(child.A.get(m)!.shape).toEqual([3, inn]);
        expect(child.B.get(m)!.shape).toEqual([out, 3]);
        // the DARE'd combination the child approximates
        const M = mergeTensor(
          'dare_linear',
          new Float32Array(out * inn),
          [loraDeltaW(pool[l.parents[0]]!, m), loraDeltaW(pool[l.parents[1]]!, m)],
          { weights: [l.alpha, l.beta], drop: 0.5 },
          { name: m, seed: l.seed },
        );
        const full = truncatedSvd(M, out, inn, Math.min(out, inn), { method: 'gram' });
        let tail = 0;
        for (let x = 3; x < full.k; x++) tail += full.S[x]! ** 2;
        const dw = loraDeltaW(child, m);
        let e2 = 0;
        for (let t = 0; t < M.length; t++) e2 += (M[t]! - dw[t]!) ** 2;
        expect(e2 / tail).toBeCloseTo(1, 4); // ‖M − M_r‖²_F = Σ_{i>r} σ_i²
        const sv = truncatedSvd(dw, out, inn, Math.min(out, inn), { method: 'gram' });
        for (let x = 3; x < sv.k; x++) expect(sv.S[x]!).toBeLessThan(1e-5 * sv.S[0]!);
      }
    }
    expectMatrixClose(res.distances, bruteDistances(pool.map(flatLora), 'cosine'), 1e-9);
    // deterministic
    const again = expandPool({ mode: 'lora', experts, n: 6, p: 0.5, seed: 3 });
    expect(again.lineage).toEqual(res.lineage);
    for (const [i, c] of again.children.entries())
      for (const [m] of MODS) expectBitwiseEqual(c.B.get(m)!.data, res.children[i]!.B.get(m)!.data);
  });

  it('delta space can change the rank; factor space keeps it and is exact for a shared A at p = 0', () => {
    const experts = loraExperts(3, 4, true);
    const low = expandPool({ mode: 'lora', experts, n: 4, seed: 1, loraRank: 2 });
    expect(low.children[0]!.spec).toMatchObject({ r: 2, alpha: 4 });
    expect(low.children[0]!.A.get(MODS[0]![0])!.shape).toEqual([2, 8]);

    const res = expandPool({ mode: 'lora', experts, n: 5, p: 0, seed: 2, loraMergeSpace: 'factor' });
    const pool = [...experts, ...res.children];
    for (const [i, l] of res.lineage.entries()) {
      const c = flatLora(res.children[i]!);
      const j = flatLora(pool[l.parents[0]]!);
      const k = flatLora(pool[l.parents[1]]!);
      for (let t = 0; t < c.length; t++)
        expect(Math.abs(c[t]! - (l.alpha * j[t]! + l.beta * k[t]!))).toBeLessThan(1e-6);
      expect(res.children[i]!.A.get(MODS[0]![0])!.shape).toEqual([3, 8]);
    }
    expect(() =>
      expandPool({ mode: 'lora', experts, n: 4, seed: 0, loraMergeSpace: 'factor', loraRank: 2 }),
    ).toThrow(/expand.loraRank/);
    expect(() => expandPool({ mode: 'lora', experts, n: 4, seed: 0, loraRank: 9 })).toThrow(/exceeds min/);
  });
});
