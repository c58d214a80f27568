/**
 * LoRA on chosen projections: y = W0 x + (α/r)·B A x, A [r, in], B [out, r].
 * Initialisation as PEFT: A ~ kaiming_uniform(a=√5) = U(±1/√in), B = 0 (so a fresh
 * adapter leaves the model unchanged). Saved with PEFT's names and adapter_config.json.
 */
import { fileError } from '../common/errors.js';
import type { Rng } from '../common/rng.js';
import type { HostTensor } from '../io/host-tensor.js';
import { tf } from '../tensor/tf.js';
import { linear } from '../tensor/ops.js';
import type { LlamaConfig } from './config.js';
import { ATTN_PROJ, MLP_PROJ, projModule, projShape, type ProjName } from './params.js';

export interface LoraSpec {
  r: number;
  alpha: number;
  /** Projection names, e.g. ['gate_proj', 'up_proj', 'down_proj'] or attention ones. */
  targets: string[];
}

/** Keyed by module name, e.g. 'model.layers.0.mlp.gate_proj'. A [r, in], B [out, r]. */
export interface LoraState {
  spec: LoraSpec;
  A: Map<string, tf.Tensor>;
  B: Map<string, tf.Tensor>;
}

export interface LoraHost {
  A: Map<string, HostTensor>;
  B: Map<string, HostTensor>;
}

export const DEFAULT_LORA: LoraSpec = { r: 8, alpha: 16, targets: ['gate_proj', 'up_proj', 'down_proj'] };
const ALL_PROJ: readonly string[] = [...ATTN_PROJ, ...MLP_PROJ];

export function loraScale(spec: LoraSpec): number {
  return spec.alpha / spec.r;
}

export function validateLoraSpec(spec: LoraSpec, where = 'lora'): void {
  if (!Number.isSafeInteger(spec.r) || spec.r < 1)
    throw fileError(where, `r must be a positive integer, got ${spec.r}`);
  if (!Number.isFinite(spec.alpha) || spec.alpha <= 0) {
    throw fileError(where, `alpha must be a positive number, got ${spec.alpha}`);
  }
  if (spec.targets.length === 0) throw fileError(where, 'targets must name at least one projection');
  for (const t of spec.targets) {
    if (!ALL_PROJ.includes(t))
      throw fileError(where, `unknown LoRA target "${t}" (one of ${ALL_PROJ.join(', ')})`);
  }
}

/** Every adapted module of the model with its A and B shapes. */
export function loraModules(
  cfg: LlamaConfig,
  spec: LoraSpec,
): { module: string; a: number[]; b: number[] }[] {
  const out: { module: string; a: number[]; b: number[] }[] = [];
  for (let i = 0; i < cfg.numLayers; i++) {
    for (const p of ALL_PROJ) {
      if (!spec.targets.includes(p)) continue;
      const [o, inn] = projShape(cfg, p as ProjName);
      out.push({ module: projModule(i, p as ProjName), a: [spec.r, inn], b: [o, spec.r] });
    }
  }
  return out;
}

/** PEFT init: A ~ U(-1/√in, 1/√in) (kaiming_uniform with a=√5), B = 0. */
export function initLora(cfg: LlamaConfig, spec: LoraSpec, rng: Rng): LoraHost {
  validateLoraSpec(spec);
  const A = new Map<string, HostTensor>();
  const B = new Map<string, HostTensor>();
  for (const { module, a, b } of loraModules(cfg, spec)) {
    const bound = 1 / Math.sqrt(a[1]!);
    const da = new Float32Array(a[0]! * a[1]!);
    for (let j = 0; j < da.length; j++) da[j] = (2 * rng.next() - 1) * bound;
    A.set(module, { shape: a, data: da });
    B.set(module, { shape: b, data: new Float32Array(b[0]! * b[1]!) });
  }
  return { A, B };
}

/** TF tensors (variables when `trainable`) for host LoRA factors. */
export function loraState(spec: LoraSpec, host: LoraHost, trainable = false): LoraState {
  const mk = (h: HostTensor, name: string): tf.Tensor =>
    trainable
      ? tf.variable(tf.tensor(h.data, h.shape, 'float32'), true, name)
      : tf.tensor(h.data, h.shape, 'float32');
  const A = new Map<string, tf.Tensor>();
  const B = new Map<string, tf.Tensor>();
  for (const [m, h] of host.A) A.set(m, mk(h, `${m}.lora_A`));
  for (const [m, h] of host.B) B.set(m, mk(h, `${m}.lora_B`));
  return { spec, A, B };
}

export function disposeLora(state: LoraState): void {
  for (const t of state.A.values()) t.dispose();
  for (const t of state.B.values()) t.dispose();
}

/** ΔW = (α/r)·B·A, [out, in], for one module (a new tensor; the caller disposes it). */
export function loraDelta(state: LoraState, module: string): tf.Tensor {
  const A = state.A.get(module);
  const B = state.B.get(module);
  if (!A || !B) throw new Error(`no LoRA factors for ${module}`);
  return tf.tidy(() => tf.mul(linear(B, tf.transpose(A)), loraScale(state.spec)));
}

/** ΔW on the host (no TensorFlow.js): (α/r)·B·A. */
export function loraDeltaHost(spec: LoraSpec, A: HostTensor, B: HostTensor): HostTensor {
  const [r, inn] = A.shape as [number, number];
  const [out] = B.shape as [number, number];
  const s = loraScale(spec);
  const d = new Float32Array(out * inn);
  for (let o = 0; o < out; o++) {
    for (let k = 0; k < r; k++) {
      const b = B.data[o * r + k]! * s;
      if (b === 0) continue;
      const row = o * inn;
      const arow = k * inn;
      for (let j = 0; j < inn; j++) d[row + j]! += b * A.data[arow + j]!;
    }
  }
  return { shape: [out, inn], data: d };
}

