/**
 * Parameter names, shapes ([out, in], Hugging Face layout) and initialisation of the dense
 * Llama. `Weights` maps HF tensor names to TensorFlow.js tensors.
 */
import type { Rng } from '../common/rng.js';
import type { HostTensor } from '../io/host-tensor.js';
import type { tf } from '../tensor/tf.js';
import type { LlamaConfig } from './config.js';

export type Weights = Map<string, tf.Tensor>;

export const EMBED = 'model.embed_tokens.weight';
export const FINAL_NORM = 'model.norm.weight';
export const LM_HEAD = 'lm_head.weight';

export const ATTN_PROJ = ['q_proj', 'k_proj', 'v_proj', 'o_proj'] as const;
export const MLP_PROJ = ['gate_proj', 'up_proj', 'down_proj'] as const;
export type ProjName = (typeof ATTN_PROJ)[number] | (typeof MLP_PROJ)[number];

/** Module name of a projection in layer `i`, e.g. `model.layers.3.mlp.gate_proj`. */
export function projModule(i: number, proj: ProjName): string {
  const group = (ATTN_PROJ as readonly string[]).includes(proj) ? 'self_attn' : 'mlp';
  return `model.layers.${i}.${group}.${proj}`;
}

/** [out, in] of a projection. */
export function projShape(cfg: LlamaConfig, proj: ProjName): [number, number] {
  const { hiddenSize: d, intermediateSize: f, numHeads: h, numKvHeads: kv, headDim: hd } = cfg;
  switch (proj) {
    case 'q_proj':
      return [h * hd, d];
    case 'k_proj':
    case 'v_proj':
      return [kv * hd, d];
    case 'o_proj':
      return [d, h * hd];
    case 'gate_proj':
    case 'up_proj':
      return [f, d];
    case 'down_proj':
      return [d, f];
  }
}

/** Every parameter of the model, in HF checkpoint order, with its shape. */
export function llamaParamShapes(cfg: LlamaConfig): Map<string, number[]> {
  const d = cfg.hiddenSize;
  const m = new Map<string, number[]>();
  m.set(EMBED, [cfg.vocabSize, d]);
  for (let i = 0; i < cfg.numLayers; i++) {
    m.set(`model.layers.${i}.input_layernorm.weight`, [d]);
    for (const p of ATTN_PROJ) m.set(`${projModule(i, p)}.weight`, projShape(cfg, p));
    m.set(`model.layers.${i}.post_attention_layernorm.weight`, [d]);
    for (const p of MLP_PROJ) m.set(`${projModule(i, p)}.weight`, projShape(cfg, p));
  }
  m.set(FINAL_NORM, [d]);
  if (!cfg.tieWordEmbeddings) m.set(LM_HEAD, [cfg.vocabSize, d]);
  return m;
}

export function isNormWeight(name: string): boolean {
  return name.endsWith('layernorm.weight') || name === FINAL_NORM;
}

/**
 * HF `LlamaPreTrainedModel._init_weights`: linear and embedding weights ~ N(0, std²), the
 * padding token's embedding row zero, RMSNorm weights one.
 */
export function initLlamaWeights(cfg: LlamaConfig, rng: Rng, std = 0.02): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [name, shape] of llamaParamShapes(cfg)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (isNormWeight(name)) data.fill(1);
    else for (let j = 0; j < data.length; j++) data[j] = std * rng.normal();
    if (name === EMBED && cfg.padTokenId !== null)
      data.fill(0, cfg.padTokenId * cfg.hiddenSize, (cfg.padTokenId + 1) * cfg.hiddenSize);
    out.set(name, { shape: [...shape], data });
  }
  return out;
}

/** The output projection: lm_head, or the embedding when tied. */
export function headWeight(cfg: LlamaConfig, w: Weights): tf.Tensor {
  return need(w, cfg.tieWordEmbeddings ? EMBED : LM_HEAD);
}

export function need(w: Weights, name: string): tf.Tensor {
  const t = w.get(name);
  if (t === undefined) throw new Error(`missing weight ${name}`);
  return t;
}
