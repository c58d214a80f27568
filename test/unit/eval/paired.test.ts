import { describe, expect, it } from 'vitest';
import {
  checkpointSpecialisation,
  formatComparison,
  mcnemarExact,
  pairedCompare,
  specialisationLines,
  type OutcomeRow,
} from '../../../src-main/eval/paired.js';

/** n outcomes: `ones` leading '1's then '0's. */
const bits = (n: number, ones: number) => '1'.repeat(ones) + '0'.repeat(n - ones);

describe('mcnemarExact', () => {
  it('is twice the binomial tail of the smaller discordant count', () => {
    // P[Bin(12, ½) ≤ 2] = (1 + 12 + 66) / 4096
    expect(mcnemarExact(10, 2)).toBeCloseTo((2 * 79) / 4096, 12);
    expect(mcnemarExact(2, 10)).toBeCloseTo((2 * 79) / 4096, 12);
    // P[Bin(5, ½) ≤ 0] = 1/32
    expect(mcnemarExact(5, 0)).toBeCloseTo(2 / 32, 12);
  });

  it('is 1 without discordant items or with balanced ones, and stays finite for large counts', () => {
    expect(mcnemarExact(0, 0)).toBe(1);
    expect(mcnemarExact(7, 7)).toBe(1);
    const p = mcnemarExact(700, 400);
    expect(p).toBeGreaterThan(0);
    expect(p).toBeLessThan(1e-15);
    expect(mcnemarExact(520, 480)).toBeGreaterThan(0.2);
  });
});

describe('pairedCompare', () => {
  it('counts discordant items and gives Δ with an interval around it', () => {
    // 100 items: both right on 20, A only on 12, B only on 3, both wrong on 65
    const a = bits(20, 20) + bits(12, 12) + bits(3, 0) + bits(65, 0);
    const b = bits(20, 20) + bits(12, 0) + bits(3, 3) + bits(65, 0);
    const c = pairedCompare(a, b);
    expect(c).toMatchObject({ n: 100, aOnly: 12, bOnly: 3 });
    expect(c.delta).toBeCloseTo(0.09, 12);
    expect(c.ciLow).toBeLessThan(c.delta);
    expect(c.ciHigh).toBeGreaterThan(c.delta);
    expect(c.ciLow).toBeGreaterThan(0); // 12 vs 3 of 100 is a real difference…
    expect(c.p).toBeCloseTo(mcnemarExact(12, 3), 12);
    expect(c.p).toBeLessThan(0.05);
    // …which two independent samples' Wilson intervals (32% vs 23%, n 100) would not show
    expect(formatComparison(c)).toMatch(/^\+9\.0 \[\+\d+\.\d, \+\d+\.\d\] p 0\.0\d\d$/);
    const back = pairedCompare(b, a);
    expect(back.delta).toBeCloseTo(-0.09, 12);
    expect(back.p).toBe(c.p);
  });

  it('prints a difference that rounds to zero without a minus sign', () => {
    expect(
      formatComparison({ n: 1, aOnly: 0, bOnly: 0, delta: 0, ciLow: -0.0001, ciHigh: 0.148, p: 0.078 }),
    ).toBe('+0.0 [+0.0, +14.8] p 0.078');
  });

  it('refuses outcomes of different lengths', () => {
    expect(() => pairedCompare('101', '10')).toThrow(/equal, non-zero length/);
    expect(() => pairedCompare('', '')).toThrow(/equal, non-zero length/);
  });
});

function row(label: string, step: number, scores: Record<string, string>, key = 'k'): OutcomeRow {
  const byDomain = new Map(
    Object.entries(scores).map(([d, o]) => [
      d,
      { score: [...o].filter((c) => c === '1').length / o.length, outcomes: o, itemsKey: `${key}-${d}` },
    ]),
  );
  return { label, step, isBase: label === 'base', byDomain };
}

describe('checkpointSpecialisation', () => {
  const n = 120;
  it('finds a crossing when each checkpoint is clearly better on its own domain', () => {
    const rows = [
      row('base', 0, { arith: bits(n, 10), code: bits(n, 10) }),
      row('step-25', 25, { arith: bits(n, 40), code: bits(n, 12) }),
      row('step-50', 50, { arith: bits(n, 15), code: bits(n, 45) }),
    ];
    const s = checkpointSpecialisation(rows)!;
    expect(s.perDomain.map((b) => [b.domain, b.best])).toEqual([
      ['arith', 'step-25'],
      ['code', 'step-50'],
    ]);
    expect(s.perDomain[0]!.vsBase!.delta).toBeCloseTo(30 / n, 12);
    expect(s.perDomain[0]!.vsLast!.delta).toBeCloseTo(25 / n, 12);
    expect(s.perDomain[1]!.vsLast).toBeNull(); // the last checkpoint is code's best
    expect(s.crossings).toHaveLength(1);
    expect(s.crossings[0]).toMatchObject({ domains: ['arith', 'code'], checkpoints: ['step-25', 'step-50'] });
    expect(s.crossings[0]!.significant).toBe(true);
    expect(s.verdict).toMatch(
      /^yes: step-25 beats step-50 on arith \(\+20\.8, p < 0\.001\) and loses to it on code/,
    );
    expect(specialisationLines(s).join('\n')).toMatch(/← crossing/);
  });

  it('says no when one checkpoint is best everywhere, and "not shown" for differences within noise', () => {
    const one = checkpointSpecialisation([
      row('step-25', 25, { arith: bits(n, 20), code: bits(n, 20) }),
      row('step-50', 50, { arith: bits(n, 30), code: bits(n, 30) }),
    ])!;
    expect(one.verdict).toBe('no: one checkpoint is best, or tied for best, on every domain');
    expect(one.crossings).toHaveLength(0);
    const noisy = checkpointSpecialisation([
      row('step-25', 25, { arith: bits(n, 22), code: bits(n, 20) }),
      row('step-50', 50, { arith: bits(n, 20), code: bits(n, 23) }),
    ])!;
    expect(noisy.crossings).toHaveLength(1);
    expect(noisy.crossings[0]!.significant).toBe(false);
    expect(noisy.verdict).toMatch(/^not shown: 2 different checkpoints are best/);
  });

  it('pairs only evaluations of the same items, and needs two checkpoints', () => {
    const s = checkpointSpecialisation([
      row('base', 0, { arith: bits(n, 10) }, 'other-items'),
      row('step-25', 25, { arith: bits(n, 40), code: bits(n, 12) }),
      row('step-50', 50, { arith: bits(n, 15), code: bits(n, 45) }, 'other-items'),
    ])!;
    expect(s.perDomain[0]!.vsBase).toBeNull();
    expect(s.perDomain[0]!.vsLast).toBeNull();
    expect(s.crossings).toHaveLength(0);
    expect(checkpointSpecialisation([row('step-25', 25, { arith: bits(n, 40) })])).toBeNull();
  });
});
