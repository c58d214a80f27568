/**
 * Load and save a dense Llama as a Hugging Face model directory (config.json, safetensors,
 * tokenizer). Loading checks every tensor: present, right shape, finite; nothing unexpected.
 */
import { fileError } from '../common/errors.js';
import type { HostTensor } from '../io/host-tensor.js';
import { readHfDir, writeHfDir } from '../io/hf-dir.js';
import type { Tokenizer } from '../io/tokenizer.js';
import { tf } from '../tensor/tf.js';
import { llamaConfigJson, parseLlamaConfig, type LlamaConfig } from './config.js';
import { LM_HEAD, llamaParamShapes, type Weights } from './params.js';

export interface LoadedModel {
  cfg: LlamaConfig;
  weights: Weights;
  tokenizer: Tokenizer | null;
  dir: string;
  dispose(): void;
}

/** Tensors HF checkpoints may carry that the model does not use. */
function ignorable(name: string, cfg: LlamaConfig): boolean {
  return /\.rotary_emb\.inv_freq$/.test(name) || (cfg.tieWordEmbeddings && name === LM_HEAD);
}

/** Check one tensor against its expected shape and for NaN/Inf; `file` names where it came from. */
export function checkTensor(name: string, t: HostTensor, shape: readonly number[], file: string): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw fileError(file, `tensor ${name} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
  const d = t.data;
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i]!)) {
      throw fileError(file, `tensor ${name} contains ${Number.isNaN(d[i]!) ? 'NaN' : 'Inf'} (element ${i})`);
    }
  }
}

export async function loadModel(dir: string): Promise<LoadedModel> {
  const hf = await readHfDir(dir);
  const src = hf.weights;
  const weights: Weights = new Map();
  try {
    const cfg = parseLlamaConfig(hf.config, hf.configPath);
    const shapes = llamaParamShapes(cfg);
    const weightsFile = weightsLocation(src, hf.dir);
    for (const name of src.names()) {
      if (!shapes.has(name) && !ignorable(name, cfg)) {
        throw fileError(
          weightsFile(name),
          `unexpected tensor ${name} (not part of a ${cfg.architecture} with this config)`,
        );
      }
    }
    for (const [name, shape] of shapes) {
      if (!src.has(name))
        throw fileError(weightsFile(name), `missing tensor ${name} (shape [${shape.join(', ')}])`);
      const t = src.read(name);
      checkTensor(name, t, shape, weightsFile(name));
      weights.set(name, tf.tensor(t.data, t.shape, 'float32'));
    }
    return {
      cfg,
      weights,
      tokenizer: hf.tokenizer ?? null,
      dir: hf.dir,
      dispose: () => disposeWeights(weights),
    };
  } catch (e) {
    disposeWeights(weights);
    throw e;
  } finally {
    src.close();
  }
}

/** The file to name in an error about a tensor: its shard when the source says, else the directory. */
function weightsLocation(src: unknown, dir: string): (name: string) => string {
  const s = src as { entry?: (n: string) => { file: string }; has(n: string): boolean };
  return (name) => {
    if (typeof s.entry === 'function' && s.has(name)) {
      try {
        return s.entry(name).file;
      } catch {
        return dir;
      }
    }
    return dir;
  };
}

export function disposeWeights(w: Weights): void {
  for (const t of w.values()) t.dispose();
  w.clear();
}

export interface SaveModelOptions {
  dtype?: 'F32' | 'BF16';
  /** Copy side files (generation_config.json, …) from this model directory. */
  copyFilesFrom?: string;
  maxShardBytes?: number;
}

/** Write config.json, the weights (HF names, checkpoint order) and the tokenizer into `dir`. */
export function saveModel(
  dir: string,
  cfg: LlamaConfig,
  weights: Weights | Map<string, HostTensor>,
  tokenizer: Tokenizer | null,
  opts: SaveModelOptions = {},
): void {
  const shapes = llamaParamShapes(cfg);
  for (const [name, shape] of shapes) {
    const t = weights.get(name);
    if (!t) throw new Error(`saveModel: missing weight ${name}`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`saveModel: ${name} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
  }
  function* tensors(): Generator<[string, HostTensor]> {
    for (const name of shapes.keys()) {
      const t = weights.get(name)!;
      yield [
        name,
        t instanceof tf.Tensor ? { shape: [...t.shape], data: Float32Array.from(t.dataSync()) } : t,
      ];
    }
  }
  writeHfDir(dir, {
    config: llamaConfigJson(cfg),
    tensors: tensors(),
    ...(tokenizer ? { tokenizer } : {}),
    ...opts,
  });
}

/** HostTensors → tf tensors (the caller owns them). */
export function weightsFromHost(host: Map<string, HostTensor>): Weights {
  const w: Weights = new Map();
  for (const [name, t] of host) w.set(name, tf.tensor(t.data, t.shape, 'float32'));
  return w;
}
