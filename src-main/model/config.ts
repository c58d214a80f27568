/**
 * The dense Llama configuration: Hugging Face `LlamaConfig` (config.json) parsed, validated
 * and written back. Field names follow HF's `config.json`; anything we do not interpret is
 * kept in `raw` and written back unchanged.
 */
import { fileError } from '../common/errors.js';

/** Rotary frequency rescaling (HF `rope_scaling`); `null` = the default rotary embedding. */
export type RopeScaling =
  | { type: 'linear'; factor: number }
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    };

export interface LlamaConfig {
  architecture: string; // 'LlamaForCausalLM'
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** HF `rope_scaling` (types 'default' → null, 'linear', 'llama3'). */
  ropeScaling: RopeScaling | null;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  bosTokenId: number | null;
  /** The first end-of-sequence id (HF allows a list; all of them are in `eosTokenIds`). */
  eosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  raw: Record<string, unknown>;
}

export const LLAMA_ARCHITECTURE = 'LlamaForCausalLM';

/** config.json keys this module interprets (written from the typed fields). */
const KNOWN_KEYS = [
  'architectures',
  'model_type',
  'vocab_size',
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'head_dim',
  'rms_norm_eps',
  'rope_theta',
  'rope_scaling',
  'max_position_embeddings',
  'tie_word_embeddings',
  'bos_token_id',
  'eos_token_id',
  'pad_token_id',
  'hidden_act',
  'attention_bias',
  'mlp_bias',
] as const;

export function parseLlamaConfig(json: unknown, file: string): LlamaConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw fileError(file, 'config must be a JSON object');
  }
  const raw = json as Record<string, unknown>;
  const err = (field: string, msg: string): Error => fileError(file, `${field}: ${msg}`);

  const int = (field: string, def?: number, min = 1): number => {
    const v = raw[field];
    if (v === undefined || v === null) {
      if (def !== undefined) return def;
      throw err(field, 'is required');
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v))
      throw err(field, `must be an integer, got ${show(v)}`);
    if (v < min) throw err(field, `must be at least ${min}, got ${v}`);
    return v;
  };
  const pos = (field: string, def: number): number => {
    const v = raw[field];
    if (v === undefined || v === null) return def;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw err(field, `must be a positive number, got ${show(v)}`);
    }
    return v;
  };
  const bool = (field: string, def: boolean): boolean => {
    const v = raw[field];
    if (v === undefined || v === null) return def;
    if (typeof v !== 'boolean') throw err(field, `must be true or false, got ${show(v)}`);
    return v;
  };

  // Architecture: architectures[0] when present, else model_type must be llama.
  let architecture = LLAMA_ARCHITECTURE;
  const archs = raw['architectures'];
  if (archs !== undefined && archs !== null) {
    if (!Array.isArray(archs) || archs.length === 0 || typeof archs[0] !== 'string') {
      throw err('architectures', 'must be a non-empty list of strings');
    }
    architecture = archs[0];
    if (archs.length !== 1 || architecture !== LLAMA_ARCHITECTURE) {
      throw err(
        'architectures',
        `unsupported architecture ${show(archs)} (only ${LLAMA_ARCHITECTURE} is supported)`,
      );
    }
  }
  const modelType = raw['model_type'];
  if (modelType !== undefined && modelType !== 'llama') {
    throw err('model_type', `unsupported model type ${show(modelType)} (only "llama" is supported)`);
  }
  const act = raw['hidden_act'];
  if (act !== undefined && act !== 'silu' && act !== 'swish') {
    throw err('hidden_act', `unsupported activation ${show(act)} (only "silu")`);
  }
  for (const f of ['attention_bias', 'mlp_bias']) {
    if (bool(f, false)) throw err(f, 'biases in linear layers are not supported (must be false)');
  }
  const prf = raw['partial_rotary_factor'];
  if (prf !== undefined && prf !== null && prf !== 1 && prf !== 1.0) {
    throw err('partial_rotary_factor', `unsupported value ${show(prf)} (only 1)`);
  }

  const vocabSize = int('vocab_size');
  const hiddenSize = int('hidden_size');
  const intermediateSize = int('intermediate_size');
  const numLayers = int('num_hidden_layers');
  const numHeads = int('num_attention_heads');
  const numKvHeads = int('num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw err('num_key_value_heads', `${numKvHeads} must divide num_attention_heads ${numHeads}`);
  }
  let headDim: number;
  if (raw['head_dim'] === undefined || raw['head_dim'] === null) {
    if (hiddenSize % numHeads !== 0) {
      throw err('num_attention_heads', `${numHeads} must divide hidden_size ${hiddenSize} (or set head_dim)`);
    }
    headDim = hiddenSize / numHeads;
  } else {
    headDim = int('head_dim');
  }
  if (headDim % 2 !== 0) throw err('head_dim', `must be even for rotary embeddings, got ${headDim}`);

  const tokenId = (field: string): number | null => {
    const v = raw[field];
    if (v === undefined || v === null) return null;
    if (v === -1) return null; // some old checkpoints use -1 for "none"
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v >= vocabSize) {
      throw err(field, `must be a token id in [0, ${vocabSize}), got ${show(v)}`);
    }
    return v;
  };
  let eosTokenIds: number[] = [];
  const eosRaw = raw['eos_token_id'];
  if (Array.isArray(eosRaw)) {
    eosTokenIds = eosRaw.map((v, i) => {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v >= vocabSize) {
        throw err(`eos_token_id[${i}]`, `must be a token id in [0, ${vocabSize}), got ${show(v)}`);
      }
      return v;
    });
  } else {
    const e = tokenId('eos_token_id');
    if (e !== null) eosTokenIds = [e];
  }

  return {
    architecture,
    vocabSize,
    hiddenSize,
    intermediateSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: pos('rms_norm_eps', 1e-6),
    ropeTheta: pos('rope_theta', 10000),
    ropeScaling: parseRopeScaling(raw['rope_scaling'], err),
    maxPositionEmbeddings: int('max_position_embeddings', 2048),
    tieWordEmbeddings: bool('tie_word_embeddings', false),
    bosTokenId: tokenId('bos_token_id'),
    eosTokenId: eosTokenIds[0] ?? null,
    eosTokenIds,
    padTokenId: tokenId('pad_token_id'),
    raw: { ...raw },
  };
}

