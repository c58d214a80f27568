/**
 * The API surface: every method the renderer can call, as name → { request, response }
 * schemas. Both hosts and the renderer's client are driven by this one table.
 */
import type { z } from 'zod';
import type { ApiErrorBody } from './common.js';
import { BackendsListRequest, BackendsListResponse } from './backends.js';
import {
  JobCancelResponse,
  JobKindsRequest,
  JobKindsResponse,
  JobRef,
  JobStartRequest,
  JobStartResponse,
  JobsListRequest,
  JobsListResponse,
} from './jobs.js';
import {
  CheckpointsResponse,
  EvaluationsResponse,
  MetricSeries,
  MetricSeriesRequest,
  MetricsSummaryResponse,
  RunGetResponse,
  RunListRequest,
  RunListResponse,
  RunRef,
} from './runs.js';
import { WorkspaceInfo, WorkspaceInfoRequest } from './workspace.js';
import {
  ExperimentGetResponse,
  ExperimentRef,
  ExperimentsListRequest,
  ExperimentsListResponse,
  ExpertsResponse,
  PlanRunRequest,
  PlanRunResponse,
  PlansListRequest,
  PlansListResponse,
  ReportRenderRequest,
  ReportRenderResponse,
  RoutingResponse,
  RunsCompareRequest,
  RunsCompareResponse,
} from './experiments.js';

interface MethodSpec {
  readonly request: z.ZodType;
  readonly response: z.ZodType;
}

function method<Req extends z.ZodType, Res extends z.ZodType>(request: Req, response: Res) {
  return { request, response } satisfies MethodSpec;
}

export const api = {
  'workspace.info': method(WorkspaceInfoRequest, WorkspaceInfo),
  'runs.list': method(RunListRequest, RunListResponse),
  'runs.get': method(RunRef, RunGetResponse),
  'runs.metricSeries': method(MetricSeriesRequest, MetricSeries),
  'runs.metricsSummary': method(RunRef, MetricsSummaryResponse),
  'runs.checkpoints': method(RunRef, CheckpointsResponse),
  'runs.evaluations': method(RunRef, EvaluationsResponse),
  'runs.experts': method(RunRef, ExpertsResponse),
  'runs.routing': method(RunRef, RoutingResponse),
  'runs.compare': method(RunsCompareRequest, RunsCompareResponse),
  'experiments.list': method(ExperimentsListRequest, ExperimentsListResponse),
  'experiments.get': method(ExperimentRef, ExperimentGetResponse),
  'plans.list': method(PlansListRequest, PlansListResponse),
  'plans.run': method(PlanRunRequest, PlanRunResponse),
  'reports.render': method(ReportRenderRequest, ReportRenderResponse),
  'jobs.start': method(JobStartRequest, JobStartResponse),
  'jobs.cancel': method(JobRef, JobCancelResponse),
  'jobs.list': method(JobsListRequest, JobsListResponse),
  'jobs.kinds': method(JobKindsRequest, JobKindsResponse),
  'backends.list': method(BackendsListRequest, BackendsListResponse),
} as const;

export type ApiSpec = typeof api;
export type ApiMethod = keyof ApiSpec;

/**
 * Per method: `request` is what a caller sends (defaults may be omitted), `params` what the
 * implementation receives after validation (defaults filled), `response` what comes back.
 */
export type Api = {
  [M in ApiMethod]: {
    request: z.input<ApiSpec[M]['request']>;
    params: z.output<ApiSpec[M]['request']>;
    response: z.output<ApiSpec[M]['response']>;
  };
};
export type ApiRequest<M extends ApiMethod> = Api[M]['request'];
export type ApiParams<M extends ApiMethod> = Api[M]['params'];
export type ApiResponse<M extends ApiMethod> = Api[M]['response'];

/** What a host implements: one function per method, given validated parameters. */
export type ApiHandlers = {
  [M in ApiMethod]: (params: ApiParams<M>) => Promise<ApiResponse<M>> | ApiResponse<M>;
};

export const API_METHODS = Object.keys(api) as ApiMethod[];

export function isApiMethod(name: string): name is ApiMethod {
  return Object.prototype.hasOwnProperty.call(api, name);
}

// ---- the Electron preload bridge, derived from the same table -----------------------------

type DomainOf<M extends string> = M extends `${infer D}.${string}` ? D : never;
type OpOf<M extends string, D extends string> = M extends `${D}.${infer O}` ? O : never;
export type ApiDomain = DomainOf<ApiMethod>;

/**
 * What an IPC call resolves with. Electron reduces an error thrown in a handler to its
 * message, so failures travel as data and the renderer rebuilds the ApiError.
 */
export type IpcResult<T> = { ok: true; result: T } | { ok: false; error: ApiErrorBody['error'] };

/**
 * `window.upit` under Electron: one function per operation, grouped by domain
 * (`upit.runs.list(req)`), plus one event subscription. No raw IPC is exposed.
 */
export type UpitBridge = {
  readonly [D in ApiDomain]: {
    readonly [O in OpOf<ApiMethod, D>]: (
      request: ApiRequest<`${D}.${O}` & ApiMethod>,
    ) => Promise<IpcResult<ApiResponse<`${D}.${O}` & ApiMethod>>>;
  };
} & {
  /** Subscribe to host events; returns the unsubscribe function. */
  readonly onEvent: (listener: (event: unknown) => void) => () => void;
};

/** IPC channel names used between preload and Electron main. */
export const IPC_EVENT_CHANNEL = 'upit:event';
export function ipcChannel(method: ApiMethod): string {
  return `upit:${method}`;
}
