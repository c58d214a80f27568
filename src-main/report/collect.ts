/**
 * Reads one experiment from the store into a `ReportData` (pure data, no rendering).
 *
 * Terminal runs are the experiment's runs with a `variant`: one per variant × seed (kind 'upcycle'
 * for MoE variants, 'prepare' for dense SFT ones). Only finished ('done') runs with scores count;
 * the others are listed in `notes`. A run's score is its evaluations at its final checkpoint (the
 * largest evaluated checkpoint id); per domain the primary metric is acc_norm, else exact_match,
 * else the first recorded. Intermediate runs (prepare, expand, route with no variant) feed the
 * checkpoint profile, lineage and seed-bucket sections.
 */
import { checkpointSpecialisation } from '../eval/paired.js';
import { outcomeRows } from '../store/profile-rows.js';
import { UserError } from '../common/errors.js';
import { wilsonInterval } from '../eval/stats.js';
import type { Evaluation, Experiment, JsonValue, Run, Store } from '../store/index.js';
import { dict } from './format.js';
import { mean, tInterval, welchInterval } from './stats.js';
import type {
  Ablation,
  CheckpointProfile,
  Delta,
  Estimate,
  ExpertInfo,
  LineageSection,
  LossSeries,
  ProfileRow,
  ReportData,
  RoutingSection,
  RunResult,
  ScoreRow,
  SeedBucketSection,
  VariantRow,
} from './types.js';

export interface CollectOptions {
  /** The variant the ablation deltas are taken against (default 'upit'). */
  reference?: string;
  /** Time stamp of the report (epoch ms; default now). */
  now?: number;
  /** Points per loss curve at most (default 300). */
  maxLossPoints?: number;
}

export const DEFAULT_REFERENCE = 'upit';

/**
 * The experiment named by `ref`: an id (digits) or a name. An id wins over a name made of the
 * same digits; a name shared by several experiments is an error listing their ids.
 */
export function findExperiment(store: Store, ref: string | number): Experiment {
  const text = String(ref).trim();
  if (text === '') throw new UserError('experiment: empty id or name');
  if (/^\d+$/.test(text)) {
    const byId = store.getExperiment(Number(text));
    if (byId) return byId;
  }
  const byName = store.listExperiments().filter((e) => e.name === text);
  if (byName.length === 1) return byName[0]!;
  if (byName.length > 1) {
    throw new UserError(
      `experiment '${text}' is ambiguous: ${byName.length} experiments have that name ` +
        `(ids ${byName.map((e) => e.id).join(', ')}); give the id`,
    );
  }
  throw new UserError(`experiment '${text}' not found (give an experiment id or name)`);
}

// ---- the plan (untrusted JSON) ------------------------------------------------------------------

interface PlanInfo {
  variants: { name: string; kind: string | null }[];
  seeds: number[];
}

function isObject(v: JsonValue | undefined): v is { [key: string]: JsonValue } {
  return v !== null && v !== undefined && typeof v === 'object' && !Array.isArray(v);
}

function readPlan(plan: JsonValue | null): PlanInfo {
  const info: PlanInfo = { variants: [], seeds: [] };
  if (!isObject(plan)) return info;
  if (Array.isArray(plan.variants)) {
    for (const v of plan.variants) {
      if (!isObject(v) || typeof v.name !== 'string' || v.name === '') continue;
      if (info.variants.some((x) => x.name === v.name)) continue;
      info.variants.push({ name: v.name, kind: typeof v.kind === 'string' ? v.kind : null });
    }
  }
  if (Array.isArray(plan.seeds)) {
    for (const s of plan.seeds) if (typeof s === 'number' && Number.isSafeInteger(s)) info.seeds.push(s);
  }
  return info;
}

// ---- scores -------------------------------------------------------------------------------------

/** Index of the primary metric among one domain's rows: acc_norm, else exact_match, else the first. */
function primaryIndex(metrics: readonly string[]): number {
  const norm = metrics.indexOf('acc_norm');
  if (norm >= 0) return norm;
  const em = metrics.indexOf('exact_match');
  return em >= 0 ? em : 0;
}

/**
 * Evaluations → one score row per (domain, metric), the latest evaluation winning; domains and
 * metrics in first-appearance order.
 */
