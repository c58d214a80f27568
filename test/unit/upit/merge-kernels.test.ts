/**
 * The merge kernels against a plain element-by-element reference of the documented arithmetic
 * (the float64 formulas the methods are specified by, in their order, masks and trims found the
 * obvious way), bit for bit: the fused two-model kernels, the TIES fast path and its fallback,
 * the one-pass trim threshold and its fallback must all give exactly these values. Each case runs
 * three ways: on ordinary arrays (the JavaScript loops), on views of a SimdArena with every scratch
 * region (the WebAssembly SIMD kernels, simd.ts: a range's DARE masks drawn at once, both models'
 * trim plans in one pass) and on one with only the chunk scratch (the SIMD kernels chunk by
 * chunk), which must all give the same bits.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src-main/common/rng.js';
import { MERGE_METHODS, type MergeMethodName } from '../../../src-main/upit/merge/methods.js';
import { SimdArena } from '../../../src-main/upit/merge/simd.js';
import {
  CHUNK,
  dareLabel,
  planTrim,
  planTrimBand,
  trimCount,
} from '../../../src-main/upit/merge/sparsify.js';
import { bits } from './helpers.js';
import { maskWords } from '../../../src-main/upit/merge/sparsify.js';

const TINY = 1e-300;

/** Bitwise equality, any NaN matching any NaN (JavaScript does not pin NaN payloads). */
function expectSameValues(got: Float32Array, want: Float32Array, what: string): void {
  const g = bits(got);
  const w = bits(want);
  expect(got.length).toBe(want.length);
  for (let i = 0; i < g.length; i++) {
    if (g[i] !== w[i] && !(Number.isNaN(got[i]) && Number.isNaN(want[i])))
      throw new Error(`${what}: element ${i} is ${got[i]}, want ${want[i]}`);
  }
}

/** The DARE keep mask: b-bit fields of the words (low bits first) ≥ p·2^b, or words ≥ round(p·2³²). */
function dareKeep(seed: number, model: number, name: string, p: number, n: number): boolean[] {
  const rng = Rng.derive(seed, dareLabel(model, name));
  const out: boolean[] = [];
  const b = [1, 2, 4, 8, 16].find((x) => Number.isInteger(p * 2 ** x));
  while (out.length < n) {
    const w = rng.nextU32();
    if (b === undefined) out.push(w >= Math.round(p * 2 ** 32));
    else for (let j = 0; j < 32 / b; j++) out.push(((w >>> (j * b)) & (2 ** b - 1)) >= p * 2 ** b);
  }
  return out.slice(0, n);
}

/** The magnitude trim: the k entries of largest float32 |δ| bits, ties in index order. */
function trimKeep(x: Float32Array, b: Float32Array, k: number): boolean[] {
  const f = Float32Array.from(x, (v, i) => Math.abs(v - b[i]!));
  const u = bits(f);
  const order = [...f.keys()].sort((i, j) => u[j]! - u[i]! || i - j);
  const keep = new Array<boolean>(x.length).fill(false);
  for (const i of order.slice(0, k)) keep[i] = true;
  return keep;
}

/** TIES (sign election by sum, disjoint mean) of τ_i = (keep_i·c_i)·δ_i, as documented. */
function referenceTies(
  base: Float32Array,
  xs: Float32Array[],
  w: number[],
  c: number[],
  keep: boolean[][],
  lambda: number,
  normalize: boolean,
): Float32Array {
  const tau = new Float64Array(xs.length);
  return base.map((bo, t) => {
    for (let i = 0; i < xs.length; i++) tau[i] = +keep[i]![t]! * c[i]! * (xs[i]![t]! - bo);
    let s = tau[0]!;
    for (let i = 1; i < tau.length; i++) s += tau[i]!;
    const neg = 0.5 * (Math.abs(s) - s);
    const sg = 1 - 2 * (neg / (neg + TINY));
    let num = 0;
    let den = 0;
    for (let i = 0; i < tau.length; i++) {
      const y = sg * tau[i]!;
      const q = 0.5 * (y + Math.abs(y));
      num = i === 0 ? q : num + q;
      den = i === 0 ? w[i]! * (q / (q + TINY)) : den + w[i]! * (q / (q + TINY));
    }
    return normalize
      ? bo + lambda * ((sg * num) / (den + (1 - den / (den + TINY))))
      : bo + lambda * (sg * num);
  });
}

