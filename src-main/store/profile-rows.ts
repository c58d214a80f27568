/**
 * A run's evaluations grouped by scored model (the Stage 1 checkpoint × domain rows), and the same
 * rows with their per-item outcomes for the paired specialisation test (eval/paired.ts). Used by
 * `upit show` and by reports.
 */
import type { OutcomeRow } from '../eval/paired.js';
import type { Checkpoint, Evaluation, EvaluationOutcomes } from './types.js';

/** One scored model of a run: its label (base, step-25, …), step, and primary evaluation per domain. */
export interface ScoredModel {
  label: string;
  step: number;
  byDomain: Map<string, Evaluation>;
}

/** A run's evaluations grouped by scored model (base first, then checkpoints by step), primary metrics only. */
export function profileRows(
  evaluations: readonly Evaluation[],
  checkpoints: readonly Checkpoint[],
): { rows: ScoredModel[]; domains: string[] } {
  const primary = evaluations.filter((e) => e.metric !== 'acc'); // choice items: acc_norm is primary
  const stepOf = new Map(checkpoints.map((c) => [c.id, c.step]));
  const rows = new Map<string, ScoredModel>();
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
