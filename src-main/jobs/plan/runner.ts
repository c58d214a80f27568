/**
 * The batch runner: runs a plan's job graph in dependency order, one job at a time, through the
 * same JobRunner the GUI's worker uses, under the plan's experiment.
 *
 * Resumable. For each node the runner looks among the experiment's runs for one of the same kind
 * with the same (resolved, defaulted) config:
 *   done                 → skipped; its run id feeds the jobs after it;
 *   failed / cancelled   → requeued and run again in the same run folder, so a training job
 *                          resumes from its last checkpoint;
 *   running              → if its process is gone (killed runner) it is marked failed first
 *                          (`markStale`) and resumed as above; if it is alive elsewhere, refused.
 * A failed job stops the plan (its dependents cannot run); rerun the plan to retry.
 */
import { UserError } from '../../common/errors.js';
import type { JobEvent } from '../../contract/index.js';
import type { Run, Store } from '../../store/index.js';
import { JobRunner, type JobRegistry } from '../job-runner.js';
import { jobKindSpec } from '../kinds/catalog.js';
import type { WorkspaceHandle } from '../ports.js';
import { bindRuns, buildPlanGraph, canonicalJson, type PlanGraph, type PlanNode } from './graph.js';
import type { Plan } from './schema.js';

export type PlanJobStatus = 'done' | 'skipped' | 'failed' | 'cancelled' | 'pending';

export interface PlanJobState {
  node: PlanNode;
  runId: number | null;
  status: PlanJobStatus;
}

export interface PlanRunResult {
  experimentId: number;
  status: 'done' | 'failed' | 'cancelled';
  jobs: PlanJobState[];
  error: string | null;
}

export interface PlanRunHooks {
  /** Before each job: its index, what the runner does with it and the run it uses (if known). */
  onJob?(e: {
    index: number;
    total: number;
    node: PlanNode;
    action: 'skip' | 'run' | 'resume';
    runId: number | null;
  }): void;
  /** Every event of the job being run (progress, metrics, logs, the final event). */
  onJobEvent?(node: PlanNode, ev: JobEvent): void;
}

export interface PlanRunOptions {
  registry: JobRegistry;
  signal?: AbortSignal;
  hooks?: PlanRunHooks;
}

function requireStore(ws: WorkspaceHandle): Store {
  if (!ws.store) throw new UserError('running a plan needs a workspace database');
  return ws.store;
}

/** The resolved config of a node (run ids in, defaults applied) — what its run records. */
function resolvedConfig(node: PlanNode, runIds: ReadonlyMap<string, number>): Record<string, unknown> {
  const bound = bindRuns(node.config, (key) => {
    const id = runIds.get(key);
    if (id === undefined)
      throw new Error(`plan: ${node.kind} job ${node.key} needs job ${key}, which has no run yet`);
    return id;
  });
  return jobKindSpec(node.kind)!.config.parse(bound) as Record<string, unknown>;
}

/** The experiment's run for a node: a done one first, else the newest other one. */
function findRun(runs: readonly Run[], node: PlanNode, config: Record<string, unknown>): Run | undefined {
  const key = canonicalJson(config);
  const same = runs.filter((r) => r.kind === node.kind && canonicalJson(r.config) === key);
  return same.find((r) => r.status === 'done') ?? same.sort((a, b) => b.id - a.id)[0];
}

/** What a rerun would do with each node, without running anything (for --dry-run). */
export function planStatus(
  plan: Plan,
  store: Store | null,
): { graph: PlanGraph; jobs: PlanJobState[]; experimentId: number | null } {
  const graph = buildPlanGraph(plan);
  const exp = store?.findExperiment(plan.name);
  const runs = exp && store ? store.listRuns({ experimentId: exp.id }) : [];
  const runIds = new Map<string, number>();
  const jobs = graph.nodes.map((node): PlanJobState => {
    if (node.deps.some((d) => !runIds.has(d))) return { node, runId: null, status: 'pending' };
    const run = findRun(runs, node, resolvedConfig(node, runIds));
    if (run?.status === 'done') {
      runIds.set(node.key, run.id);
      return { node, runId: run.id, status: 'skipped' };
    }
    return { node, runId: run?.id ?? null, status: 'pending' };
  });
  return { graph, jobs, experimentId: exp?.id ?? null };
}

