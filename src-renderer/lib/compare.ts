/**
 * The Compare view's logic, pure (no DOM, no runes; unit-tested and benchmarked in Node):
 * flattened configs and the keys that differ, table records with sort and filter, grouping by
 * variant with mean ± 95% t-interval over seeds, a two-run config diff, and min/max-per-pixel
 * downsampling of long curves.
 */
import type { CompareRow, RunStatus } from '../../src-main/contract/index.js';
import { formatValue } from './format.js';

export type Scalar = string | number | boolean | null;
export type FlatConfig = Record<string, Scalar>;

// ---- configs ------------------------------------------------------------------------------

/**
 * `{ lora: { r: 8 }, targets: ['a', 'b'] }` → `{ 'lora.r': 8, targets: '["a","b"]' }`: nested
 * objects become dotted keys, arrays one JSON string (compared as a whole).
 */
export function flattenConfig(config: unknown, prefix = '', out: FlatConfig = {}): FlatConfig {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    if (prefix) out[prefix] = toScalar(config);
    return out;
  }
  for (const [k, v] of Object.entries(config as Record<string, unknown>)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) flattenConfig(v, key, out);
    else out[key] = toScalar(v);
  }
  return out;
}

function toScalar(v: unknown): Scalar {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  return JSON.stringify(v);
}

/**
 * Keys whose value is not the same in every config, sorted. A key missing from some configs
 * counts as different, unless `ignoreMissing`: then only the configs that set it are compared
 * (runs of different kinds have different keys; their hyperparameter columns ignore that).
 * Fewer than two configs: none.
 */
export function differingKeys(
  configs: readonly FlatConfig[],
  opts: { ignoreMissing?: boolean } = {},
): string[] {
  if (configs.length < 2) return [];
  const keys = new Set<string>();
  for (const c of configs) for (const k in c) keys.add(k);
  const out: string[] = [];
  for (const k of keys) {
    let seen = false;
    let first: Scalar | undefined;
    for (const c of configs) {
      const v = c[k];
      if (v === undefined && opts.ignoreMissing) continue;
      if (!seen) {
        seen = true;
        first = v;
      } else if (v !== first) {
        out.push(k);
        break;
      }
    }
  }
  return out.sort();
}

/**
 * Up to `max` of `keys`, the ones set in the most configs first (ties: alphabetical), then
 * back in alphabetical order.
 */
export function mostCovered(configs: readonly FlatConfig[], keys: readonly string[], max: number): string[] {
  const count = (k: string): number => {
    let c = 0;
    for (const cfg of configs) if (cfg[k] !== undefined) c++;
    return c;
  };
  return keys
    .map((k) => ({ k, c: count(k) }))
    .sort((a, b) => b.c - a.c || (a.k < b.k ? -1 : 1))
    .slice(0, Math.max(0, max))
    .map((x) => x.k)
    .sort();
}

/** Wiring rather than a hyperparameter: the run's seed and the run ids of its inputs. */
export function isWiringKey(key: string): boolean {
  return key === 'seed' || /Run$/.test(key);
}

export interface DiffEntry {
  key: string;
  a: Scalar | undefined;
  b: Scalar | undefined;
}

/** The keys whose values differ between two flattened configs, side by side, sorted by key. */
export function configDiff(a: FlatConfig, b: FlatConfig): DiffEntry[] {
  return differingKeys([a, b]).map((key) => ({ key, a: a[key], b: b[key] }));
}

/** Keys (of `keys`) holding a number in at least one config and nothing but numbers or gaps. */
export function numericKeys(configs: readonly FlatConfig[], keys: readonly string[]): string[] {
  return keys.filter((k) => {
    let seen = false;
    for (const c of configs) {
      const v = c[k];
      if (v === undefined || v === null) continue;
      if (typeof v !== 'number' || !Number.isFinite(v)) return false;
      seen = true;
    }
    return seen;
  });
}

// ---- statistics ---------------------------------------------------------------------------

