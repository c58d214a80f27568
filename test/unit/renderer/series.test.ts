import { describe, expect, it } from 'vitest';
import { EMPTY_SERIES, hasTokens, mergePoints } from '../../../src-renderer/charts/series.js';

const p = (step: number, value: number | null, tokens: number | null = null) => ({ step, value, tokens });

describe('mergePoints', () => {
  it('appends points past the end without touching the input', () => {
    const a = mergePoints(EMPTY_SERIES, [p(1, 1), p(2, 2)]);
    const b = mergePoints(a, [p(3, 3)]);
    expect(b.steps).toEqual([1, 2, 3]);
    expect(a.steps).toEqual([1, 2]);
    expect(EMPTY_SERIES.steps).toEqual([]);
  });

  it('replaces a re-logged step and inserts out-of-order points in place', () => {
    const s = mergePoints(EMPTY_SERIES, [p(1, 1), p(3, 3), p(5, 5)]);
    const m = mergePoints(s, [p(3, 30, 300), p(2, 2), p(0, 0)]);
    expect(m.steps).toEqual([0, 1, 2, 3, 5]);
    expect(m.values).toEqual([0, 1, 2, 30, 5]);
    expect(m.tokens).toEqual([null, null, null, 300, null]);
  });

  it('knows when every point carries tokens', () => {
    expect(hasTokens(mergePoints(EMPTY_SERIES, [p(1, 1, 10), p(2, 2, 20)]))).toBe(true);
    expect(hasTokens(mergePoints(EMPTY_SERIES, [p(1, 1, 10), p(2, 2)]))).toBe(false);
    expect(hasTokens(EMPTY_SERIES)).toBe(false);
  });
});
