/**
 * Experiments, plans, the stage results the workbench's views show (experts and lineage, distance
 * matrices, seed buckets, routing), run comparison, and reports.
 */
import { z } from 'zod';
import { Empty, ExperimentId, Id, JsonObject, RunId, Timestamp } from './common.js';
import { RunStatus, RunSummary } from './runs.js';

// ---- experiments --------------------------------------------------------------------------

export const ExperimentSummary = z.object({
  id: ExperimentId,
  name: z.string(),
  description: z.string().nullable(),
  createdAt: Timestamp,
  /** Runs of the experiment, by status. */
  runs: z.number().int().nonnegative(),
  byStatus: z.record(RunStatus, z.number().int().nonnegative()),
  /** Variants that have a result run, in plan order. */
  variants: z.array(z.string()),
});
export type ExperimentSummary = z.infer<typeof ExperimentSummary>;

export const ExperimentsListRequest = Empty;
export const ExperimentsListResponse = z.object({ experiments: z.array(ExperimentSummary) });
export type ExperimentsListResponse = z.infer<typeof ExperimentsListResponse>;

export const ExperimentRef = z.strictObject({ experimentId: ExperimentId });
export type ExperimentRef = z.infer<typeof ExperimentRef>;

export const ExperimentGetResponse = z.object({
  experiment: ExperimentSummary.extend({ plan: z.unknown().nullable() }),
  /** Oldest first (the plan's job order). */
  runs: z.array(RunSummary),
});
export type ExperimentGetResponse = z.infer<typeof ExperimentGetResponse>;

// ---- plans --------------------------------------------------------------------------------

export const PlanInfo = z.object({
  /** The plan's file name without extension (shipped plans: resources/plans/<name>.yaml). */
  name: z.string(),
  source: z.enum(['shipped', 'workspace']),
  /** The experiment name inside the file (null when the file does not parse). */
  experiment: z.string().nullable(),
  description: z.string().nullable(),
  variants: z.array(z.string()),
  seeds: z.array(z.number().int()),
  jobs: z.number().int().nonnegative(),
  /** Why the file is unusable (one line), or null. */
  error: z.string().nullable(),
});
export type PlanInfo = z.infer<typeof PlanInfo>;

export const PlansListRequest = Empty;
export const PlansListResponse = z.object({ plans: z.array(PlanInfo) });
export type PlansListResponse = z.infer<typeof PlansListResponse>;

const PlanName = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'plan names are letters, digits, . _ and -');

/** Run a plan: a shipped or workspace plan by name, or plan text (saved into the workspace first). */
export const PlanRunRequest = z.union([
  z.strictObject({ name: PlanName, source: z.enum(['shipped', 'workspace']).default('shipped') }),
  z.strictObject({ text: z.string().min(1).max(200_000) }),
]);
export type PlanRunRequest = z.input<typeof PlanRunRequest>;

export const PlanRunResponse = z.object({ jobId: z.string(), experiment: z.string(), file: z.string() });
export type PlanRunResponse = z.infer<typeof PlanRunResponse>;

// ---- stage results ------------------------------------------------------------------------

export const ExpertLineage = z.object({
  parents: z.array(z.number().int().nonnegative()),
  alpha: z.number().nullable(),
  p: z.number().nullable(),
  seed: z.number().nullable(),
  distance: z.number().nullable(),
});

export const ExpertInfo = z.object({
  idx: z.number().int().nonnegative(),
  name: z.string().nullable(),
  source: z.string(),
  checkpointId: Id.nullable(),
  lineage: ExpertLineage.nullable(),
});
export type ExpertInfo = z.infer<typeof ExpertInfo>;

export const ExpertsResponse = z.object({
  runId: RunId,
  experts: z.array(ExpertInfo),
  distances: z.object({ metric: z.string(), matrix: z.array(z.array(z.number().nullable())) }).nullable(),
});
export type ExpertsResponse = z.infer<typeof ExpertsResponse>;

export const RoutingResponse = z.object({
  runId: RunId,
  stats: z.array(
    z.object({
      layer: z.number().int().nonnegative(),
      domain: z.string(),
      expert: z.number().int().nonnegative(),
      fraction: z.number(),
      tokens: z.number().int().nonnegative().nullable(),
    }),
  ),
  seedBuckets: z.array(
    z.object({ expert: z.number().int().nonnegative(), size: z.number().int().nonnegative() }),
  ),
});
export type RoutingResponse = z.infer<typeof RoutingResponse>;

// ---- compare ------------------------------------------------------------------------------

export const RunsCompareRequest = z.strictObject({ runIds: z.array(RunId).min(1).max(2000) });
export type RunsCompareRequest = z.infer<typeof RunsCompareRequest>;

export const CompareRow = RunSummary.extend({
  config: JsonObject,
  /** Last value of every metric key. */
  metrics: z.record(z.string(), z.number().nullable()),
  /** Final primary score per domain (the run's latest evaluated checkpoint). */
  scores: z.record(z.string(), z.number()),
  average: z.number().nullable(),
});
export type CompareRow = z.infer<typeof CompareRow>;

export const RunsCompareResponse = z.object({ runs: z.array(CompareRow) });
export type RunsCompareResponse = z.infer<typeof RunsCompareResponse>;

// ---- reports ------------------------------------------------------------------------------

export const ReportFormat = z.enum(['md', 'html', 'csv', 'tex']);
export type ReportFormat = z.infer<typeof ReportFormat>;

export const ReportRenderRequest = z.strictObject({ experimentId: ExperimentId, format: ReportFormat });
export type ReportRenderRequest = z.infer<typeof ReportRenderRequest>;

export const ReportRenderResponse = z.object({
  experimentId: ExperimentId,
  format: ReportFormat,
  /** Suggested file name (`<experiment>.<ext>`). */
  filename: z.string(),
  content: z.string(),
});
export type ReportRenderResponse = z.infer<typeof ReportRenderResponse>;
