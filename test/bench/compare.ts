/**
 * Compare view benchmark: `npm run bench -- compare`
 *
 * The work behind the Compare view for 1,000 runs and a 100,000-point curve, in Node on the
 * view's own pure functions (src-renderer/lib/compare.ts), each against a reference measured
 * in the same run:
 *
 *  - one table update (filter, the columns that differ, sort, group by variant with CIs) vs
 *    the straightforward way: configs flattened again inside the filter and the sort
 *    comparator, groups by one filter per variant;
 *  - the cells a render formats: the virtualized window (the rows that fit the table's 340 px,
 *    plus overscan) vs every row of the table;
 *  - a curve drawn at 1,000 px: min/max per pixel column then the SVG path of the kept points
 *    vs the path of all 100,000 points (and LTTB, the Runs view's downsampler, for scale).
 *
 * Figures are medians of repeated timings after a warm-up; nothing here asserts a time.
 */
import { line } from 'd3';
import type { CompareRow } from '../../src-main/contract/index.js';
import { lttb } from '../../src-renderer/charts/downsample.js';
import {
  columnValue,
  compareScalars,
  filterRecords,
  flattenConfig,
  formatScalar,
  groupByVariant,
  meanInterval,
  minMaxDownsample,
  sortRecords,
  tableColumns,
  toRecord,
  visibleRange,
  type RunRecord,
  type Scalar,
} from '../../src-renderer/lib/compare.js';

const RUNS = 1000;
const POINTS = 100_000;
const PIXELS = 1000;
const ROW_HEIGHT = 30;
const VIEWPORT = 340;

