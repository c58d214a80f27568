import { z } from 'zod';
import { Empty, JobId, JsonObject, MetricValue, RunId, Timestamp } from './common.js';
import { MetricKey, RunKind } from './runs.js';

export const JobKind = RunKind;
export type JobKind = z.infer<typeof JobKind>;

// ---- jobs.start / jobs.cancel / jobs.list / jobs.kinds ------------------------------------

export const JobStartRequest = z.strictObject({
  kind: JobKind,
  /** Validated against the kind's own schema (see jobs.kinds); field paths in errors start with `config`. */
  config: JsonObject.default({}),
});
export type JobStartRequest = z.input<typeof JobStartRequest>;

export const JobStartResponse = z.object({ jobId: JobId });
export type JobStartResponse = z.infer<typeof JobStartResponse>;

export const JobRef = z.strictObject({ jobId: JobId });
export type JobRef = z.infer<typeof JobRef>;

export const JobCancelResponse = z.object({
  /** False when the job had already ended. */
  cancelled: z.boolean(),
});
export type JobCancelResponse = z.infer<typeof JobCancelResponse>;

export const JobState = z.enum(['queued', 'running', 'finished', 'failed', 'cancelled']);
export type JobState = z.infer<typeof JobState>;

export const JobProgress = z.object({
  step: z.number().int().nonnegative(),
  total: z.number().int().nonnegative(),
  loss: z.number().nullable().optional(),
  tokensPerSec: z.number().nonnegative().optional(),
  /** What the job is doing when it has several phases (e.g. 'perplexity', 'training'). */
  phase: z.string().max(64).optional(),
});
export type JobProgress = z.infer<typeof JobProgress>;

export const JobInfo = z.object({
  jobId: JobId,
  kind: JobKind,
  state: JobState,
  runId: RunId.nullable(),
  queuedAt: Timestamp,
  progress: JobProgress.nullable(),
  error: z.string().nullable(),
});
export type JobInfo = z.infer<typeof JobInfo>;

export const JobsListRequest = Empty;
export const JobsListResponse = z.object({ jobs: z.array(JobInfo) });
export type JobsListResponse = z.infer<typeof JobsListResponse>;

export const JobKindInfo = z.object({
  kind: JobKind,
  title: z.string(),
  description: z.string(),
  /** Whether the job records a run (with metrics) in the workspace. */
  createsRun: z.boolean(),
});
export type JobKindInfo = z.infer<typeof JobKindInfo>;

export const JobKindsRequest = Empty;
export const JobKindsResponse = z.object({ kinds: z.array(JobKindInfo) });
export type JobKindsResponse = z.infer<typeof JobKindsResponse>;

// ---- job events (worker → host → renderer) ----------------------------------------------

const base = { jobId: JobId, at: Timestamp };

export const JobQueuedEvent = z.object({ type: z.literal('job.queued'), ...base, kind: JobKind });
export const JobStartedEvent = z.object({
  type: z.literal('job.started'),
  ...base,
  kind: JobKind,
  runId: RunId.nullable(),
});
export const JobProgressEvent = z.object({ type: z.literal('job.progress'), ...base, ...JobProgress.shape });
export const JobMetricEvent = z.object({
  type: z.literal('job.metric'),
  ...base,
  runId: RunId.nullable(),
  step: z.number().int(),
  key: MetricKey,
  value: MetricValue,
  tokens: z.number().nonnegative().nullable().optional(),
});
export const JobLogEvent = z.object({
  type: z.literal('job.log'),
  ...base,
  level: z.enum(['info', 'warn', 'error']),
  message: z.string().max(10_000),
});
export const JobFinishedEvent = z.object({
  type: z.literal('job.finished'),
  ...base,
  runId: RunId.nullable(),
  result: z.unknown(),
});
export const JobFailedEvent = z.object({
  type: z.literal('job.failed'),
  ...base,
  runId: RunId.nullable(),
  error: z.string(),
});
export const JobCancelledEvent = z.object({
  type: z.literal('job.cancelled'),
  ...base,
  runId: RunId.nullable(),
});

export const JobEvent = z.discriminatedUnion('type', [
  JobQueuedEvent,
  JobStartedEvent,
  JobProgressEvent,
  JobMetricEvent,
  JobLogEvent,
  JobFinishedEvent,
  JobFailedEvent,
  JobCancelledEvent,
]);
export type JobEvent = z.infer<typeof JobEvent>;
export type JobMetricEvent = z.infer<typeof JobMetricEvent>;
export type JobEventType = JobEvent['type'];

export const TERMINAL_JOB_EVENTS = ['job.finished', 'job.failed', 'job.cancelled'] as const;
export function isTerminalJobEvent(
  e: JobEvent,
): e is Extract<JobEvent, { type: (typeof TERMINAL_JOB_EVENTS)[number] }> {
  return (TERMINAL_JOB_EVENTS as readonly string[]).includes(e.type);
}
