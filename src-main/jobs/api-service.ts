/**
 * The one implementation of the contract's methods, shared by both hosts: reads go to the
 * workspace's RunsRepository, jobs to the JobsPort (the worker supervisor). Hosts only
 * adapt `call` and `subscribe` to their transport.
 */
import path from 'node:path';
import { isUserError } from '../common/errors.js';
import type { AppEvent, ApiHandlers, ApiMethod, ApiResponse } from '../contract/index.js';
import {
  ApiError,
  assertApiMethod,
  parseOrThrow,
  parseRequest,
  parseResponse,
  toApiError,
} from '../contract/index.js';
import { jobKindSpec, listJobKinds } from './kinds/catalog.js';
import { JobTracker } from './job-tracker.js';
import type { JobsPort, RunsRepository } from './ports.js';
import type { Store } from '../store/index.js';
import { resourcePath } from '../common/paths.js';
import { pathOutside } from './confine.js';
import { listPlans, planFileByName, savePlanText } from './plan/library.js';
import { readPlanFile } from './plan/schema.js';
import {
  compareRuns,
  getExperiment,
  listExperiments,
  renderExperimentReport,
  runExperts,
  runRouting,
  runSpecialisation,
} from './workspace-queries.js';

export interface ApiServiceDeps {
  /** `store`: the workspace database, for the stage views' reads (null: those methods are unavailable). */
  workspace: { dir: string; runs: RunsRepository; store?: Store | null };
  jobs: JobsPort;
  host: 'web' | 'electron';
  appVersion: string;
  /** Validate every response against the contract (default true; cheap next to a DB read). */
  validateResponses?: boolean;
  now?: () => number;
}

export interface ApiService {
  /** Validates `request` for `method`, runs it, returns the response. Throws ApiError. */
  call(method: string, request: unknown): Promise<unknown>;
  /** Host events (job events, …) for the renderer; returns unsubscribe. */
  subscribe(listener: (event: AppEvent) => void): () => void;
  /** Stops listening to the job port. */
  close(): void;
}

function notFound(what: string): never {
  throw new ApiError('not_found', `${what} does not exist`);
}

export function createApiService(deps: ApiServiceDeps): ApiService {
  const now = deps.now ?? Date.now;
  const runs = deps.workspace.runs;
  const tracker = new JobTracker();
  const listeners = new Set<(e: AppEvent) => void>();
  const unsubscribeJobs = deps.jobs.onEvent((e) => {
    tracker.apply(e);
    for (const l of listeners) l(e);
  });

  const store = (): Store => {
    const db = deps.workspace.store;
    if (!db) throw new ApiError('unavailable', 'this workspace has no database');
    return db;
  };
  const runExists = (runId: number): void => {
    if (!store().getRun(runId)) notFound(`run ${runId}`);
  };
  const startJob = (kind: string, config: Record<string, unknown>): string => {
    const jobId = deps.jobs.startJob(kind, config);
    tracker.add(jobId, kind, now());
    return jobId;
  };

  const handlers: ApiHandlers = {
    'workspace.info': () => ({
      dir: deps.workspace.dir,
      name: path.basename(deps.workspace.dir),
      schemaVersion: runs.schemaVersion(),
      appVersion: deps.appVersion,
      host: deps.host,
    }),
    'runs.list': (q) => runs.listRuns(q),
    'runs.get': async ({ runId }) => ({ run: (await runs.getRun(runId)) ?? notFound(`run ${runId}`) }),
    'runs.metricSeries': async (q) => (await runs.getMetricSeries(q)) ?? notFound(`run ${q.runId}`),
    'runs.metricsSummary': async ({ runId }) => ({
      runId,
      metrics: (await runs.metricsSummary(runId)) ?? notFound(`run ${runId}`),
    }),
    'runs.checkpoints': async ({ runId }) => ({
      runId,
      checkpoints: (await runs.listCheckpoints(runId)) ?? notFound(`run ${runId}`),
    }),
    'runs.evaluations': async ({ runId }) => {
      const evaluations = (await runs.listEvaluations(runId)) ?? notFound(`run ${runId}`);
      const db = deps.workspace.store;
      return { runId, evaluations, specialisation: db ? runSpecialisation(db, runId) : null };
    },
    'runs.experts': ({ runId }) => {
      runExists(runId);
      return runExperts(store(), runId);
    },
    'runs.routing': ({ runId }) => {
      runExists(runId);
      return runRouting(store(), runId);
    },
    'runs.compare': ({ runIds }) => ({ runs: compareRuns(store(), runIds) }),
    'experiments.list': () => ({ experiments: listExperiments(store()) }),
    'experiments.get': ({ experimentId }) =>
      getExperiment(store(), experimentId) ?? notFound(`experiment ${experimentId}`),
    'plans.list': () => ({ plans: listPlans(deps.workspace.dir) }),
    'plans.run': (req) => {
      let file: string;
      let experiment: string;
      if ('text' in req) {
        ({ file, experiment } = savePlanText(deps.workspace.dir, req.text));
      } else {
        file = planFileByName(deps.workspace.dir, req.name, req.source);
        experiment = readPlanFile(file).name;
      }
      return { jobId: startJob('plan', { file }), experiment, file: path.basename(file) };
    },
    'reports.render': ({ experimentId, format }) => {
      if (!store().getExperiment(experimentId)) notFound(`experiment ${experimentId}`);
      return renderExperimentReport(store(), experimentId, format);
    },
    'jobs.start': ({ kind, config }) => {
      const spec = jobKindSpec(kind);
      if (!spec) {
        throw new ApiError('bad_request', `kind: unknown job kind '${kind}'`, [
          {
            path: 'kind',
            message: `unknown job kind '${kind}' (known: ${listJobKinds()
              .map((k) => k.kind)
              .join(', ')})`,
          },
        ]);
      }
      const valid = parseOrThrow(spec.config, config, `invalid ${kind} config`, 'bad_request', ['config']);
      const out = pathOutside(valid as Record<string, unknown>, [deps.workspace.dir, resourcePath()]);
      if (out) {
        const message = `${out.value} is outside the workspace (${deps.workspace.dir}); copy it into the workspace first`;
        throw new ApiError('bad_request', `config.${out.field}: ${message}`, [
          { path: `config.${out.field}`, message },
        ]);
      }
      return { jobId: startJob(kind, valid as Record<string, unknown>) };
    },
    'jobs.cancel': ({ jobId }) => {
      if (!tracker.has(jobId)) notFound(`job ${jobId}`);
      return { cancelled: deps.jobs.cancelJob(jobId) };
    },
    'jobs.list': () => ({ jobs: tracker.list() }),
    'jobs.kinds': () => ({ kinds: listJobKinds() }),
    'backends.list': async () => ({ backends: await deps.jobs.queryBackends() }),
  };

  async function invoke<M extends ApiMethod>(method: M, request: unknown): Promise<ApiResponse<M>> {
    const params = parseRequest(method, request);
    const handler = handlers[method] as (p: typeof params) => Promise<ApiResponse<M>> | ApiResponse<M>;
    const result = await handler(params);
    return deps.validateResponses === false ? result : parseResponse(method, result);
  }

  return {
    async call(method, request) {
      try {
        return await invoke(assertApiMethod(method), request);
      } catch (e) {
        // a UserError names what is wrong with the request in the user's terms
        if (isUserError(e)) throw new ApiError('bad_request', e.message);
        throw toApiError(e);
      }
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      unsubscribeJobs();
      listeners.clear();
    },
  };
}