/** t_{0.975, ν} for ν = 1…30 (exact to 8 digits). */
const T975 = [
  12.7062047, 4.30265273, 3.18244631, 2.77644511, 2.57058184, 2.44691185, 2.36462425, 2.30600414, 2.26215716,
  2.22813885, 2.20098516, 2.17881283, 2.16036866, 2.14478669, 2.13144955, 2.1199053, 2.10981558, 2.10092204,
  2.09302405, 2.08596345, 2.07961384, 2.07387307, 2.06865761, 2.06389856, 2.05953855, 2.05552944, 2.05183052,
  2.04840714, 2.04522964, 2.04227246,
];

/**
 * The 0.975 quantile of Student's t with `df` degrees of freedom: a table up to 30, above it
 * the Cornish–Fisher expansion around z = 1.95996 (error < 1e-6 for ν > 30).
 */
export function tQuantile975(df: number): number {
  if (!(df >= 1)) return Number.NaN;
  const whole = Math.floor(df);
  if (whole <= 30 && whole === df) return T975[whole - 1]!;
  const z = 1.959963984540054;
  const z3 = z ** 3;
  const z5 = z ** 5;
  const z7 = z ** 7;
  const z9 = z ** 9;
  return (
    z +
    (z3 + z) / (4 * df) +
    (5 * z5 + 16 * z3 + 3 * z) / (96 * df ** 2) +
    (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * df ** 3) +
    (79 * z9 + 776 * z7 + 1482 * z5 - 1920 * z3 - 945 * z) / (92160 * df ** 4)
  );
}

export interface Interval {
  n: number;
  mean: number;
  /** Half-width of the 95% t-interval; null for a single value. */
  half: number | null;
  low: number;
  high: number;
}

/** Mean and 95% t-interval x̄ ± t_{0.975,n−1}·s/√n of the finite values; null when there are none. */
export function meanInterval(values: readonly (number | null | undefined)[]): Interval | null {
  const xs: number[] = [];
  for (const v of values) if (typeof v === 'number' && Number.isFinite(v)) xs.push(v);
  const n = xs.length;
  if (n === 0) return null;
  let sum = 0;
  for (const x of xs) sum += x;
  const mean = sum / n;
  if (n === 1) return { n, mean, half: null, low: mean, high: mean };
  let ss = 0;
  for (const x of xs) ss += (x - mean) * (x - mean);
  const half = (tQuantile975(n - 1) * Math.sqrt(ss / (n - 1))) / Math.sqrt(n);
  return { n, mean, half, low: mean - half, high: mean + half };
}

// ---- table records ------------------------------------------------------------------------

export interface RunRecord {
  id: number;
  kind: string;
  variant: string | null;
  seed: number | null;
  status: RunStatus;
  config: FlatConfig;
  scores: Record<string, number>;
  average: number | null;
  /** The last value of the loss metric, or null. */
  finalLoss: number | null;
  metricKeys: string[];
  /** Lower-case text the filter box searches: kind, variant and every `key=value` of the config. */
  haystack: string;
}

/** The metric whose last value is the "final loss": `loss`, else the first key ending in loss. */
export function lossKeyOf(metrics: Record<string, unknown>): string | null {
  if ('loss' in metrics) return 'loss';
  return (
    Object.keys(metrics)
      .sort()
      .find((k) => /loss$/.test(k)) ?? null
  );
}

export function toRecord(row: CompareRow): RunRecord {
  const config = flattenConfig(row.config);
  const lossKey = lossKeyOf(row.metrics);
  let haystack = `#${row.id} ${row.kind} ${row.variant ?? ''}`;
  for (const k in config) haystack += ` ${k}=${String(config[k])}`;
  return {
    id: row.id,
    kind: row.kind,
    variant: row.variant,
    seed: row.seed,
    status: row.status,
    config,
    scores: row.scores,
    average: row.average,
    finalLoss: lossKey === null ? null : (row.metrics[lossKey] ?? null),
    metricKeys: Object.keys(row.metrics),
    haystack: haystack.toLowerCase(),
  };
}