function scoreRows(evals: readonly Evaluation[]): ScoreRow[] {
  const latest = new Map<string, Map<string, Evaluation>>(); // domain → metric → evaluation
  for (const e of [...evals].sort((a, b) => a.id - b.id)) {
    let byMetric = latest.get(e.domain);
    if (!byMetric) latest.set(e.domain, (byMetric = new Map()));
    const prev = byMetric.get(e.metric);
    if (!prev || prev.id < e.id) byMetric.set(e.metric, e);
  }
  const rows: ScoreRow[] = [];
  for (const [domain, byMetric] of latest) {
    const metrics = [...byMetric.keys()];
    const p = primaryIndex(metrics);
    metrics.forEach((metric, i) => {
      const e = byMetric.get(metric)!;
      rows.push({
        domain,
        metric,
        primary: i === p,
        score: e.score,
        n: e.n,
        ciLow: e.ciLow,
        ciHigh: e.ciHigh,
      });
    });
  }
  return rows;
}

/** The evaluations at a run's final checkpoint (largest evaluated checkpoint id). */
function finalEvaluations(evals: readonly Evaluation[]): {
  checkpointId: number | null;
  evals: Evaluation[];
} {
  const withCk = evals.filter((e) => e.checkpointId !== null);
  if (withCk.length > 0) {
    const last = Math.max(...withCk.map((e) => e.checkpointId!));
    return { checkpointId: last, evals: withCk.filter((e) => e.checkpointId === last) };
  }
  // not tied to a checkpoint: the run's own model (the base model's scores are not its result)
  return { checkpointId: null, evals: evals.filter((e) => e.modelRef !== 'base') };
}

function lastLoss(store: Store, runId: number): { first: number; last: number; min: number } | null {
  const s = store.getMetricSummary(runId).find((m) => m.key === 'loss');
  return s ? { first: s.first, last: s.last, min: s.min } : null;
}

const finiteOrNull = (x: number | null | undefined): number | null =>
  x === null || x === undefined || !Number.isFinite(x) ? null : x;

/** A single run's interval for one score row: its stored (Wilson) interval, or Wilson from n. */
function singleInterval(row: ScoreRow): { low: number; high: number } | null {
  if (row.ciLow !== null && row.ciHigh !== null) return { low: row.ciLow, high: row.ciHigh };
  if (row.n !== null && row.n > 0 && row.score >= 0 && row.score <= 1) {
    const w = wilsonInterval(Math.round(row.score * row.n), row.n);
    return { low: w.low, high: w.high };
  }
  return null;
}

function estimate(values: number[], single: { low: number; high: number } | null): Estimate {
  const t = tInterval(values);
  if (t) return { mean: t.mean, ci: { low: t.low, high: t.high, method: 't' }, n: values.length, values };
  return {
    mean: mean(values),
    ci: single ? { ...single, method: 'wilson' } : null,
    n: values.length,
    values,
  };
}

function delta(a: readonly number[], b: readonly number[]): Delta {
  const w = welchInterval(a, b);
  return {
    delta: mean(a) - mean(b),
    ci: w ? { low: w.low, high: w.high, method: 'welch' } : null,
  };
}

/** The names with the highest value (ties: all of them). */
function argmaxNames(entries: readonly [string, number][]): string[] {
  if (entries.length === 0) return [];
  const best = Math.max(...entries.map(([, v]) => v));
  return entries.filter(([, v]) => v === best).map(([n]) => n);
}

function oneLine(s: string, max = 160): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

function runLabel(r: Pick<Run, 'id' | 'kind' | 'variant' | 'seed'>): string {
  const parts = [`${r.kind} run ${r.id}`];
  if (r.variant !== null) parts.push(`variant ${r.variant}`);
  if (r.seed !== null) parts.push(`seed ${r.seed}`);
  return parts.join(', ');
}

function statusText(r: Run): string {
  return r.status === 'failed' && r.error ? `failed (${oneLine(r.error, 120)})` : r.status;
}

// ---- sections -----------------------------------------------------------------------------------

