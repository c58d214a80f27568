/**
 * Stage 1 — expert preparation (UpIT §3.1). Instruction-tune the dense model and keep a
 * checkpoint every `checkpointEvery` epochs (0.25 → 8 checkpoints over 2 epochs); score every
 * checkpoint on every domain. Checkpoints that win different domains are the experts.
 *
 *   LoRA mode:  W = W0 + (α/r)·B·A on the chosen projections; only A, B train  (LR 2e-4 in the paper)
 *   FFN mode:   the MLP projections (gate/up/down) train, the rest is frozen  (LR 2e-5 in the paper)
 *   full mode:  every weight trains — the dense full-SFT baseline, not a source of experts
 *   AdamW, cosine schedule with 3% warm-up, gradient clip 1.0, loss on response tokens only.
 *
 * The core takes tensors and options and calls back at each checkpoint with a scorer for the
 * model in its current state; reading and writing files and the database happens in the job.
 */
import { Rng } from '../common/rng.js';
import { UserError } from '../common/errors.js';
import { renderExample } from '../data/template.js';
import type { Example } from '../data/types.js';
import type { HostTensor } from '../io/host-tensor.js';
import { addsBos, type Tokenizer } from '../io/tokenizer.js';
import type { LlamaConfig } from '../model/config.js';
import { initLora, type LoraSpec, type LoraState } from '../model/lora.js';
import type { TokenizedExample } from '../train/batches.js';
import { llamaTrainable } from '../train/llama-trainable.js';
import { train, type CheckpointInfo, type StepInfo, type TrainResult } from '../train/trainer.js';
import type { Weights } from '../model/params.js';

/** 'full' trains every weight: the dense full-SFT baseline (its checkpoints are not experts). */
export type PrepareMode = 'lora' | 'ffn' | 'full';

export interface PrepareOptions {
  mode: PrepareMode;
  /** LoRA mode only (default r 8, α 16 on gate/up/down). */
  lora?: LoraSpec;
  epochs: number;
  lr: number;
  warmupRatio: number;
  weightDecay: number;
  clipNorm: number;
  batchSize: number;
  gradAccum: number;
  maxSeqLen: number;
  /** In epochs (0.25 → four checkpoints per epoch). */
  checkpointEvery: number;
  seed: number;
  outDir: string;
  resume?: string;
  /** Extra files in every checkpoint (config.json, adapter_config.json). */
  checkpointFiles?: Record<string, string>;
}

/** The model as it stands at a checkpoint, for scoring. */
export interface PreparedState {
  cfg: LlamaConfig;
  weights: Weights;
  lora?: LoraState;
}

export interface PrepareHooks {
  onStep?(s: StepInfo): void | Promise<void>;
  onCheckpoint?(c: CheckpointInfo, model: PreparedState): void | Promise<void>;
  shouldStop?(): boolean;
}

/** Prompt bytes get loss mask 0, response bytes (with the end-of-response newline) mask 1. */
export function tokenizeExample(
  tok: Tokenizer,
  ex: Pick<Example, 'prompt' | 'response'>,
  addBos: boolean,
): TokenizedExample {
  const r = renderExample(ex);
  const prompt = tok.encode(r.prompt, { addBos });
  const response = tok.encode(r.response);
  return {
    ids: [...prompt, ...response],
    lossMask: [...prompt.map(() => 0), ...response.map(() => 1)],
  };
}

export async function prepareExperts(
  base: { cfg: LlamaConfig; weights: Map<string, HostTensor>; tokenizer: Tokenizer },
  examples: readonly Pick<Example, 'prompt' | 'response'>[],
  opts: PrepareOptions,
  hooks: PrepareHooks = {},
): Promise<TrainResult> {
  if (examples.length === 0) throw new UserError('prepare: no training examples');
  if (!(opts.checkpointEvery > 0)) throw new UserError('prepare: checkpointEvery must be > 0 epochs');
  const tok = base.tokenizer;
  const addBos = addsBos(tok);
  const tokenized = examples.map((e) => tokenizeExample(tok, e, addBos));
  const spec = opts.lora ?? { r: 8, alpha: 16, targets: ['gate_proj', 'up_proj', 'down_proj'] };
  const model = llamaTrainable(
    base.cfg,
    base.weights,
    opts.mode === 'lora'
      ? { mode: 'lora', lora: { spec, init: initLora(base.cfg, spec, Rng.derive(opts.seed, 'lora-init')) } }
      : { mode: opts.mode },
  );
  try {
    return await train(
      model,
      { examples: tokenized, padId: tok.padId, maxSeqLen: opts.maxSeqLen },
      {
        lr: opts.lr,
        schedule: { kind: 'cosine', warmupRatio: opts.warmupRatio },
        weightDecay: opts.weightDecay,
        clipNorm: opts.clipNorm,
        batchSize: opts.batchSize,
        gradAccum: opts.gradAccum,
        epochs: opts.epochs,
        seed: opts.seed,
        checkpointEvery: opts.checkpointEvery,
        outDir: opts.outDir,
        ...(opts.resume !== undefined ? { resume: opts.resume } : {}),
        ...(opts.checkpointFiles ? { checkpointFiles: opts.checkpointFiles } : {}),
      },
      {
        ...(hooks.onStep ? { onStep: hooks.onStep } : {}),
        ...(hooks.shouldStop ? { shouldStop: hooks.shouldStop } : {}),
        onCheckpoint: async (c) => {
          await hooks.onCheckpoint?.(c, {
            cfg: base.cfg,
            weights: model.weights,
            ...(model.lora ? { lora: model.lora } : {}),
          });
        },
      },
    );
  } finally {
    model.dispose();
  }
}
