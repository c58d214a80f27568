/**
 * Load any model directory the workbench can run, by what it is:
 *   moe.json present                      → LoRA-MoE (lora-moe.ts)
 *   architectures ["MixtralForCausalLM"]  → Mixtral FFN-MoE (mixtral.ts)
 *   otherwise                             → dense Llama (load.ts; errors name unsupported architectures)
 * Every kind runs through the Llama forward: `anyModelLogits(m, ids)`, or
 * `llamaLogits(m.cfg, m.weights, ids, { mlp: m.mlp })` (m.mlp is undefined for a dense model).
 */
import fs from 'node:fs';
import path from 'node:path';
import { CONFIG_FILE, readHfDir } from '../io/hf-dir.js';
import type { tf } from '../tensor/tf.js';
import { llamaLogits, type ForwardOptions, type MlpHook } from './llama.js';
import { loadModel, type LoadedModel } from './load.js';
import { isLoraMoeDir, loadLoraMoe } from './lora-moe.js';
import { isMixtralConfig, mixtralFromHfDir, type MixtralConfig } from './mixtral.js';
import type { MoeHookOptions, MoeSpec, MoeWeights } from './moe.js';

export type ModelKind = 'llama' | 'mixtral' | 'lora-moe';

export interface AnyLoadedModel extends LoadedModel {
  kind: ModelKind;
  /** The MoE blocks (absent for a dense model). */
  mlp?: MlpHook;
  moe?: {
    spec: MoeSpec;
    weights: MoeWeights;
    /** A fresh hook with options (routing callback, dispatch). */
    hook(opts?: MoeHookOptions): MlpHook;
  };
  /** Mixtral only: its full config. */
  mixtral?: MixtralConfig;
}

export async function loadAnyModel(dir: string): Promise<AnyLoadedModel> {
  if (isLoraMoeDir(dir)) {
    const m = await loadLoraMoe(dir);
    return {
      kind: 'lora-moe',
      cfg: m.cfg,
      weights: m.weights,
      tokenizer: m.tokenizer,
      dir: m.dir,
      mlp: m.mlp(),
      moe: { spec: m.spec, weights: m.moe, hook: m.mlp },
      dispose: m.dispose,
    };
  }
  if (!isMixtralConfig(peekConfig(dir))) return { kind: 'llama', ...(await loadModel(dir)) };
  const m = mixtralFromHfDir(readHfDir(dir));
  return {
    kind: 'mixtral',
    cfg: m.cfg.llama,
    weights: m.weights,
    tokenizer: m.tokenizer,
    dir: m.dir,
    mlp: m.mlp(),
    moe: { spec: m.spec, weights: m.moe, hook: m.mlp },
    mixtral: m.cfg,
    dispose: m.dispose,
  };
}

/** config.json as an object, or {} when unreadable (the dense loader then reports the problem). */
function peekConfig(dir: string): Record<string, unknown> {
  try {
    const v = JSON.parse(fs.readFileSync(path.join(dir, CONFIG_FILE), 'utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** Logits [B, T, V] of any loaded model. */
export function anyModelLogits(
  m: AnyLoadedModel,
  ids: tf.Tensor,
  opts: Omit<ForwardOptions, 'mlp'> = {},
): tf.Tensor {
  return llamaLogits(m.cfg, m.weights, ids, m.mlp ? { ...opts, mlp: m.mlp } : opts);
}
