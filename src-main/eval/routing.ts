/**
 * Routing analysis of an MoE: for every MoE layer, the fraction of each domain's tokens that the
 * router sends to each expert (the paper's expert-specialisation figure).
 *
 * Each evaluation item is rendered as training and scoring see it — `formatPrompt(prompt)` followed
 * by the gold answer and the end-of-response marker (`renderExample`), BOS prepended like the
 * evaluator (`addBos`), cut from the left to `maxSeqLen` tokens — and run through the MoE forward in
 * right-padded batches (longest first, `planBatches`). Every real token of every item is routed at
 * every layer and contributes its k top-k slots; pads are not counted (with causal attention they
 * cannot change the real tokens' routing, so the result does not depend on the batching).
 *
 *   slots[l][d][e] = Σ over tokens of domain d of [e ∈ top-k of the token at layer l]
 *   fraction       = slots[l][d][e] / (k · tokens[d])        (Σ_e fraction = 1 per layer and domain)
 *
 * Per batch and layer the device reduces the [N, k] choices to a [domains + 1, n] count matrix (the
 * last row gathers the pads) and the host reads that one small matrix after the forward pass.
 */
import { UserError } from '../common/errors.js';
import { renderExample } from '../data/template.js';
import type { EvalItem } from '../data/types.js';
import { addsBos, type Tokenizer } from '../io/tokenizer.js';
import type { LlamaConfig } from '../model/config.js';
import { llamaForward, type MlpHook } from '../model/llama.js';
import type { MoeDispatch, MoeHookOptions, MoeSpec } from '../model/moe.js';
import type { Weights } from '../model/params.js';
import { tf } from '../tensor/tf.js';
import { checkpoint, planBatches } from './score.js';

/** What the analysis needs of an MoE (an `AnyLoadedModel` with `moe`, or an in-memory Stage 4 model). */
export interface RoutingModel {
  cfg: LlamaConfig;
  weights: Weights;
  tokenizer: Tokenizer | null;
  moe: {
    spec: MoeSpec;
    /** A fresh MLP hook that reports each layer's routing through `onRouting`. */
    hook(opts?: MoeHookOptions): MlpHook;
  };
}

/** One row of the analysis (the store's `RoutingStat`, which it is saved as). */
export interface RoutingStat {
  layer: number;
  domain: string;
  expert: number;
  /** Share of the domain's top-k slots at this layer that went to this expert. */
  fraction: number;
  /** The domain's token count (each token has k slots per layer). */
  tokens: number;
}

export interface RoutingAnalysisOptions {
  /** Sequences per forward pass (default 32). */
  batchSize?: number;
  /** Optional cap on batch rows × padded length. */
  maxBatchTokens?: number;
  /** Longest input; longer items lose tokens from the left (default `cfg.maxPositionEmbeddings`). */
  maxSeqLen?: number;
  /** Prepend BOS (default as `llamaScorable`: HF tokenizer with a BOS token yes, byte tokenizer no). */
  addBos?: boolean;
  /** The MoE dispatch of the forward pass (routing does not depend on it; default the hook's). */
  dispatch?: MoeDispatch;
  /** Checked between batches; aborting rejects with the signal's reason. */
  signal?: AbortSignal;
  /** After each batch: items done so far. */
  onProgress?: (p: { done: number; total: number }) => void;
}

export interface RoutingSummary {
  layers: number;
  experts: number;
  topK: number;
  /** Domains in the order of their first item. */
  domains: string[];
  /** Tokens routed per domain (each counted once per layer). */
  tokens: Record<string, number>;
}

