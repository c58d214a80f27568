/**
 * Validation at the boundaries. Hosts validate every request before it reaches an
 * implementation; clients may validate responses (the renderer does in development).
 * Failures carry the offending field paths (`filter.statuses[0]`).
 */
import { z } from 'zod';
import { api, isApiMethod, type ApiMethod, type ApiParams, type ApiResponse } from './api.js';
import type { ApiErrorBody, ApiErrorCode, ApiIssue } from './common.js';
import { AppEvent } from './events.js';

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly issues?: ApiIssue[],
  ) {
    super(message);
  }

  toBody(): ApiErrorBody {
    return {
      error: { code: this.code, message: this.message, ...(this.issues ? { issues: this.issues } : {}) },
    };
  }

  static fromBody(body: ApiErrorBody): ApiError {
    return new ApiError(body.error.code, body.error.message, body.error.issues);
  }
}

export function isApiError(e: unknown): e is ApiError {
  return e instanceof ApiError;
}

/** `['config', 'steps']` → `config.steps`; `['runs', 0, 'id']` → `runs[0].id`; root → `(root)`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(root)' : out;
}

export function toIssues(error: z.ZodError, prefix: readonly PropertyKey[] = []): ApiIssue[] {
  return error.issues.map((i) => {
    if (i.code === 'unrecognized_keys') {
      return { path: formatPath([...prefix, ...i.path]), message: `unknown field(s): ${i.keys.join(', ')}` };
    }
    return { path: formatPath([...prefix, ...i.path]), message: i.message };
  });
}

function summarize(what: string, issues: ApiIssue[]): string {
  const head = issues
    .slice(0, 3)
    .map((i) => `${i.path}: ${i.message}`)
    .join('; ');
  return `${what}: ${head}${issues.length > 3 ? ` (+${issues.length - 3} more)` : ''}`;
}

/** Parses with `schema` or throws ApiError(code) naming every bad field. */
export function parseOrThrow<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what: string,
  code: ApiErrorCode = 'bad_request',
  prefix: readonly PropertyKey[] = [],
): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issues = toIssues(r.error, prefix);
  throw new ApiError(code, summarize(what, issues), issues);
}

export function assertApiMethod(name: string): ApiMethod {
  if (!isApiMethod(name)) throw new ApiError('unknown_method', `unknown method '${name}'`);
  return name;
}

/** Host side: the request of `method`, validated, with defaults filled. */
export function parseRequest<M extends ApiMethod>(method: M, value: unknown): ApiParams<M> {
  return parseOrThrow(api[method].request, value ?? {}, `invalid ${method} request`) as ApiParams<M>;
}

/**
 * Response of `method`, validated. A host that produces an invalid response has a bug
 * (code 'internal'); a client that receives one talks to a mismatched host.
 */
export function parseResponse<M extends ApiMethod>(method: M, value: unknown): ApiResponse<M> {
  return parseOrThrow(
    api[method].response,
    value,
    `invalid ${method} response`,
    'internal',
  ) as ApiResponse<M>;
}

export function parseEvent(value: unknown): AppEvent {
  return parseOrThrow(AppEvent, value, 'invalid event', 'internal');
}

/** Any thrown value as an ApiError (unknown errors become 'internal' with their message). */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof z.ZodError)
    return new ApiError('bad_request', summarize('invalid input', toIssues(e)), toIssues(e));
  const message = e instanceof Error ? e.message : String(e);
  return new ApiError('internal', message);
}
