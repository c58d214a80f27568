/**
 * Stage 4 — model upcycling (UpIT §3.4, DESIGN §5): the experts and the router become one MoE,
 * post-trained on the instruction data.
 *
 *   MoE          one router per FFN block; p = softmax(W_r u), top-k renormalized (model/moe.ts)
 *   experts      FFN mode: expert i's MLP weights as Mixtral experts (w1 = gate, w2 = down, w3 = up);
 *                LoRA mode: expert i's LoRA factors over the shared dense MLP W0
 *   non-expert   the dense model's weights θ0. Stage 1 trains only the experts' parameters (LoRA
 *                factors or MLP weights), so θ0's attention, norms and embeddings are every source
 *                checkpoint's — "the last checkpoint's" and "the mean of the sources" coincide.
 *   router       Stage 3's W_router (UpIT), or N(0, 0.02²) (vanilla upcycling, "w/o router init")
 *   loss         L_lm + λ·mean_l n·Σ_i f_i·P_i (+ z·z-loss); λ = 0.01; f_i = share of the top-k
 *                slots routed to i over the batch's real tokens, P_i = mean router probability
 *   trained      the routers and the experts' parameters; θ0 stays frozen
 *
 * Per step the trainer reports L_lm, L_aux, the z-loss, and per layer the expert load f and the
 * router entropy (metrics `moe/load/l{l}/e{i}`, `moe/entropy/l{l}`).
 */
import type { HostTensor } from '../io/host-tensor.js';
import type { LlamaConfig } from '../model/config.js';
import type { LoraSpec } from '../model/lora.js';
import { weightsFromHost, disposeWeights } from '../model/load.js';
import {
  disposeMoe,
  moeFromHost,
  moeTensors,
  moeToHost,
  moeTrainLoss,
  validateMoeSpec,
  validateMoeWeights,
  type FfnExpert,
  type MoeHost,
  type MoeSpec,
  type MoeWeights,
} from '../model/moe.js';
import type { MLP_PROJ } from '../model/params.js';
import { projModule, type Weights } from '../model/params.js';
import { tf } from '../tensor/tf.js';
import type { Batch } from '../train/batches.js';
import {
  train,
  type CheckpointInfo,
  type StepInfo,
  type Trainable,
  type TrainResult,
} from '../train/trainer.js';
import type { Example } from '../data/types.js';
import { addsBos, type Tokenizer } from '../io/tokenizer.js';
import type { ExpertWeights } from './route.js';
import { tokenizeExample } from './prepare.js';
import { UserError } from '../common/errors.js';

/** The MoE of `experts` (all of one kind) with `routers` ([n, D] per layer). */
export function assembleMoe(
  cfg: LlamaConfig,
  experts: readonly ExpertWeights[],
  routers: readonly HostTensor[],
  topK: number,
): { spec: MoeSpec; host: MoeHost } {
  const n = experts.length;
  if (n < 2) throw new UserError(`upcycle: an MoE needs at least 2 experts, got ${n}`);
  if (!(Number.isInteger(topK) && topK >= 1 && topK <= n))
    throw new UserError(`upcycle: topK must be in [1, ${n}] (the number of experts), got ${topK}`);
  const kind = experts[0]!.kind;
  if (experts.some((e) => e.kind !== kind))
    throw new UserError('upcycle: the experts mix LoRA and FFN kinds');
  if (routers.length !== cfg.numLayers)
    throw new UserError(`upcycle: ${routers.length} routers for ${cfg.numLayers} layers`);
  let spec: MoeSpec;
  const host: MoeHost = { routers: [...routers] };
  if (kind === 'lora') {
    const lora = (experts[0] as Extract<ExpertWeights, { kind: 'lora' }>).spec;
    for (const [i, e] of experts.entries()) {
      const s = (e as Extract<ExpertWeights, { kind: 'lora' }>).spec;
      if (!sameLoraSpec(s, lora))
        throw new UserError(
          `upcycle: expert ${i}'s LoRA spec (r ${s.r}, α ${s.alpha}) differs from expert 0's`,
        );
    }
    spec = { numExperts: n, topK, kind: 'lora', lora };
    host.lora = experts.map((e) => (e as Extract<ExpertWeights, { kind: 'lora' }>).lora);
  } else {
    spec = { numExperts: n, topK, kind: 'ffn' };
    host.ffn = Array.from({ length: cfg.numLayers }, (_, l) =>
      experts.map((e, i): FfnExpert<HostTensor> => {
        const mlp = (e as Extract<ExpertWeights, { kind: 'ffn' }>).mlp;
        const get = (p: (typeof MLP_PROJ)[number]): HostTensor => {
          const t = mlp.get(`${projModule(l, p)}.weight`);
          if (!t) throw new UserError(`upcycle: FFN expert ${i} has no ${projModule(l, p)}.weight`);
          return t;
        };
        return { w1: get('gate_proj'), w2: get('down_proj'), w3: get('up_proj') };
      }),
    );
  }
  validateMoeSpec(spec, 'upcycle');
  validateMoeWeights(cfg, spec, host);
  return { spec, host };
}