function parseRopeScaling(v: unknown, err: (field: string, msg: string) => Error): RopeScaling | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) throw err('rope_scaling', 'must be an object or null');
  const o = v as Record<string, unknown>;
  const type = o['rope_type'] ?? o['type'];
  const num = (k: string, min: number): number => {
    const x = o[k];
    if (typeof x !== 'number' || !Number.isFinite(x) || x < min) {
      throw err(`rope_scaling.${k}`, `must be a number >= ${min}, got ${show(x)}`);
    }
    return x;
  };
  switch (type) {
    case 'default':
      return null;
    case 'linear':
      return { type: 'linear', factor: num('factor', 1) };
    case 'llama3': {
      const s: RopeScaling = {
        type: 'llama3',
        factor: num('factor', 1),
        lowFreqFactor: num('low_freq_factor', Number.MIN_VALUE),
        highFreqFactor: num('high_freq_factor', Number.MIN_VALUE),
        originalMaxPositionEmbeddings: num('original_max_position_embeddings', 1),
      };
      if (s.highFreqFactor <= s.lowFreqFactor) {
        throw err('rope_scaling.high_freq_factor', 'must be greater than low_freq_factor');
      }
      return s;
    }
    default:
      throw err(
        'rope_scaling',
        `unsupported rope scaling type ${show(type)} (supported: "default", "linear", "llama3")`,
      );
  }
}

/** The HF config.json content for a config (unknown keys of `raw` are kept). */
export function llamaConfigJson(cfg: LlamaConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(cfg.raw)) {
    if (!(KNOWN_KEYS as readonly string[]).includes(k)) out[k] = v;
  }
  const eos = cfg.eosTokenIds.length > 1 ? [...cfg.eosTokenIds] : cfg.eosTokenId;
  Object.assign(out, {
    architectures: [cfg.architecture],
    model_type: 'llama',
    vocab_size: cfg.vocabSize,
    hidden_size: cfg.hiddenSize,
    intermediate_size: cfg.intermediateSize,
    num_hidden_layers: cfg.numLayers,
    num_attention_heads: cfg.numHeads,
    num_key_value_heads: cfg.numKvHeads,
    head_dim: cfg.headDim,
    hidden_act: 'silu',
    attention_bias: false,
    mlp_bias: false,
    rms_norm_eps: cfg.rmsNormEps,
    rope_theta: cfg.ropeTheta,
    rope_scaling: ropeScalingJson(cfg.ropeScaling),
    max_position_embeddings: cfg.maxPositionEmbeddings,
    tie_word_embeddings: cfg.tieWordEmbeddings,
    bos_token_id: cfg.bosTokenId,
    eos_token_id: eos,
    pad_token_id: cfg.padTokenId,
  });
  return out;
}

function ropeScalingJson(s: RopeScaling | null): Record<string, unknown> | null {
  if (s === null) return null;
  if (s.type === 'linear') return { rope_type: 'linear', factor: s.factor };
  return {
    rope_type: 'llama3',
    factor: s.factor,
    low_freq_factor: s.lowFreqFactor,
    high_freq_factor: s.highFreqFactor,
    original_max_position_embeddings: s.originalMaxPositionEmbeddings,
  };
}

/** A config from plain numbers (tests, the embedded tiny model): HF defaults for the rest. */
export function makeLlamaConfig(
  p: Partial<Omit<LlamaConfig, 'raw' | 'architecture'>> &
    Pick<LlamaConfig, 'vocabSize' | 'hiddenSize' | 'intermediateSize' | 'numLayers' | 'numHeads'>,
): LlamaConfig {
  const eosTokenIds =
    p.eosTokenIds ?? (p.eosTokenId === undefined || p.eosTokenId === null ? [] : [p.eosTokenId]);
  const json: Record<string, unknown> = {
    architectures: [LLAMA_ARCHITECTURE],
    model_type: 'llama',
    hidden_act: 'silu',
    vocab_size: p.vocabSize,
    hidden_size: p.hiddenSize,
    intermediate_size: p.intermediateSize,
    num_hidden_layers: p.numLayers,
    num_attention_heads: p.numHeads,
    num_key_value_heads: p.numKvHeads ?? p.numHeads,
    head_dim: p.headDim ?? null,
    rms_norm_eps: p.rmsNormEps ?? 1e-6,
    rope_theta: p.ropeTheta ?? 10000,
    rope_scaling: ropeScalingJson(p.ropeScaling ?? null),
    max_position_embeddings: p.maxPositionEmbeddings ?? 2048,
    tie_word_embeddings: p.tieWordEmbeddings ?? false,
    bos_token_id: p.bosTokenId ?? null,
    eos_token_id: eosTokenIds.length > 1 ? eosTokenIds : (eosTokenIds[0] ?? null),
    pad_token_id: p.padTokenId ?? null,
  };
  // Validated by the parser, so a hand-made config obeys the same rules as a file.
  return { ...parseLlamaConfig(json, '<config>'), raw: {} };
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
