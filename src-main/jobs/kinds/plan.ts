/**
 * The `plan` job: the batch runner inside the worker (the GUI's "Run plan"). Each job of the plan
 * runs as a job of its own, with its own run, progress and metrics, forwarded to the host; this
 * job reports which of the plan's jobs it is on.
 */
import { UserError } from '../../common/errors.js';
import type { JobContext } from '../job-runner.js';
import { confinePlanFile } from '../plan/library.js';
import { runPlan, type PlanJobStatus } from '../plan/runner.js';
import { readPlanFile } from '../plan/schema.js';
import type { PlanJobConfig } from './catalog.js';

export interface PlanJobResult {
  experimentId: number;
  jobs: { kind: string; seed: number; variant: string | null; run: number | null; status: PlanJobStatus }[];
}

export async function runPlanJob(config: PlanJobConfig, ctx: JobContext): Promise<PlanJobResult> {
  const ws = ctx.workspace;
  if (!ws?.store) throw new UserError('a plan needs a workspace');
  const plan = readPlanFile(confinePlanFile(ws.dir, config.file));
  const { JOB_REGISTRY } = await import('./registry.js');
  const res = await runPlan(plan, ws, {
    registry: JOB_REGISTRY,
    signal: ctx.signal,
    hooks: {
      onJob: ({ index, total, node, action, runId }) => {
        ctx.progress({
          step: index,
          total,
          phase: `${node.kind}${node.terminalOf ? ` → ${node.terminalOf}` : ''}`,
        });
        ctx.log(
          `[${index + 1}/${total}] ${node.kind} (seed ${node.seed}) for ${node.usedBy.join(', ')}: ` +
            (action === 'skip'
              ? `done already (run ${runId})`
              : action === 'resume'
                ? `resuming run ${runId}`
                : 'starting'),
        );
      },
      onJobEvent: (_node, ev) => ctx.forward(ev),
    },
  });
  ctx.signal.throwIfAborted();
  if (res.status !== 'done') throw new UserError(res.error ?? `plan ${plan.name} ${res.status}`);
  ctx.progress({ step: res.jobs.length, total: res.jobs.length });
  return {
    experimentId: res.experimentId,
    jobs: res.jobs.map((j) => ({
      kind: j.node.kind,
      seed: j.node.seed,
      variant: j.node.terminalOf,
      run: j.runId,
      status: j.status,
    })),
  };
}
