/** Plain-text tables for the terminal. */
import { profileRows } from '../store/profile-rows.js';
import type { Checkpoint, Evaluation } from '../store/index.js';

export function fmtNum(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? x.toExponential(3) : String(Number(x.toPrecision(5)));
}

export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return (
    rows
      .map((r) =>
        r
          .map((cell, c) => cell.padEnd(widths[c]!))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

/**
 * The Stage 1 profile: one row per scored model (base, then checkpoints by step), one
 * column per domain (its primary metric, in %), the average, and the best row per domain
 * marked with *. Empty when the evaluations are not per checkpoint.
 */
export function checkpointDomainTable(
  evaluations: readonly Evaluation[],
  checkpoints: readonly Checkpoint[],
): string {
  const { rows: ordered, domains } = profileRows(evaluations, checkpoints);
  if (ordered.length === 0) return '';
  const best = new Map<string, number>();
  for (const d of domains)
    best.set(
      d,
      Math.max(...ordered.filter((r) => r.label !== 'base').map((r) => r.byDomain.get(d)?.score ?? -1)),
    );
  const out: string[][] = [['model', ...domains, 'avg']];
  for (const r of ordered) {
    const vals = domains.map((d) => r.byDomain.get(d)?.score);
    const present = vals.filter((v): v is number => v !== undefined);
    const avg = present.reduce((a, b) => a + b, 0) / Math.max(1, present.length);
    out.push([
      r.label,
      ...vals.map((v, i) =>
        v === undefined
          ? '-'
          : `${(100 * v).toFixed(1)}${r.label !== 'base' && v === best.get(domains[i]!) ? '*' : ''}`,
      ),
      (100 * avg).toFixed(1),
    ]);
  }
  return table(out) + '(% correct; * best checkpoint per domain)\n';
}

/** Per-domain scores with n and the 95% interval, then the average. */
export function scoreTable(
  perDomain: readonly {
    domain: string;
    metric: string;
    score: number;
    n: number;
    ciLow: number;
    ciHigh: number;
  }[],
  average: number,
): string {
  return (
    table([
      ['domain', 'metric', 'score %', 'n', '95% CI'],
      ...perDomain.map((d) => [
        d.domain,
        d.metric,
        (100 * d.score).toFixed(1),
        String(d.n),
        `${(100 * d.ciLow).toFixed(1)}–${(100 * d.ciHigh).toFixed(1)}`,
      ]),
    ]) + `average ${(100 * average).toFixed(1)}`
  );
}