/**
 * Column ids: `id`, `kind`, `variant`, `seed`, `status`, `average`, `loss`, `cfg:<key>` (a
 * flattened config key), `score:<domain>`.
 */
export type ColumnId = string;

export function columnValue(r: RunRecord, col: ColumnId): Scalar | undefined {
  switch (col) {
    case 'id':
      return r.id;
    case 'kind':
      return r.kind;
    case 'variant':
      return r.variant;
    case 'seed':
      return r.seed;
    case 'status':
      return r.status;
    case 'average':
      return r.average;
    case 'loss':
      return r.finalLoss;
    default:
      if (col.startsWith('cfg:')) return r.config[col.slice(4)];
      if (col.startsWith('score:')) return r.scores[col.slice(6)];
      return undefined;
  }
}

/** Numbers numerically, strings by code point, booleans false < true; types in that order. */
export function compareScalars(a: Scalar, b: Scalar): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const ta = typeof a;
  const tb = typeof b;
  if (ta !== tb) return ORDER[ta]! - ORDER[tb]!;
  if (ta === 'boolean') return Number(a) - Number(b);
  const sa = String(a);
  const sb = String(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}
const ORDER: Record<string, number> = { number: 0, string: 1, boolean: 2 };

const missing = (v: Scalar | undefined): v is null | undefined =>
  v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v));

export type SortDir = 'asc' | 'desc';

/** A sorted copy (stable: ties keep their order); missing values last in either direction. */
export function sortRecords(rows: readonly RunRecord[], col: ColumnId, dir: SortDir): RunRecord[] {
  const sign = dir === 'asc' ? 1 : -1;
  // decorate once, then sort on the keys (no column lookups inside the comparator)
  const keyed = rows.map((r, i) => ({ r, i, v: columnValue(r, col) }));
  keyed.sort((x, y) => {
    const mx = missing(x.v);
    const my = missing(y.v);
    if (mx || my) return mx && my ? x.i - y.i : mx ? 1 : -1;
    return sign * compareScalars(x.v as Scalar, y.v as Scalar) || x.i - y.i;
  });
  return keyed.map((k) => k.r);
}

/**
 * Rows whose kind, variant, id (`#12`) or config (`key=value`) contain every
 * whitespace-separated term of `query`, case-insensitively. Empty query: all rows (same array).
 */
export function filterRecords(rows: readonly RunRecord[], query: string): readonly RunRecord[] {
  const terms = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (terms.length === 0) return rows;
  return rows.filter((r) => terms.every((t) => r.haystack.includes(t)));
}

// ---- grouping -----------------------------------------------------------------------------

export interface Group {
  /** `v:<variant>`, or `k:<kind>` for runs without a variant (shared stages). */
  key: string;
  label: string;
  n: number;
  seeds: number[];
  runIds: number[];
  /** Per numeric column: mean ± 95% CI over the group's runs. */
  stats: Record<ColumnId, Interval | null>;
}

/** Groups rows by variant (first-seen order) with mean ± CI of each of `columns`. */
export function groupByVariant(rows: readonly RunRecord[], columns: readonly ColumnId[]): Group[] {
  const groups = new Map<string, { label: string; rows: RunRecord[] }>();
  for (const r of rows) {
    const key = r.variant !== null ? `v:${r.variant}` : `k:${r.kind}`;
    let g = groups.get(key);
    if (!g) {
      g = { label: r.variant ?? `${r.kind} (no variant)`, rows: [] };
      groups.set(key, g);
    }
    g.rows.push(r);
  }
  return [...groups].map(([key, g]) => {
    const stats: Record<ColumnId, Interval | null> = {};
    for (const col of columns) {
      const vs = g.rows.map((r) => columnValue(r, col));
      stats[col] = meanInterval(vs.map((v) => (typeof v === 'number' ? v : null)));
    }
    const seeds = [...new Set(g.rows.map((r) => r.seed).filter((s): s is number => s !== null))].sort(
      (a, b) => a - b,
    );
    return { key, label: g.label, n: g.rows.length, seeds, runIds: g.rows.map((r) => r.id), stats };
  });
}

