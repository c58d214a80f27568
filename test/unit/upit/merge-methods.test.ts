import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src-main/common/errors.js';
import { Rng } from '../../../src-main/common/rng.js';
import {
  getMergeMethod,
  MERGE_METHOD_NAMES,
  MERGE_METHODS,
  mergeTensor,
} from '../../../src-main/upit/merge/methods.js';
import {
  dareLabel,
  maskPlan,
  MaskStream,
  planTrim,
  TrimStream,
} from '../../../src-main/upit/merge/sparsify.js';
import { expectBitwiseEqual, randn } from './helpers.js';

/** The documented mask: b-bit fields of the words (low bits first) ≥ p·2^b, or words ≥ round(p·2³²). */
function referenceKeep(rng: Rng, p: number, n: number): boolean[] {
  const out: boolean[] = [];
  const bits = [1, 2, 4, 8, 16].find((b) => Number.isInteger(p * 2 ** b));
  while (out.length < n) {
    const w = rng.nextU32();
    if (bits === undefined) out.push(w >= Math.round(p * 2 ** 32));
    else
      for (let j = 0; j < 32 / bits; j++) out.push(((w >>> (j * bits)) & (2 ** bits - 1)) >= p * 2 ** bits);
  }
  return out.slice(0, n);
}

const ctx = (name = 'model.layers.0.mlp.up_proj.weight', seed = 7) => ({ name, seed });

function l1(a: ArrayLike<number>, b?: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - (b ? b[i]! : 0));
  return s;
}

