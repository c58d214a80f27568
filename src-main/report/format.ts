/** Number and label formatting shared by the renderers (pure). */
import type { Delta, Estimate, Interval, VariantRow } from './types.js';

/**
 * `rec[key]` if `rec` has it as its own property: domain and variant names come from the database,
 * and a domain named 'constructor' must not find Object.prototype's.
 */
export function own<T>(rec: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(rec, key) ? rec[key] : undefined;
}

/** An empty record without a prototype (any string is a safe key, '__proto__' included). */
export function dict<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** A fraction as a percentage with one decimal: 0.4567 → '45.7'. */
export function pct(x: number, digits = 1): string {
  return Number.isFinite(x) ? (100 * x).toFixed(digits) : '-';
}

/** A difference in percentage points with its sign: 0.012 → '+1.2', -0.012 → '-1.2', 0 → '0.0'. */
export function signedPp(x: number, digits = 1): string {
  if (!Number.isFinite(x)) return '-';
  const s = (100 * x).toFixed(digits);
  if (Number(s) === 0) return s.replace(/^-/, '');
  return s.startsWith('-') ? s : `+${s}`;
}

/** Half the width of an interval, in percentage points. */
export function halfPp(ci: Interval, digits = 1): string {
  return ((100 * (ci.high - ci.low)) / 2).toFixed(digits);
}

/**
 * An estimate as text: `45.7 ± 2.1` (t-interval over seeds), `45.7 (40.1–50.9)` (one run's
 * Wilson interval), or `45.7`.
 */
export function estimateText(e: Estimate, opts: { pm?: string; dash?: string } = {}): string {
  const pm = opts.pm ?? ' ± ';
  const dash = opts.dash ?? '–';
  if (!e.ci) return pct(e.mean);
  if (e.ci.method === 'wilson') return `${pct(e.mean)} (${pct(e.ci.low)}${dash}${pct(e.ci.high)})`;
  return `${pct(e.mean)}${pm}${halfPp(e.ci)}`;
}

export function deltaText(d: Delta, opts: { pm?: string } = {}): string {
  const pm = opts.pm ?? ' ± ';
  return d.ci ? `${signedPp(d.delta)}${pm}${halfPp(d.ci)}` : signedPp(d.delta);
}

/** The variant's kind as shown in tables: the plan's kind, else MoE/dense from its runs. */
export function variantKind(v: Pick<VariantRow, 'kind' | 'runKind'>): string {
  if (v.kind) return v.kind;
  if (v.runKind === 'upcycle') return 'MoE';
  if (v.runKind === 'prepare') return 'dense';
  return v.runKind ?? '';
}

/** `2025-01-02 03:04 UTC`. */
export function utcTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** `Prepare run 3 · dense · seed 1`: a run of a pipeline stage, for headings. */
export function stageTitle(
  kind: string,
  r: { runId: number; variant: string | null; seed: number | null },
): string {
  const parts = [`${kind.charAt(0).toUpperCase()}${kind.slice(1)} run ${r.runId}`];
  if (r.variant !== null) parts.push(r.variant);
  if (r.seed !== null) parts.push(`seed ${r.seed}`);
  return parts.join(' · ');
}

/** `upit · seed 2 · run 14` */
export function runTitle(r: {
  variant: string | null;
  seed: number | null;
  runId: number;
  kind?: string;
}): string {
  const parts: string[] = [];
  if (r.variant !== null) parts.push(r.variant);
  else if (r.kind) parts.push(r.kind);
  if (r.seed !== null) parts.push(`seed ${r.seed}`);
  parts.push(`run ${r.runId}`);
  return parts.join(' · ');
}

/** A number with up to `digits` significant digits ('-' when null or not finite). */
export function num(x: number | null | undefined, digits = 4): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '-';
  return String(Number(x.toPrecision(digits)));
}

/** How the intervals in the main table were computed, in one sentence. */
export function intervalLegend(): string {
  return (
    'mean ± half-width of the 95% t-interval over seeds; with a single seed, ' +
    'the run’s 95% Wilson interval in parentheses'
  );
}