function sameLoraSpec(a: LoraSpec, b: LoraSpec): boolean {
  return a.r === b.r && a.alpha === b.alpha && a.targets.join(',') === b.targets.join(',');
}

export interface MoeTrainableOptions {
  /** λ of the load-balancing loss (default 0.01). */
  auxCoef: number;
  /** Coefficient of the router z-loss (0: off). */
  zCoef: number;
  /** Report per-layer expert load and router entropy every step (default true). */
  routerStats?: boolean;
}

export interface MoeTrainable extends Trainable {
  cfg: LlamaConfig;
  spec: MoeSpec;
  /** θ0 on the device (frozen). */
  weights: Weights;
  moe: MoeWeights;
  /** Current routers and experts on the host. */
  hostMoe(): MoeHost;
  dispose(): void;
}

/** The MoE as a Trainable: routers and experts train (names as `moeTensors`), θ0 is constant. */
export function moeTrainable(
  cfg: LlamaConfig,
  base: Map<string, HostTensor>,
  spec: MoeSpec,
  host: MoeHost,
  opts: MoeTrainableOptions,
): MoeTrainable {
  validateMoeWeights(cfg, spec, host);
  // FFN experts replace the dense MLP: its weights are not needed on the device
  const dense = spec.kind === 'ffn' ? new Map([...base].filter(([k]) => !/\.mlp\./.test(k))) : base;
  const weights = weightsFromHost(dense);
  const moe = moeFromHost(spec, host, true);
  const params = new Map([...moeTensors(moe)].map(([k, t]) => [k, t as tf.Variable]));
  return {
    cfg,
    spec,
    weights,
    moe,
    params,
    loss(batch: Batch, ctx): tf.Scalar {
      const r = moeTrainLoss(cfg, weights, moe, spec, batch, {
        auxCoef: opts.auxCoef,
        zCoef: opts.zCoef,
        routerMask: batch.inputMask,
        ...(opts.routerStats === false
          ? {}
          : {
              onRouterStats: (layer: number, load: tf.Tensor1D, entropy: tf.Scalar) => {
                ctx.report(`moe/entropy/l${layer}`, entropy);
                for (let i = 0; i < spec.numExperts; i++)
                  ctx.report(`moe/load/l${layer}/e${i}`, tf.slice(load, [i], [1]));
              },
            }),
      });
      ctx.report('moe/lm', r.lm);
      ctx.report('moe/aux', r.aux);
      ctx.report('moe/z', r.z); // the trainer owns reported tensors
      return r.loss;
    },
    hostMoe: () => moeToHost(moe),
    dispose() {
      disposeWeights(weights);
      disposeMoe(moe);
    },
  };
}

export interface UpcycleOptions extends MoeTrainableOptions {
  epochs: number;
  lr: number;
  warmupRatio: number;
  weightDecay: number;
  clipNorm: number;
  batchSize: number;
  gradAccum: number;
  maxSeqLen: number;
  seed: number;
  /** Checkpoint cadence in epochs. */
  checkpointEvery?: number;
  outDir?: string;
  resume?: string;
  checkpointFiles?: Record<string, string>;
}

export interface UpcycleHooks {
  onStep?(s: StepInfo): void | Promise<void>;
  onCheckpoint?(c: CheckpointInfo, model: MoeTrainable): void | Promise<void>;
  shouldStop?(): boolean;
}

/**
 * Post-trains the assembled MoE on `examples` (loss on response tokens) and hands the trained
 * model to `done` before it is disposed (for evaluation and export).
 */
export async function upcycle<R>(
  base: { cfg: LlamaConfig; weights: Map<string, HostTensor>; tokenizer: Tokenizer },
  moe: { spec: MoeSpec; host: MoeHost },
  examples: readonly Pick<Example, 'prompt' | 'response'>[],
  opts: UpcycleOptions,
  hooks: UpcycleHooks,
  done: (model: MoeTrainable, result: TrainResult) => Promise<R>,
): Promise<R> {
  if (examples.length === 0) throw new UserError('upcycle: no training examples');
  const tok = base.tokenizer;
  const addBos = addsBos(tok);
  const tokenized = examples.map((e) => tokenizeExample(tok, e, addBos));
  const model = moeTrainable(base.cfg, base.weights, moe.spec, moe.host, opts);
  try {
    const result = await train(
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
        ...(opts.checkpointEvery !== undefined ? { checkpointEvery: opts.checkpointEvery } : {}),
        ...(opts.outDir !== undefined ? { outDir: opts.outDir } : {}),
        ...(opts.resume !== undefined ? { resume: opts.resume } : {}),
        ...(opts.checkpointFiles ? { checkpointFiles: opts.checkpointFiles } : {}),
      },
      {
        ...(hooks.onStep ? { onStep: hooks.onStep } : {}),
        ...(hooks.shouldStop ? { shouldStop: hooks.shouldStop } : {}),
        ...(hooks.onCheckpoint ? { onCheckpoint: (c: CheckpointInfo) => hooks.onCheckpoint!(c, model) } : {}),
      },
    );
    return await done(model, result);
  } finally {
    model.dispose();
  }
}
