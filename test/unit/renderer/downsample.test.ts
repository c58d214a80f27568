import { describe, expect, it } from 'vitest';
import { lttb } from '../../../src-renderer/charts/downsample.js';

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('lttb', () => {
  it('returns every finite index when there are fewer points than the threshold', () => {
    expect(Array.from(lttb([0, 1, 2, 3], [5, NaN, 6, 7], 10))).toEqual([0, 2, 3]);
  });

  it('keeps exactly `threshold` points, the first and the last, in order', () => {
    const xs = range(10_000);
    const ys = xs.map((x) => Math.sin(x / 300));
    const idx = Array.from(lttb(xs, ys, 500));
    expect(idx).toHaveLength(500);
    expect(idx[0]).toBe(0);
    expect(idx[499]).toBe(9999);
    for (let i = 1; i < idx.length; i++) expect(idx[i]!).toBeGreaterThan(idx[i - 1]!);
  });

  it('keeps a one-point spike and a one-point dip', () => {
    const xs = range(20_000);
    const ys = xs.map((x) => (x === 7_777 ? 50 : x === 15_001 ? -50 : Math.sin(x / 1000)));
    const idx = Array.from(lttb(xs, ys, 200));
    expect(idx).toContain(7_777);
    expect(idx).toContain(15_001);
  });

  it('skips non-finite points', () => {
    const xs = range(1000);
    const ys = xs.map((x) => (x % 3 === 0 ? NaN : x));
    const idx = Array.from(lttb(xs, ys, 50));
    expect(idx.every((i) => Number.isFinite(ys[i]!))).toBe(true);
    expect(idx[idx.length - 1]).toBe(998);
  });

  it('rejects a threshold below 3', () => {
    expect(() => lttb([1, 2], [1, 2], 2)).toThrow(RangeError);
  });
});
