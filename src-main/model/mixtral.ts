/**
 * Hugging Face `MixtralForCausalLM` directories: config, load, save. A Mixtral is the Llama of
 * `llama.ts` (attention, RoPE, RMSNorm, embeddings, head: the same code and names) whose MLP blocks
 * are FFN-expert MoE blocks (`moe.ts`):
 *
 *   model.layers.{i}.block_sparse_moe.gate.weight          [n, D]  router
 *   model.layers.{i}.block_sparse_moe.experts.{e}.w1.weight [F, D]  gate_proj
 *   model.layers.{i}.block_sparse_moe.experts.{e}.w2.weight [D, F]  down_proj
 *   model.layers.{i}.block_sparse_moe.experts.{e}.w3.weight [F, D]  up_proj
 *
 * Sliding-window attention is not implemented, so `sliding_window` must be null.
 */
import { fileError } from '../common/errors.js';
import type { HostTensor } from '../io/host-tensor.js';
import { readHfDir, writeHfDir, type HfModelDir } from '../io/hf-dir.js';
import type { Tokenizer } from '../io/tokenizer.js';
import { tf } from '../tensor/tf.js';
import { llamaConfigJson, parseLlamaConfig, type LlamaConfig } from './config.js';
import type { MlpHook } from './llama.js';
import { checkTensor, disposeWeights, type SaveModelOptions } from './load.js';
import {
  disposeMoe,
  moeMlpHook,
  type FfnExpert,
  type MoeHookOptions,
  type MoeHost,
  type MoeSpec,
  type MoeWeights,
} from './moe.js';
import { ATTN_PROJ, EMBED, FINAL_NORM, LM_HEAD, projModule, projShape, type Weights } from './params.js';

export const MIXTRAL_ARCHITECTURE = 'MixtralForCausalLM';

export interface MixtralConfig {
  /** Everything but the MoE: sizes, attention, RoPE, norms, tokens (as a Llama config). */
  llama: LlamaConfig;
  /** `num_local_experts`. */
  numExperts: number;
  /** `num_experts_per_tok`. */
  topK: number;
  routerAuxLossCoef: number;
  /** Training-time router noise (HF multiplies the MoE input by U(1−ε, 1+ε)); not used here. */
  routerJitterNoise: number;
  outputRouterLogits: boolean;
}

/** Keys of MixtralConfig that LlamaConfig does not know. */
const MIXTRAL_KEYS = [
  'num_local_experts',
  'num_experts_per_tok',
  'router_aux_loss_coef',
  'router_jitter_noise',
  'output_router_logits',
  'sliding_window',
] as const;

/** HF MixtralConfig defaults for keys a config may leave out (where they differ from Llama's). */
const MIXTRAL_DEFAULTS: Record<string, unknown> = {
  rms_norm_eps: 1e-5,
  rope_theta: 1e6,
  num_key_value_heads: 8,
  max_position_embeddings: 4096 * 32,
};

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Is this config.json a Mixtral's (by `architectures`, else `model_type`)? */
export function isMixtralConfig(json: Record<string, unknown>): boolean {
  const a = json['architectures'];
  if (Array.isArray(a) && a.length > 0) return a[0] === MIXTRAL_ARCHITECTURE;
  return json['model_type'] === 'mixtral';
}

export function parseMixtralConfig(json: unknown, file: string): MixtralConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw fileError(file, 'config must be a JSON object');
  }
  const raw = json as Record<string, unknown>;
  const err = (field: string, msg: string): Error => fileError(file, `${field}: ${msg}`);
  const archs = raw['architectures'];
  if (archs !== undefined && archs !== null) {
    if (!Array.isArray(archs) || archs.length !== 1 || archs[0] !== MIXTRAL_ARCHITECTURE) {
      throw err('architectures', `expected ["${MIXTRAL_ARCHITECTURE}"], got ${show(archs)}`);
    }
  }
  if (raw['model_type'] !== undefined && raw['model_type'] !== 'mixtral') {
    throw err('model_type', `expected "mixtral", got ${show(raw['model_type'])}`);
  }
  const sw = raw['sliding_window'];
  if (sw !== undefined && sw !== null) {
    throw err('sliding_window', `sliding-window attention is not supported (must be null), got ${show(sw)}`);
  }
  const int = (field: string, def: number): number => {
    const v = raw[field];
    if (v === undefined || v === null) return def;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
      throw err(field, `must be a positive integer, got ${show(v)}`);
    return v;
  };
  const nonNeg = (field: string, def: number): number => {
    const v = raw[field];
    if (v === undefined || v === null) return def;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
      throw err(field, `must be a number >= 0, got ${show(v)}`);
    return v;
  };
  const numExperts = int('num_local_experts', 8);
  const topK = int('num_experts_per_tok', 2);
  if (topK > numExperts) {
    throw err('num_experts_per_tok', `${topK} is more than num_local_experts ${numExperts}`);
  }
  const orl = raw['output_router_logits'];
  if (orl !== undefined && orl !== null && typeof orl !== 'boolean') {
    throw err('output_router_logits', `must be true or false, got ${show(orl)}`);
  }

  // The rest is a Llama config (MixtralConfig's defaults where a key is absent).
  const asLlama: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (!(MIXTRAL_KEYS as readonly string[]).includes(k)) asLlama[k] = v;
  }
  for (const [k, v] of Object.entries(MIXTRAL_DEFAULTS)) if (!(k in asLlama)) asLlama[k] = v;
  asLlama['architectures'] = ['LlamaForCausalLM'];
  asLlama['model_type'] = 'llama';
  return {
    llama: parseLlamaConfig(asLlama, file),
    numExperts,
    topK,
    routerAuxLossCoef: nonNeg('router_aux_loss_coef', 0.001),
    routerJitterNoise: nonNeg('router_jitter_noise', 0),
    outputRouterLogits: orl === true,
  };
}