function profileOf(store: Store, run: Run): CheckpointProfile | null {
  const checkpoints = store.listCheckpoints(run.id);
  const ckById = new Map(checkpoints.map((c) => [c.id, c]));
  const evals = store.listCheckpointEvaluations(run.id);
  const base = store.listEvaluations(run.id).filter((e) => e.checkpointId === null && e.modelRef === 'base');
  if (evals.length === 0) return null;
  const domains: string[] = [];
  const rows: ProfileRow[] = [];
  const rowOf = (label: string, ckId: number | null, es: Evaluation[]): ProfileRow => {
    const scores = dict<number>();
    for (const s of scoreRows(es)) {
      if (!s.primary) continue;
      scores[s.domain] = s.score;
      if (!domains.includes(s.domain)) domains.push(s.domain);
    }
    const vals = Object.values(scores);
    const ck = ckId === null ? undefined : ckById.get(ckId);
    return {
      label,
      checkpointId: ckId,
      step: ck?.step ?? null,
      epoch: ck?.epoch ?? null,
      scores,
      average: vals.length ? mean(vals) : null,
    };
  };
  if (base.length) rows.push({ ...rowOf('base', null, base), step: 0 });
  const ckIds = [...new Set(evals.map((e) => e.checkpointId!))].sort(
    (a, b) => (ckById.get(a)?.step ?? 0) - (ckById.get(b)?.step ?? 0) || a - b,
  );
  for (const id of ckIds) {
    const step = ckById.get(id)?.step;
    rows.push(
      rowOf(
        step === undefined ? `checkpoint ${id}` : `step ${step}`,
        id,
        evals.filter((e) => e.checkpointId === id),
      ),
    );
  }
  const best = dict<number[]>();
  for (const d of domains) {
    const cand = rows
      .map((r, i) => [i, r.checkpointId === null ? undefined : r.scores[d]] as const)
      .filter((x): x is readonly [number, number] => x[1] !== undefined);
    if (cand.length === 0) continue;
    const top = Math.max(...cand.map(([, v]) => v));
    best[d] = cand.filter(([, v]) => v === top).map(([i]) => i);
  }
  const paired = checkpointSpecialisation(
    outcomeRows([...base, ...evals], checkpoints, store.listEvaluationOutcomes(run.id)),
  );
  return {
    runId: run.id,
    variant: run.variant,
    seed: run.seed,
    status: run.status,
    domains,
    rows,
    best,
    specialisation: paired?.verdict ?? null,
  };
}

function lineageOf(store: Store, run: Run): LineageSection | null {
  const experts = store.listExperts(run.id);
  const metrics = [...new Set(store.getDistances(run.id).map((d) => d.metric))];
  if (experts.length === 0 && metrics.length === 0) return null;
  const stepOf = (ckId: number | null): number | null => {
    if (ckId === null) return null;
    return store.getCheckpoint(ckId)?.step ?? null;
  };
  const infos: ExpertInfo[] = experts.map((e) => {
    const d = e.lineage?.extra?.['distance'];
    return {
      idx: e.idx,
      name: e.name,
      source: e.source,
      checkpointId: e.checkpointId,
      step: stepOf(e.checkpointId),
      parents: e.lineage?.parents ?? [],
      alpha: finiteOrNull(e.lineage?.alpha),
      p: finiteOrNull(e.lineage?.p),
      seed: e.lineage?.seed ?? null,
      method: e.lineage?.method ?? null,
      distance: typeof d === 'number' && Number.isFinite(d) ? d : null,
    };
  });
  let distance: LineageSection['distance'] = null;
  const metric = metrics.includes('cosine') ? 'cosine' : metrics[0];
  if (metric !== undefined) {
    const size = experts.reduce((m, e) => Math.max(m, e.idx + 1), 0);
    const raw = store.getDistanceMatrix(run.id, metric);
    const m = size > raw.length ? store.getDistanceMatrix(run.id, metric, size) : raw;
    const n = m.length;
    const nameOf = (i: number) => experts.find((e) => e.idx === i)?.name ?? `e${i}`;
    distance = {
      metric,
      labels: Array.from({ length: n }, (_, i) => nameOf(i)),
      values: m.map((row) => row.map((v) => (Number.isFinite(v) ? v : null))),
    };
  }
  return { runId: run.id, variant: run.variant, seed: run.seed, experts: infos, distance };
}

function seedBucketsOf(store: Store, run: Run): SeedBucketSection | null {
  const buckets = store.getSeedBuckets(run.id);
  if (buckets.length === 0) return null;
  const experts = store.listExperts(run.id);
  return {
    runId: run.id,
    variant: run.variant,
    seed: run.seed,
    buckets: buckets.map((b) => ({
      expert: b.expert,
      name: experts.find((e) => e.idx === b.expert)?.name ?? null,
      size: b.size,
    })),
  };
}

