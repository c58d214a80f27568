import { z } from 'zod';
import { ExperimentId, Id, JsonObject, MetricValue, RunId, Timestamp } from './common.js';

/** Mirrors the CHECK on `runs.status` in the workspace database. */
export const RunStatus = z.enum(['queued', 'running', 'done', 'failed', 'cancelled']);
export type RunStatus = z.infer<typeof RunStatus>;

/** Open vocabulary (pretrain, prepare, expand, route, upcycle, eval, plan, demo, …). */
export const RunKind = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z][a-z0-9-]*$/, 'run kinds are lower-case words joined by -');
export type RunKind = z.infer<typeof RunKind>;

export const RunSummary = z.object({
  id: RunId,
  experimentId: ExperimentId.nullable(),
  parentRunId: RunId.nullable(),
  kind: RunKind,
  variant: z.string().nullable(),
  seed: z.number().int().nullable(),
  status: RunStatus,
  backend: z.string().nullable(),
  createdAt: Timestamp,
  startedAt: Timestamp.nullable(),
  finishedAt: Timestamp.nullable(),
  wallSeconds: z.number().nonnegative().nullable(),
  error: z.string().nullable(),
});
export type RunSummary = z.infer<typeof RunSummary>;

export const RunDetail = RunSummary.extend({ config: JsonObject });
export type RunDetail = z.infer<typeof RunDetail>;

// ---- runs.list --------------------------------------------------------------------------

export const RunListRequest = z.strictObject({
  experimentId: ExperimentId.optional(),
  kinds: z.array(RunKind).max(32).optional(),
  statuses: z.array(RunStatus).max(5).optional(),
  /** Case-insensitive substring of kind, variant or id. */
  search: z.string().max(200).optional(),
  limit: z.number().int().min(1).max(1000).default(200),
  offset: z.number().int().min(0).default(0),
});
export type RunListRequest = z.input<typeof RunListRequest>;
export type RunListQuery = z.output<typeof RunListRequest>;

export const RunListResponse = z.object({
  /** Newest first. */
  runs: z.array(RunSummary),
  /** Runs matching the filter, ignoring limit/offset. */
  total: z.number().int().nonnegative(),
});
export type RunListResponse = z.infer<typeof RunListResponse>;

// ---- runs.get ---------------------------------------------------------------------------

export const RunRef = z.strictObject({ runId: RunId });
export type RunRef = z.infer<typeof RunRef>;

export const RunGetResponse = z.object({ run: RunDetail });
export type RunGetResponse = z.infer<typeof RunGetResponse>;

// ---- runs.metricSeries ------------------------------------------------------------------

export const MetricKey = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_./:-]+$/, 'metric keys are letters, digits and _ . / : -');
export type MetricKey = z.infer<typeof MetricKey>;

export const MetricSeriesRequest = z.strictObject({
  runId: RunId,
  key: MetricKey,
  /** The store thins longer series to about this many points (keeping the last one). */
  maxPoints: z.number().int().min(2).max(200_000).default(5000),
});
export type MetricSeriesRequest = z.input<typeof MetricSeriesRequest>;
export type MetricSeriesQuery = z.output<typeof MetricSeriesRequest>;

/** Columnar: steps[i], values[i], tokens[i] describe point i. */
export const MetricSeries = z
  .object({
    runId: RunId,
    key: MetricKey,
    steps: z.array(z.number().int()),
    values: z.array(MetricValue),
    /** Cumulative tokens seen at each step, where the job recorded them (else null entries). */
    tokens: z.array(z.number().nonnegative().nullable()),
    /** Points stored for this key (≥ steps.length when thinned). */
    total: z.number().int().nonnegative(),
  })
  .refine((s) => s.values.length === s.steps.length && s.tokens.length === s.steps.length, {
    message: 'steps, values and tokens must have the same length',
    path: ['values'],
  });
export type MetricSeries = z.infer<typeof MetricSeries>;

// ---- runs.metricsSummary ----------------------------------------------------------------

export const MetricSummary = z.object({
  key: MetricKey,
  count: z.number().int().nonnegative(),
  firstStep: z.number().int(),
  lastStep: z.number().int(),
  last: MetricValue,
  min: MetricValue,
  max: MetricValue,
});
export type MetricSummary = z.infer<typeof MetricSummary>;

export const MetricsSummaryResponse = z.object({ runId: RunId, metrics: z.array(MetricSummary) });
export type MetricsSummaryResponse = z.infer<typeof MetricsSummaryResponse>;

// ---- runs.checkpoints / runs.evaluations ------------------------------------------------

export const Checkpoint = z.object({
  id: Id,
  runId: RunId,
  step: z.number().int().nonnegative(),
  epoch: z.number().nonnegative().nullable(),
  /** Relative to the workspace directory. */
  path: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().nonnegative(),
  tag: z.string().nullable(),
  createdAt: Timestamp,
});
export type Checkpoint = z.infer<typeof Checkpoint>;

export const CheckpointsResponse = z.object({ runId: RunId, checkpoints: z.array(Checkpoint) });
export type CheckpointsResponse = z.infer<typeof CheckpointsResponse>;

export const Evaluation = z.object({
  id: Id,
  runId: RunId,
  checkpointId: Id.nullable(),
  modelRef: z.string().nullable(),
  domain: z.string(),
  metric: z.string(),
  score: z.number(),
  n: z.number().int().nonnegative().nullable(),
  ciLow: z.number().nullable(),
  ciHigh: z.number().nullable(),
  createdAt: Timestamp,
});
export type Evaluation = z.infer<typeof Evaluation>;

export const EvaluationsResponse = z.object({
  runId: RunId,
  evaluations: z.array(Evaluation),
  /**
   * For a run with evaluated checkpoints: "does the best checkpoint differ by domain?" answered by
   * paired tests on the per-item outcomes; null when there is nothing to compare.
   */
  specialisation: z.string().nullable().optional(),
});
export type EvaluationsResponse = z.infer<typeof EvaluationsResponse>;