describe('DARE', () => {
  const rng = new Rng(1);
  const n = 10_000;
  const base = randn(rng, n, 0.05);
  const m1 = base.map((v) => v + rng.normal() * 0.01);
  const m2 = base.map((v) => v + rng.normal() * 0.01);

  it('with p = 0 equals task arithmetic bitwise (linear and TIES variants)', () => {
    const common = { weights: [0.3, 0.7], lambda: 0.8 };
    const ta = mergeTensor('task_arithmetic', base, [m1, m2], common, ctx());
    const dl = mergeTensor('dare_linear', base, [m1, m2], { ...common, drop: 0 }, ctx());
    expectBitwiseEqual(dl, ta);
    const ties = mergeTensor('ties', base, [m1, m2], { ...common, density: 1, normalize: false }, ctx());
    const dt = mergeTensor('dare_ties', base, [m1, m2], { ...common, drop: 0 }, ctx());
    expectBitwiseEqual(dt, ties);
    // and task arithmetic is what it says
    for (const i of [0, 17, n - 1]) {
      const want = base[i]! + 0.8 * (0.3 * (m1[i]! - base[i]!) + 0.7 * (m2[i]! - base[i]!));
      expect(ta[i]).toBeCloseTo(want, 7);
    }
  });

  it('keeps a fraction ≈ 1 − p, and kept entries are exactly δ/(1 − p)', () => {
    const zero = new Float32Array(n * 10);
    const delta = randn(new Rng(2), n * 10);
    for (const p of [0.3, 0.5, 0.75]) {
      const out = mergeTensor('dare_linear', zero, [delta], { drop: p }, ctx());
      let kept = 0;
      let wrong = 0;
      for (let i = 0; i < out.length; i++) {
        if (out[i] === 0) continue;
        kept++;
        if (out[i] !== Math.fround(delta[i]! / (1 - p))) wrong++;
      }
      expect(wrong).toBe(0);
      const N = out.length;
      const sd = Math.sqrt(N * p * (1 - p));
      expect(Math.abs(kept - N * (1 - p))).toBeLessThan(5 * sd);
      // the mask is the reference draw from the tensor's own stream
      const keep = referenceKeep(Rng.derive(7, dareLabel(0, ctx().name)), p, N);
      let mismatch = 0;
      for (let i = 0; i < N; i++) if ((out[i] !== 0) !== keep[i]) mismatch++;
      expect(mismatch).toBe(0);
    }
  });

  it('averaged over seeds converges to task arithmetic like 1/√seeds', () => {
    const p = 0.5;
    const small = 256;
    const b = base.subarray(0, small);
    const x = m1.subarray(0, small);
    const ta = mergeTensor('task_arithmetic', b, [x], {}, ctx());
    let d2 = 0;
    for (let i = 0; i < small; i++) d2 += (x[i]! - b[i]!) ** 2;
    const perSeedMse = ((d2 / small) * p) / (1 - p);
    const ratios: number[] = [];
    for (const seeds of [16, 256]) {
      const mean = new Float64Array(small);
      for (let s = 0; s < seeds; s++) {
        const out = mergeTensor('dare_linear', b, [x], { drop: p }, ctx('t', s));
        for (let i = 0; i < small; i++) mean[i]! += out[i]! / seeds;
      }
      let mse = 0;
      for (let i = 0; i < small; i++) mse += (mean[i]! - ta[i]!) ** 2 / small;
      ratios.push(mse / (perSeedMse / seeds));
    }
    // mean squared error of the average = (per-seed variance) / seeds, within sampling noise
    for (const r of ratios) expect(r).toBeGreaterThan(0.7);
    for (const r of ratios) expect(r).toBeLessThan(1.3);
  });

  it('L1 rescale preserves the L1 norm of each dropped task vector', () => {
    for (const p of [0.5, 0.9]) {
      const out = mergeTensor('dare_linear', base, [m1], { drop: p, rescale: 'l1' }, ctx());
      expect(l1(out, base) / l1(m1, base)).toBeCloseTo(1, 4);
      // with the 1/(1−p) rescale the norm only matches in expectation
      const inv = mergeTensor('dare_linear', base, [m1], { drop: p }, ctx());
      expect(l1(inv, base) / l1(m1, base)).not.toBeCloseTo(1, 4);
    }
  });

  it('masks depend on the tensor name, the model index and the seed, not on call order', () => {
    const zero = new Float32Array(4096);
    const ones = new Float32Array(4096).fill(1);
    const a1 = mergeTensor('dare_linear', zero, [ones], {}, ctx('a', 1));
    const b1 = mergeTensor('dare_linear', zero, [ones], {}, ctx('b', 1));
    const a2 = mergeTensor('dare_linear', zero, [ones], {}, ctx('a', 2));
    const a1again = mergeTensor('dare_linear', zero, [ones], {}, ctx('a', 1));
    expectBitwiseEqual(a1again, a1);
    expect(Array.from(b1)).not.toEqual(Array.from(a1));
    expect(Array.from(a2)).not.toEqual(Array.from(a1));
    // model 1's mask is not model 0's
    const two = mergeTensor('dare_linear', zero, [ones, ones], { weights: [1, 0.001] }, ctx('a', 1));
    let differ = 0;
    for (let i = 0; i < 4096; i++) if (two[i]! >= 1 !== a1[i]! > 0) differ++;
    expect(differ).toBe(0); // model 0 keeps exactly a1's entries …
    const m1only = mergeTensor('dare_linear', zero, [zero, ones], {}, ctx('a', 1));
    expect(Array.from(m1only.map((v) => (v > 0 ? 1 : 0)))).not.toEqual(
      Array.from(a1.map((v) => (v > 0 ? 1 : 0))),
    );
  });

  it('MaskStream draws b-bit fields of the Rng words (exact for dyadic p), uint32 thresholds otherwise', () => {
    expect(maskPlan(0.5)).toEqual({ bits: 1, threshold: 1 });
    expect(maskPlan(0)).toEqual({ bits: 1, threshold: 0 });
    expect(maskPlan(0.25)).toEqual({ bits: 2, threshold: 1 });
    expect(maskPlan(0.9375)).toEqual({ bits: 4, threshold: 15 });
    expect(maskPlan(0.3)).toEqual({ bits: 32, threshold: Math.round(0.3 * 2 ** 32) });
    for (const p of [0, 0.25, 0.5, 0.3, 0.9375, 0.999]) {
      const s = MaskStream.forTensor(99, 1, 'x', p);
      const mult = new Float64Array(5000);
      // in uneven pieces: the stream continues across calls
      s.fill(mult, 1234, 2);
      s.fill(mult.subarray(1234), 5000 - 1234, 2);
      const keep = referenceKeep(Rng.derive(99, dareLabel(1, 'x')), p, 5000);
      let mismatch = 0;
      for (let i = 0; i < 5000; i++) if (mult[i] !== (keep[i] ? 2 : 0)) mismatch++;
      expect(mismatch).toBe(0);
    }
  });

  it('rejects p outside [0, 1)', () => {
    for (const drop of [1, 1.5, -0.1, Number.NaN]) {
      expect(() => mergeTensor('dare_linear', base, [m1], { drop }, ctx())).toThrow(UserError);
      expect(() => mergeTensor('dare_ties', base, [m1], { drop }, ctx())).toThrow(/drop: must be/);
    }
    expect(() => MERGE_METHODS.dare_linear.validate({ drop: 1 })).toThrow(
      'dare_linear.drop: must be in [0, 1), got 1',
    );
  });
});

