/**
 * Runs one job in this process through the same JobRunner the GUI's worker uses, with a
 * progress bar (or JSON lines) instead of WebSocket events. Ctrl-C cancels the job, which
 * checkpoints before it stops; a second Ctrl-C exits at once.
 */
import { UserError } from '../common/errors.js';
import type { JobEvent } from '../contract/index.js';
import { JobRunner } from '../jobs/job-runner.js';
import { JOB_REGISTRY } from '../jobs/kinds/registry.js';
import { openWorkspaceHandle } from '../jobs/store-adapter.js';
import { createProgress } from './progress.js';

export interface JobOutcome<R> {
  runId: number | null;
  result: R;
  workspaceDir: string;
}

export async function runJobInProcess<R>(
  kind: string,
  config: Record<string, unknown>,
  opts: { workspace: string; json: boolean; label?: string },
): Promise<JobOutcome<R>> {
  const ws = openWorkspaceHandle(opts.workspace, { create: true });
  const progress = createProgress({ label: opts.label ?? kind, json: opts.json });
  let finished: Extract<JobEvent, { type: 'job.finished' | 'job.failed' | 'job.cancelled' }> | null = null;
  let runId: number | null = null;
  const runner = new JobRunner({
    registry: JOB_REGISTRY,
    workspace: ws,
    emit: (ev) => {
      switch (ev.type) {
        case 'job.started':
          runId = ev.runId;
          if (ev.runId !== null) progress.log(`run ${ev.runId} (${kind}) in ${ws.dir}`);
          break;
        case 'job.progress':
          progress.update({
            step: ev.step,
            total: ev.total,
            ...(ev.loss !== undefined && ev.loss !== null ? { loss: ev.loss } : {}),
            ...(ev.tokensPerSec !== undefined && ev.tokensPerSec !== null
              ? { tokensPerSec: ev.tokensPerSec }
              : {}),
            ...(ev.phase !== undefined ? { extra: { phase: ev.phase } } : {}),
          });
          break;
        case 'job.log':
          if (ev.level !== 'error' || opts.json) progress.log(ev.message);
          else progress.log(`error: ${ev.message.split('\n')[0] ?? ''}`);
          break;
        case 'job.finished':
        case 'job.failed':
        case 'job.cancelled':
          finished = ev;
          break;
        default:
          break;
      }
    },
  });
  let interrupts = 0;
  const onSigint = (): void => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    progress.log('interrupted: cancelling (a checkpoint is written first; Ctrl-C again to exit now)');
    runner.cancel('cli');
  };
  process.on('SIGINT', onSigint);
  try {
    runner.start('cli', kind, config);
    await runner.idle();
  } finally {
    process.off('SIGINT', onSigint);
    ws.close();
  }
  const end = finished as JobEvent | null;
  if (!end) throw new Error(`job ${kind} ended without a final event`);
  if (end.type === 'job.failed') {
    progress.done();
    throw new UserError(end.error);
  }
  if (end.type === 'job.cancelled') {
    progress.done();
    throw new UserError(`${kind} cancelled${runId !== null ? ` (run ${runId}, last checkpoint kept)` : ''}`);
  }
  progress.done();
  return { runId, result: (end.type === 'job.finished' ? end.result : null) as R, workspaceDir: ws.dir };
}
