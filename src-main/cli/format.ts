/** Plain-text tables for the terminal. */
import type { OutcomeRow } from '../eval/paired.js';
import type { Checkpoint, Evaluation, EvaluationOutcomes } from '../store/index.js';

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

/** One scored model of a run: its label (base, step-25, …), step, and primary evaluation per domain. */
interface ProfileRow {
  label: string;
  step: number;
  byDomain: Map<string, Evaluation>;
}

/** A run's evaluations grouped by scored model (base first, then checkpoints by step), primary metrics only. */
function profileRows(
  evaluations: readonly Evaluation[],
  checkpoints: readonly Checkpoint[],
): { rows: ProfileRow[]; domains: string[] } {
  const primary = evaluations.filter((e) => e.metric !== 'acc'); // choice items: acc_norm is primary
  const stepOf = new Map(checkpoints.map((c) => [c.id, c.step]));
  const rows = new Map<string, ProfileRow>();
  const domains: string[] = [];
  for (const e of primary) {
    const label = e.modelRef ?? (e.checkpointId !== null ? `checkpoint ${e.checkpointId}` : 'model');
    const step = e.checkpointId !== null ? (stepOf.get(e.checkpointId) ?? 0) : 0;
    if (!rows.has(label)) rows.set(label, { label, step, byDomain: new Map() });
    rows.get(label)!.byDomain.set(e.domain, e);
    if (!domains.includes(e.domain)) domains.push(e.domain);
  }
  return { rows: [...rows.values()].sort((a, b) => a.step - b.step), domains };
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

/**
 * The same rows with their per-item outcomes, for the paired specialisation test (eval/paired.ts).
 * Rows without outcomes (evaluations recorded before the store kept them) are left out.
 */
export function outcomeRows(
  evaluations: readonly Evaluation[],
  checkpoints: readonly Checkpoint[],
  outcomes: readonly EvaluationOutcomes[],
): OutcomeRow[] {
  const byId = new Map(outcomes.map((o) => [o.evaluationId, o]));
  const out: OutcomeRow[] = [];
  for (const r of profileRows(evaluations, checkpoints).rows) {
    const byDomain = new Map<string, { score: number; outcomes: string; itemsKey: string }>();
    for (const [d, e] of r.byDomain) {
      const o = byId.get(e.id);
      if (o) byDomain.set(d, { score: e.score, outcomes: o.outcomes, itemsKey: o.itemsKey });
    }
    if (byDomain.size > 0) out.push({ label: r.label, step: r.step, isBase: r.label === 'base', byDomain });
  }
  return out;
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