describe('TIES', () => {
  // base 1 everywhere; task vectors (rows) chosen so trimming, ties at the threshold,
  // the sign election and the disjoint mean all matter:
  //   δ1 = [ 3, -1,  2, 0.5, -4]   top-3 by |δ| → [ 3,  0,  2, 0, -4]
  //   δ2 = [-2, -2,  1, 0.25, 5]   top-3        → [-2, -2,  0, 0,  5]
  //   δ3 = [ 1,  3, -3, 0.125,-1]  top-3 (|1| tie at 0 and 4: index 0 kept) → [1, 3, -3, 0, 0]
  const base = new Float32Array(5).fill(1);
  const deltas = [
    [3, -1, 2, 0.5, -4],
    [-2, -2, 1, 0.25, 5],
    [1, 3, -3, 0.125, -1],
  ];
  const models = deltas.map((d) => Float32Array.from(d, (v) => 1 + v));

  it('trims, elects signs by sum and takes the disjoint mean (hand-computed)', () => {
    // sums of trimmed: [2, 1, -1, 0, 1] → signs [+, +, -, + (sum 0), +]
    // agreeing entries: e0 {3, 1} → 2; e1 {3} → 3; e2 {-3} → -3; e3 none → 0; e4 {5} → 5
    const out = mergeTensor('ties', base, models, { density: 0.6 }, ctx());
    expect(Array.from(out)).toEqual([3, 4, -2, 1, 6]);
  });

  it('weights enter the election and the weighted disjoint mean', () => {
    // τ = w·trim with w = [1, 2, 1]: τ2 = [-4, -4, 0, 0, 10]
    // sums [0, -1, -1, 0, 6] → signs [+ (0 ≥ 0), -, -, +, +]
    // e0: {3·1, 1·1} / (1 + 1) = 2; e1: {-4 (w 2)} / 2 = -2; e2: {-3} / 1 = -3; e3: 0; e4: {10} / 2 = 5
    const out = mergeTensor('ties', base, models, { density: 0.6, weights: [1, 2, 1] }, ctx());
    expect(Array.from(out)).toEqual([3, -1, -2, 1, 6]);
    // without normalize: plain sum of agreeing τ, times λ
    const raw = mergeTensor(
      'ties',
      base,
      models,
      { density: 0.6, weights: [1, 2, 1], normalize: false, lambda: 0.5 },
      ctx(),
    );
    expect(Array.from(raw)).toEqual([1 + 0.5 * 4, 1 + 0.5 * -4, 1 + 0.5 * -3, 1, 1 + 0.5 * 10]);
  });

  it('the magnitude trim keeps exactly k entries, ties in index order', () => {
    const x = Float32Array.from([1, -3, 3, 2, -3, 0.5, 3]);
    const plan = planTrim(x, null, 3);
    const keep = new Float64Array(7);
    new TrimStream(plan).fill(keep, 1, x, null, 0, 7);
    expect(Array.from(keep)).toEqual([0, 1, 1, 0, 1, 0, 0]);
    const big = randn(new Rng(5), 100_000);
    for (const k of [1, 1234, 99_999]) {
      const pl = planTrim(big, null, k);
      const kk = new Float64Array(100_000);
      new TrimStream(pl).fill(kk, 1, big, null, 0, 100_000);
      expect(kk.reduce((a, b) => a + b, 0)).toBe(k);
      // every kept magnitude ≥ every dropped one
      let minKept = Infinity;
      let maxDropped = 0;
      for (let i = 0; i < big.length; i++) {
        if (kk[i]) minKept = Math.min(minKept, Math.abs(big[i]!));
        else maxDropped = Math.max(maxDropped, Math.abs(big[i]!));
      }
      expect(minKept).toBeGreaterThanOrEqual(maxDropped);
    }
  });
});

