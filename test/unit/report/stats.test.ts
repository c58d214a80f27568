import { describe, expect, it } from 'vitest';
import {
  mean,
  regularizedBeta,
  stdev,
  studentTCdf,
  studentTQuantile,
  tInterval,
  welchInterval,
} from '../../../src-main/report/stats.js';

describe('report statistics', () => {
  it('Student t quantiles match the tables', () => {
    // t_{0.975, ν} from standard tables
    const table: [number, number][] = [
      [1, 12.7062],
      [2, 4.3027],
      [3, 3.1824],
      [4, 2.7764],
      [9, 2.2622],
      [29, 2.0452],
      [120, 1.9799],
    ];
    for (const [df, t] of table) expect(studentTQuantile(0.975, df)).toBeCloseTo(t, 4);
    expect(studentTQuantile(0.95, 5)).toBeCloseTo(2.015, 3);
    expect(studentTQuantile(0.025, 4)).toBeCloseTo(-2.7764, 4);
    expect(studentTQuantile(0.5, 3)).toBe(0);
    expect(studentTCdf(studentTQuantile(0.9, 2.5), 2.5)).toBeCloseTo(0.9, 10);
    expect(() => studentTQuantile(1, 3)).toThrow(RangeError);
  });

  it('the incomplete beta function has its closed forms', () => {
    // I_x(1, b) = 1 − (1−x)^b, I_x(a, 1) = x^a
    expect(regularizedBeta(0.3, 1, 3)).toBeCloseTo(1 - 0.7 ** 3, 12);
    expect(regularizedBeta(0.3, 2.5, 1)).toBeCloseTo(0.3 ** 2.5, 12);
    expect(regularizedBeta(0, 2, 2)).toBe(0);
    expect(regularizedBeta(1, 2, 2)).toBe(1);
  });

  it('t-interval over seeds', () => {
    expect(mean([1, 2, 3, 4])).toBe(2.5);
    expect(stdev([2, 4, 4, 4, 5, 5, 7, 9])).toBeCloseTo(2.13809, 5);
    const ci = tInterval([0.5, 0.54, 0.52])!;
    // s = 0.02, s/√3 · t(0.975, 2)
    expect(ci.mean).toBeCloseTo(0.52, 12);
    expect(ci.half).toBeCloseTo((4.302652729749464 * 0.02) / Math.sqrt(3), 9);
    expect(ci.low).toBeCloseTo(0.52 - ci.half, 12);
    expect(ci.df).toBe(2);
    expect(tInterval([0.5])).toBeNull();
    expect(tInterval([0.5, 0.5])).toMatchObject({ low: 0.5, high: 0.5, half: 0 });
  });

  it("Welch's interval of a difference", () => {
    const w = welchInterval([0.4, 0.44], [0.5, 0.54])!;
    expect(w.diff).toBeCloseTo(-0.1, 12);
    expect(w.df).toBeCloseTo(2, 12);
    expect(w.half).toBeCloseTo(4.302652729749464 * Math.sqrt(0.0008), 9);
    // unequal variances and sizes: Welch–Satterthwaite df
    const a = [1, 2, 3, 4];
    const b = [2, 6];
    const va = 5 / 3 / 4;
    const vb = 8 / 2;
    const df = (va + vb) ** 2 / (va ** 2 / 3 + vb ** 2 / 1);
    expect(welchInterval(a, b)!.df).toBeCloseTo(df, 12);
    expect(welchInterval([1, 1], [2, 2])).toMatchObject({ diff: -1, half: 0 });
    expect(welchInterval([1], [2, 3])).toBeNull();
  });
});