/** Routing of a terminal run; domains in `order` first (the main table's), then as stored. */
function routingOf(
  store: Store,
  run: Run & { variant: string },
  order: readonly string[],
): RoutingSection | null {
  const stats = store.getRoutingStats(run.id);
  if (stats.length === 0) return null;
  const layers = [...new Set(stats.map((s) => s.layer))].sort((a, b) => a - b);
  const stored = [...new Set(stats.map((s) => s.domain))];
  const domains = [...order.filter((d) => stored.includes(d)), ...stored.filter((d) => !order.includes(d))];
  const experts = Math.max(...stats.map((s) => s.expert + 1));
  const tokens = dict<number | null>();
  const byLayer = layers.map((layer) => {
    const fractions = domains.map(() => new Array<number | null>(experts).fill(null));
    for (const s of stats) {
      if (s.layer !== layer) continue;
      const di = domains.indexOf(s.domain);
      fractions[di]![s.expert] = Number.isFinite(s.fraction) ? s.fraction : null;
      if (s.tokens !== null && (tokens[s.domain] ?? null) === null) tokens[s.domain] = s.tokens;
    }
    return { layer, fractions };
  });
  for (const d of domains) if (!(d in tokens)) tokens[d] = null;
  const meanMatrix = domains.map((_, di) =>
    Array.from({ length: experts }, (_, e) => {
      const vs = byLayer.map((l) => l.fractions[di]![e]).filter((v): v is number => v !== null);
      return vs.length ? mean(vs) : null;
    }),
  );
  return {
    runId: run.id,
    variant: run.variant,
    seed: run.seed,
    domains,
    experts,
    layers,
    byLayer,
    mean: meanMatrix,
    tokens,
  };
}

function lossOf(store: Store, run: Run, role: LossSeries['role'], maxPoints: number): LossSeries | null {
  const summary = lastLoss(store, run.id);
  if (!summary) return null;
  const series = store.getMetricSeries(run.id, 'loss', { maxPoints });
  return {
    runId: run.id,
    kind: run.kind,
    variant: run.variant,
    seed: run.seed,
    role,
    total: series.total,
    downsampled: series.downsampled,
    points: series.points.filter((p) => Number.isFinite(p.value)).map((p) => [p.step, p.value]),
    first: finiteOrNull(summary.first),
    last: finiteOrNull(summary.last),
    min: finiteOrNull(summary.min),
  };
}

/** The prepare runs a run descends from (parentRunId, config.poolRun, config.prepareRun chains). */
function prepareAncestors(store: Store, run: Run): Run[] {
  const out: Run[] = [];
  const seen = new Set<number>([run.id]);
  const queue: Run[] = [run];
  while (queue.length > 0 && seen.size < 64) {
    const r = queue.shift()!;
    const next: number[] = [];
    if (r.parentRunId !== null) next.push(r.parentRunId);
    for (const k of ['poolRun', 'prepareRun']) {
      const v = r.config[k];
      if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) next.push(v);
    }
    for (const id of next) {
      if (seen.has(id)) continue;
      seen.add(id);
      const p = store.getRun(id);
      if (!p) continue;
      if (p.kind === 'prepare') out.push(p);
      queue.push(p);
    }
  }
  return out;
}

// ---- the report ---------------------------------------------------------------------------------

/**
 * Everything the report shows about one experiment. Never throws for missing data: an experiment
 * without finished runs gives empty tables (`runs` empty) and notes saying why.
 */