/** θ0 + scale·Σ (keep_i·c_i)·δ_i, summed in model order. */
function referenceSum(base: Float32Array, xs: Float32Array[], c: number[], keep: boolean[][], scale: number) {
  return base.map((bo, t) => {
    let acc = +keep[0]![t]! * c[0]! * (xs[0]![t]! - bo);
    for (let i = 1; i < xs.length; i++) acc += +keep[i]![t]! * c[i]! * (xs[i]![t]! - bo);
    return bo + scale * acc;
  });
}

function referenceL1(x: Float32Array, b: Float32Array, keep: boolean[]): number {
  let all = 0;
  let kept = 0;
  for (let t = 0; t < x.length; t++) {
    const d = Math.abs(x[t]! - b[t]!);
    all += d;
    kept += +keep[t]! * d;
  }
  return kept > 0 ? all / kept : 0;
}

/**
 * Inputs that reach every path: 70 000 entries (above the one-pass trim's minimum), δ on a coarse
 * grid (so many |δ| tie at the threshold) or continuous, some entries equal to the base, and
 * optionally a few NaN, ±∞ and −0 (which the fast kernels hand back to the reference one).
 */
function inputs(seed: number, m: number, grid: boolean, special: boolean) {
  const rng = new Rng(seed);
  const n = 70_003; // the SIMD kernels (four elements a step) leave the last three to JavaScript
  const base = Float32Array.from({ length: n }, () => rng.normal() * 0.05);
  const xs = Array.from({ length: m }, () =>
    base.map((b) => {
      if (rng.next() < 0.05) return b;
      const d = rng.normal() * 0.01;
      return b + (grid ? Math.round(d * 512) / 512 : d);
    }),
  );
  // signed zeros in the base, with and without a task vector there (the output's zero sign counts)
  for (let j = 0; j < 64; j++) {
    const i = rng.int(n);
    base[i] = j % 2 === 0 ? 0 : -0;
    for (const x of xs) x[i] = j % 4 < 2 ? base[i]! : x[i]!;
  }
  if (special) {
    for (const v of [Number.NaN, Infinity, -Infinity, -0]) {
      xs[rng.int(m)]![rng.int(n)] = v;
      base[rng.int(n)] = v;
    }
  }
  return { base, xs };
}

/**
 * Weights that reach every finish of the two-model TIES kernels: none (normalize off), t1 = t2
 * (equal weights), a divisor by agreement (0.3, 0.7), the models swapped (1, −0.25), the general
 * product (1, −1: reciprocals 1, −1, 1), and the reference kernel (a weight below 1e-30).
 */
const WEIGHTS: (number[] | null)[] = [null, [0.5, 0.5], [0.3, 0.7], [1, -0.25], [1, -1], [1e-35, 1]];

type Where = 'js' | 'simd' | 'simd-chunks';
const PLACES = ['js', 'simd', 'simd-chunks'] as const;

/**
 * The inputs where a merge finds them: as given (JavaScript kernels) or copied into a SimdArena
 * with the output there too (SIMD kernels).
 */
function placed(where: Where, base: Float32Array, xs: Float32Array[]) {
  if (where === 'js') return { base, xs, out: () => undefined };
  const all = where === 'simd';
  const arena = SimdArena.create(SimdArena.bytesFor(...[base, ...xs, base, base].map((a) => a.length)), {
    maskWords: CHUNK >>> 5,
    bandElements: all ? base.length : 0,
    rangeMaskWords: all ? maskWords(base.length) : 0,
  });
  if (arena === null) throw new Error('WebAssembly SIMD is unavailable here');
  const copy = (a: Float32Array) => {
    const v = arena.f32(a.length);
    v.set(a);
    return v;
  };
  const outs = [arena.f32(base.length), arena.f32(base.length)];
  let k = 0;
  return { base: copy(base), xs: xs.map(copy), out: () => outs[k++ % 2] };
}

