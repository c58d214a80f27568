/**
 * `--batch PLAN`: the desktop app without a window — runs a plan file on the workspace and exits
 * with its status (0 done, 1 failed or invalid, 130 interrupted). No Electron API is used here,
 * so the same function runs (and is tested) under plain Node.
 */
import { isUserError } from '../../common/errors.js';
import type { JobRegistry } from '../../jobs/job-runner.js';

export interface BatchOptions {
  plan: string;
  workspace: string;
  /** Lines of progress (default: stdout). */
  write?: (line: string) => void;
  registry?: JobRegistry;
  signal?: AbortSignal;
}

export async function runBatch(o: BatchOptions): Promise<number> {
  const write = o.write ?? ((l: string) => void process.stdout.write(`${l}\n`));
  const { readPlanFile } = await import('../../jobs/plan/schema.js');
  const { runPlan } = await import('../../jobs/plan/runner.js');
  const { openWorkspaceHandle } = await import('../../jobs/store-adapter.js');
  let ws: ReturnType<typeof openWorkspaceHandle> | null = null;
  try {
    const plan = readPlanFile(o.plan);
    ws = openWorkspaceHandle(o.workspace, { create: true });
    const registry = o.registry ?? (await import('../../jobs/kinds/registry.js')).JOB_REGISTRY;
    const res = await runPlan(plan, ws, {
      registry,
      ...(o.signal ? { signal: o.signal } : {}),
      hooks: {
        onJob: ({ index, total, node, action, runId }) =>
          write(
            `[${index + 1}/${total}] ${node.kind} (seed ${node.seed}) for ${node.usedBy.join(', ')}: ` +
              (action === 'skip'
                ? `done already (run ${runId})`
                : action === 'resume'
                  ? `resuming run ${runId}`
                  : 'running'),
          ),
        onJobEvent: (_n, ev) => {
          if (ev.type === 'job.failed') write(`  failed: ${ev.error.split('\n')[0]}`);
        },
      },
    });
    write(
      `plan '${plan.name}' (experiment ${res.experimentId}): ${res.status}${res.error ? ` — ${res.error}` : ''}`,
    );
    return res.status === 'done' ? 0 : res.status === 'cancelled' ? 130 : 1;
  } catch (e) {
    write(`upit: ${isUserError(e) ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return 1;
  } finally {
    ws?.close();
  }
}
