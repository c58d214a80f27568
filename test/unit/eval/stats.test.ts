import { describe, expect, it } from 'vitest';
import { Z95, wilsonInterval } from '../../../src-main/eval/stats.js';

describe('wilsonInterval', () => {
  it('matches hand-computed 95% intervals', () => {
    // k=5, n=10: centre (0.5 + z²/20)/(1 + z²/10) = 0.5, half = z/(1+z²/10)·√(0.025 + z²/400)
    const z2 = Z95 * Z95;
    const half = (Z95 / (1 + z2 / 10)) * Math.sqrt(0.025 + z2 / 400);
    const a = wilsonInterval(5, 10);
    expect(a.low).toBeCloseTo(0.5 - half, 12);
    expect(a.high).toBeCloseTo(0.5 + half, 12);
    // Published value for 5/10: [0.2366, 0.7634]
    expect(a.low).toBeCloseTo(0.2366, 4);
    expect(a.high).toBeCloseTo(0.7634, 4);

    // k=0, n=10: [0, z²/n / (1 + z²/n)] = [0, 0.27753]
    const b = wilsonInterval(0, 10);
    expect(b.low).toBe(0);
    expect(b.high).toBeCloseTo(z2 / 10 / (1 + z2 / 10), 12);
    expect(b.high).toBeCloseTo(0.27753, 4);

    // k=n mirrors k=0
    const c = wilsonInterval(10, 10);
    expect(c.high).toBe(1);
    expect(c.low).toBeCloseTo(1 - b.high, 12);

    // 81/263 (Wikipedia example-style): p̂=0.30798; interval [0.2553, 0.3662]
    const d = wilsonInterval(81, 263);
    expect(d.low).toBeCloseTo(0.2553, 3);
    expect(d.high).toBeCloseTo(0.3662, 3);
  });

  it('is asymmetric around p̂ away from 1/2 and shrinks with n', () => {
    const s = wilsonInterval(1, 4);
    expect(s.low).toBeGreaterThan(0);
    expect(0.25 - s.low).toBeLessThan(s.high - 0.25);
    const big = wilsonInterval(100, 400);
    expect(big.high - big.low).toBeLessThan(s.high - s.low);
  });

  it('handles n = 0 and rejects bad counts', () => {
    expect(wilsonInterval(0, 0)).toEqual({ low: 0, high: 1 });
    expect(() => wilsonInterval(3, 2)).toThrow(RangeError);
    expect(() => wilsonInterval(-1, 2)).toThrow(RangeError);
    expect(() => wilsonInterval(1, 2.5)).toThrow(RangeError);
  });
});