/** xorshift32 in [0, 1): deterministic data without Math.random. */
function stream(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

const VARIANTS = ['dense', 'upit', 'no-router-init', 'vanilla', 'loramoe', 'random-parents', 'first-half'];
const DOMAINS = ['arith', 'code', 'qa', 'mc'];

function makeRows(n: number): CompareRow[] {
  const rnd = stream(7);
  return Array.from({ length: n }, (_, i) => {
    const variant = VARIANTS[i % VARIANTS.length]!;
    const seed = 1 + Math.floor(i / VARIANTS.length);
    const scores = Object.fromEntries(DOMAINS.map((d) => [d, 0.3 + 0.4 * rnd()]));
    const vals = Object.values(scores);
    return {
      id: i + 1,
      experimentId: 1,
      parentRunId: null,
      kind: variant === 'dense' ? 'prepare' : 'upcycle',
      variant,
      seed,
      status: 'done',
      backend: 'cpu',
      createdAt: 1_700_000_000_000 + i,
      startedAt: null,
      finishedAt: null,
      wallSeconds: 10 + rnd() * 100,
      error: null,
      config: {
        seed,
        backend: 'auto',
        topK: 1 + (i % 3),
        epochs: [0.5, 1, 2][i % 3]!,
        lr: [1e-3, 2e-3, 5e-4][(i >> 2) % 3]!,
        router: variant === 'upit' ? 'pretrained' : 'random',
        poolRun: 3 + (i % 5),
        lora: { r: 8, alpha: 16, targets: ['gate_proj', 'up_proj', 'down_proj'] },
        data: { source: 'embedded', trainPerDomain: 400, evalPerDomain: 100 },
        batchSize: [8, 16][i % 2]!,
        maxSeqLen: 256,
        auxCoef: 0.01,
      },
      metrics: { loss: 1.5 + rnd(), lr: 1e-4, grad_norm: rnd() },
      scores,
      average: vals.reduce((a, b) => a + b, 0) / vals.length,
    };
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Median ms of `reps` calls after `warm` unmeasured ones; `sink` keeps results alive. */
let sink = 0;
function time(fn: () => unknown, reps: number, warm = 3): number {
  for (let i = 0; i < warm; i++) fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const out = fn();
    ts.push(performance.now() - t0);
    sink += Array.isArray(out) ? out.length : typeof out === 'string' ? out.length : 1;
  }
  return median(ts);
}

// ---- the straightforward reference ------------------------------------------------------------

function naiveUpdate(rows: readonly CompareRow[], query: string): unknown {
  const terms = query.toLowerCase().split(/\s+/).filter(Boolean);
  const filtered = rows.filter((r) => {
    const flat = flattenConfig(r.config);
    const text = `#${r.id} ${r.kind} ${r.variant ?? ''} ${Object.entries(flat)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(' ')}`.toLowerCase();
    return terms.every((t) => text.includes(t));
  });
  const flats = filtered.map((r) => flattenConfig(r.config));
  const keys = [...new Set(flats.flatMap((f) => Object.keys(f)))];
  const differing = keys.filter((k) => new Set(flats.map((f) => JSON.stringify(f[k]))).size > 1);
  const sorted = [...filtered].sort((a, b) => {
    const va = flattenConfig(a.config)['topK'] as Scalar;
    const vb = flattenConfig(b.config)['topK'] as Scalar;
    return compareScalars(vb, va) || (b.average ?? -1) - (a.average ?? -1);
  });
  const variants = [...new Set(filtered.map((r) => r.variant))];
  const groups = variants.map((v) => {
    const mine = filtered.filter((r) => r.variant === v);
    return [
      v,
      meanInterval(mine.map((r) => r.average)),
      ...DOMAINS.map((d) => meanInterval(mine.map((r) => r.scores[d]))),
    ];
  });
  return [differing, sorted, groups];
}

function libUpdate(records: readonly RunRecord[], query: string): unknown {
  const filtered = filterRecords(records, query);
  const table = tableColumns(filtered, 8);
  const sorted = sortRecords(sortRecords(filtered, 'average', 'desc'), 'cfg:topK', 'desc');
  const groups = groupByVariant(filtered, table.metrics);
  return [table, sorted, groups];
}

function cells(
  rows: readonly RunRecord[],
  start: number,
  end: number,
  cols: ReturnType<typeof tableColumns>,
): number {
  let chars = 0;
  for (let i = start; i < end; i++) {
    const r = rows[i]!;
    for (const c of cols.columns) chars += formatScalar(columnValue(r, c.id), c.format).length;
  }
  return chars;
}

export async function benchCompare(): Promise<void> {
  const rows = makeRows(RUNS);
  const fmt = (ms: number): string => `${ms.toFixed(3).padStart(9)} ms`;
  const ratio = (ref: number, x: number): string => `${(ref / x).toFixed(1)}×`;

  console.log(`table: ${RUNS} runs, ${VARIANTS.length} variants, ${DOMAINS.length} domains`);
  const tPrep = time(() => rows.map(toRecord), 20);
  const records = rows.map(toRecord);
  console.log(`  records (flatten + search text, once per load)  ${fmt(tPrep)}`);

  for (const query of ['', 'upcycle', 'upit lr=0.002']) {
    const tLib = time(() => libUpdate(records, query), 30);
    const tNaive = time(() => naiveUpdate(rows, query), 10);
    const n = filterRecords(records, query).length;
    console.log(
      `  update, filter ${JSON.stringify(query).padEnd(16)} ${String(n).padStart(4)} rows  ${fmt(tLib)}` +
        `   naive ${fmt(tNaive)}   ${ratio(tNaive, tLib)} faster`,
    );
  }

  const cols = tableColumns(records, 8);
  const sorted = sortRecords(records, 'average', 'desc');
  const win = visibleRange(4_000, VIEWPORT, ROW_HEIGHT, sorted.length);
  const tWin = time(() => cells(sorted, win.start, win.end, cols), 200);
  const tAll = time(() => cells(sorted, 0, sorted.length, cols), 50);
  const perRow = cols.columns.length + 1;
  console.log(
    `  render: ${win.end - win.start} of ${sorted.length} rows in the DOM (${(win.end - win.start) * perRow} vs ${
      sorted.length * perRow
    } cells)`,
  );
  console.log(
    `  format the window's cells                      ${fmt(tWin)}   full table ${fmt(tAll)}   ${ratio(tAll, tWin)} less work`,
  );

  // ---- a long curve ----------------------------------------------------------------------------
  const rnd = stream(11);
  const xs = Array.from({ length: POINTS }, (_, i) => i + 1);
  const ys = xs.map((x) => 1.6 + 3.2 * Math.exp(-x / 20_000) + (rnd() - 0.5) * 0.3);
  const xScale = (x: number): number => ((x - 1) / (POINTS - 1)) * PIXELS;
  const yScale = (y: number): number => 200 - y * 30;
  const path = (idx: ArrayLike<number>): string =>
    line<number>()
      .x((i) => xScale(xs[i]!))
      .y((i) => yScale(ys[i]!))(Array.from(idx)) ?? '';
  const all = Uint32Array.from(xs, (_, i) => i);

  const kept = minMaxDownsample(xs, ys, PIXELS);
  const tDown = time(() => minMaxDownsample(xs, ys, PIXELS), 50);
  const tDownPath = time(() => path(minMaxDownsample(xs, ys, PIXELS)), 50);
  const tFull = time(() => path(all), 10);
  const yArr = Float64Array.from(ys);
  const tLttb = time(() => lttb(xs, yArr, 2 * PIXELS), 20);
  console.log(`curve: ${POINTS.toLocaleString('en')} points at ${PIXELS} px`);
  console.log(`  min/max per pixel column                       ${fmt(tDown)}   keeps ${kept.length} points`);
  console.log(
    `  downsample + SVG path                          ${fmt(tDownPath)}   full path ${fmt(tFull)}   ${ratio(
      tFull,
      tDownPath,
    )} faster, path ${path(kept).length.toLocaleString('en')} vs ${path(all).length.toLocaleString('en')} chars`,
  );
  console.log(`  (LTTB to ${2 * PIXELS} points, for scale)                 ${fmt(tLttb)}`);
  if (sink < 0) console.log(sink);
}
