/**
 * The dense Llama forward pass, exactly as Hugging Face `LlamaForCausalLM` computes it
 * (transformers/models/llama/modeling_llama.py), in float32:
 *
 *   x_0      = E[ids]                                            embed_tokens
 *   h        = x + o_proj(Attn(RMSNorm(x)))                      per layer, pre-norm
 *   u        = RMSNorm(h)                                        post_attention_layernorm
 *   x'       = h + down(silu(gate(u)) ⊙ up(u))                   SwiGLU (or an MlpHook: the MoE)
 *   logits   = RMSNorm(x_L) · Wheadᵀ                             Whead = lm_head or E (tied)
 *
 *   RMSNorm(x) = w ⊙ x · rsqrt(mean(x²) + eps)
 *   Attn: q,k = RoPE(q,k) (rotate_half convention), softmax(q kᵀ / √head_dim + causal/pad mask) v,
 *         each group of numHeads/numKvHeads query heads shares one kv head (HF repeat_kv).
 *
 * Every matmul goes through `tensor/ops` (the fast wasm paths live there).
 */
import { tf } from '../tensor/tf.js';
import { bmm, embed, linear } from '../tensor/ops.js';
import type { LlamaConfig } from './config.js';
import type { LoraState } from './lora.js';
import { loraScale } from './lora.js';
import { FINAL_NORM, EMBED, headWeight, need, projModule, type ProjName, type Weights } from './params.js';

/** Replaces the dense MLP of a layer (the MoE); `null` → dense MLP. `u`: [B,T,D] post-attention-norm hidden. */
export interface MlpHook {
  (layer: number, u: tf.Tensor): tf.Tensor | null;
}

export interface ForwardOptions {
  /** [B, Tpast+T], 1 = token, 0 = padding (left padding). */
  attentionMask?: tf.Tensor;
  lora?: LoraState;
  mlp?: MlpHook;
  /** [B, T] rotary positions. Default: 0..T-1 after the cache, or, with an attention mask
   *  and no cache, HF generate()'s `cumsum(mask) - 1` so left-padded rows match unpadded ones. */
  positionIds?: tf.Tensor;
}

/** Per-layer keys and values after RoPE, [B, numKvHeads, Tpast, headDim] (generation). */
export interface KvCache {
  k: tf.Tensor[];
  v: tf.Tensor[];
}

/** Final-norm hidden states [B,T,D]. */
export function llamaHidden(
  cfg: LlamaConfig,
  w: Weights,
  ids: tf.Tensor,
  opts: ForwardOptions = {},
): tf.Tensor {
  return tf.tidy(() => llamaForward(cfg, w, ids, opts).hidden);
}

/** Logits [B,T,V], float32. */
export function llamaLogits(
  cfg: LlamaConfig,
  w: Weights,
  ids: tf.Tensor,
  opts: ForwardOptions = {},
): tf.Tensor {
  return tf.tidy(() => linear(llamaForward(cfg, w, ids, opts).hidden, headWeight(cfg, w)));
}

/** The forward pass with an optional KV cache (call inside tf.tidy; returns the extended cache). */
export function llamaForward(
  cfg: LlamaConfig,
  w: Weights,
  ids: tf.Tensor,
  opts: ForwardOptions = {},
  past?: KvCache,
): { hidden: tf.Tensor; cache: KvCache } {
  const [B, T] = ids.shape as [number, number];
  const tPast = past?.k[0]?.shape[2] ?? 0;
  const positions = opts.positionIds
    ? tf.cast(opts.positionIds, 'float32')
    : defaultPositions(B, T, tPast, past === undefined ? opts.attentionMask : undefined);
  const [cos, sin] = rotary(cfg, positions); // [B|1, 1, T, hd/2]
  const mask = attentionBias(T, tPast, opts.attentionMask); // [B|1, 1, T, Tpast+T]
  const cache: KvCache = { k: [], v: [] };

  let x = embed(ids, need(w, EMBED));
  for (let i = 0; i < cfg.numLayers; i++) {
    const a = rmsNorm(x, need(w, `model.layers.${i}.input_layernorm.weight`), cfg.rmsNormEps);
    x = tf.add(x, attention(cfg, w, i, a, cos, sin, mask, opts.lora, past, cache));
    const u = rmsNorm(x, need(w, `model.layers.${i}.post_attention_layernorm.weight`), cfg.rmsNormEps);
    x = tf.add(x, opts.mlp?.(i, u) ?? mlp(w, i, u, opts.lora));
  }
  return { hidden: rmsNorm(x, need(w, FINAL_NORM), cfg.rmsNormEps), cache };
}

