/**
 * Stage 3 — router pre-optimization on perplexity-assigned seed data (UpIT §3.3, DESIGN §5).
 *
 *   D_s        a random `fraction` (1%) of the training set, at least `minPerExpert` (32) per expert
 *   PPL_i(x)   exp(mean NLL over x's response tokens) under θ0 + δ_i           (`expertNll`)
 *   bucket     D_i = { x ∈ D_s : i = argmin_j PPL_j(x) }, sizes recorded        (`assignArgmin`;
 *              optional cap with spill-over to the next-best expert; `assignRandom` for the ablation
 *              "router initialized with random data")
 *   r_i^l      one routing vector per expert i and MoE layer l, init N(0, 0.02²); logit h = r_i^l · u
 *              (u: the post-attention-norm hidden state the router reads)
 *   L_aux      mean over layers and input tokens of BCE(σ(h), 1)  (= softplus(−h)); with negatives,
 *              the other buckets' tokens with target 0 (softplus(h)) averaged in
 *   loss       λ_lm·L_lm + (1 − λ_lm)·L_aux, λ_lm = 0.5, on D_i for 4 epochs; expert i's own
 *              parameters (LoRA factors or FFN weights) train too unless `freezeExpert`
 *   W_router^l = stack_i r_i^l, each row rescaled to the median row L2 norm of its layer
 *                                                                                (`stackRouters`)
 *
 * The routing vectors usually need a far larger step than the expert (they start at 0.02 and
 * must move by O(1)); AdamW has one learning rate, so each vector is stored as r = m·ρ with
 * m = routerLr / lr and ρ the trained variable: Adam's step on ρ is ≈ lr, hence ≈ routerLr on r.
 *
 * The core takes host tensors and examples and returns host tensors; reading runs and writing
 * files and the database happens in the job (jobs/kinds/route.ts).
 */
import { Rng } from '../common/rng.js';
import { UserError } from '../common/errors.js';
import type { Example } from '../data/types.js';
import { llamaScorable } from '../eval/scorable.js';
import { perplexity } from '../eval/perplexity.js';
import type { HostTensor } from '../io/host-tensor.js';
import { addsBos, type Tokenizer } from '../io/tokenizer.js';
import type { LlamaConfig } from '../model/config.js';
import { llamaForward, type MlpHook } from '../model/llama.js';
import { disposeLora, loraState, peftTensorName, type LoraHost, type LoraSpec } from '../model/lora.js';
import { headWeight } from '../model/params.js';
import { disposeWeights, weightsFromHost } from '../model/load.js';
import { crossEntropy, linear } from '../tensor/ops.js';
import { tf } from '../tensor/tf.js';
import { disposeBatch, makeHostBatch, toBatch, type Batch, type TokenizedExample } from '../train/batches.js';
import { isMlpWeight, llamaTrainable } from '../train/llama-trainable.js';
import { train, type StepInfo, type Trainable, type TrainResult } from '../train/trainer.js';
import { tokenizeExample } from './prepare.js';

/** One expert on the host: LoRA factors over the shared base, or its own MLP weights (HF names). */
export type ExpertWeights =
  { kind: 'lora'; spec: LoraSpec; lora: LoraHost } | { kind: 'ffn'; mlp: Map<string, HostTensor> };

export interface BaseModel {
  cfg: LlamaConfig;
  /** The dense model θ0 (the experts' shared weights). */
  weights: Map<string, HostTensor>;
  tokenizer: Tokenizer;
}

// ---------------------------------------------------------------------------------------------------
// Seed sample and bucket assignment

export interface SeedOptions {
  /** Share of the training set (default 0.01). */
  fraction: number;
  /** At least this many samples per expert (default 32). */
  minPerExpert: number;
  seed: number;
}

/** |D_s| = max(round(fraction·N), minPerExpert·n), at most N. */
export function seedSampleSize(nTrain: number, nExperts: number, o: Omit<SeedOptions, 'seed'>): number {
  if (!(o.fraction > 0 && o.fraction <= 1))
    throw new UserError(`route: fraction must be in (0, 1], got ${o.fraction}`);
  return Math.min(nTrain, Math.max(Math.round(o.fraction * nTrain), o.minPerExpert * nExperts));
}

