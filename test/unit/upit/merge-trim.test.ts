/**
 * Both models' TIES trim plans at once (planTrimPair: a sample places a band of |δ| for each
 * model, one pass over the three arrays counts the entries above each band and collects those in
 * it) against the plan read off a full sort, on the SIMD kernels and on ordinary arrays: ties in
 * the magnitudes, zeros, densities from k = 1 to k = n, lengths that are not a multiple of the
 * kernels' four, and a sample that misleads (the band misses and the exact fallback plans).
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src-main/common/rng.js';
import { SimdArena, TRIM_BINS } from '../../../src-main/upit/merge/simd.js';
import {
  CHUNK,
  planTrimPair,
  TrimPairLanding,
  trimCount,
  type TrimPlan,
} from '../../../src-main/upit/merge/sparsify.js';
import { bits } from './helpers.js';

/** The plan by sorting every |δ| (float32 bits, as the trim defines them). */
function sortedPlan(x: Float32Array, b: Float32Array, k: number): TrimPlan {
  const n = x.length;
  if (k >= n) return { thresholdBits: -1, tiesToKeep: 0, lastTie: -1 };
  const u = bits(Float32Array.from(x, (v, i) => Math.abs(v - b[i]!)));
  const thr = Int32Array.from(u).sort().reverse()[k - 1]!;
  let above = 0;
  for (const v of u) if (v > thr) above++;
  const tiesToKeep = k - above;
  let seen = 0;
  const lastTie = [...u.keys()].find((i) => u[i] === thr && ++seen === tiesToKeep)!;
  return { thresholdBits: thr, tiesToKeep, lastTie };
}

type Shape = 'continuous' | 'grid' | 'zeros' | 'misleading';

/** A base and two models; `misleading` makes the entries planTrimPair samples ten times larger. */
function inputs(seed: number, n: number, shape: Shape) {
  const rng = new Rng(seed);
  const base = Float32Array.from({ length: n }, () => rng.normal() * 0.05);
  const runs = Math.min(1 << 18, Math.max(1 << 14, n >>> 4)) >>> 4;
  const stride = Math.floor(n / runs);
  const xs = [0, 1].map(() =>
    base.map((b, i) => {
      let d = rng.normal() * 0.01;
      if (shape === 'grid') d = Math.round(d * 256) / 256; // many equal magnitudes
      if (shape === 'zeros' && rng.next() < 0.9) d = 0; // most entries unchanged
      if (shape === 'misleading' && i % stride < 16) d *= 10;
      return b + d;
    }),
  );
  return { base, x0: xs[0]!, x1: xs[1]! };
}

function inArena(base: Float32Array, x0: Float32Array, x1: Float32Array) {
  const n = base.length;
  const arena = SimdArena.create(SimdArena.bytesFor(n, n, n), {
    maskWords: CHUNK >>> 5,
    bandElements: Math.ceil(n / 8) + 1024,
  });
  if (arena === null) throw new Error('WebAssembly SIMD is unavailable here');
  const copy = (a: Float32Array) => {
    const v = arena.f32(a.length);
    v.set(a);
    return v;
  };
  return { arena, base: copy(base), x0: copy(x0), x1: copy(x1) };
}

describe('planTrimPair', () => {
  const shapes: [Shape, number][] = [
    ['continuous', 70_003],
    ['grid', 65_537],
    ['zeros', 100_002],
    ['misleading', 300_001],
  ];
  it.each(shapes)('equals the sorted plans of both models (%s δ, n = %i)', (shape, n) => {
    const given = inputs(n, n, shape);
    const simd = inArena(given.base, given.x0, given.x1);
    for (const density of [1e-9, 0.01, 0.2, 0.5, 0.9, (n - 1) / n, 1]) {
      const k = trimCount(n, density);
      const want = [sortedPlan(given.x0, given.base, k), sortedPlan(given.x1, given.base, k)];
      expect(planTrimPair(simd.x0, simd.x1, simd.base, k), `SIMD, density ${density}`).toEqual(want);
      expect(planTrimPair(given.x0, given.x1, given.base, k), `JavaScript, density ${density}`).toEqual(want);
    }
  });

  it('the same model twice (a third model pairs with itself)', () => {
    const { base, x0 } = inputs(5, 90_001, 'continuous');
    const simd = inArena(base, x0, x0);
    const k = trimCount(base.length, 0.3);
    const want = sortedPlan(x0, base, k);
    expect(planTrimPair(simd.x0, simd.x0, simd.base, k)).toEqual([want, want]);
  });
});

