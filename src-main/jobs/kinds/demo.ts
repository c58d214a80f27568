/**
 * The `demo` job: counts steps at a fixed pace and logs a synthetic, seeded, decaying loss.
 * Exists to exercise the job plumbing (progress, metrics, logs, cancel, failure) and the
 * GUI's live curves without a model.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Rng } from '../../common/rng.js';
import { UserError } from '../../common/errors.js';
import type { JobContext } from '../job-runner.js';
import type { DemoConfig } from './catalog.js';

export interface DemoResult {
  steps: number;
  finalLoss: number;
}

export async function runDemo(config: DemoConfig, ctx: JobContext): Promise<DemoResult> {
  const rng = new Rng(config.seed);
  const started = performance.now();
  const scale = Math.max(1, config.steps / 4);
  let loss = NaN;
  ctx.log(`demo: counting ${config.steps} steps every ${config.intervalMs} ms`);
  for (let step = 1; step <= config.steps; step++) {
    if (config.intervalMs > 0) await sleep(config.intervalMs, undefined, { signal: ctx.signal });
    else ctx.signal.throwIfAborted();
    if (config.failAt === step) throw new UserError(`demo: failing at step ${step} as configured (failAt)`);
    loss = 0.4 + 2.2 * Math.exp(-step / scale) + 0.2 * (rng.next() - 0.5);
    const tokens = step * config.tokensPerStep;
    const seconds = Math.max(1e-3, (performance.now() - started) / 1000);
    ctx.metric('loss', step, loss, tokens);
    ctx.progress({ step, total: config.steps, loss, tokensPerSec: tokens / seconds });
  }
  ctx.log(`demo: done, final loss ${loss.toFixed(4)}`);
  return { steps: config.steps, finalLoss: loss };
}