/** Sorts groups by one of their stats' means (missing last), or by label. */
export function sortGroups(groups: readonly Group[], col: ColumnId, dir: SortDir): Group[] {
  const sign = dir === 'asc' ? 1 : -1;
  return groups
    .map((g, i) => ({ g, i }))
    .sort((x, y) => {
      if (col === 'variant') return sign * compareScalars(x.g.label, y.g.label) || x.i - y.i;
      const a = x.g.stats[col]?.mean;
      const b = y.g.stats[col]?.mean;
      if (a === undefined || b === undefined) return a === b ? x.i - y.i : a === undefined ? 1 : -1;
      return sign * (a - b) || x.i - y.i;
    })
    .map((x) => x.g);
}

// ---- columns ------------------------------------------------------------------------------

export type CellFormat = 'id' | 'text' | 'status' | 'pct' | 'value';

export interface Column {
  id: ColumnId;
  label: string;
  /** Tooltip (the full key of a config column, what a score means). */
  title?: string;
  format: CellFormat;
  numeric: boolean;
}

export interface TableColumns {
  columns: Column[];
  /** Config keys shown as columns. */
  hyper: string[];
  /** Config keys that differ too but did not fit. */
  hiddenHyper: string[];
  /** The metric columns: average, `score:<domain>`…, loss (when any run has one). */
  metrics: ColumnId[];
}

/**
 * The run table's columns for these rows: id, kind, variant, seed, status; up to `maxHyper`
 * config keys whose values differ among the rows that set them (wiring left out: seeds and
 * input run ids), the most widely set first; then the average, one score per domain and the
 * final loss.
 */
export function tableColumns(rows: readonly RunRecord[], maxHyper = 8): TableColumns {
  const configs = rows.map((r) => r.config);
  const differing = differingKeys(configs, { ignoreMissing: true }).filter((k) => !isWiringKey(k));
  const hyper = mostCovered(configs, differing, maxHyper);
  const shown = new Set(hyper);
  const domains: string[] = [];
  const seen = new Set<string>();
  let anyLoss = false;
  for (const r of rows) {
    for (const d in r.scores)
      if (!seen.has(d)) {
        seen.add(d);
        domains.push(d);
      }
    if (r.finalLoss !== null) anyLoss = true;
  }
  const metrics = ['average', ...domains.map((d) => `score:${d}`), ...(anyLoss ? ['loss'] : [])];
  const columns: Column[] = [
    { id: 'id', label: 'run', format: 'id', numeric: true },
    { id: 'kind', label: 'kind', format: 'text', numeric: false },
    { id: 'variant', label: 'variant', format: 'text', numeric: false },
    { id: 'seed', label: 'seed', format: 'value', numeric: true },
    { id: 'status', label: 'status', format: 'status', numeric: false },
    ...hyper.map((k): Column => ({
      id: `cfg:${k}`,
      label: k.length > 18 ? `…${k.slice(-17)}` : k,
      title: `config ${k}`,
      format: 'value',
      numeric: configs.every((c) => c[k] === undefined || typeof c[k] === 'number'),
    })),
    ...metricColumns(metrics),
  ];
  return { columns, hyper, hiddenHyper: differing.filter((k) => !shown.has(k)), metrics };
}

export function metricColumns(metrics: readonly ColumnId[]): Column[] {
  return metrics.map((id): Column => {
    if (id === 'average')
      return { id, label: 'average %', title: 'mean of the domain scores, %', format: 'pct', numeric: true };
    if (id === 'loss')
      return { id, label: 'final loss', title: 'last logged loss', format: 'value', numeric: true };
    const d = id.startsWith('score:') ? id.slice(6) : id;
    return {
      id,
      label: `${d} %`,
      title: `final ${d} score (primary metric), %`,
      format: 'pct',
      numeric: true,
    };
  });
}