/** LlamaRMSNorm: w ⊙ x · rsqrt(mean(x², -1) + eps). */
export function rmsNorm(x: tf.Tensor, weight: tf.Tensor, eps: number): tf.Tensor {
  const variance = tf.mean(tf.square(x), -1, true);
  return tf.mul(weight, tf.mul(x, tf.rsqrt(tf.add(variance, eps))));
}

/** A projection `x·Wᵀ`, plus `(α/r)·(x·Aᵀ)·Bᵀ` when LoRA adapts this module. */
export function project(
  w: Weights,
  layer: number,
  proj: ProjName,
  x: tf.Tensor,
  lora?: LoraState,
): tf.Tensor {
  const module = projModule(layer, proj);
  const y = linear(x, need(w, `${module}.weight`));
  const A = lora?.A.get(module);
  const Bm = lora?.B.get(module);
  if (!lora || !A || !Bm) return y;
  return tf.add(y, tf.mul(linear(linear(x, A), Bm), loraScale(lora.spec)));
}

/** LlamaMLP: down(silu(gate(u)) ⊙ up(u)), silu(g) = g·σ(g). */
export function mlp(w: Weights, layer: number, u: tf.Tensor, lora?: LoraState): tf.Tensor {
  const g = project(w, layer, 'gate_proj', u, lora);
  const up = project(w, layer, 'up_proj', u, lora);
  return project(w, layer, 'down_proj', tf.mul(tf.mul(g, tf.sigmoid(g)), up), lora);
}

function attention(
  cfg: LlamaConfig,
  w: Weights,
  i: number,
  x: tf.Tensor,
  cos: tf.Tensor,
  sin: tf.Tensor,
  mask: tf.Tensor,
  lora: LoraState | undefined,
  past: KvCache | undefined,
  cache: KvCache,
): tf.Tensor {
  const [B, T] = x.shape as [number, number, number];
  const { numHeads: H, numKvHeads: KV, headDim: hd } = cfg;
  const heads = (t: tf.Tensor, n: number) => swapAxes12(tf.reshape(t, [B, T, n, hd])); // [B,n,T,hd]
  const q = applyRope(heads(project(w, i, 'q_proj', x, lora), H), cos, sin);
  let k = applyRope(heads(project(w, i, 'k_proj', x, lora), KV), cos, sin);
  let v = heads(project(w, i, 'v_proj', x, lora), KV);
  if (past) {
    k = tf.concat([past.k[i]!, k], 2);
    v = tf.concat([past.v[i]!, v], 2);
  }
  cache.k.push(k);
  cache.v.push(v);
  const tk = k.shape[2]!;
  // repeat_kv without copying: query heads kv·nRep … kv·nRep+nRep-1 attend with kv head `kv`,
  // so group them as rows of one [nRep·T, hd] matrix per (batch, kv head).
  const nRep = H / KV;
  const r3 = (t: tf.Tensor, rows: number, cols: number) => tf.reshape(t, [B * KV, rows, cols]) as tf.Tensor3D;
  const scores = tf.mul(bmm(r3(q, nRep * T, hd), r3(k, tk, hd), false, true), 1 / Math.sqrt(hd));
  const probs = tf.softmax(tf.add(tf.reshape(scores, [B, H, T, tk]), mask)); // float32, last axis
  const out = bmm(r3(probs, nRep * T, tk), r3(v, tk, hd)); // [B·KV, nRep·T, hd]
  const merged = tf.reshape(swapAxes12(tf.reshape(out, [B, H, T, hd])), [B, T, H * hd]);
  return project(w, i, 'o_proj', merged, lora);
}

/** [a,b,c,d] → [a,c,b,d]; a plain reshape when b or c is 1 (one kv head, one decoding step). */
function swapAxes12(t: tf.Tensor): tf.Tensor {
  const [a, b, c, d] = t.shape as [number, number, number, number];
  return b === 1 || c === 1 ? tf.reshape(t, [a, c, b, d]) : tf.transpose(t, [0, 2, 1, 3]);
}

