/**
 * Messages between a host (web host, Electron main) and its job worker process. Both sides
 * validate what they receive. The renderer never sees these.
 */
import { z } from 'zod';
import { JobId, JsonObject, RunId } from './common.js';
import { BackendInfo } from './backends.js';
import { JobEvent, JobKind } from './jobs.js';

// ---- host → worker ------------------------------------------------------------------------

export const WorkerStart = z.strictObject({
  type: z.literal('start'),
  jobId: JobId,
  kind: JobKind,
  config: JsonObject,
});
export const WorkerCancel = z.strictObject({ type: z.literal('cancel'), jobId: JobId });
/** After a crash: the runs the dead worker left 'running' are to be marked failed. */
export const WorkerFailRuns = z.strictObject({
  type: z.literal('fail-runs'),
  runIds: z.array(RunId),
  error: z.string(),
});
/** A read-only question answered by the worker (things that load the tensor engine). */
export const WorkerQuery = z.strictObject({
  type: z.literal('query'),
  id: z.number().int().nonnegative(),
  query: z.enum(['backends']),
});
export const WorkerShutdown = z.strictObject({ type: z.literal('shutdown') });

export const HostToWorker = z.discriminatedUnion('type', [
  WorkerStart,
  WorkerCancel,
  WorkerFailRuns,
  WorkerQuery,
  WorkerShutdown,
]);
export type HostToWorker = z.infer<typeof HostToWorker>;
export type WorkerQueryName = z.infer<typeof WorkerQuery>['query'];

// ---- worker → host ------------------------------------------------------------------------

export const WorkerReady = z.strictObject({
  type: z.literal('ready'),
  pid: z.number().int(),
  kinds: z.array(JobKind),
});
export const WorkerEvent = z.strictObject({ type: z.literal('event'), event: JobEvent });
export const WorkerReply = z.strictObject({
  type: z.literal('reply'),
  id: z.number().int().nonnegative(),
  ok: z.boolean(),
  result: z.unknown().optional(),
  error: z.string().optional(),
});
export const WorkerToHost = z.discriminatedUnion('type', [WorkerReady, WorkerEvent, WorkerReply]);
export type WorkerToHost = z.infer<typeof WorkerToHost>;

export const WorkerQueryResults = {
  backends: z.array(BackendInfo),
} as const;