/** Indices of the seed sample: a uniformly random subset (without replacement), ascending. */
export function sampleSeed(nTrain: number, nExperts: number, o: SeedOptions): number[] {
  const size = seedSampleSize(nTrain, nExperts, o);
  const order = Rng.derive(o.seed, 'route-seed-sample').shuffle(Array.from({ length: nTrain }, (_, i) => i));
  return order.slice(0, size).sort((a, b) => a - b);
}

export interface Assignment {
  /** Expert of each seed sample. */
  expert: number[];
  /** Samples per expert. */
  sizes: number[];
}

export interface AssignOptions {
  /** At most this many samples per expert. */
  cap?: number;
  /** At least this many samples per expert (when the sample allows). */
  floor?: number;
}

/**
 * x → argmin_i nll[i][x] (ties: the lower index), then two optional corrections:
 *   cap    an expert takes at most `cap` samples: samples are placed most-confident first (largest
 *          gap between best and second-best expert); one whose best expert is full spills over to
 *          its next-best expert with room;
 *   floor  an expert left with fewer than `floor` samples takes, from buckets above the floor,
 *          the samples it loses least on (smallest nll[e][x] − nll[current][x]) — an expert that no
 *          sample prefers (e.g. an early checkpoint dominated by later ones) still gets a bucket to
 *          learn its routing vector from. `moved` counts these reassignments.
 */
export function assignArgmin(
  nll: readonly (readonly number[])[],
  o: AssignOptions = {},
): Assignment & { moved: number } {
  const n = nll.length;
  if (n === 0) throw new Error('assignArgmin: no experts');
  const S = nll[0]!.length;
  for (const row of nll) if (row.length !== S) throw new Error('assignArgmin: ragged NLL matrix');
  const { cap } = o;
  if (cap !== undefined && cap * n < S)
    throw new UserError(`route: cap ${cap} × ${n} experts cannot hold ${S} seed samples`);
  const floor = Math.min(o.floor ?? 0, Math.floor(S / n), cap ?? Infinity);
  const ranked = Array.from({ length: S }, (_, x) =>
    Array.from({ length: n }, (_, i) => i).sort((a, b) => nll[a]![x]! - nll[b]![x]! || a - b),
  );
  const expert = new Array<number>(S).fill(-1);
  const sizes = new Array<number>(n).fill(0);
  let order = Array.from({ length: S }, (_, x) => x);
  if (cap !== undefined && n > 1) {
    const gap = (x: number) => nll[ranked[x]![1]!]![x]! - nll[ranked[x]![0]!]![x]!;
    order = order.sort((a, b) => gap(b) - gap(a) || a - b);
  }
  for (const x of order) {
    const e = ranked[x]!.find((i) => cap === undefined || sizes[i]! < cap)!;
    expert[x] = e;
    sizes[e]!++;
  }
  let moved = 0;
  for (;;) {
    // the most under-filled expert first (lowest index on ties)
    let e = -1;
    for (let i = 0; i < n; i++) if (sizes[i]! < floor && (e < 0 || sizes[i]! < sizes[e]!)) e = i;
    if (e < 0) break;
    const regret = (x: number) => nll[e]![x]! - nll[expert[x]!]![x]!;
    const candidates = order
      .filter((x) => expert[x] !== e && sizes[expert[x]!]! > floor)
      .sort((a, b) => regret(a) - regret(b) || a - b);
    for (const x of candidates) {
      if (sizes[e]! >= floor) break;
      const from = expert[x]!;
      if (sizes[from]! <= floor) continue;
      sizes[from]!--;
      sizes[e]!++;
      expert[x] = e;
      moved++;
    }
  }
  return { expert, sizes, moved };
}