export function formatScalar(v: Scalar | undefined, fmt: CellFormat): string {
  if (v === undefined || v === null) return '—';
  if (typeof v === 'number') {
    if (fmt === 'id') return `#${v}`;
    if (fmt === 'pct') return Number.isFinite(v) ? (v * 100).toFixed(1) : formatValue(v);
    return formatValue(v);
  }
  return String(v);
}

/** `52.3 ± 1.2` (the half-width of the 95% interval), or just the mean for one value. */
export function formatInterval(iv: Interval | null | undefined, fmt: CellFormat): string {
  if (!iv) return '—';
  const m = formatScalar(iv.mean, fmt);
  if (iv.half === null) return m;
  return `${m} ± ${fmt === 'pct' ? (iv.half * 100).toFixed(1) : formatValue(iv.half)}`;
}

// ---- virtual scrolling --------------------------------------------------------------------

/** The rows [start, end) to render for a scroll position, with `overscan` extra on each side. */
export function visibleRange(
  scrollTop: number,
  viewport: number,
  rowHeight: number,
  total: number,
  overscan = 8,
): { start: number; end: number } {
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const count = Math.ceil(Math.max(0, viewport) / rowHeight) + 1;
  const start = Math.max(0, Math.min(total, first - overscan));
  const end = Math.min(total, first + count + overscan);
  return { start, end: Math.max(start, end) };
}

// ---- curves -------------------------------------------------------------------------------

/**
 * Min/max per pixel column (M4): for a curve with ascending x, the x range [x0, x1] is cut into
 * `pixels` buckets and each keeps its first, lowest, highest and last finite point. Drawing the
 * kept points gives the same picture as drawing all of them at that width. Returns indices into
 * the input, increasing; at most 4 · pixels of them (for ascending x).
 */
export function minMaxDownsample(
  xs: ArrayLike<number>,
  ys: ArrayLike<number | null>,
  pixels: number,
  x0?: number,
  x1?: number,
): Uint32Array {
  const n = Math.min(xs.length, ys.length);
  const buckets = Math.max(1, Math.floor(pixels));
  let lo = x0;
  let hi = x1;
  if (lo === undefined || hi === undefined) {
    let a = Infinity;
    let b = -Infinity;
    for (let i = 0; i < n; i++) {
      const x = xs[i]!;
      if (Number.isFinite(x)) {
        if (x < a) a = x;
        if (x > b) b = x;
      }
    }
    lo ??= a;
    hi ??= b;
  }
  let out = new Uint32Array(Math.min(n, 4 * buckets));
  let len = 0;
  if (!(hi >= lo)) return out.subarray(0, 0);
  const scale = hi > lo ? buckets / (hi - lo) : 0;
  let bucket = -1;
  let first = -1;
  let min = -1;
  let max = -1;
  let last = -1;
  const flush = (): void => {
    if (first < 0) return;
    if (len + 4 > out.length) {
      // x not ascending revisits buckets: more groups than columns
      const grown = new Uint32Array(Math.max(8, out.length * 2));
      grown.set(out.subarray(0, len));
      out = grown;
    }
    // the four in index order, without repeats
    const picked = [first, min, max, last].sort((a, b) => a - b);
    for (let k = 0; k < 4; k++) if (k === 0 || picked[k] !== picked[k - 1]) out[len++] = picked[k]!;
  };
  for (let i = 0; i < n; i++) {
    const x = xs[i]!;
    const y = ys[i];
    if (y === null || y === undefined || !Number.isFinite(y) || !Number.isFinite(x)) continue;
    if (x < lo || x > hi) continue;
    const b = Math.min(buckets - 1, Math.floor((x - lo) * scale));
    if (b !== bucket) {
      flush();
      bucket = b;
      first = min = max = last = i;
      continue;
    }
    last = i;
    if (y < (ys[min] as number)) min = i;
    if (y > (ys[max] as number)) max = i;
  }
  flush();
  return out.subarray(0, len);
}
