/**
 * Batched greedy decoding with a KV cache. Prompts of different lengths are left-padded;
 * the attention mask hides the pads and each row's rotary positions start at its first
 * real token, so every row decodes exactly as it would alone.
 */
import { tf } from '../tensor/tf.js';
import { linear } from '../tensor/ops.js';
import type { LlamaConfig } from './config.js';
import { llamaForward, type KvCache, type MlpHook } from './llama.js';
import type { LoraState } from './lora.js';
import { headWeight, type Weights } from './params.js';

export interface GenerateModel {
  cfg: LlamaConfig;
  weights: Weights;
  lora?: LoraState;
  mlp?: MlpHook;
}

export interface GenerateOptions {
  maxNewTokens: number;
  /** Stop a sequence at this token; default: the config's EOS id(s); null: never stop early. */
  eosId?: number | null;
  /** Id fed for left padding and for sequences that have finished (default: pad, else 0). */
  padId?: number;
}

/**
 * Greedy continuation of each prompt (prompt excluded; the EOS token included when a
 * sequence stopped on it). Batched and left-padded; equals decoding each prompt alone.
 */
export function greedyGenerate(model: GenerateModel, prompts: number[][], opts: GenerateOptions): number[][] {
  const { cfg, weights } = model;
  const n = prompts.length;
  const out: number[][] = prompts.map(() => []);
  if (n === 0 || opts.maxNewTokens <= 0) return out;
  const stop = new Set(opts.eosId === undefined ? cfg.eosTokenIds : opts.eosId === null ? [] : [opts.eosId]);
  const pad = opts.padId ?? cfg.padTokenId ?? 0;
  for (const [b, p] of prompts.entries()) {
    if (p.length === 0) throw new Error(`greedyGenerate: prompt ${b} is empty`);
    for (const id of p) {
      if (!Number.isInteger(id) || id < 0 || id >= cfg.vocabSize) {
        throw new Error(`greedyGenerate: prompt ${b} has token id ${id} outside [0, ${cfg.vocabSize})`);
      }
    }
  }

  const L = Math.max(...prompts.map((p) => p.length));
  const ids = new Int32Array(n * L).fill(pad);
  let mask = new Float32Array(n * L); // grows by one column per step
  const nextPos = new Int32Array(n);
  for (const [b, p] of prompts.entries()) {
    ids.set(p, b * L + L - p.length);
    mask.fill(1, b * L + L - p.length, (b + 1) * L);
    nextPos[b] = p.length;
  }
  const done = new Array<boolean>(n).fill(false);
  const head = headWeight(cfg, weights);
  let width = L;
  let cache: KvCache | undefined;
  let input = tf.tensor(ids, [n, L], 'int32');
  let positions = tf.tensor(leftPaddedPositions(mask, n, L), [n, L], 'int32');

  try {
    for (let step = 0; step < opts.maxNewTokens; step++) {
      const maskT = tf.tensor(mask, [n, width], 'float32');
      const prev = cache;
      const res = tf.tidy((): tf.Tensor[] => {
        const { hidden, cache: c } = llamaForward(
          cfg,
          weights,
          input,
          {
            attentionMask: maskT,
            positionIds: positions,
            ...(model.lora ? { lora: model.lora } : {}),
            ...(model.mlp ? { mlp: model.mlp } : {}),
          },
          prev,
        );
        const T = hidden.shape[1]!;
        const last = tf.slice(hidden, [0, T - 1, 0], [n, 1, cfg.hiddenSize]);
        const next = tf.argMax(tf.reshape(linear(last, head), [n, cfg.vocabSize]), -1);
        return [next, ...c.k, ...c.v];
      });
      maskT.dispose();
      input.dispose();
      positions.dispose();
      if (prev) for (const t of [...prev.k, ...prev.v]) t.dispose();
      const nextT = res[0]!;
      cache = { k: res.slice(1, 1 + cfg.numLayers), v: res.slice(1 + cfg.numLayers) };
      const next = nextT.dataSync();
      nextT.dispose();

      const feed = new Int32Array(n);
      const pos = new Int32Array(n);
      for (let b = 0; b < n; b++) {
        if (!done[b]) {
          const tok = next[b]!;
          out[b]!.push(tok);
          if (stop.has(tok)) done[b] = true;
        }
        feed[b] = done[b] ? pad : out[b]!.at(-1)!;
        pos[b] = nextPos[b]!;
        nextPos[b]!++;
      }
      if (done.every(Boolean) || step === opts.maxNewTokens - 1) break;
      // append one column to the mask: 1 for every row (finished rows are ignored anyway)
      const grown = new Float32Array(n * (width + 1)).fill(1);
      for (let b = 0; b < n; b++) grown.set(mask.subarray(b * width, (b + 1) * width), b * (width + 1));
      mask = grown;
      width += 1;
      input = tf.tensor(feed, [n, 1], 'int32');
      positions = tf.tensor(pos, [n, 1], 'int32');
    }
  } finally {
    if (!input.isDisposed) input.dispose();
    if (!positions.isDisposed) positions.dispose();
    if (cache) for (const t of [...cache.k, ...cache.v]) t.dispose();
  }
  return out;
}

/** HF generate(): position = cumsum(mask) - 1, pads → 1. */
function leftPaddedPositions(mask: Float32Array, n: number, L: number): Int32Array {
  const pos = new Int32Array(n * L);
  for (let b = 0; b < n; b++) {
    let c = 0;
    for (let t = 0; t < L; t++) {
      const on = mask[b * L + t] === 1;
      if (on) c++;
      pos[b * L + t] = on ? c - 1 : 1;
    }
  }
  return pos;
}
