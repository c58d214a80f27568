import { describe, expect, it } from 'vitest';
import type { CompareRow } from '../../../src-main/contract/index.js';
import { studentTQuantile, tInterval } from '../../../src-main/report/stats.js';
import {
  configDiff,
  differingKeys,
  filterRecords,
  flattenConfig,
  formatInterval,
  groupByVariant,
  meanInterval,
  minMaxDownsample,
  numericKeys,
  sortGroups,
  sortRecords,
  tableColumns,
  toRecord,
  tQuantile975,
  visibleRange,
} from '../../../src-renderer/lib/compare.js';

function row(id: number, over: Partial<CompareRow> = {}): CompareRow {
  return {
    id,
    experimentId: 1,
    parentRunId: null,
    kind: 'upcycle',
    variant: 'upit',
    seed: 1,
    status: 'done',
    backend: 'cpu',
    createdAt: 0,
    startedAt: 0,
    finishedAt: 0,
    wallSeconds: 1,
    error: null,
    config: { topK: 2, lr: 0.002, poolRun: 3, seed: 1 },
    metrics: { loss: 2.5 },
    scores: { arith: 0.5, code: 0.3 },
    average: 0.4,
    ...over,
  };
}

describe('flattenConfig', () => {
  it('dots nested keys and keeps arrays whole', () => {
    expect(
      flattenConfig({ mode: 'lora', lora: { r: 8, targets: ['up', 'down'] }, data: { x: null }, on: true }),
    ).toEqual({ mode: 'lora', 'lora.r': 8, 'lora.targets': '["up","down"]', 'data.x': null, on: true });
  });
});

describe('differingKeys and configDiff', () => {
  const a = { n: 4, mode: 'lora', lr: 0.1 };
  const b = { n: 8, mode: 'lora' };
  const c = { n: 8, mode: 'lora', lr: 0.1 };

  it('finds keys whose values differ, a missing key counting as different', () => {
    expect(differingKeys([a, b, c])).toEqual(['lr', 'n']);
    expect(differingKeys([a])).toEqual([]);
  });

  it('can ignore keys some configs lack', () => {
    expect(differingKeys([a, b, c], { ignoreMissing: true })).toEqual(['n']);
  });

  it('diffs two configs side by side', () => {
    expect(configDiff(a, b)).toEqual([
      { key: 'lr', a: 0.1, b: undefined },
      { key: 'n', a: 4, b: 8 },
    ]);
    expect(configDiff(b, b)).toEqual([]);
  });

  it('keeps numeric keys only', () => {
    expect(numericKeys([{ n: 4, m: 'x' }, { n: null }, {}], ['n', 'm', 'absent'])).toEqual(['n']);
  });
});

describe('t-interval', () => {
  it('matches the report module’s t quantiles', () => {
    for (const df of [1, 2, 3, 5, 10, 29, 30, 31, 45, 100, 1000])
      expect(tQuantile975(df)).toBeCloseTo(studentTQuantile(0.975, df), 5);
  });

  it('is the mean ± t·s/√n over the values, ignoring missing ones', () => {
    const iv = meanInterval([0.5, 0.6, null, 0.7])!;
    expect(iv.n).toBe(3);
    expect(iv.mean).toBeCloseTo(0.6, 12);
    // s = 0.1, t_{0.975,2} = 4.3027
    expect(iv.half).toBeCloseTo((4.30265273 * 0.1) / Math.sqrt(3), 8);
    const ref = tInterval([0.5, 0.6, 0.7])!;
    expect(iv.low).toBeCloseTo(ref.low, 6);
    expect(iv.high).toBeCloseTo(ref.high, 6);
  });

  it('has no width for one value and is null for none', () => {
    expect(meanInterval([3])).toEqual({ n: 1, mean: 3, half: null, low: 3, high: 3 });
    expect(meanInterval([null, undefined, NaN])).toBeNull();
    expect(formatInterval(meanInterval([0.5, 0.6, 0.7]), 'pct')).toBe('60.0 ± 24.8');
    expect(formatInterval(meanInterval([0.5]), 'pct')).toBe('50.0');
  });
});

