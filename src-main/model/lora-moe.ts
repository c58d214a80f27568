/**
 * A LoRA-MoE as a directory of standard parts (there is no transformers class for it):
 *
 *   moe.json                            how to assemble it (below)
 *   base/                               the dense base model (config.json, model.safetensors, tokenizer)
 *   experts/expert-00/ … expert-{n-1}/  one PEFT LoRA adapter per expert (adapter_config.json,
 *                                       adapter_model.safetensors: base_model.model.<module>.lora_A/B.weight)
 *   router.safetensors                  model.layers.{i}.block_sparse_moe.gate.weight [n, D] per layer
 *
 * Each MLP block of the base becomes y = Σ_{j ∈ top-k} g_j · MLP_j(u) with MLP_j = the base MLP with
 * expert j's adapter merged in, g = softmax(W_router u) kept at the top k and renormalised, u the
 * post_attention_layernorm output (`moe.ts`). Every adapter must have the same r, α and targets
 * (MLP projections only).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileError, isUserError, UserError } from '../common/errors.js';
import { fsyncDir, ioError, writeFileAtomic } from '../io/atomic.js';
import type { HostTensor } from '../io/host-tensor.js';
import { SafetensorsFile, writeSafetensors } from '../io/safetensors.js';
import type { Tokenizer } from '../io/tokenizer.js';
import type { LlamaConfig } from './config.js';
import type { MlpHook } from './llama.js';
import { checkTensor, loadModel, saveModel, type SaveModelOptions } from './load.js';
import {
  loraFromPeftTensors,
  loraToPeftTensors,
  parsePeftAdapterConfig,
  peftAdapterConfig,
  type LoraSpec,
} from './lora.js';
import {
  disposeMoe,
  moeFromHost,
  moeMlpHook,
  moeToHost,
  validateMoeSpec,
  validateMoeWeights,
  type MoeHookOptions,
  type MoeHost,
  type MoeSpec,
  type MoeWeights,
} from './moe.js';
import type { Weights } from './params.js';

export const LORA_MOE_FILE = 'moe.json';
export const LORA_MOE_FORMAT = 'upit-lora-moe';
const ROUTER_FILE = 'router.safetensors';
const ROUTER_TENSOR = 'model.layers.{layer}.block_sparse_moe.gate.weight';
const ADAPTER_CONFIG = 'adapter_config.json';
const ADAPTER_WEIGHTS = 'adapter_model.safetensors';

export interface LoraMoeManifest {
  format: typeof LORA_MOE_FORMAT;
  version: 1;
  description: string;
  base_model: string;
  num_experts: number;
  top_k: number;
  router_aux_loss_coef: number;
  /** Adapter directories, relative to the MoE directory, in expert order. */
  experts: string[];
  router: { file: string; tensor: string; shape: [number, number] };
  lora: { r: number; lora_alpha: number; target_modules: string[] };
}

function routerTensorName(layer: number): string {
  return ROUTER_TENSOR.replace('{layer}', String(layer));
}

function expertDirName(e: number, n: number): string {
  return `experts/expert-${String(e).padStart(Math.max(2, String(n - 1).length), '0')}`;
}

export interface SaveLoraMoeOptions extends SaveModelOptions {
  routerAuxLossCoef?: number;
}

/**
 * Write a LoRA-MoE directory (atomically: built next to `dir`, then swapped in). `base` = the dense
 * model's weights (the experts' shared W0 included).
 */