describe('SimdArena.histRank', () => {
  it('finds the bin holding each rank, skipping blocks of bins', () => {
    const arena = SimdArena.create(0, { maskWords: 4, bandElements: 16 })!;
    const h = arena.trimSample(new Float32Array(0), new Float32Array(0), new Float32Array(0), 0, 16)[0]!;
    expect(h.length).toBe(TRIM_BINS);
    const rng = new Rng(3);
    for (let i = 0; i < 3000; i++) h[rng.int(TRIM_BINS)]! += 1 + rng.int(3);
    let total = 0;
    for (const c of h) total += c;
    for (const rank of [0, 1, 17, Math.floor(total / 2), total - 1, total, total + 5]) {
      let cum = 0;
      let want = 0;
      for (; want < h.length; want++) {
        cum += h[want]!;
        if (cum > rank) break;
      }
      expect(arena.histRank(h, rank), `rank ${rank}`).toBe(want);
    }
  });
});

describe('SimdArena.acquire', () => {
  it('hands a released arena of the same shape to the next merge, with its views anew, and no other', () => {
    const scratch = { maskWords: 4, bandElements: 0, rangeMaskWords: 8 };
    const a = SimdArena.acquire(1 << 16, scratch)!;
    const first = a.f32(100);
    first.fill(7);
    // while a is out, another acquire gets an arena of its own
    const b = SimdArena.acquire(1 << 16, scratch)!;
    expect(b).not.toBe(a);
    a.release();
    const again = SimdArena.acquire(1 << 16, scratch)!;
    expect(again).toBe(a);
    const view = again.f32(100);
    expect(view.byteOffset).toBe(first.byteOffset); // the views start over
    // a different shape does not take it
    again.release();
    expect(SimdArena.acquire(1 << 17, scratch)).not.toBe(a);
    expect(SimdArena.acquire(1 << 16, { ...scratch, rangeMaskWords: 16 })).not.toBe(a);
    expect(SimdArena.acquire(1 << 16, scratch)).toBe(a);
    // and none at all with the kernels turned off
    a.release();
    process.env.UPIT_MERGE_SIMD = '0';
    try {
      expect(SimdArena.acquire(1 << 16, scratch)).toBeNull();
    } finally {
      delete process.env.UPIT_MERGE_SIMD;
    }
  });
});

describe('TrimPairLanding', () => {
  const shapes: [Shape, number, number][] = [
    ['continuous', 300_001, 65_536],
    ['grid', 200_003, 32_768],
    ['zeros', 100_002, 16_384],
    ['misleading', 300_001, 65_536],
  ];
  it.each(shapes)(
    'plans slice by slice, in any arrival order, the sorted plans of both models (%s δ, n = %i)',
    (shape, n, sliceLen) => {
      const given = inputs(n + 7, n, shape);
      const simd = inArena(given.base, given.x0, given.x1);
      for (const density of [1e-9, 0.05, 0.2, 0.7, (n - 1) / n]) {
        const k = trimCount(n, density);
        if (k >= n) continue;
        const want = [sortedPlan(given.x0, given.base, k), sortedPlan(given.x1, given.base, k)];
        for (const reversed of [false, true]) {
          const planner = new TrimPairLanding(simd.arena, n, k, sliceLen);
          expect([...planner.order].sort((a, b) => a - b)).toEqual([
            ...Array(Math.ceil(n / sliceLen)).keys(),
          ]);
          const order = reversed ? [...planner.order].reverse() : planner.order;
          for (const slice of order) planner.land(simd.x0, simd.x1, simd.base, slice);
          expect(planner.plans(), `density ${density}${reversed ? ', reversed' : ''}`).toEqual(want);
        }
      }
    },
  );
});