describe('linear and the registry', () => {
  const a = Float32Array.from([1, 2, 3]);
  const b = Float32Array.from([10, 20, 30]);
  const c = Float32Array.from([-4, 0, 4]);
  const base = new Float32Array(3);

  it('linear: weighted mean (normalize) or weighted sum', () => {
    expect(Array.from(mergeTensor('linear', base, [a, b, c], { weights: [1, 2, 1] }, ctx()))).toEqual([
      (1 + 20 - 4) / 4,
      (2 + 40) / 4,
      (3 + 60 + 4) / 4,
    ]);
    expect(
      Array.from(mergeTensor('linear', base, [a, b, c], { weights: [1, 2, 1], normalize: false }, ctx())),
    ).toEqual([17, 42, 67]);
    // the base's values do not matter to linear
    expect(Array.from(mergeTensor('linear', Float32Array.from([9, 9, 9]), [a, b], {}, ctx()))).toEqual([
      5.5, 11, 16.5,
    ]);
  });

  it('registers the five methods with parameter specs', () => {
    expect(Object.keys(MERGE_METHODS).sort()).toEqual([...MERGE_METHOD_NAMES].sort());
    for (const m of Object.values(MERGE_METHODS)) {
      expect(m.params.some((p) => p.name === 'weights')).toBe(true);
      expect(m.validate({})).toBeTruthy();
    }
    expect(MERGE_METHODS.dare_ties.params.map((p) => p.name)).toContain('drop');
    expect(MERGE_METHODS.ties.validate({}).normalize).toBe(true);
    expect(MERGE_METHODS.dare_ties.validate({}).normalize).toBe(false);
    expect(() => getMergeMethod('slerp')).toThrow(/unknown merge method "slerp"/);
  });

  it('rejects bad parameters and inputs with messages naming them', () => {
    expect(() => MERGE_METHODS.linear.validate({ drop: 0.5 })).toThrow(/linear has no parameter "drop"/);
    expect(() => MERGE_METHODS.ties.validate({ density: 0 })).toThrow(
      'ties.density: must be in (0, 1], got 0',
    );
    expect(() => MERGE_METHODS.ties.validate({ weights: [1, 'x'] })).toThrow(/ties.weights/);
    expect(() => MERGE_METHODS.ties.validate({ weights: [1] }, 2)).toThrow(
      'ties.weights: has 1 entries for 2 models',
    );
    expect(() => MERGE_METHODS.dare_linear.validate({ rescale: 'l2' })).toThrow(/rescale: must be one of/);
    expect(() => mergeTensor('task_arithmetic', base, [a, Float32Array.from([1])], {}, ctx('w.x'))).toThrow(
      'tensor "w.x": model 1 has 1 values, the base 3',
    );
    expect(() => mergeTensor('linear', base, [a, b], { weights: [1, -1] }, ctx())).toThrow(/sum to 0/);
  });
});
