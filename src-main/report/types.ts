/**
 * The report's data: everything the renderers draw, read from the store once by `collectReport`.
 * Plain JSON (no Maps, no NaN: a missing number is null), so the same object can cross the worker
 * boundary to the GUI. Scores are fractions in [0, 1]; renderers show percentages.
 */

export const REPORT_FORMATS = ['md', 'html', 'csv', 'tex'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export function isReportFormat(s: string): s is ReportFormat {
  return (REPORT_FORMATS as readonly string[]).includes(s);
}

/** A 95% interval: Student's t over seeds, the single run's Wilson interval, or Welch's for a difference. */
export interface Interval {
  low: number;
  high: number;
  method: 't' | 'wilson' | 'welch';
}

/** A mean over seeds (one value per finished terminal run). */
export interface Estimate {
  mean: number;
  /** t-interval when n ≥ 2; the run's Wilson interval when n = 1 (per-domain cells); else null. */
  ci: Interval | null;
  /** Number of seeds (finished terminal runs) behind the mean. */
  n: number;
  /** The per-run values, in the order of `VariantRow.runIds`' runs that have this cell. */
  values: number[];
}

/** One (domain, metric) score of a run at its final checkpoint. */
export interface ScoreRow {
  domain: string;
  metric: string;
  /** The domain's primary metric: acc_norm if present, else exact_match, else the first. */
  primary: boolean;
  score: number;
  n: number | null;
  ciLow: number | null;
  ciHigh: number | null;
}

/** A finished terminal run (variant × seed) and its final scores. */
export interface RunResult {
  runId: number;
  variant: string;
  seed: number | null;
  kind: string;
  /** The checkpoint the scores belong to (largest evaluated checkpoint id), null when none is recorded. */
  checkpointId: number | null;
  step: number | null;
  scores: ScoreRow[];
  /** Mean of the primary scores over the domains this run has; null when it has none. */
  average: number | null;
  /** Last value of the run's `loss` metric. */
  finalLoss: number | null;
}

export interface VariantRow {
  name: string;
  /** The plan's kind for this variant (e.g. 'upit', 'dense'); null when the plan does not say. */
  kind: string | null;
  /** The terminal runs' kind ('upcycle', 'prepare'); null when none finished. */
  runKind: string | null;
  /** Listed in the experiment's plan. */
  planned: boolean;
  /** Finished terminal runs used, one per seed. */
  runIds: number[];
  seeds: (number | null)[];
  /** Per domain (keys ⊆ ReportData.domains); a domain without data has no key. */
  domains: Record<string, Estimate>;
  /** Over the per-run averages. Single seed: no interval. */
  average: Estimate | null;
}

export interface Delta {
  /** Variant mean − reference mean (fractions; renderers show percentage points). */
  delta: number;
  /** Welch 95% interval of the difference when both sides have ≥ 2 seeds. */
  ci: Interval | null;
}

export interface AblationRow {
  variant: string;
  n: number;
  domains: Record<string, Delta>;
  average: Delta | null;
}

export interface Ablation {
  reference: string;
  referenceN: number;
  rows: AblationRow[];
}

export interface ProfileRow {
  /** 'base' or `step N`. */
  label: string;
  checkpointId: number | null;
  step: number | null;
  epoch: number | null;
  /** Primary score per domain. */
  scores: Record<string, number>;
  average: number | null;
}

/** Stage 1: one prepare run's checkpoint × domain table. */
export interface CheckpointProfile {
  runId: number;
  variant: string | null;
  seed: number | null;
  status: string;
  domains: string[];
  rows: ProfileRow[];
  /** Per domain, the indices into `rows` of the best checkpoint(s) (the base row never counts). */
  best: Record<string, number[]>;
  /**
   * "Does the best checkpoint differ by domain?" answered by paired tests on the per-item
   * outcomes (eval/paired.ts); null when the evaluations have no per-item outcomes.
   */
  specialisation: string | null;
}

export interface ExpertInfo {
  idx: number;
  name: string | null;
  source: string;
  checkpointId: number | null;
  /** Step of the source checkpoint when it is known. */
  step: number | null;
  parents: number[];
  alpha: number | null;
  p: number | null;
  seed: number | null;
  method: string | null;
  /** The parents' distance when the child was made (lineage.extra.distance). */
  distance: number | null;
}

export interface DistanceMatrix {
  metric: string;
  labels: string[];
  /** Symmetric; null where no distance was stored. */
  values: (number | null)[][];
}

/** Stage 2: one expand run's pool. */
export interface LineageSection {
  runId: number;
  variant: string | null;
  seed: number | null;
  experts: ExpertInfo[];
  distance: DistanceMatrix | null;
}

/** Stage 3: one route run's seed-bucket sizes. */
export interface SeedBucketSection {
  runId: number;
  variant: string | null;
  seed: number | null;
  buckets: { expert: number; name: string | null; size: number }[];
}

/** Stage 4: one terminal MoE run's routing (share of each domain's top-k slots per expert). */
export interface RoutingSection {
  runId: number;
  variant: string;
  seed: number | null;
  domains: string[];
  experts: number;
  layers: number[];
  /** Per layer: [domain][expert] fraction, null where not recorded. */
  byLayer: { layer: number; fractions: (number | null)[][] }[];
  /** [domain][expert], the mean over layers. */
  mean: (number | null)[][];
  tokens: Record<string, number | null>;
}

export interface LossSeries {
  runId: number;
  kind: string;
  variant: string | null;
  seed: number | null;
  /** A terminal run, or a prepare run feeding one. */
  role: 'terminal' | 'prepare';
  /** Points stored before downsampling. */
  total: number;
  downsampled: boolean;
  /** [step, loss], NaN values left out. */
  points: [number, number][];
  first: number | null;
  last: number | null;
  min: number | null;
}

export interface ReportData {
  version: 1;
  title: string;
  /** Epoch ms. */
  generatedAt: number;
  experiment: { id: number; name: string; createdAt: number; notes: string | null };
  /** Column order of the main table. */
  domains: string[];
  /** The primary metric behind each domain's column (first run's choice). */
  domainMetrics: Record<string, string>;
  seeds: number[];
  /** In display order: the plan's order, then variants only runs mention. */
  variants: VariantRow[];
  /** Per domain, the variant name(s) with the highest mean. */
  bestByDomain: Record<string, string[]>;
  bestAverage: string[];
  /** The finished terminal runs behind the tables (CSV rows). */
  runs: RunResult[];
  /** The variant deltas are taken against. */
  reference: string;
  /** Null when there is no reference variant with results (see notes). */
  ablation: Ablation | null;
  /** Missing, failed and unfinished runs; skipped sections. One line each. */
  notes: string[];
  profiles: CheckpointProfile[];
  lineages: LineageSection[];
  seedBuckets: SeedBucketSection[];
  routing: RoutingSection[];
  losses: LossSeries[];
}
