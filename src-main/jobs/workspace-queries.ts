/**
 * The reads behind the workbench's stage views, on the workspace database: experiments with
 * their runs, a run's experts/lineage/distances, seed buckets and routing, runs side by side for
 * Compare, and reports rendered for preview and export. Rows become the contract's types here.
 */
import { checkpointSpecialisation } from '../eval/paired.js';
import { outcomeRows } from '../store/profile-rows.js';
import type {
  CompareRow,
  ExperimentGetResponse,
  ExperimentSummary,
  ExpertsResponse,
  ReportFormat,
  ReportRenderResponse,
  RoutingResponse,
} from '../contract/index.js';
import { collectReport, renderReport, reportFileStem } from '../report/index.js';
import type { Experiment, Run, Store } from '../store/index.js';
import { toRunSummary } from './store-adapter.js';

const finite = (x: number): number | null => (Number.isFinite(x) ? x : null);

function planDescription(plan: unknown): string | null {
  if (plan && typeof plan === 'object' && !Array.isArray(plan)) {
    const d = (plan as Record<string, unknown>)['description'];
    if (typeof d === 'string') return d;
  }
  return null;
}

function planVariantOrder(plan: unknown): string[] {
  if (plan && typeof plan === 'object' && !Array.isArray(plan)) {
    const vs = (plan as Record<string, unknown>)['variants'];
    if (Array.isArray(vs))
      return vs
        .map((v) => (v && typeof v === 'object' ? (v as Record<string, unknown>)['name'] : v))
        .filter((n): n is string => typeof n === 'string');
  }
  return [];
}

function summarize(e: Experiment, runs: readonly Run[]): ExperimentSummary {
  const byStatus: ExperimentSummary['byStatus'] = { queued: 0, running: 0, done: 0, failed: 0, cancelled: 0 };
  for (const r of runs) byStatus[r.status] += 1;
  const withResult = new Set(runs.filter((r) => r.variant !== null).map((r) => r.variant!));
  const order = planVariantOrder(e.plan);
  const variants = [
    ...order.filter((v) => withResult.has(v)),
    ...[...withResult].filter((v) => !order.includes(v)),
  ];
  return {
    id: e.id,
    name: e.name,
    description: planDescription(e.plan),
    createdAt: e.createdAt,
    runs: runs.length,
    byStatus,
    variants,
  };
}

export function listExperiments(store: Store): ExperimentSummary[] {
  return store
    .listExperiments()
    .reverse()
    .map((e) => summarize(e, store.listRuns({ experimentId: e.id })));
}

export function getExperiment(store: Store, experimentId: number): ExperimentGetResponse | null {
  const e = store.getExperiment(experimentId);
  if (!e) return null;
  const runs = store.listRuns({ experimentId });
  return { experiment: { ...summarize(e, runs), plan: e.plan }, runs: runs.map(toRunSummary) };
}

export function runExperts(store: Store, runId: number): ExpertsResponse {
  const experts = store.listExperts(runId).map((x) => {
    const d = x.lineage?.extra?.['distance'];
    return {
      idx: x.idx,
      name: x.name,
      source: x.source,
      checkpointId: x.checkpointId,
      lineage: x.lineage
        ? {
            parents: x.lineage.parents,
            alpha: x.lineage.alpha,
            p: x.lineage.p,
            seed: x.lineage.seed,
            distance: typeof d === 'number' ? d : null,
          }
        : null,
    };
  });
  const metric = store.getDistances(runId)[0]?.metric ?? null;
  const distances =
    metric === null
      ? null
      : {
          metric,
          matrix: store
            .getDistanceMatrix(runId, metric, experts.length || undefined)
            .map((row) => row.map(finite)),
        };
  return { runId, experts, distances };
}

export function runRouting(store: Store, runId: number): RoutingResponse {
  return { runId, stats: store.getRoutingStats(runId), seedBuckets: store.getSeedBuckets(runId) };
}

const PRIMARY = ['acc_norm', 'exact_match'];

/** Each domain's primary score at the run's latest evaluated checkpoint (or its only evaluation). */
export function finalScores(store: Store, runId: number): Record<string, number> {
  const evals = store.listEvaluations(runId);
  if (evals.length === 0) return {};
  const ck = Math.max(...evals.map((e) => e.checkpointId ?? -1));
  const at = evals.filter((e) => (e.checkpointId ?? -1) === ck);
  const out: Record<string, number> = {};
  for (const domain of new Set(at.map((e) => e.domain))) {
    const rows = at.filter((e) => e.domain === domain);
    const pick = PRIMARY.map((m) => rows.find((r) => r.metric === m)).find((r) => r) ?? rows[0]!;
    out[domain] = pick.score;
  }
  return out;
}

export function compareRuns(store: Store, runIds: readonly number[]): CompareRow[] {
  const out: CompareRow[] = [];
  for (const id of runIds) {
    const r = store.getRun(id);
    if (!r) continue;
    const metrics: Record<string, number | null> = {};
    for (const m of store.getMetricSummary(id)) metrics[m.key] = finite(m.last);
    const scores = finalScores(store, id);
    const vals = Object.values(scores);
    out.push({
      ...toRunSummary(r),
      config: r.config,
      metrics,
      scores,
      average: vals.length > 0 ? vals.reduce((a, b) => a + b, 0) / vals.length : null,
    });
  }
  return out;
}

export function renderExperimentReport(
  store: Store,
  experimentId: number,
  format: ReportFormat,
): ReportRenderResponse {
  const data = collectReport(store, experimentId);
  const exp = store.getExperiment(experimentId)!;
  return {
    experimentId,
    format,
    filename: `${reportFileStem(exp)}.${format}`,
    content: renderReport(data, format),
  };
}

/** Stage 1's "does the best checkpoint differ by domain?" for a run, from its per-item outcomes. */
export function runSpecialisation(store: Store, runId: number): string | null {
  const rows = outcomeRows(
    store.listEvaluations(runId),
    store.listCheckpoints(runId),
    store.listEvaluationOutcomes(runId),
  );
  return checkpointSpecialisation(rows)?.verdict ?? null;
}
