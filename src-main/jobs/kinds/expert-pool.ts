/**
 * Expert pools on disk and in the database, shared by the stages after Stage 1.
 *
 * An expert directory is laid out like a Stage 1 checkpoint: `params.safetensors` (LoRA mode: the
 * PEFT-named A/B factors, with `adapter_config.json`; FFN mode: the MLP weights under HF names)
 * and `config.json`. A run that owns a pool (expand, route) lists it with `setExperts`; each
 * expert's `path` points at its params.safetensors (inside a prepare run's checkpoints for
 * un-merged sources). `resolvePool` walks from such a run back to the prepare run that started
 * the chain (expand → prepare, route → expand → prepare) for the base model, mode and data.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { embeddedBaseModelDir } from '../../common/paths.js';
import { fileError, UserError } from '../../common/errors.js';
import { fsyncDir, writeFileAtomic } from '../../io/atomic.js';
import type { HostTensor } from '../../io/host-tensor.js';
import { SafetensorsFile, writeSafetensors } from '../../io/safetensors.js';
import { parseLlamaConfig, type LlamaConfig } from '../../model/config.js';
import {
  loraFromPeftTensors,
  loraToPeftTensors,
  parsePeftAdapterConfig,
  peftAdapterConfig,
  type LoraSpec,
} from '../../model/lora.js';
import { isMlpWeight } from '../../train/llama-trainable.js';
import { projShape, type MLP_PROJ } from '../../model/params.js';
import type { Expert, Run, Store } from '../../store/index.js';
import { resolveInWorkspace } from '../../store/index.js';
import type { TensorSource } from '../../upit/expand.js';
import type { BaseModel, ExpertWeights } from '../../upit/route.js';
import { loadModel } from '../../model/load.js';
import { DataConfig } from './catalog.js';

export function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    throw fileError(file, 'cannot read');
  }
}

export function readJson(file: string): unknown {
  const text = readText(file);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw fileError(file, `invalid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** A safetensors file as a lazily read TensorSource. */
export function fileSource(f: SafetensorsFile): TensorSource & { entry(name: string): { shape: number[] } } {
  return {
    dir: f.path,
    names: () => [...f.entries.keys()],
    has: (n) => f.entries.has(n),
    read: (n) => f.read(n),
    entry: (n) => {
      const e = f.entries.get(n);
      if (!e) throw fileError(f.path, `no tensor named ${JSON.stringify(n)}`);
      return { shape: [...e.shape] };
    },
  };
}

export function expertDirName(idx: number): string {
  return `expert-${String(idx).padStart(2, '0')}`;
}

