/**
 * Row types of the workspace database, camelCase. Times are milliseconds since the Unix epoch;
 * `wallSeconds`/`wallTime` are seconds. Paths are relative to the workspace, POSIX separators.
 */

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export const RUN_KINDS = [
  'demo',
  'pretrain',
  'prepare',
  'expand',
  'route',
  'upcycle',
  'eval',
  'merge',
  'plan',
  'report',
] as const;
/** What a run does. New kinds need only a line here: the column has no CHECK. */
export type RunKind = (typeof RUN_KINDS)[number];

export const RUN_STATUSES = ['queued', 'running', 'done', 'failed', 'cancelled'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
/** The statuses a run ends in. */
export type FinalRunStatus = Exclude<RunStatus, 'queued' | 'running'>;

export const EXPERT_SOURCES = ['checkpoint', 'merge', 'random', 'copy', 'base'] as const;
/** Where an expert's weights came from: a prepare checkpoint, a GA/plain merge, random init (LoRAMoE-style), a copy (vanilla upcycling), the base model. */
export type ExpertSource = (typeof EXPERT_SOURCES)[number];

export function isRunKind(s: string): s is RunKind {
  return (RUN_KINDS as readonly string[]).includes(s);
}
export function isRunStatus(s: string): s is RunStatus {
  return (RUN_STATUSES as readonly string[]).includes(s);
}
export function isExpertSource(s: string): s is ExpertSource {
  return (EXPERT_SOURCES as readonly string[]).includes(s);
}

export interface Experiment {
  id: number;
  name: string;
  createdAt: number;
  plan: JsonValue | null;
  notes: string | null;
}

export interface NewExperiment {
  name: string;
  plan?: JsonValue | null;
  notes?: string | null;
}

export interface Run {
  id: number;
  experimentId: number | null;
  parentRunId: number | null;
  kind: RunKind;
  variant: string | null;
  seed: number | null;
  status: RunStatus;
  config: JsonObject;
  backend: string | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  wallSeconds: number | null;
  error: string | null;
  pid: number | null;
  hostname: string | null;
  heartbeatAt: number | null;
}

export interface NewRun {
  kind: RunKind;
  experimentId?: number | null;
  parentRunId?: number | null;
  variant?: string | null;
  seed?: number | null;
  config?: JsonObject;
}

export interface StartRunOptions {
  backend: string;
  /** Default: this process. */
  pid?: number;
  /** Default: `os.hostname()` (a pid is only checked on the host that owns it). */
  hostname?: string;
}

export interface ListRunsFilter {
  experimentId?: number;
  kind?: RunKind;
  status?: RunStatus | readonly RunStatus[];
  parentRunId?: number;
  variant?: string;
  /** Newest first when 'desc'. Default 'asc' (creation order). */
  order?: 'asc' | 'desc';
  limit?: number;
}

export interface StaleRunOptions {
  /** A running run whose last heartbeat (or start) is older than this is stale. Default 10 min. */
  staleAfterMs?: number;
  /** Liveness probe for pids on this host (default: `process.kill(pid, 0)`). */
  isPidAlive?: (pid: number) => boolean;
}

export type StaleReason = 'pid-dead' | 'heartbeat-timeout';

export interface StaleRun {
  run: Run;
  reason: StaleReason;
}

/** One metric sample. `value` NaN is stored as NULL and read back as NaN. */
export interface MetricPoint {
  step: number;
  value: number;
  tokens: number | null;
  /** Seconds since the run started. */
  wallTime: number | null;
}

export interface MetricRow extends MetricPoint {
  key: string;
}

export interface MetricSummary {
  key: string;
  count: number;
  firstStep: number;
  lastStep: number;
  /** Value at the first / last step (NaN if it was NaN). */
  first: number;
  last: number;
  /** Over the non-NaN values (NaN when there are none). */
  min: number;
  max: number;
}

export interface MetricSeriesOptions {
  /** Downsample to at most this many points (≥ 4), keeping first/last and per-bucket min/max. */
  maxPoints?: number;
  fromStep?: number;
  toStep?: number;
}

export interface MetricSeries {
  key: string;
  /** Points in the requested step range before downsampling. */
  total: number;
  downsampled: boolean;
  points: MetricPoint[];
}

export interface Checkpoint {
  id: number;
  runId: number;
  step: number;
  epoch: number | null;
  path: string;
  sha256: string;
  bytes: number;
  tag: string | null;
  meta: JsonObject | null;
  createdAt: number;
}

export interface NewCheckpoint {
  runId: number;
  step: number;
  epoch?: number | null;
  /** Relative to the workspace (see `toWorkspacePath`). */
  path: string;
  sha256: string;
  bytes: number;
  tag?: string | null;
  meta?: JsonObject | null;
}

export interface Evaluation {
  id: number;
  runId: number;
  checkpointId: number | null;
  modelRef: string | null;
  domain: string;
  metric: string;
  score: number;
  n: number | null;
  ciLow: number | null;
  ciHigh: number | null;
  createdAt: number;
}

export interface NewEvaluation {
  runId: number;
  checkpointId?: number | null;
  modelRef?: string | null;
  domain: string;
  metric: string;
  score: number;
  n?: number | null;
  ciLow?: number | null;
  ciHigh?: number | null;
  /** Per-item outcomes, '1' correct / '0' wrong in item order (length n), for paired comparisons. */
  outcomes?: string | null;
  /** sha256 of the items' identities: rows with equal keys were scored on the same items. */
  itemsKey?: string | null;
}

/** The per-item outcomes of one evaluation row (see NewEvaluation). */
export interface EvaluationOutcomes {
  evaluationId: number;
  outcomes: string;
  itemsKey: string;
}

/** How a merged expert was made (stage 2). `parents` are expert idx within the run's pool. */
export interface ExpertLineage {
  parents: number[];
  alpha: number | null;
  p: number | null;
  seed: number | null;
  method?: string;
  extra?: JsonObject;
}

export interface Expert {
  id: number;
  runId: number;
  idx: number;
  name: string | null;
  source: ExpertSource;
  checkpointId: number | null;
  path: string | null;
  sha256: string | null;
  bytes: number | null;
  lineage: ExpertLineage | null;
  createdAt: number;
}

export interface NewExpert {
  runId: number;
  idx: number;
  name?: string | null;
  source: ExpertSource;
  checkpointId?: number | null;
  path?: string | null;
  sha256?: string | null;
  bytes?: number | null;
  lineage?: ExpertLineage | null;
}

export interface DistanceEntry {
  i: number;
  j: number;
  value: number;
}

export interface Distance extends DistanceEntry {
  metric: string;
}

export interface RoutingStat {
  layer: number;
  domain: string;
  expert: number;
  fraction: number;
  tokens: number | null;
}

export interface SeedBucket {
  expert: number;
  size: number;
}

export interface Report {
  id: number;
  experimentId: number | null;
  runId: number | null;
  format: string;
  path: string;
  title: string | null;
  createdAt: number;
}

export interface NewReport {
  experimentId?: number | null;
  runId?: number | null;
  format: string;
  path: string;
  title?: string | null;
}