export async function runPlan(plan: Plan, ws: WorkspaceHandle, opts: PlanRunOptions): Promise<PlanRunResult> {
  const store = requireStore(ws);
  const graph = buildPlanGraph(plan);
  const exp =
    store.findExperiment(plan.name) ?? store.createExperiment({ name: plan.name, plan: plan.json as never });
  store.setExperimentPlan(exp.id, plan.json as never);
  store.markStale();

  const jobs: PlanJobState[] = graph.nodes.map((node) => ({ node, runId: null, status: 'pending' }));
  const runIds = new Map<string, number>();
  let current: { jobId: string; node: PlanNode } | null = null;
  let final: Extract<JobEvent, { type: 'job.finished' | 'job.failed' | 'job.cancelled' }> | null = null;
  const runner = new JobRunner({
    registry: opts.registry,
    workspace: ws,
    emit: (ev) => {
      if (!current || ev.jobId !== current.jobId) return;
      opts.hooks?.onJobEvent?.(current.node, ev);
      if (ev.type === 'job.finished' || ev.type === 'job.failed' || ev.type === 'job.cancelled') final = ev;
    },
  });
  const onAbort = () => {
    if (current) runner.cancel(current.jobId);
  };
  opts.signal?.addEventListener('abort', onAbort);
  const result = (status: PlanRunResult['status'], error: string | null): PlanRunResult => ({
    experimentId: exp.id,
    status,
    jobs,
    error,
  });
  try {
    for (const [index, state] of jobs.entries()) {
      const { node } = state;
      if (opts.signal?.aborted) return result('cancelled', 'cancelled');
      const config = resolvedConfig(node, runIds);
      const existing = findRun(store.listRuns({ experimentId: exp.id }), node, config);
      if (existing?.status === 'done') {
        if (node.terminalOf !== null && existing.variant !== node.terminalOf)
          store.setRunVariant(existing.id, node.terminalOf);
        runIds.set(node.key, existing.id);
        state.runId = existing.id;
        state.status = 'skipped';
        opts.hooks?.onJob?.({ index, total: jobs.length, node, action: 'skip', runId: existing.id });
        continue;
      }
      let resume: number | undefined;
      if (existing && (existing.status === 'failed' || existing.status === 'cancelled')) {
        store.requeueRun(existing.id);
        resume = existing.id;
      } else if (existing && existing.status === 'queued') {
        resume = existing.id;
      } else if (existing) {
        throw new UserError(
          `run ${existing.id} (${node.kind} of plan ${plan.name}) is running in another process (pid ${existing.pid ?? '?'}); ` +
            'wait for it or cancel it',
        );
      }
      if (resume !== undefined && node.terminalOf !== null) store.setRunVariant(resume, node.terminalOf);
      opts.hooks?.onJob?.({
        index,
        total: jobs.length,
        node,
        action: resume !== undefined ? 'resume' : 'run',
        runId: resume ?? null,
      });
      const jobId = `plan-${exp.id}-${node.key}`;
      current = { jobId, node };
      final = null;
      runner.start(jobId, node.kind, config, {
        ...(resume !== undefined ? { runId: resume } : {}),
        experimentId: exp.id,
        variant: node.terminalOf,
      });
      await runner.idle();
      const end = final as Extract<
        JobEvent,
        { type: 'job.finished' | 'job.failed' | 'job.cancelled' }
      > | null;
      current = null;
      state.runId = end?.runId ?? resume ?? null;
      if (end?.type === 'job.finished' && state.runId !== null) {
        runIds.set(node.key, state.runId);
        state.status = 'done';
        continue;
      }
      state.status = end?.type === 'job.cancelled' ? 'cancelled' : 'failed';
      const what = `${node.kind} job for ${node.usedBy.join(', ')} (seed ${node.seed}${state.runId !== null ? `, run ${state.runId}` : ''})`;
      if (end?.type === 'job.cancelled') return result('cancelled', `${what} was cancelled`);
      return result('failed', `${what} failed: ${end?.type === 'job.failed' ? end.error : 'no result'}`);
    }
    return result('done', null);
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
