/**
 * Shared building blocks of the contract. Pure: zod only, no Node or DOM imports, so the
 * renderer may import these schemas as well as their types.
 */
import { z } from 'zod';

/** Database ids (SQLite INTEGER PRIMARY KEY). */
export const Id = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
export const RunId = Id;
export const ExperimentId = Id;
export type RunId = z.infer<typeof RunId>;

/** Milliseconds since the Unix epoch (UTC). */
export const Timestamp = z.number().int().nonnegative();

/** Job ids are opaque strings minted by the host (UUIDs). */
export const JobId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/, 'job ids are letters, digits, - and _');
export type JobId = z.infer<typeof JobId>;

/** A metric value: JSON has no NaN/Infinity, so those travel as null. */
export const MetricValue = z.number().nullable();

/** Requests that take no parameters still send `{}` (keeps every method's shape uniform). */
export const Empty = z.strictObject({});

export const JsonObject = z.record(z.string(), z.unknown());
export type JsonObject = z.infer<typeof JsonObject>;

/** Error codes a method can answer with (the web host maps them to HTTP statuses). */
export const ApiErrorCode = z.enum([
  'bad_request', // the request failed validation (issues name the fields)
  'unknown_method',
  'not_found', // the run/job/… named in the request does not exist
  'conflict', // the operation does not apply in the current state
  'unauthorized',
  'unavailable', // the worker is down or the workspace is not open
  'internal',
]);
export type ApiErrorCode = z.infer<typeof ApiErrorCode>;

export const ApiIssue = z.object({ path: z.string(), message: z.string() });
export type ApiIssue = z.infer<typeof ApiIssue>;

export const ApiErrorBody = z.object({
  error: z.object({
    code: ApiErrorCode,
    message: z.string(),
    issues: z.array(ApiIssue).optional(),
  }),
});
export type ApiErrorBody = z.infer<typeof ApiErrorBody>;