/** The ablation "router initialized with random data": each sample to a uniformly random expert. */
export function assignRandom(nSamples: number, nExperts: number, seed: number): Assignment {
  const rng = Rng.derive(seed, 'route-random-assignment');
  const expert = Array.from({ length: nSamples }, () => rng.int(nExperts));
  const sizes = new Array<number>(nExperts).fill(0);
  for (const e of expert) sizes[e]!++;
  return { expert, sizes };
}

// ---------------------------------------------------------------------------------------------------
// Per-expert perplexity

/** The dense weights an FFN expert runs with: θ0 with its MLP replaced. */
export function expertDenseWeights(base: Map<string, HostTensor>, e: ExpertWeights): Map<string, HostTensor> {
  if (e.kind === 'lora') return base;
  const out = new Map(base);
  for (const [name, t] of e.mlp) {
    if (!base.has(name)) throw new Error(`expert tensor ${name} is not a weight of the base model`);
    out.set(name, t);
  }
  return out;
}

export interface NllOptions {
  batchSize: number;
  maxSeqLen: number;
  signal?: AbortSignal;
  /** After each expert: experts done. */
  onExpert?: (done: number, total: number) => void;
}

/** Mean NLL per response token (log PPL) of every example under every expert: [expert][example]. */
export async function expertNll(
  base: BaseModel,
  experts: readonly ExpertWeights[],
  examples: readonly Pick<Example, 'prompt' | 'response'>[],
  opts: NllOptions,
): Promise<number[][]> {
  const out: number[][] = [];
  const shared = weightsFromHost(base.weights);
  try {
    for (const [i, e] of experts.entries()) {
      let weights = shared;
      let own: Map<string, tf.Tensor> | null = null;
      let lora: ReturnType<typeof loraState> | null = null;
      if (e.kind === 'ffn') {
        own = weightsFromHost(e.mlp);
        weights = new Map([...shared, ...own]);
      } else {
        lora = loraState(e.spec, e.lora);
      }
      try {
        const scorable = llamaScorable(
          { cfg: base.cfg, weights, tokenizer: base.tokenizer, ...(lora ? { lora } : {}) },
          { maxSeqLen: opts.maxSeqLen },
        );
        const r = await perplexity(scorable, examples, {
          batchSize: opts.batchSize,
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
        out.push(r.perExampleNll);
      } finally {
        if (own) disposeWeights(own);
        if (lora) disposeLora(lora);
      }
      opts.onExpert?.(i + 1, experts.length);
    }
  } finally {
    disposeWeights(shared);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Routing-vector pre-training

export interface RouterTrainOptions {
  epochs: number;
  /** Learning rate of the expert's own parameters (the trainer's LR). */
  lr: number;
  /** Effective learning rate of the routing vectors (see the module comment). */
  routerLr: number;
  /** Weight of L_lm; L_aux gets 1 − lmWeight (paper: α = 0.5). */
  lmWeight: number;
  freezeExpert: boolean;
  batchSize: number;
  maxSeqLen: number;
  seed: number;
  warmupRatio?: number;
  clipNorm?: number;
  /** Std of the routing vectors' initialization (default 0.02). */
  initStd?: number;
}

export interface RouterTrainHooks {
  onStep?(s: StepInfo): void | Promise<void>;
  shouldStop?(): boolean;
}

export interface RouterTrainResult {
  /** r_i^l for every layer, [D] each. */
  vectors: Float32Array[];
  /** The expert after training (the input unchanged when frozen). */
  expert: ExpertWeights;
  train: TrainResult;
}

/** r_i^l ~ N(0, std²) for every layer (the start of training, and an untrained expert's vectors). */
export function initRoutingVectors(cfg: LlamaConfig, seed: number, std = 0.02): Float32Array[] {
  const rng = Rng.derive(seed, 'route-vector-init');
  return Array.from({ length: cfg.numLayers }, () => {
    const d = new Float32Array(cfg.hiddenSize);
    for (let j = 0; j < d.length; j++) d[j] = std * rng.normal();
    return d;
  });
}

/** softplus(x) = log(1 + eˣ), stable for large |x|: max(x, 0) + log(1 + e^−|x|). */
function softplus(x: tf.Tensor): tf.Tensor {
  return tf.add(tf.relu(x), tf.log(tf.add(1, tf.exp(tf.neg(tf.abs(x))))));
}

/** Masked mean of `v` [B, T] over `mask` [B, T]. */
function maskedMean(v: tf.Tensor, mask: tf.Tensor): tf.Tensor {
  return tf.div(tf.sum(tf.mul(v, mask)), tf.maximum(tf.sum(mask), 1));
}

/**
 * Trains expert i's routing vectors (and, unless frozen, the expert) on its bucket `positives`;
 * `negatives` (other buckets' examples, may be empty) add BCE terms with target 0.
 */
export async function pretrainRouter(
  base: BaseModel,
  expert: ExpertWeights,
  positives: readonly Pick<Example, 'prompt' | 'response'>[],
  negatives: readonly Pick<Example, 'prompt' | 'response'>[],
  opts: RouterTrainOptions,
  hooks: RouterTrainHooks = {},
): Promise<RouterTrainResult> {
  if (positives.length === 0) throw new UserError('route: an expert with an empty bucket cannot be trained');
  if (!(opts.lmWeight >= 0 && opts.lmWeight <= 1))
    throw new UserError(`route: lmWeight must be in [0, 1], got ${opts.lmWeight}`);
  if (!(opts.lr > 0) || !(opts.routerLr > 0)) throw new UserError('route: learning rates must be > 0');
  const { cfg, tokenizer } = base;
  const addBos = addsBos(tokenizer);
  const tok = (xs: readonly Pick<Example, 'prompt' | 'response'>[]): TokenizedExample[] =>
    xs.map((x) => tokenizeExample(tokenizer, x, addBos));
  const pos = tok(positives);
  const neg = tok(negatives);

  const model = llamaTrainable(
    cfg,
    expertDenseWeights(base.weights, expert),
    expert.kind === 'lora'
      ? { mode: 'lora', lora: { spec: expert.spec, init: expert.lora } }
      : { mode: 'ffn' },
  );
  const m = opts.routerLr / opts.lr;
  const rho: tf.Variable[] = initRoutingVectors(cfg, opts.seed, opts.initStd).map((r) => {
    const t = tf.tensor1d(
      r.map((x) => x / m),
      'float32',
    );
    const v = tf.variable(t, true);
    t.dispose();
    return v;
  });
  const params = new Map<string, tf.Variable>(rho.map((v, l) => [`route.layers.${l}.vector`, v]));
  if (!opts.freezeExpert) for (const [k, v] of model.params) params.set(k, v);

  /** Forward with the routing logits h^l [B, T] of every layer collected. */
  const forward = (ids: tf.Tensor): { logits: tf.Tensor; h: tf.Tensor[] } => {
    const h: tf.Tensor[] = [];
    const hook: MlpHook = (layer, u) => {
      h[layer] = tf.sum(tf.mul(u, tf.mul(rho[layer]!, m)), -1);
      return null; // the expert's own MLP
    };
    const { hidden } = llamaForward(cfg, model.weights, ids, {
      mlp: hook,
      ...(model.lora ? { lora: model.lora } : {}),
    });
    return { logits: linear(hidden, headWeight(cfg, model.weights)), h };
  };
  const auxOf = (h: tf.Tensor[], mask: tf.Tensor, target: 0 | 1): tf.Tensor =>
    tf.div(tf.addN(h.map((x) => maskedMean(softplus(target === 1 ? tf.neg(x) : x), mask))), h.length);

  const trainable: Trainable = {
    params,
    loss(batch: Batch, ctx): tf.Scalar {
      return tf.tidy(() => {
        const { logits, h } = forward(batch.ids);
        const lm = crossEntropy(logits, batch.targets, batch.mask);
        let aux = auxOf(h, batch.inputMask, 1);
        ctx.report(
          'route/p_own',
          tf.div(tf.addN(h.map((x) => maskedMean(tf.sigmoid(x), batch.inputMask))), h.length),
        );
        if (neg.length > 0) {
          const rows = batch.ids.shape[0]!;
          const pick = Array.from({ length: rows }, () => neg[ctx.rng.int(neg.length)]!);
          const nb = toBatch(makeHostBatch(pick, { padId: tokenizer.padId, maxSeqLen: opts.maxSeqLen }));
          try {
            const negAux = auxOf(forward(nb.ids).h, nb.inputMask, 0);
            aux = tf.div(tf.add(aux, negAux), 2);
          } finally {
            disposeBatch(nb);
          }
        }
        ctx.report('route/lm', lm);
        ctx.report('route/aux', aux);
        return tf.add(tf.mul(lm, opts.lmWeight), tf.mul(aux, 1 - opts.lmWeight)) as tf.Scalar;
      });
    },
  };

  try {
    const result = await train(
      trainable,
      { examples: pos, padId: tokenizer.padId, maxSeqLen: opts.maxSeqLen },
      {
        lr: opts.lr,
        schedule: { kind: 'cosine', warmupRatio: opts.warmupRatio ?? 0.03 },
        weightDecay: 0,
        clipNorm: opts.clipNorm ?? 1,
        batchSize: opts.batchSize,
        epochs: opts.epochs,
        seed: opts.seed,
      },
      {
        ...(hooks.onStep ? { onStep: hooks.onStep } : {}),
        ...(hooks.shouldStop ? { shouldStop: hooks.shouldStop } : {}),
      },
    );
    const vectors = rho.map((v) => {
      const d = Float32Array.from(v.dataSync());
      for (let j = 0; j < d.length; j++) d[j] = d[j]! * m;
      return d;
    });
    let trained: ExpertWeights = expert;
    if (!opts.freezeExpert) {
      const host = model.hostParams();
      if (expert.kind === 'lora') {
        const lora: LoraHost = { A: new Map(), B: new Map() };
        for (const module of expert.lora.A.keys()) {
          lora.A.set(module, host.get(peftTensorName(module, 'A'))!);
          lora.B.set(module, host.get(peftTensorName(module, 'B'))!);
        }
        trained = { kind: 'lora', spec: expert.spec, lora };
      } else {
        trained = { kind: 'ffn', mlp: new Map([...host].filter(([k]) => isMlpWeight(k))) };
      }
    }
    return { vectors, expert: trained, train: result };
  } finally {
    for (const v of rho) v.dispose();
    model.dispose();
  }
}

// ---------------------------------------------------------------------------------------------------
// Assembling the router

export type RouterRescale = 'median' | 'none';

/**
 * W_router^l = stack_i r_i^l ([n, D] per layer); with 'median' every row is scaled to the median
 * of the layer's row L2 norms (so no expert wins by norm alone). `vectors[i][l]` = r_i^l.
 */
export function stackRouters(
  vectors: readonly (readonly Float32Array[])[],
  rescale: RouterRescale,
): HostTensor[] {
  const n = vectors.length;
  if (n === 0) throw new Error('stackRouters: no experts');
  const L = vectors[0]!.length;
  const D = vectors[0]![0]!.length;
  return Array.from({ length: L }, (_, l) => {
    const rows = vectors.map((v, i) => {
      const r = v[l];
      if (!r || r.length !== D) throw new Error(`stackRouters: expert ${i} layer ${l} has no [${D}] vector`);
      return r;
    });
    const norms = rows.map((r) => Math.sqrt(r.reduce((a, x) => a + x * x, 0)));
    const sorted = [...norms].sort((a, b) => a - b);
    const median = n % 2 === 1 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
    const data = new Float32Array(n * D);
    rows.forEach((r, i) => {
      const s = rescale === 'median' && norms[i]! > 0 ? median / norms[i]! : 1;
      for (let j = 0; j < D; j++) data[i * D + j] = r[j]! * s;
    });
    return { shape: [n, D], data };
  });
}