describe('merge kernels match the reference arithmetic bit for bit', () => {
  for (const [grid, special] of [
    [false, false],
    [true, false],
    [false, true],
  ] as const) {
    const label = `${grid ? 'tied' : 'continuous'} δ${special ? ', NaN/±∞/−0' : ''}`;

    it.each(PLACES)(`ties and dare_ties, two and three models (${label}, %s)`, (where) => {
      for (const m of [2, 3]) {
        const given = inputs(m + (grid ? 10 : 0) + (special ? 20 : 0), m, grid, special);
        const { base, xs, out } = placed(where, given.base, given.xs);
        const ctx = { name: 'model.layers.0.mlp.up_proj.weight', seed: 5 };
        const keepT = xs.map((x) => trimKeep(x, base, trimCount(base.length, 0.3)));
        const dare = [
          [0.5, 'inverse'],
          [0.3, 'l1'],
        ] as const;
        const keepD = dare.map(([drop]) => xs.map((_, i) => dareKeep(5, i, ctx.name, drop, base.length)));
        for (const [wi, weights] of WEIGHTS.entries()) {
          const w = weights === null ? xs.map(() => 1) : [...weights, 1].slice(0, m);
          // λ positive, negative or 0 (then every τ term is a signed zero)
          const lambda = [0.7, -1.5, 0][wi % 3]!;
          for (const normalize of [true, false]) {
            const raw = { weights: w, normalize, lambda };
            const what = `${label} ${w} λ=${lambda}${normalize ? ' normalized' : ''}`;
            const ties = MERGE_METHODS.ties;
            const got = ties.mergeTensor(base, xs, ties.validate({ ...raw, density: 0.3 }, m), ctx, out());
            expectSameValues(got, referenceTies(base, xs, w, w, keepT, lambda, normalize), `ties ${what}`);
            for (const [j, [drop, rescale]] of dare.entries()) {
              const dt = MERGE_METHODS.dare_ties;
              const g = dt.mergeTensor(base, xs, dt.validate({ ...raw, drop, rescale }, m), ctx, out());
              const keep = keepD[j]!;
              const c = w.map((wi, i) =>
                rescale === 'l1' ? wi * referenceL1(xs[i]!, base, keep[i]!) : wi * (1 / (1 - drop)),
              );
              expectSameValues(
                g,
                referenceTies(base, xs, w, c, keep, lambda, normalize),
                `dare_ties ${rescale} ${what}`,
              );
            }
          }
        }
      }
    });

    it.each(PLACES)(`linear, task_arithmetic and dare_linear (${label}, %s)`, (where) => {
      for (const m of [1, 2, 3]) {
        const given = inputs(m + 40, m, grid, special);
        const { base, xs, out } = placed(where, given.base, given.xs);
        const ctx = { name: 't', seed: 9 };
        const w = [0.5, 0.25, 2].slice(0, m);
        const wsum = w.reduce((a, b) => a + b, 0);
        const run = (name: MergeMethodName, raw: Record<string, unknown>) => {
          const method = MERGE_METHODS[name];
          return method.mergeTensor(base, xs, method.validate(raw, m), ctx, out());
        };
        const lin = base.map((_, t) => {
          let acc = w[0]! * xs[0]![t]!;
          for (let i = 1; i < m; i++) acc += w[i]! * xs[i]![t]!;
          return acc * (1 / wsum);
        });
        expectSameValues(run('linear', { weights: w }), lin, `linear ${m}`);
        const all = xs.map(() => new Array<boolean>(base.length).fill(true));
        const ta = referenceSum(base, xs, w, all, 0.7);
        expectSameValues(run('task_arithmetic', { weights: w, lambda: 0.7 }), ta, `task_arithmetic ${m}`);
        for (const drop of [0.5, 0.3]) {
          const keep = xs.map((_, i) => dareKeep(9, i, 't', drop, base.length));
          const c = w.map((wi) => wi * (1 / (1 - drop)));
          const want = referenceSum(base, xs, c, keep, 0.7 / wsum);
          const got = run('dare_linear', { weights: w, drop, lambda: 0.7, normalize: true });
          expectSameValues(got, want, `dare_linear ${m} p=${drop}`);
        }
      }
    });
  }

  it.each(PLACES)('the one-pass trim threshold equals the sorted one, lastTie included (%s)', (where) => {
    for (const grid of [false, true]) {
      const given = inputs(grid ? 61 : 60, 1, grid, false);
      const { base, xs } = placed(where, given.base, given.xs);
      const x = xs[0]!;
      const f = Float32Array.from(x, (v, i) => Math.abs(v - base[i]!));
      const u = bits(f);
      const sorted = Int32Array.from(u).sort().reverse();
      for (const density of [0.01, 0.2, 0.5, 0.9]) {
        const k = trimCount(x.length, density);
        const plan = planTrim(x, base, k);
        // on continuous δ the one-pass band finds it (on the coarse grid the ties can overflow
        // the band, and the exact fallback plans)
        if (!grid) expect(planTrimBand(x, base, k)).toEqual(plan);
        const thr = sorted[k - 1]!;
        const above = sorted.filter((v) => v > thr).length;
        expect(plan.thresholdBits).toBe(thr);
        expect(plan.tiesToKeep).toBe(k - above);
        let seen = 0;
        const last = [...u.keys()].find((i) => u[i] === thr && ++seen === k - above);
        expect(plan.lastTie).toBe(last);
      }
    }
  });

  it.each(PLACES)('merging block by block gives the whole-tensor values (%s)', (where) => {
    const given = inputs(77, 2, false, false);
    const { base, xs, out } = placed(where, given.base, given.xs);
    const ctx = { name: 'model.layers.3.mlp.down_proj.weight', seed: 11 };
    const cases: [MergeMethodName, Record<string, unknown>][] = [
      ['linear', { weights: [0.3, 0.7] }],
      ['task_arithmetic', { weights: [0.5, 0.25], lambda: 0.9 }],
      ['dare_linear', { weights: [0.5, 0.5], drop: 0.5 }],
      ['dare_linear', { weights: [0.5, 0.5], drop: 0.3, rescale: 'none' }],
      ['dare_ties', { weights: [1, 0.5], drop: 0.5, normalize: true }],
    ];
    for (const [name, raw] of cases) {
      const method = MERGE_METHODS[name];
      const params = method.validate(raw, 2);
      const whole = method.mergeTensor(base, xs, params, ctx, out());
      const want = Float32Array.from(whole);
      const bm = method.blocks(params, ctx, 2);
      if (bm === null) throw new Error(`${name} has no block merge`);
      const got = out() ?? new Float32Array(base.length);
      // blocks of 3 and 2 chunks, then the odd rest
      for (let off = 0, i = 0; off < base.length; i++) {
        const len = Math.min((i % 2 === 0 ? 3 : 2) * CHUNK, base.length - off);
        const view = (a: Float32Array) => a.subarray(off, off + len);
        bm.next(view(base), xs.map(view), view(got));
        off += len;
      }
      expectSameValues(got, want, `${name} ${JSON.stringify(raw)} by blocks`);
    }
    const ties = MERGE_METHODS.ties;
    expect(ties.blocks(ties.validate({ density: 0.5 }, 2), ctx, 2)).toBeNull();
    const dl = MERGE_METHODS.dare_linear;
    expect(dl.blocks(dl.validate({ drop: 0.5, rescale: 'l1' }, 2), ctx, 2)).toBeNull();
  });
});