/** Writes one expert directory atomically (assembled under a temporary name, then renamed). */
export function writeExpertDir(
  finalDir: string,
  tensors: Map<string, HostTensor>,
  files: Record<string, string>,
  metadata: Record<string, string>,
): void {
  const root = dirname(finalDir);
  mkdirSync(root, { recursive: true });
  const tmp = `${finalDir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    writeSafetensors(join(tmp, 'params.safetensors'), tensors, { dtype: 'F32', metadata });
    for (const [name, content] of Object.entries(files)) writeFileAtomic(join(tmp, name), content);
    rmSync(finalDir, { recursive: true, force: true });
    renameSync(tmp, finalDir);
    fsyncDir(root);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** The files of an expert directory for one expert's weights. */
export function expertFiles(
  e: ExpertWeights,
  configText: string,
  baseDir: string,
): { tensors: Map<string, HostTensor>; files: Record<string, string> } {
  if (e.kind === 'ffn') return { tensors: e.mlp, files: { 'config.json': configText } };
  return {
    tensors: loraToPeftTensors(e.lora),
    files: {
      'config.json': configText,
      'adapter_config.json': JSON.stringify(peftAdapterConfig(e.spec, baseDir), null, 2) + '\n',
    },
  };
}

/** What the stages after Stage 1 take from the prepare run a chain starts from. */
export interface PrepareInfo {
  prepareRun: Run;
  mode: 'lora' | 'ffn';
  /** The LoRA spec the prepare run recorded (each expert's adapter_config.json wins). */
  lora: LoraSpec | null;
  baseDir: string;
  /** The prepare run's instruction data. */
  data: DataConfig;
  /** The prepare run's learning rate (its default when it set none). */
  prepareLr: number;
}

export interface PoolInfo extends PrepareInfo {
  /** The run that owns the pool (expand or route). */
  poolRun: Run;
  /** The pool, by idx. */
  experts: Expert[];
}

const POOL_KINDS = new Set(['expand', 'route']);

/** A finished lora/ffn prepare run's base, mode, LoRA spec, data and LR; errors name `field`. */
export function resolvePrepareRun(run: Run, field: string): PrepareInfo {
  const bad = (msg: string) => new UserError(`${field}: ${msg}`);
  if (run.kind !== 'prepare') throw bad(`run ${run.id} is a ${run.kind} run, not a prepare (Stage 1) run`);
  if (run.status !== 'done') throw bad(`prepare run ${run.id} is ${run.status}, not done`);
  const rc = run.config;
  if (rc['mode'] === 'full')
    throw bad(
      `prepare run ${run.id} fine-tuned every weight (mode full): a dense baseline, not a source of experts`,
    );
  const mode = rc['mode'] === 'ffn' ? 'ffn' : 'lora';
  let lora: LoraSpec | null = null;
  const lr = rc['lora'];
  if (mode === 'lora' && lr && typeof lr === 'object' && !Array.isArray(lr)) {
    const o = lr as Record<string, unknown>;
    if (typeof o['r'] === 'number' && typeof o['alpha'] === 'number' && Array.isArray(o['targets']))
      lora = { r: o['r'], alpha: o['alpha'], targets: o['targets'].map(String) };
  }
  const data = DataConfig.safeParse(rc['data']);
  if (!data.success) throw bad(`prepare run ${run.id} records no usable data config`);
  return {
    prepareRun: run,
    mode,
    lora,
    baseDir: resolve(typeof rc['base'] === 'string' ? rc['base'] : embeddedBaseModelDir()),
    data: data.data,
    prepareLr: typeof rc['lr'] === 'number' ? rc['lr'] : mode === 'lora' ? 2e-4 : 2e-5,
  };
}

/** The run's pool and the chain behind it; throws a UserError naming `field` when unusable. */
export function resolvePool(store: Store, wsDir: string, runId: number, field: string): PoolInfo {
  const bad = (msg: string) => new UserError(`${field}: ${msg}`);
  const run = store.getRun(runId);
  if (!run) throw bad(`run ${runId} is not in the workspace ${wsDir}`);
  if (!POOL_KINDS.has(run.kind))
    throw bad(`run ${run.id} is a ${run.kind} run; it must be an expand (Stage 2) or route (Stage 3) run`);
  if (run.status !== 'done') throw bad(`${run.kind} run ${run.id} is ${run.status}, not done`);
  const experts = store.listExperts(run.id).sort((a, b) => a.idx - b.idx);
  if (experts.length < 2)
    throw bad(`${run.kind} run ${run.id} has ${experts.length} expert(s); an MoE needs ≥ 2`);

  let cur = run;
  for (let hops = 0; cur.kind !== 'prepare'; hops++) {
    const key = cur.kind === 'expand' ? 'prepareRun' : 'poolRun';
    const next = cur.config[key];
    const prev = typeof next === 'number' ? store.getRun(next) : undefined;
    if (!prev || hops > 8) throw bad(`cannot trace ${cur.kind} run ${cur.id} back to its prepare run`);
    cur = prev;
  }
  for (const e of experts) {
    if (!e.path) throw bad(`expert ${e.idx} of run ${run.id} has no file`);
    const file = resolveInWorkspace(wsDir, e.path);
    if (!existsSync(file)) throw fileError(file, `expert ${e.idx} of run ${run.id} is missing on disk`);
  }
  return { ...resolvePrepareRun(cur, field), poolRun: run, experts };
}

/** The directory holding an expert's params.safetensors. */
export function expertDir(wsDir: string, e: Expert): string {
  return dirname(resolveInWorkspace(wsDir, e.path!));
}

/** The model config an expert directory records. */
export function expertConfig(dir: string): { cfg: LlamaConfig; text: string } {
  const file = join(dir, 'config.json');
  const text = readText(file);
  return { cfg: parseLlamaConfig(readJson(file), file), text };
}

/** One expert's weights from its directory (shapes checked against `cfg`). */
export function readExpert(
  dir: string,
  mode: 'lora' | 'ffn',
  cfg: LlamaConfig,
  fallback: LoraSpec | null,
): ExpertWeights {
  const file = join(dir, 'params.safetensors');
  const f = SafetensorsFile.open(file);
  try {
    if (mode === 'lora') {
      const acPath = join(dir, 'adapter_config.json');
      const spec = existsSync(acPath) ? parsePeftAdapterConfig(readJson(acPath), acPath) : fallback;
      if (!spec) throw fileError(acPath, 'missing, and the prepare run records no LoRA spec');
      return { kind: 'lora', spec, lora: loraFromPeftTensors(cfg, spec, fileSource(f), file) };
    }
    const mlp = new Map<string, HostTensor>();
    for (const name of f.entries.keys()) {
      const m = /^model\.layers\.(\d+)\.mlp\.((?:gate|up|down)_proj)\.weight$/.exec(name);
      if (!m || !isMlpWeight(name) || Number(m[1]) >= cfg.numLayers)
        throw fileError(file, `unexpected tensor ${name} in an FFN expert`);
      const t = f.read(name);
      const want = projShape(cfg, m[2] as (typeof MLP_PROJ)[number]);
      if (t.shape.length !== 2 || t.shape[0] !== want[0] || t.shape[1] !== want[1])
        throw fileError(
          file,
          `tensor ${name} has shape [${t.shape.join(', ')}], expected [${want.join(', ')}]`,
        );
      mlp.set(name, t);
    }
    if (mlp.size !== 3 * cfg.numLayers)
      throw fileError(file, `an FFN expert needs ${3 * cfg.numLayers} MLP tensors, found ${mlp.size}`);
    return { kind: 'ffn', mlp };
  } finally {
    f.close();
  }
}

/** The base model θ0 on the host, with its tokenizer (required: the stages tokenize data). */
export async function loadBaseModel(dir: string): Promise<BaseModel> {
  const loaded = await loadModel(dir);
  try {
    if (!loaded.tokenizer)
      throw new UserError(`${dir}: no tokenizer.json, cannot tokenize the instruction data`);
    const weights = new Map<string, HostTensor>();
    for (const [name, t] of loaded.weights)
      weights.set(name, { shape: [...t.shape], data: Float32Array.from(t.dataSync()) });
    return { cfg: loaded.cfg, weights, tokenizer: loaded.tokenizer };
  } finally {
    loaded.dispose();
  }
}
