/**
 * What every training job does at its edges: find its run folder, report a step as
 * progress and metrics, and record a checkpoint (path, sha256, bytes) in the database.
 */
import { existsSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { UserError } from '../../common/errors.js';
import { fileSha256, type Store } from '../../store/index.js';
import type { JobContext } from '../job-runner.js';
import type { EvalResult } from '../../eval/index.js';

export interface RunDirectory {
  store: Store;
  runId: number;
  /** Absolute path of `runs/<id>` in the workspace. */
  dir: string;
}

export function runDirectory(ctx: JobContext): RunDirectory {
  const store = ctx.workspace?.store;
  if (!store || ctx.runId === null || !ctx.workspace) {
    throw new UserError('this job records checkpoints and needs a workspace (--workspace DIR)');
  }
  return { store, runId: ctx.runId, dir: join(ctx.workspace.dir, 'runs', String(ctx.runId)) };
}

export interface StepReport {
  step: number;
  totalSteps: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokensPerSec: number;
  metrics?: Record<string, number>;
}

/** One optimizer step → progress event and metric points (x = step, with cumulative tokens). */
export function reportStep(ctx: JobContext, s: StepReport, tokens: number): void {
  ctx.metric('loss', s.step, s.loss, tokens);
  ctx.metric('lr', s.step, s.lr, tokens);
  ctx.metric('grad_norm', s.step, s.gradNorm, tokens);
  ctx.metric('tokens_per_sec', s.step, s.tokensPerSec, tokens);
  for (const [k, v] of Object.entries(s.metrics ?? {})) ctx.metric(k, s.step, v, tokens);
  ctx.progress({ step: s.step, total: s.totalSteps, loss: s.loss, tokensPerSec: s.tokensPerSec });
}

/** The weights file a checkpoint or model directory is identified by. */
export function primaryWeightsFile(dir: string): string {
  for (const name of ['params.safetensors', 'model.safetensors', 'adapter_model.safetensors']) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  throw new Error(`no weights file in ${dir}`);
}

/** Hashes the checkpoint's weights file (`fileName` in c.dir, default the primary one) and records it. */
export async function recordCheckpoint(
  ctx: JobContext,
  c: { step: number; epoch: number; dir: string; reason: string },
  fileName?: string,
): Promise<number> {
  const { store, runId } = runDirectory(ctx);
  const file = fileName !== undefined ? join(c.dir, fileName) : primaryWeightsFile(c.dir);
  const digest = await fileSha256(file);
  const rel = relative(ctx.workspace!.dir, file).split(sep).join('/');
  const row = store.addCheckpoint({
    runId,
    step: c.step,
    epoch: c.epoch,
    path: rel,
    sha256: digest.sha256,
    bytes: digest.bytes,
    tag: c.reason,
  });
  return row.id;
}

/**
 * Stores an evaluation against the job's run (at a checkpoint, or of a model reference), logs
 * the primary scores as metrics `eval/<domain>` and `eval/average` at `step` when given, and
 * returns the one-line summary (`arith 12.0 · … · avg 20.5`).
 */
export function recordScores(
  ctx: JobContext,
  result: Pick<EvalResult, 'perDomain' | 'average'>,
  at: { checkpointId?: number | null; modelRef: string; step?: number },
): string {
  const { store, runId } = runDirectory(ctx);
  store.addEvaluations(
    result.perDomain.map((d) => ({
      runId,
      checkpointId: at.checkpointId ?? null,
      modelRef: at.modelRef,
      domain: d.domain,
      metric: d.metric,
      score: d.score,
      n: d.n,
      ciLow: d.ciLow,
      ciHigh: d.ciHigh,
      outcomes: d.outcomes,
      itemsKey: d.itemsKey,
    })),
  );
  if (at.step !== undefined) {
    for (const d of result.perDomain) if (d.primary) ctx.metric(`eval/${d.domain}`, at.step, d.score);
    ctx.metric('eval/average', at.step, result.average);
  }
  return (
    result.perDomain
      .filter((d) => d.primary)
      .map((d) => `${d.domain} ${(100 * d.score).toFixed(1)}`)
      .join(' · ') + ` · avg ${(100 * result.average).toFixed(1)}`
  );
}