export function collectReport(
  store: Store,
  experiment: Experiment | number | string,
  opts: CollectOptions = {},
): ReportData {
  const exp = typeof experiment === 'object' ? experiment : findExperiment(store, experiment);
  const reference = opts.reference ?? DEFAULT_REFERENCE;
  const maxLossPoints = Math.max(4, opts.maxLossPoints ?? 300);
  const plan = readPlan(exp.plan);
  const runs = store.listRuns({ experimentId: exp.id });
  const notes: string[] = [];

  // terminal runs: one finished run with scores per variant × seed (the newest)
  const terminal = runs.filter((r): r is Run & { variant: string } => r.variant !== null);
  const slotKey = (variant: string, seed: number | null) => JSON.stringify([variant, seed]);
  const chosen = new Map<string, { run: Run & { variant: string }; result: RunResult }>();
  const doneCount = new Map<string, number>();
  for (const run of terminal) {
    if (run.status !== 'done') continue;
    const key = slotKey(run.variant, run.seed);
    doneCount.set(key, (doneCount.get(key) ?? 0) + 1);
    const { checkpointId, evals } = finalEvaluations(store.listEvaluations(run.id));
    if (evals.length === 0) {
      notes.push(`${runLabel(run)} finished without evaluations; left out`);
      continue;
    }
    const scores = scoreRows(evals);
    const primary = scores.filter((s) => s.primary).map((s) => s.score);
    const loss = lastLoss(store, run.id);
    const result: RunResult = {
      runId: run.id,
      variant: run.variant,
      seed: run.seed,
      kind: run.kind,
      checkpointId,
      step: checkpointId === null ? null : (store.getCheckpoint(checkpointId)?.step ?? null),
      scores,
      average: primary.length ? mean(primary) : null,
      finalLoss: loss ? finiteOrNull(loss.last) : null,
    };
    const prev = chosen.get(key);
    if (!prev || prev.run.id < run.id) chosen.set(key, { run, result });
  }
  for (const [key, count] of doneCount) {
    const c = chosen.get(key);
    if (count > 1 && c) {
      notes.push(
        `variant ${c.run.variant}${c.run.seed === null ? '' : ` seed ${c.run.seed}`}: ` +
          `${count} finished runs, using the newest (run ${c.run.id})`,
      );
    }
  }
  const results = [...chosen.values()].sort((a, b) => a.run.id - b.run.id).map((c) => c.result);

  // variants in display order; seeds
  const variantNames: string[] = plan.variants.map((v) => v.name);
  for (const r of terminal) if (!variantNames.includes(r.variant)) variantNames.push(r.variant);
  const seeds =
    plan.seeds.length > 0
      ? [...new Set(plan.seeds)]
      : [...new Set(results.map((r) => r.seed).filter((s): s is number => s !== null))].sort((a, b) => a - b);

  // missing / unfinished / failed variant × seed
  for (const name of variantNames) {
    const own = terminal.filter((r) => r.variant === name);
    const wantSeeds: (number | null)[] = seeds.length > 0 ? seeds : [...new Set(own.map((r) => r.seed))];
    if (wantSeeds.length === 0 && own.length === 0) {
      notes.push(`variant ${name}: no runs`);
      continue;
    }
    const extraSeeds = own.map((r) => r.seed).filter((s) => !wantSeeds.includes(s));
    for (const seed of [...wantSeeds, ...new Set(extraSeeds)]) {
      if (chosen.has(slotKey(name, seed))) continue;
      const attempts = own.filter((r) => r.seed === seed);
      const label = `variant ${name}${seed === null ? '' : ` seed ${seed}`}`;
      if (attempts.length === 0) {
        notes.push(`${label}: missing (no run)`);
      } else if (!attempts.some((r) => r.status === 'done')) {
        const last = attempts[attempts.length - 1]!;
        notes.push(`${label}: ${statusText(last)} (run ${last.id})`);
      }
    }
  }
  for (const r of runs) {
    if (r.variant === null && (r.status === 'failed' || r.status === 'cancelled')) {
      notes.push(`${runLabel(r)}: ${statusText(r)}`);
    }
  }

  // domains and their primary metrics
  const domains: string[] = [];
  const domainMetrics = dict<string>();
  for (const r of results) {
    for (const s of r.scores) {
      if (!s.primary) continue;
      if (!domains.includes(s.domain)) domains.push(s.domain);
      domainMetrics[s.domain] ??= s.metric;
    }
  }
  for (const r of results) {
    const have = new Set(r.scores.map((s) => s.domain));
    const lacking = domains.filter((d) => !have.has(d));
    if (lacking.length > 0) {
      notes.push(
        `run ${r.runId} (variant ${r.variant}) has no score for ${lacking.join(', ')}; its average covers the rest`,
      );
    }
  }

  // main table
  const planKind = new Map(plan.variants.map((v) => [v.name, v.kind]));
  const variants: VariantRow[] = variantNames.map((name) => {
    const rs = results.filter((r) => r.variant === name);
    const cells = dict<Estimate>();
    for (const d of domains) {
      const rows = rs
        .map((r) => r.scores.find((s) => s.domain === d && s.primary))
        .filter((s): s is ScoreRow => s !== undefined);
      if (rows.length === 0) continue;
      cells[d] = estimate(
        rows.map((s) => s.score),
        rows.length === 1 ? singleInterval(rows[0]!) : null,
      );
    }
    const avgs = rs.map((r) => r.average).filter((a): a is number => a !== null);
    return {
      name,
      kind: planKind.get(name) ?? null,
      runKind: rs[0]?.kind ?? null,
      planned: planKind.has(name),
      runIds: rs.map((r) => r.runId),
      seeds: rs.map((r) => r.seed),
      domains: cells,
      average: avgs.length ? estimate(avgs, null) : null,
    };
  });
  const bestByDomain = dict<string[]>();
  for (const d of domains) {
    bestByDomain[d] = argmaxNames(
      variants.flatMap((v) => (v.domains[d] ? [[v.name, v.domains[d].mean] as [string, number]] : [])),
    );
  }
  const bestAverage = argmaxNames(
    variants.flatMap((v) => (v.average ? [[v.name, v.average.mean] as [string, number]] : [])),
  );

  // ablation against the reference variant
  let ablation: Ablation | null = null;
  const ref =
    variants.find((v) => v.name === reference) ??
    variants.find((v) => v.name.toLowerCase() === reference.toLowerCase());
  if (results.length > 0) {
    if (!ref) {
      notes.push(`no variant named '${reference}': ablation table skipped`);
    } else if (ref.runIds.length === 0) {
      notes.push(`variant '${ref.name}' has no finished runs: ablation table skipped`);
    } else {
      ablation = {
        reference: ref.name,
        referenceN: ref.runIds.length,
        rows: variants
          .filter((v) => v !== ref && v.runIds.length > 0)
          .map((v) => {
            const ds = dict<Delta>();
            for (const d of domains) {
              const a = v.domains[d];
              const b = ref.domains[d];
              if (a && b) ds[d] = delta(a.values, b.values);
            }
            return {
              variant: v.name,
              n: v.runIds.length,
              domains: ds,
              average: v.average && ref.average ? delta(v.average.values, ref.average.values) : null,
            };
          }),
      };
    }
  }

  // stage sections
  const profiles = runs
    .filter((r) => r.kind === 'prepare')
    .map((r) => profileOf(store, r))
    .filter((p): p is CheckpointProfile => p !== null);
  const lineages = runs
    .filter((r) => r.kind === 'expand' && r.status === 'done')
    .map((r) => lineageOf(store, r))
    .filter((l): l is LineageSection => l !== null);
  const seedBuckets = runs
    .filter((r) => r.kind === 'route' && r.status === 'done')
    .map((r) => seedBucketsOf(store, r))
    .filter((b): b is SeedBucketSection => b !== null);
  const terminalDone = [...chosen.values()].map((c) => c.run).sort((a, b) => a.id - b.id);
  const routing = terminalDone
    .map((r) => routingOf(store, r, domains))
    .filter((s): s is RoutingSection => s !== null);

  const losses: LossSeries[] = [];
  const lossSeen = new Set<number>();
  const addLoss = (r: Run, role: LossSeries['role']) => {
    if (lossSeen.has(r.id)) return;
    lossSeen.add(r.id);
    const s = lossOf(store, r, role, maxLossPoints);
    if (s) losses.push(s);
  };
  for (const r of terminalDone) addLoss(r, 'terminal');
  for (const r of terminalDone) for (const p of prepareAncestors(store, r)) addLoss(p, 'prepare');

  if (results.length === 0) notes.unshift(`experiment ${exp.name} has no finished runs to report`);

  return {
    version: 1,
    title: `UpIT report: ${exp.name}`,
    generatedAt: opts.now ?? Date.now(),
    experiment: { id: exp.id, name: exp.name, createdAt: exp.createdAt, notes: exp.notes },
    domains,
    domainMetrics,
    seeds,
    variants,
    bestByDomain,
    bestAverage,
    runs: results,
    reference,
    ablation,
    notes,
    profiles,
    lineages,
    seedBuckets,
    routing,
    losses,
  };
}