/** The HF config.json of a Mixtral (unknown keys of the source config are kept). */
export function mixtralConfigJson(cfg: MixtralConfig): Record<string, unknown> {
  const out = llamaConfigJson(cfg.llama);
  delete out['attention_bias'];
  delete out['mlp_bias'];
  if (out['rope_scaling'] === null) delete out['rope_scaling'];
  return {
    ...out,
    architectures: [MIXTRAL_ARCHITECTURE],
    model_type: 'mixtral',
    num_local_experts: cfg.numExperts,
    num_experts_per_tok: cfg.topK,
    router_aux_loss_coef: cfg.routerAuxLossCoef,
    router_jitter_noise: cfg.routerJitterNoise,
    output_router_logits: cfg.outputRouterLogits,
    sliding_window: null,
  };
}

/** The Mixtral config of an FFN-MoE upcycled from a dense Llama. */
export function mixtralConfigFromLlama(
  llama: LlamaConfig,
  o: { numExperts: number; topK: number; routerAuxLossCoef?: number },
): MixtralConfig {
  const json: Record<string, unknown> = {
    ...llamaConfigJson(llama),
    architectures: [MIXTRAL_ARCHITECTURE],
    model_type: 'mixtral',
  };
  delete json['attention_bias'];
  delete json['mlp_bias'];
  Object.assign(json, {
    num_local_experts: o.numExperts,
    num_experts_per_tok: o.topK,
    router_aux_loss_coef: o.routerAuxLossCoef ?? 0.01,
    output_router_logits: false,
    sliding_window: null,
  });
  return parseMixtralConfig(json, '<config>');
}

export function mixtralMoeSpec(cfg: MixtralConfig): MoeSpec {
  return { numExperts: cfg.numExperts, topK: cfg.topK, kind: 'ffn' };
}

export function routerName(layer: number): string {
  return `model.layers.${layer}.block_sparse_moe.gate.weight`;
}

export function expertName(layer: number, expert: number, w: 'w1' | 'w2' | 'w3'): string {
  return `model.layers.${layer}.block_sparse_moe.experts.${expert}.${w}.weight`;
}

/** The non-MoE parameters (Llama names) with their shapes, in HF order. */
function baseShapes(cfg: MixtralConfig): Map<string, number[]> {
  const l = cfg.llama;
  const m = new Map<string, number[]>();
  m.set(EMBED, [l.vocabSize, l.hiddenSize]);
  for (let i = 0; i < l.numLayers; i++) {
    for (const p of ATTN_PROJ) m.set(`${projModule(i, p)}.weight`, projShape(l, p));
    m.set(`model.layers.${i}.input_layernorm.weight`, [l.hiddenSize]);
    m.set(`model.layers.${i}.post_attention_layernorm.weight`, [l.hiddenSize]);
  }
  m.set(FINAL_NORM, [l.hiddenSize]);
  if (!l.tieWordEmbeddings) m.set(LM_HEAD, [l.vocabSize, l.hiddenSize]);
  return m;
}

/** Every parameter of a MixtralForCausalLM with its shape, in HF's state_dict order. */
export function mixtralParamShapes(cfg: MixtralConfig): Map<string, number[]> {
  const l = cfg.llama;
  const D = l.hiddenSize;
  const F = l.intermediateSize;
  const base = baseShapes(cfg);
  const m = new Map<string, number[]>();
  m.set(EMBED, base.get(EMBED)!);
  for (let i = 0; i < l.numLayers; i++) {
    for (const p of ATTN_PROJ) m.set(`${projModule(i, p)}.weight`, projShape(l, p));
    m.set(routerName(i), [cfg.numExperts, D]);
    for (let e = 0; e < cfg.numExperts; e++) {
      m.set(expertName(i, e, 'w1'), [F, D]);
      m.set(expertName(i, e, 'w2'), [D, F]);
      m.set(expertName(i, e, 'w3'), [F, D]);
    }
    m.set(`model.layers.${i}.input_layernorm.weight`, [D]);
    m.set(`model.layers.${i}.post_attention_layernorm.weight`, [D]);
  }
  m.set(FINAL_NORM, [D]);
  if (!l.tieWordEmbeddings) m.set(LM_HEAD, [l.vocabSize, D]);
  return m;
}

