import { describe, expect, it } from 'vitest';
import { emaDebiased } from '../../../src-renderer/charts/smoothing.js';

describe('emaDebiased (TensorBoard smoothing)', () => {
  it('matches a hand computation', () => {
    // w = 0.5: last = 0.5, 1.25, 2.125; debias by 1 − 0.5^k = 0.5, 0.75, 0.875
    const s = emaDebiased([1, 2, 3], 0.5);
    expect(s[0]).toBeCloseTo(1, 12);
    expect(s[1]).toBeCloseTo(1.25 / 0.75, 12);
    expect(s[2]).toBeCloseTo(2.125 / 0.875, 12);
  });

  it('is unbiased at the start: the first point is itself', () => {
    expect(emaDebiased([7, 8], 0.99)[0]).toBeCloseTo(7, 12);
  });

  it('passes missing and non-finite values through without advancing the average', () => {
    const s = emaDebiased([1, null, NaN, 3], 0.5);
    expect(s[0]).toBeCloseTo(1, 12);
    expect(s[1]).toBeNaN();
    expect(s[2]).toBeNaN();
    // k = 2 at the last point: (0.25 + 1.5) / 0.75
    expect(s[3]).toBeCloseTo(1.75 / 0.75, 12);
  });

  it('weight 0 is the raw series; a constant series stays exact', () => {
    expect(Array.from(emaDebiased([3, 1, 2], 0))).toEqual([3, 1, 2]);
    expect(Array.from(emaDebiased([0.1, 0.1, 0.1, 0.1], 0.9))).toEqual([0.1, 0.1, 0.1, 0.1]);
  });

  it('smooths noise toward the mean', () => {
    const ys = Array.from({ length: 400 }, (_, i) => (i % 2 === 0 ? 1 : -1));
    const s = emaDebiased(ys, 0.95);
    expect(Math.abs(s[399]!)).toBeLessThan(0.05);
  });

  it('rejects weights outside [0, 1)', () => {
    expect(() => emaDebiased([1], 1)).toThrow(RangeError);
    expect(() => emaDebiased([1], -0.1)).toThrow(RangeError);
  });
});
