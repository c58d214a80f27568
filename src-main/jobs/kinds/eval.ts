/**
 * The `eval` job: scores one model directory on every domain and records the scores. Any model
 * kind `loadAnyModel` reads is scored (dense Llama, Mixtral FFN-MoE, LoRA-MoE); for an MoE the job
 * also records the routing statistics on the same items (`recordRoutingAnalysis`, which the Stage 4
 * upcycle job calls too).
 */
import { resolve } from 'node:path';
import { embeddedBaseModelDir } from '../../common/paths.js';
import type { EvalItem } from '../../data/types.js';
import {
  evaluate,
  llamaScorable,
  routingAnalysis,
  routingHighlights,
  summarizeRouting,
  type EvalResult,
  type RoutingAnalysisOptions,
  type RoutingModel,
  type RoutingSummary,
} from '../../eval/index.js';
import { loadAnyModel, type AnyLoadedModel } from '../../model/load-any.js';
import { useBackend } from '../../tensor/backend.js';
import type { JobContext } from '../job-runner.js';
import type { EvalConfig } from './catalog.js';
import { recordScores, runDirectory } from './job-io.js';
import { loadEvalItems } from './prepare.js';

export interface EvalJobResult {
  model: string;
  /** 'llama', 'mixtral' or 'lora-moe'. */
  modelKind: AnyLoadedModel['kind'];
  average: number;
  perDomain: EvalResult['perDomain'];
  backend: string;
  /** MoE models only: what the recorded routing statistics cover (`upit routing RUN` prints them). */
  routing?: RoutingSummary;
}

/** The model as a `RoutingModel` when it is an MoE, else null. */
export function asRoutingModel(m: AnyLoadedModel): RoutingModel | null {
  return m.moe ? { cfg: m.cfg, weights: m.weights, tokenizer: m.tokenizer, moe: m.moe } : null;
}

/**
 * Routes `items` through the MoE, stores the per (layer, domain, expert) fractions against the
 * job's run (replacing any recorded before) and logs one line per layer. Progress goes to
 * `opts.onProgress` (items done); the job's signal cancels it.
 */
export async function recordRoutingAnalysis(
  ctx: JobContext,
  model: RoutingModel,
  items: readonly EvalItem[],
  opts: Omit<RoutingAnalysisOptions, 'signal'> = {},
): Promise<RoutingSummary> {
  const { store, runId } = runDirectory(ctx);
  const stats = await routingAnalysis(model, items, { ...opts, signal: ctx.signal });
  store.setRoutingStats(runId, stats);
  const summary = summarizeRouting(stats, model.moe.spec.topK);
  const total = Object.values(summary.tokens).reduce((a, b) => a + b, 0);
  ctx.log(
    `routing: ${summary.experts} experts (top-${summary.topK}) × ${summary.layers} layers, ` +
      `${total} tokens in ${summary.domains.length} domains recorded (upit routing ${runId}); ` +
      'most used expert per domain:',
  );
  for (const line of routingHighlights(stats)) ctx.log(`  ${line}`);
  return summary;
}

export async function runEval(config: EvalConfig, ctx: JobContext): Promise<EvalJobResult> {
  const choice = await useBackend(config.backend);
  const { store, runId } = runDirectory(ctx);
  store.setRunBackend(runId, choice.name);
  const loaded = loadEvalItems(config.data);
  if (loaded.note !== undefined) ctx.log(loaded.note);
  const items = loaded.eval;
  const dir = resolve(config.model ?? embeddedBaseModelDir());
  const model = await loadAnyModel(dir);
  try {
    const moe = asRoutingModel(model);
    // One progress bar over both passes: the routing pass adds one step per item.
    const extra = moe ? items.length : 0;
    let evalTotal = 0;
    const result = await evaluate(
      llamaScorable(
        {
          cfg: model.cfg,
          weights: model.weights,
          tokenizer: model.tokenizer,
          ...(model.mlp ? { mlp: model.mlp } : {}),
        },
        { maxSeqLen: config.maxSeqLen },
      ),
      items,
      {
        batchSize: config.batchSize,
        maxNewTokens: config.maxNewTokens,
        signal: ctx.signal,
        onProgress: (p) => {
          evalTotal = p.total;
          ctx.progress({ step: p.done, total: p.total + extra });
        },
      },
    );
    recordScores(ctx, result, { modelRef: dir });
    const routing = moe
      ? await recordRoutingAnalysis(ctx, moe, items, {
          batchSize: config.batchSize,
          maxSeqLen: config.maxSeqLen,
          onProgress: (p) => ctx.progress({ step: evalTotal + p.done, total: evalTotal + p.total }),
        })
      : undefined;
    return {
      model: dir,
      modelKind: model.kind,
      average: result.average,
      perDomain: result.perDomain,
      backend: choice.name,
      ...(routing ? { routing } : {}),
    };
  } finally {
    model.dispose();
  }
}