export interface LoadedMixtral {
  cfg: MixtralConfig;
  /** Embeddings, attention, norms, head (Llama names). */
  weights: Weights;
  moe: MoeWeights;
  spec: MoeSpec;
  tokenizer: Tokenizer | null;
  dir: string;
  /** The MLP hook that runs the MoE blocks: `llamaLogits(cfg.llama, weights, ids, { mlp: m.mlp() })`. */
  mlp(opts?: MoeHookOptions): MlpHook;
  dispose(): void;
}

export async function loadMixtral(dir: string): Promise<LoadedMixtral> {
  return mixtralFromHfDir(readHfDir(dir));
}

/** A Mixtral from an opened HF directory (closes its weights). */
export function mixtralFromHfDir(hf: HfModelDir): LoadedMixtral {
  const src = hf.weights;
  const weights: Weights = new Map();
  const routers: tf.Tensor[] = [];
  const ffn: FfnExpert[][] = [];
  const owned: tf.Tensor[] = [];
  try {
    const cfg = parseMixtralConfig(hf.config, hf.configPath);
    const shapes = mixtralParamShapes(cfg);
    const where = (name: string): string => {
      try {
        return src.entry(name).file;
      } catch {
        return hf.dir;
      }
    };
    for (const name of src.names()) {
      const ignorable =
        /\.rotary_emb\.inv_freq$/.test(name) || (cfg.llama.tieWordEmbeddings && name === LM_HEAD);
      if (!shapes.has(name) && !ignorable) {
        throw fileError(
          where(name),
          `unexpected tensor ${name} (not part of a ${MIXTRAL_ARCHITECTURE} with this config)`,
        );
      }
    }
    const read = (name: string): tf.Tensor => {
      const shape = shapes.get(name)!;
      if (!src.has(name)) throw fileError(hf.dir, `missing tensor ${name} (shape [${shape.join(', ')}])`);
      const t = src.read(name);
      checkTensor(name, t, shape, where(name));
      const out = tf.tensor(t.data, t.shape, 'float32');
      owned.push(out);
      return out;
    };
    for (const name of baseShapes(cfg).keys()) weights.set(name, read(name));
    for (let i = 0; i < cfg.llama.numLayers; i++) {
      routers.push(read(routerName(i)));
      ffn.push(
        Array.from({ length: cfg.numExperts }, (_, e) => ({
          w1: read(expertName(i, e, 'w1')),
          w2: read(expertName(i, e, 'w2')),
          w3: read(expertName(i, e, 'w3')),
        })),
      );
    }
    const moe: MoeWeights = { routers, ffn };
    const spec = mixtralMoeSpec(cfg);
    return {
      cfg,
      weights,
      moe,
      spec,
      tokenizer: hf.tokenizer ?? null,
      dir: hf.dir,
      mlp: (opts) => moeMlpHook(cfg.llama, weights, moe, spec, opts),
      dispose: () => {
        disposeWeights(weights);
        disposeMoe(moe);
      },
    };
  } catch (e) {
    tf.dispose(owned);
    throw e;
  } finally {
    src.close();
  }
}

function host(t: tf.Tensor | HostTensor): HostTensor {
  return t instanceof tf.Tensor ? { shape: [...t.shape], data: Float32Array.from(t.dataSync()) } : t;
}

/**
 * Write an FFN-MoE as a Mixtral directory transformers loads with `MixtralForCausalLM`:
 * config.json, the weights (HF names and order), the tokenizer. `weights` holds the non-MoE
 * parameters (Llama names; dense MLP weights, if present, are not written).
 */
export function saveMixtral(
  dir: string,
  cfg: MixtralConfig,
  weights: Weights | Map<string, HostTensor>,
  moe: MoeWeights | MoeHost,
  tokenizer: Tokenizer | null,
  opts: SaveModelOptions = {},
): void {
  const shapes = mixtralParamShapes(cfg);
  const L = cfg.llama.numLayers;
  if (moe.routers.length !== L || !moe.ffn || moe.ffn.length !== L) {
    throw new Error(`saveMixtral: need a router and ${cfg.numExperts} FFN experts for each of ${L} layers`);
  }
  const lookup = (name: string): tf.Tensor | HostTensor | undefined => {
    const m = /^model\.layers\.(\d+)\.block_sparse_moe\.(?:gate|experts\.(\d+)\.(w[123]))\.weight$/.exec(
      name,
    );
    if (!m) return weights.get(name);
    const i = Number(m[1]);
    if (m[2] === undefined) return moe.routers[i];
    const ex = moe.ffn![i]![Number(m[2])];
    return ex?.[m[3] as 'w1' | 'w2' | 'w3'];
  };
  for (const [name, shape] of shapes) {
    const t = lookup(name);
    if (!t) throw new Error(`saveMixtral: missing weight ${name}`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(
        `saveMixtral: ${name} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`,
      );
    }
  }
  function* tensors(): Generator<[string, HostTensor]> {
    for (const name of shapes.keys()) yield [name, host(lookup(name)!)];
  }
  writeHfDir(dir, {
    config: mixtralConfigJson(cfg),
    tensors: tensors(),
    ...(tokenizer ? { tokenizer } : {}),
    ...opts,
  });
}
