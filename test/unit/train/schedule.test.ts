import { describe, expect, it } from 'vitest';

import { lrAt, resolveSchedule } from '../../../src-main/train/schedule.js';

describe('cosine schedule with linear warm-up', () => {
  const base = 2e-4;
  const sch = resolveSchedule({ kind: 'cosine', warmupSteps: 10 }, 110);

  it('warms up linearly to the peak on the last warm-up step', () => {
    expect(lrAt(0, base, sch)).toBeCloseTo(base / 10, 15);
    expect(lrAt(4, base, sch)).toBeCloseTo(base / 2, 15);
    expect(lrAt(9, base, sch)).toBeCloseTo(base, 15);
    expect(lrAt(10, base, sch)).toBeCloseTo(base, 15);
  });

  it('is half the peak at the midpoint of the decay and 0 at the end', () => {
    expect(lrAt(60, base, sch)).toBeCloseTo(base / 2, 15);
    expect(lrAt(110, base, sch)).toBeCloseTo(0, 15);
    expect(lrAt(109, base, sch)).toBeGreaterThan(0);
    expect(lrAt(500, base, sch)).toBeCloseTo(0, 15);
  });

  it('decays monotonically', () => {
    for (let s = 10; s < 110; s++) expect(lrAt(s + 1, base, sch)).toBeLessThanOrEqual(lrAt(s, base, sch));
  });

  it('honours minLrRatio', () => {
    const m = resolveSchedule({ kind: 'cosine', warmupSteps: 10, minLrRatio: 0.1 }, 110);
    expect(lrAt(110, base, m)).toBeCloseTo(0.1 * base, 15);
    expect(lrAt(60, base, m)).toBeCloseTo(0.55 * base, 15);
  });

  it('derives warm-up from warmupRatio (default 3%, rounded up)', () => {
    expect(resolveSchedule('cosine', 100).warmupSteps).toBe(3);
    expect(resolveSchedule('cosine', 10).warmupSteps).toBe(1);
    expect(resolveSchedule({ kind: 'cosine', warmupRatio: 0.1 }, 64).warmupSteps).toBe(7);
    expect(resolveSchedule({ kind: 'cosine', warmupRatio: 0 }, 64).warmupSteps).toBe(0);
    const noWarm = resolveSchedule({ kind: 'cosine', warmupRatio: 0 }, 64);
    expect(lrAt(0, base, noWarm)).toBe(base);
  });

  it('constant schedule: flat after an optional warm-up', () => {
    const c = resolveSchedule('constant', 50);
    expect(c.warmupSteps).toBe(0);
    expect(lrAt(0, base, c)).toBe(base);
    expect(lrAt(49, base, c)).toBe(base);
    const cw = resolveSchedule({ kind: 'constant', warmupSteps: 4 }, 50);
    expect(lrAt(1, base, cw)).toBeCloseTo(base / 2, 15);
    expect(lrAt(30, base, cw)).toBe(base);
  });

  it('rejects bad options', () => {
    expect(() => resolveSchedule({ kind: 'cosine', warmupRatio: 2 }, 10)).toThrow(/warmupRatio/);
    expect(() => resolveSchedule('cosine', 0)).toThrow(/total steps/);
    expect(() => resolveSchedule({ kind: 'linear' as 'cosine' }, 10)).toThrow(/unknown kind/);
  });
});