describe('records: columns, sort, filter, groups', () => {
  const rows = [
    row(1, { variant: 'upit', seed: 1, average: 0.4, config: { topK: 2, router: 'pretrained', poolRun: 3 } }),
    row(2, { variant: 'upit', seed: 2, average: 0.6, config: { topK: 2, router: 'pretrained', poolRun: 9 } }),
    row(3, {
      variant: 'vanilla',
      seed: 1,
      average: null,
      scores: {},
      metrics: {},
      config: { topK: 4, router: 'random' },
    }),
    row(4, {
      kind: 'expand',
      variant: null,
      seed: 1,
      average: null,
      scores: {},
      metrics: { 'expand/alpha': 0.6 },
      config: { n: 4 },
    }),
  ].map(toRecord);

  it('makes columns of the differing hyperparameters (no wiring), scores and loss', () => {
    const t = tableColumns(rows);
    expect(t.hyper).toEqual(['router', 'topK']);
    expect(t.metrics).toEqual(['average', 'score:arith', 'score:code', 'loss']);
    expect(t.columns.map((c) => c.id)).toEqual([
      'id',
      'kind',
      'variant',
      'seed',
      'status',
      'cfg:router',
      'cfg:topK',
      'average',
      'score:arith',
      'score:code',
      'loss',
    ]);
    expect(tableColumns(rows, 1).hiddenHyper).toEqual(['topK']);
  });

  it('sorts stably with missing values last in both directions', () => {
    expect(sortRecords(rows, 'average', 'desc').map((r) => r.id)).toEqual([2, 1, 3, 4]);
    expect(sortRecords(rows, 'average', 'asc').map((r) => r.id)).toEqual([1, 2, 3, 4]);
    expect(sortRecords(rows, 'variant', 'asc').map((r) => r.id)).toEqual([1, 2, 3, 4]);
    expect(sortRecords(rows, 'cfg:topK', 'desc').map((r) => r.id)).toEqual([3, 1, 2, 4]);
  });

  it('filters on kind, variant, #id and key=value, every term', () => {
    expect(filterRecords(rows, 'upcycle').map((r) => r.id)).toEqual([1, 2, 3]);
    expect(filterRecords(rows, 'router=random').map((r) => r.id)).toEqual([3]);
    expect(filterRecords(rows, 'UPIT poolrun=9').map((r) => r.id)).toEqual([2]);
    expect(filterRecords(rows, '#4').map((r) => r.id)).toEqual([4]);
    expect(filterRecords(rows, '  ')).toBe(rows);
  });

  it('groups by variant with mean ± CI and n', () => {
    const groups = groupByVariant(rows, ['average', 'loss']);
    expect(groups.map((g) => [g.label, g.n, g.seeds])).toEqual([
      ['upit', 2, [1, 2]],
      ['vanilla', 1, [1]],
      ['expand (no variant)', 1, [1]],
    ]);
    const upit = groups[0]!.stats['average']!;
    expect(upit.mean).toBeCloseTo(0.5, 12);
    expect(upit.half).toBeCloseTo((12.7062047 * Math.sqrt(0.02)) / Math.sqrt(2), 6);
    expect(groups[1]!.stats['average']).toBeNull();
    expect(sortGroups(groups, 'average', 'asc').map((g) => g.label)).toEqual([
      'upit',
      'vanilla',
      'expand (no variant)',
    ]);
    expect(sortGroups(groups, 'variant', 'desc').map((g) => g.label)[0]).toBe('vanilla');
  });
});

describe('visibleRange', () => {
  it('covers the viewport plus the overscan, clamped', () => {
    expect(visibleRange(0, 300, 30, 1000, 5)).toEqual({ start: 0, end: 16 });
    expect(visibleRange(3000, 300, 30, 1000, 5)).toEqual({ start: 95, end: 116 });
    expect(visibleRange(1e9, 300, 30, 1000, 5)).toEqual({ start: 1000, end: 1000 });
    expect(visibleRange(0, 300, 30, 3, 5)).toEqual({ start: 0, end: 3 });
  });
});

describe('minMaxDownsample', () => {
  const n = 100_000;
  const xs = Array.from({ length: n }, (_, i) => i);

  it('keeps at most four points per pixel, in order, with the extremes of every column', () => {
    const ys = xs.map((x) => Math.sin(x / 500) + (x === 31_337 ? 9 : 0) - (x === 77_777 ? 9 : 0));
    const idx = Array.from(minMaxDownsample(xs, ys, 1000));
    expect(idx.length).toBeLessThanOrEqual(4000);
    expect(idx.length).toBeGreaterThan(1000);
    expect(idx[0]).toBe(0);
    expect(idx[idx.length - 1]).toBe(n - 1);
    for (let i = 1; i < idx.length; i++) expect(idx[i]!).toBeGreaterThan(idx[i - 1]!);
    expect(idx).toContain(31_337);
    expect(idx).toContain(77_777);
    // every pixel column's min and max survive
    for (let b = 0; b < 1000; b += 97) {
      const lo = Math.ceil((b * (n - 1)) / 1000);
      const hi = Math.ceil(((b + 1) * (n - 1)) / 1000);
      const col = ys.slice(lo, hi);
      const kept = idx.filter((i) => i >= lo && i < hi).map((i) => ys[i]!);
      expect(Math.max(...kept)).toBe(Math.max(...col));
      expect(Math.min(...kept)).toBe(Math.min(...col));
    }
  });

  it('skips missing values and returns everything for short curves', () => {
    expect(Array.from(minMaxDownsample([0, 1, 2, 3], [1, null, NaN, 2], 100))).toEqual([0, 3]);
    expect(Array.from(minMaxDownsample([], [], 100))).toEqual([]);
    expect(Array.from(minMaxDownsample([5, 5], [1, 2], 10))).toEqual([0, 1]);
  });
});