// ---- PEFT format ----------------------------------------------------------------------

const PEFT_PREFIX = 'base_model.model.';

export function peftTensorName(module: string, which: 'A' | 'B'): string {
  return `${PEFT_PREFIX}${module}.lora_${which}.weight`;
}

/** adapter_config.json content (PEFT LoraConfig). */
export function peftAdapterConfig(spec: LoraSpec, baseModel: string | null = null): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModel,
    r: spec.r,
    lora_alpha: spec.alpha,
    lora_dropout: 0.0,
    target_modules: [...spec.targets],
    bias: 'none',
    fan_in_fan_out: false,
    use_rslora: false,
    use_dora: false,
    init_lora_weights: true,
    inference_mode: true,
    modules_to_save: null,
  };
}

/** LoraSpec from adapter_config.json; unsupported PEFT features are errors naming the field. */
export function parsePeftAdapterConfig(json: unknown, file: string): LoraSpec {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw fileError(file, 'must be a JSON object');
  const o = json as Record<string, unknown>;
  const err = (field: string, msg: string) => fileError(file, `${field}: ${msg}`);
  if (o['peft_type'] !== undefined && o['peft_type'] !== 'LORA') {
    throw err('peft_type', `unsupported ${JSON.stringify(o['peft_type'])} (only "LORA")`);
  }
  const r = o['r'];
  if (typeof r !== 'number' || !Number.isSafeInteger(r) || r < 1)
    throw err('r', 'must be a positive integer');
  const alpha = o['lora_alpha'] ?? r;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha <= 0) {
    throw err('lora_alpha', 'must be a positive number');
  }
  const tm = o['target_modules'];
  let targets: string[];
  if (typeof tm === 'string') targets = [tm];
  else if (Array.isArray(tm) && tm.every((t) => typeof t === 'string')) targets = tm as string[];
  else throw err('target_modules', 'must be a list of projection names');
  for (const t of targets) {
    if (!ALL_PROJ.includes(t))
      throw err('target_modules', `unsupported module "${t}" (one of ${ALL_PROJ.join(', ')})`);
  }
  for (const f of ['use_rslora', 'use_dora', 'fan_in_fan_out']) {
    if (o[f] === true) throw err(f, 'is not supported (must be false)');
  }
  if (o['bias'] !== undefined && o['bias'] !== 'none') throw err('bias', 'only "none" is supported');
  for (const f of ['rank_pattern', 'alpha_pattern']) {
    const v = o[f];
    if (v !== undefined && v !== null && (typeof v !== 'object' || Object.keys(v).length > 0)) {
      throw err(f, 'per-module ranks/alphas are not supported');
    }
  }
  const ltt = o['layers_to_transform'];
  if (ltt !== undefined && ltt !== null) throw err('layers_to_transform', 'is not supported (must be null)');
  return { r, alpha, targets };
}

/** PEFT tensors (base_model.model.<module>.lora_A.weight / lora_B.weight) from a LoRA state. */
export function loraToPeftTensors(state: LoraState | LoraHost): Map<string, HostTensor> {
  const host = (t: tf.Tensor | HostTensor): HostTensor =>
    t instanceof tf.Tensor ? { shape: [...t.shape], data: Float32Array.from(t.dataSync()) } : t;
  const out = new Map<string, HostTensor>();
  for (const [m, a] of state.A) {
    const b = state.B.get(m);
    if (!b) throw new Error(`LoRA module ${m} has A but no B`);
    out.set(peftTensorName(m, 'A'), host(a));
    out.set(peftTensorName(m, 'B'), host(b));
  }
  return out;
}

/**
 * LoRA factors from PEFT tensors: every adapted module must be present with the right shapes
 * (errors name the tensor and `file`); unexpected tensors are errors too.
 */
export function loraFromPeftTensors(
  cfg: LlamaConfig,
  spec: LoraSpec,
  source: { names(): Iterable<string>; read(name: string): HostTensor },
  file: string,
): LoraHost {
  validateLoraSpec(spec, file);
  const names = new Set(source.names());
  const A = new Map<string, HostTensor>();
  const B = new Map<string, HostTensor>();
  const expected = new Set<string>();
  for (const { module, a, b } of loraModules(cfg, spec)) {
    for (const [which, shape, map] of [
      ['A', a, A],
      ['B', b, B],
    ] as const) {
      // PEFT sometimes keeps the adapter name in the key (".lora_A.default.weight").
      const plain = peftTensorName(module, which);
      const named = plain.replace(/\.weight$/, '.default.weight');
      const name = names.has(plain) ? plain : names.has(named) ? named : null;
      if (name === null) throw fileError(file, `missing LoRA tensor ${plain}`);
      expected.add(name);
      const t = source.read(name);
      if (t.shape.length !== 2 || t.shape[0] !== shape[0] || t.shape[1] !== shape[1]) {
        throw fileError(
          file,
          `tensor ${name} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`,
        );
      }
      if (!t.data.every(Number.isFinite)) throw fileError(file, `tensor ${name} contains NaN or Inf`);
      map.set(module, t);
    }
  }
  for (const n of names) if (!expected.has(n)) throw fileError(file, `unexpected tensor ${n}`);
  return { A, B };
}