/** Per (layer, domain, expert): the share of the domain's top-k slots routed to the expert. */
export async function routingAnalysis(
  model: RoutingModel,
  items: readonly EvalItem[],
  opts: RoutingAnalysisOptions = {},
): Promise<RoutingStat[]> {
  const { cfg, weights, tokenizer } = model;
  const { spec } = model.moe;
  if (tokenizer === null)
    throw new UserError('the model has no tokenizer (tokenizer.json); its routing cannot be analysed');
  if (tokenizer.vocabSize > cfg.vocabSize) {
    throw new UserError(
      `the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocab_size is ${cfg.vocabSize}`,
    );
  }
  const L = cfg.numLayers;
  const n = spec.numExperts;
  const k = spec.topK;
  const addBos = opts.addBos ?? addsBos(tokenizer);
  const maxSeqLen = opts.maxSeqLen ?? cfg.maxPositionEmbeddings;
  if (!Number.isInteger(maxSeqLen) || maxSeqLen < 1)
    throw new RangeError(`routingAnalysis: maxSeqLen must be a positive integer, got ${maxSeqLen}`);

  const domains: string[] = [];
  const domainIndex = new Map<string, number>();
  const rows = items.map((item) => {
    let d = domainIndex.get(item.domain);
    if (d === undefined) {
      d = domains.length;
      domains.push(item.domain);
      domainIndex.set(item.domain, d);
    }
    const { prompt, response } = renderExample({ prompt: item.prompt, response: item.answer });
    const ids = tokenizer.encode(prompt + response, { addBos });
    return { domain: d, ids: ids.length > maxSeqLen ? ids.slice(ids.length - maxSeqLen) : ids };
  });
  const Dn = domains.length;
  const tokens = new Float64Array(Dn);
  for (const r of rows) tokens[r.domain]! += r.ids.length;
  const slots = new Float64Array(L * Dn * n); // [layer][domain][expert]

  // One hook for the whole analysis; `current` holds the batch's per-token domain (pads → Dn).
  let current: { domainOfToken: tf.Tensor1D; counts: (tf.Tensor | undefined)[] } | null = null;
  const hook = model.moe.hook({
    ...(opts.dispatch ? { dispatch: opts.dispatch } : {}),
    onRouting: (layer, _probs, topIdx) => {
      if (!current) return;
      const seg = current.domainOfToken;
      const counts = tf.tidy(() => {
        const N = topIdx.shape[0];
        // [N, n]: how many of the token's k slots went to each expert (oneHot needs depth ≥ 2)
        const perTok = n === 1 ? tf.fill([N, 1], k) : tf.sum(tf.oneHot(topIdx, n, 1, 0, 'float32'), 1);
        return tf.unsortedSegmentSum(perTok, seg, Dn + 1); // [Dn + 1, n]
      });
      current.counts[layer]?.dispose();
      current.counts[layer] = tf.keep(counts);
    },
  });

  const batches = planBatches(
    rows.map((r) => r.ids.length),
    {
      batchSize: opts.batchSize ?? 32,
      ...(opts.maxBatchTokens !== undefined ? { maxBatchTokens: opts.maxBatchTokens } : {}),
    },
  );
  let done = 0;
  for (const batch of batches) {
    await checkpoint(opts.signal);
    const B = batch.length;
    const T = Math.max(1, ...batch.map((i) => rows[i]!.ids.length));
    const ids = new Int32Array(B * T).fill(tokenizer.padId);
    const seg = new Int32Array(B * T).fill(Dn);
    batch.forEach((r, b) => {
      const row = rows[r]!;
      ids.set(row.ids, b * T);
      seg.fill(row.domain, b * T, b * T + row.ids.length);
    });
    const state = { domainOfToken: tf.tensor1d(seg, 'int32'), counts: new Array<tf.Tensor | undefined>(L) };
    current = state;
    try {
      tf.tidy(() => {
        llamaForward(cfg, weights, tf.tensor2d(ids, [B, T], 'int32'), { mlp: hook });
      });
      current = null;
      for (let l = 0; l < L; l++) {
        const c = state.counts[l];
        if (!c) throw new Error(`routingAnalysis: layer ${l} reported no routing (is the model an MoE?)`);
        const data = await c.data();
        for (let d = 0; d < Dn; d++)
          for (let e = 0; e < n; e++) slots[(l * Dn + d) * n + e]! += data[d * n + e]!;
      }
    } finally {
      current = null;
      state.domainOfToken.dispose();
      for (const c of state.counts) c?.dispose();
    }
    done += B;
    opts.onProgress?.({ done, total: rows.length });
  }

  const out: RoutingStat[] = [];
  for (let l = 0; l < L; l++) {
    for (let d = 0; d < Dn; d++) {
      const all = k * tokens[d]!;
      for (let e = 0; e < n; e++) {
        const s = slots[(l * Dn + d) * n + e]!;
        out.push({
          layer: l,
          domain: domains[d]!,
          expert: e,
          fraction: all > 0 ? s / all : 0,
          tokens: tokens[d]!,
        });
      }
    }
  }
  return out;
}

/** A stored routing row (`tokens` may be null there). */
type RoutingStatLike = Omit<RoutingStat, 'tokens'> & { tokens: number | null };

/** Layers, experts and per-domain token counts of a set of routing statistics. */
export function summarizeRouting(stats: readonly RoutingStatLike[], topK: number): RoutingSummary {
  const domains: string[] = [];
  const tokens: Record<string, number> = {};
  let layers = 0;
  let experts = 0;
  for (const s of stats) {
    if (!domains.includes(s.domain)) domains.push(s.domain);
    tokens[s.domain] = s.tokens ?? 0;
    layers = Math.max(layers, s.layer + 1);
    experts = Math.max(experts, s.expert + 1);
  }
  return { layers, experts, topK, domains, tokens };
}

/**
 * One line per layer: each domain's most used expert and its share, e.g.
 * `layer 0: arith→e2 61%, code→e1 40%`.
 */
export function routingHighlights(stats: readonly RoutingStatLike[]): string[] {
  const best = new Map<number, Map<string, RoutingStatLike>>();
  for (const s of stats) {
    let m = best.get(s.layer);
    if (!m) best.set(s.layer, (m = new Map()));
    const b = m.get(s.domain);
    if (!b || s.fraction > b.fraction) m.set(s.domain, s);
  }
  return [...best.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(
      ([layer, m]) =>
        `layer ${layer}: ` +
        [...m.values()].map((s) => `${s.domain}→e${s.expert} ${(100 * s.fraction).toFixed(0)}%`).join(', '),
    );
}