/** apply_rotary_pos_emb: x·cos + rotate_half(x)·sin, rotate_half(x) = [-x₂, x₁] (halves, not interleaved). */
function applyRope(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor {
  const [x1, x2] = tf.split(x, 2, -1) as [tf.Tensor, tf.Tensor];
  return tf.concat([tf.sub(tf.mul(x1, cos), tf.mul(x2, sin)), tf.add(tf.mul(x2, cos), tf.mul(x1, sin))], -1);
}

/** cos/sin of positions·inv_freq in float32 (as HF's LlamaRotaryEmbedding), [B,1,T,hd/2]. */
function rotary(cfg: LlamaConfig, positions: tf.Tensor): [tf.Tensor, tf.Tensor] {
  const inv = ropeInvFreq(cfg);
  const freqs = tf.mul(tf.expandDims(positions, -1), tf.tensor(inv, [1, 1, inv.length], 'float32'));
  const f4 = tf.expandDims(freqs, 1);
  return [tf.cos(f4), tf.sin(f4)];
}

/**
 * HF rope_init_fn (default / linear / llama3) in float32: inv_freq_i = 1 / θ^(2i/d), i < d/2.
 * Math.fround after each step reproduces the float32 buffer HF computes.
 */
export function ropeInvFreq(cfg: LlamaConfig): Float32Array {
  const f = Math.fround;
  const d = cfg.headDim;
  const inv = new Float32Array(d / 2);
  for (let i = 0; i < d / 2; i++) inv[i] = f(1 / f(Math.pow(f(cfg.ropeTheta), f((2 * i) / d))));
  const s = cfg.ropeScaling;
  if (s?.type === 'linear') for (let i = 0; i < inv.length; i++) inv[i] = f(inv[i]! / s.factor);
  if (s?.type === 'llama3') {
    const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    for (let i = 0; i < inv.length; i++) {
      const fr = inv[i]!;
      const wavelen = f((2 * Math.PI) / fr);
      if (wavelen > lowWavelen) inv[i] = f(fr / s.factor);
      else if (wavelen >= highWavelen) {
        const smooth = f(
          (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) /
            (s.highFreqFactor - s.lowFreqFactor),
        );
        inv[i] = f(f(((1 - smooth) * fr) / s.factor) + f(smooth * fr));
      }
    }
  }
  return inv;
}

/** Positions [B|1, T]: tPast.. for a plain batch; cumsum(mask)-1 (pads → 1) for a left-padded one. */
function defaultPositions(B: number, T: number, tPast: number, attentionMask?: tf.Tensor): tf.Tensor {
  if (!attentionMask)
    return tf.tensor(
      Float32Array.from({ length: T }, (_, t) => tPast + t),
      [1, T],
      'float32',
    );
  const m = attentionMask.dataSync();
  const pos = new Float32Array(B * T);
  for (let b = 0; b < B; b++) {
    let c = 0;
    for (let t = 0; t < T; t++) {
      const on = m[b * T + t] !== 0;
      if (on) c++;
      pos[b * T + t] = on ? c - 1 : 1;
    }
  }
  return tf.tensor(pos, [B, T], 'float32');
}

const MASKED = -1e9;

/** Additive attention bias [B|1, 1, T, Tpast+T]: causal, and padded keys masked. */
function attentionBias(T: number, tPast: number, attentionMask?: tf.Tensor): tf.Tensor {
  const tk = tPast + T;
  const Bm = attentionMask ? attentionMask.shape[0]! : 1;
  if (attentionMask && (attentionMask.rank !== 2 || attentionMask.shape[1] !== tk)) {
    throw new Error(`attentionMask must be [B, ${tk}], got [${attentionMask.shape.join(', ')}]`);
  }
  const m = attentionMask?.dataSync();
  const bias = new Float32Array(Bm * T * tk);
  for (let b = 0; b < Bm; b++) {
    for (let i = 0; i < T; i++) {
      const row = (b * T + i) * tk;
      for (let j = 0; j < tk; j++) {
        if (j > tPast + i || (m !== undefined && m[b * tk + j] === 0)) bias[row + j] = MASKED;
      }
    }
  }
  return tf.tensor(bias, [Bm, 1, T, tk], 'float32');
}