export function saveLoraMoe(
  dir: string,
  cfg: LlamaConfig,
  base: Weights | Map<string, HostTensor>,
  tokenizer: Tokenizer | null,
  spec: MoeSpec,
  moe: MoeWeights | MoeHost,
  opts: SaveLoraMoeOptions = {},
): void {
  validateMoeSpec(spec);
  if (spec.kind !== 'lora')
    throw new Error("saveLoraMoe: spec.kind must be 'lora' (FFN experts: saveMixtral)");
  validateMoeWeights(cfg, spec, moe);
  const lora = spec.lora!;
  const n = spec.numExperts;
  const host = moeToHost(moe);
  const target = path.resolve(dir);
  const tmp = `${target}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const { routerAuxLossCoef, ...modelOpts } = opts;
  try {
    fs.mkdirSync(path.join(tmp, 'experts'), { recursive: true });
    saveModel(path.join(tmp, 'base'), cfg, base, tokenizer, modelOpts);
    const experts: string[] = [];
    host.lora!.forEach((ex, e) => {
      const rel = expertDirName(e, n);
      const d = path.join(tmp, rel);
      fs.mkdirSync(d, { recursive: true });
      writeFileAtomic(
        path.join(d, ADAPTER_CONFIG),
        JSON.stringify(peftAdapterConfig(lora, null), null, 2) + '\n',
      );
      writeSafetensors(path.join(d, ADAPTER_WEIGHTS), loraToPeftTensors(ex), { metadata: { format: 'pt' } });
      experts.push(rel);
    });
    writeSafetensors(
      path.join(tmp, ROUTER_FILE),
      host.routers.map((r, i): [string, HostTensor] => [routerTensorName(i), r]),
      { metadata: { format: 'pt', num_experts: String(n), top_k: String(spec.topK) } },
    );
    const manifest: LoraMoeManifest = {
      format: LORA_MOE_FORMAT,
      version: 1,
      description:
        'LoRA-MoE: each MLP block of base_model becomes sum over the top_k experts j of g_j * MLP_j(u), ' +
        'MLP_j = the base MLP with adapter j, g = softmax(router u) kept at the top_k and renormalised, ' +
        'u = the post_attention_layernorm output',
      base_model: 'base',
      num_experts: n,
      top_k: spec.topK,
      router_aux_loss_coef: routerAuxLossCoef ?? 0.01,
      experts,
      router: { file: ROUTER_FILE, tensor: ROUTER_TENSOR, shape: [n, cfg.hiddenSize] },
      lora: { r: lora.r, lora_alpha: lora.alpha, target_modules: [...lora.targets] },
    };
    writeFileAtomic(path.join(tmp, LORA_MOE_FILE), JSON.stringify(manifest, null, 2) + '\n');
    fsyncDir(tmp);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (isUserError(e)) throw new UserError(e.message.split(tmp).join(target));
    throw ioError(target, 'cannot write LoRA-MoE directory', e);
  }
  const old = `${target}.old-${process.pid}`;
  try {
    if (fs.existsSync(target)) {
      fs.rmSync(old, { recursive: true, force: true });
      fs.renameSync(target, old);
    }
    fs.renameSync(tmp, target);
  } catch (e) {
    if (!fs.existsSync(target) && fs.existsSync(old)) fs.renameSync(old, target);
    fs.rmSync(tmp, { recursive: true, force: true });
    throw ioError(target, 'cannot move LoRA-MoE directory into place', e);
  }
  fs.rmSync(old, { recursive: true, force: true });
  fsyncDir(path.dirname(target));
}

export function isLoraMoeDir(dir: string): boolean {
  return fs.existsSync(path.join(dir, LORA_MOE_FILE));
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw ioError(file, 'cannot read', e);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw fileError(file, `invalid JSON: ${(e as Error).message}`);
  }
}

/** moe.json, checked field by field (errors name the file and field). */
export function parseLoraMoeManifest(json: unknown, file: string): LoraMoeManifest {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw fileError(file, 'not a JSON object');
  const o = json as Record<string, unknown>;
  const err = (f: string, m: string) => fileError(file, `${f}: ${m}`);
  if (o['format'] !== LORA_MOE_FORMAT) throw err('format', `expected "${LORA_MOE_FORMAT}"`);
  if (o['version'] !== 1)
    throw err('version', `unsupported version ${JSON.stringify(o['version'])} (only 1)`);
  const int = (f: string): number => {
    const v = o[f];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
      throw err(f, 'must be a positive integer');
    return v;
  };
  const relPath = (f: string, v: unknown): string => {
    if (typeof v !== 'string' || v === '' || path.isAbsolute(v) || v.split(/[\\/]/).includes('..')) {
      throw err(f, 'must be a relative path inside the MoE directory');
    }
    return v;
  };
  const n = int('num_experts');
  const topK = int('top_k');
  if (topK > n) throw err('top_k', `${topK} is more than num_experts ${n}`);
  const coef = o['router_aux_loss_coef'] ?? 0.01;
  if (typeof coef !== 'number' || !Number.isFinite(coef) || coef < 0)
    throw err('router_aux_loss_coef', 'must be >= 0');
  const ex = o['experts'];
  if (!Array.isArray(ex) || ex.length !== n) throw err('experts', `must list ${n} adapter directories`);
  const r = o['router'] as Record<string, unknown> | undefined;
  if (typeof r !== 'object' || r === null) throw err('router', 'must be an object');
  const tensor = r['tensor'];
  const shp = Array.isArray(r['shape']) ? (r['shape'] as unknown[]) : [];
  if (typeof tensor !== 'string' || !tensor.includes('{layer}'))
    throw err('router.tensor', 'must contain "{layer}"');
  const l = o['lora'] as Record<string, unknown> | undefined;
  if (typeof l !== 'object' || l === null) throw err('lora', 'must be an object');
  const spec = parsePeftAdapterConfig(l, `${file} (lora)`);
  return {
    format: LORA_MOE_FORMAT,
    version: 1,
    description: typeof o['description'] === 'string' ? o['description'] : '',
    base_model: relPath('base_model', o['base_model']),
    num_experts: n,
    top_k: topK,
    router_aux_loss_coef: coef,
    experts: ex.map((v, i) => relPath(`experts[${i}]`, v)),
    router: {
      file: relPath('router.file', r['file']),
      tensor,
      // checked against the base model's hidden size when the routers are read
      shape: [n, typeof shp[1] === 'number' ? shp[1] : 0],
    },
    lora: { r: spec.r, lora_alpha: spec.alpha, target_modules: spec.targets },
  };
}

export interface LoadedLoraMoe {
  cfg: LlamaConfig;
  /** The base model's weights (the experts' shared W0). */
  weights: Weights;
  moe: MoeWeights;
  spec: MoeSpec;
  manifest: LoraMoeManifest;
  tokenizer: Tokenizer | null;
  dir: string;
  mlp(opts?: MoeHookOptions): MlpHook;
  dispose(): void;
}

function sameSpec(a: LoraSpec, b: LoraSpec): boolean {
  return a.r === b.r && a.alpha === b.alpha && [...a.targets].sort().join() === [...b.targets].sort().join();
}

export async function loadLoraMoe(dir: string): Promise<LoadedLoraMoe> {
  const mfile = path.join(dir, LORA_MOE_FILE);
  const manifest = parseLoraMoeManifest(readJson(mfile), mfile);
  const loraSpec: LoraSpec = {
    r: manifest.lora.r,
    alpha: manifest.lora.lora_alpha,
    targets: manifest.lora.target_modules,
  };
  const spec: MoeSpec = {
    numExperts: manifest.num_experts,
    topK: manifest.top_k,
    kind: 'lora',
    lora: loraSpec,
  };
  try {
    validateMoeSpec(spec, `${mfile} (lora)`);
  } catch (e) {
    throw new UserError((e as Error).message);
  }
  const base = await loadModel(path.join(dir, manifest.base_model));
  try {
    const cfg = base.cfg;
    const host: MoeHost = { routers: [], lora: [] };
    for (const rel of manifest.experts) {
      const adir = path.join(dir, rel);
      const cfile = path.join(adir, ADAPTER_CONFIG);
      const aspec = parsePeftAdapterConfig(readJson(cfile), cfile);
      if (!sameSpec(aspec, loraSpec)) {
        throw fileError(cfile, `r/lora_alpha/target_modules differ from ${LORA_MOE_FILE}'s lora section`);
      }
      const wfile = path.join(adir, ADAPTER_WEIGHTS);
      const f = SafetensorsFile.open(wfile);
      try {
        host.lora!.push(
          loraFromPeftTensors(
            cfg,
            loraSpec,
            { names: () => f.entries.keys(), read: (n) => f.read(n) },
            wfile,
          ),
        );
      } finally {
        f.close();
      }
    }
    const rfile = path.join(dir, manifest.router.file);
    const rf = SafetensorsFile.open(rfile);
    try {
      const shape = [spec.numExperts, cfg.hiddenSize];
      for (let i = 0; i < cfg.numLayers; i++) {
        const name = manifest.router.tensor.replace('{layer}', String(i));
        if (!rf.entries.has(name))
          throw fileError(rfile, `missing tensor ${name} (shape [${shape.join(', ')}])`);
        const t = rf.read(name);
        checkTensor(name, t, shape, rfile);
        host.routers.push(t);
      }
      if (rf.entries.size !== cfg.numLayers) {
        throw fileError(rfile, `expected ${cfg.numLayers} router tensors, found ${rf.entries.size}`);
      }
    } finally {
      rf.close();
    }
    const moe = moeFromHost(spec, host);
    manifest.router.shape = [spec.numExperts, cfg.hiddenSize];
    return {
      cfg,
      weights: base.weights,
      moe,
      spec,
      manifest,
      tokenizer: base.tokenizer,
      dir,
      mlp: (opts) => moeMlpHook(cfg, base.weights, moe, spec, opts),
      dispose: () => {
        base.dispose();
        disposeMoe(moe);
      },
    };
  } catch (e) {
    base.dispose();
    throw e;
  }
}
