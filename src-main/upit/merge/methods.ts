/**
 * Merge methods as small registered functions over one tensor (mergekit's design): each takes
 * the base θ0, the models θ_1..θ_m (same length) and validated parameters, and returns the
 * merged tensor. Task vectors are δ_i = θ_i − θ0. Arithmetic is in float64 per element, rounded
 * once to float32 at the end; the work runs in chunks of a few thousand elements so the scratch
 * is small whatever the tensor size.
 *
 * - `linear`:          Σ w_i θ_i, divided by Σ w_i when `normalize` (default). The base is not
 *                      used (list it among the models to include it).
 * - `task_arithmetic`: θ0 + λ Σ w_i δ_i (divided by Σ w_i when `normalize`, default off).
 * - `ties`:            TIES-merging as mergekit computes it: trim each δ_i to its top-`density`
 *                      entries by magnitude (⌊density·n⌋, at least 1; ties at the threshold kept
 *                      in index order), weight τ_i = w_i·trim(δ_i); elect the sign per entry as
 *                      sign(Σ_i τ_i) (+ when the sum is 0); disjoint mean: θ0 + λ·Σ_{i∈A} τ_i /
 *                      Σ_{i∈A} w_i over the models A whose τ_i is nonzero with the elected sign
 *                      (the division only when `normalize`, default on; an entry with A = ∅
 *                      keeps θ0).
 * - `dare_linear`:     DARE on each δ_i (drop p, rescale 1/(1−p) or by L1 norm), then
 *                      θ0 + λ Σ w_i DARE(δ_i) (÷ Σ w_i when `normalize`, default off).
 * - `dare_ties`:       DARE on each δ_i instead of the magnitude trim, then TIES's sign election
 *                      and sum over agreeing entries (÷ Σ_{i∈A} w_i when `normalize`, default off).
 *
 * Every tensor (1-D norm weights and embeddings included) is merged the same way: safetensors
 * models hold only floating tensors here (F32/F16/BF16 are read as float32).
 *
 * DARE masks: model i's mask on tensor `name` is drawn from `Rng.derive(seed, "dare/i/name")`
 * (see sparsify.ts), so a merge is reproducible from its seed and independent of tensor order.
 */
import { fileError, UserError } from '../../common/errors.js';
import {
  CHUNK,
  dareL1Factor,
  MaskStream,
  planTrim,
  TrimStream,
  trimCount,
  type DareRescale,
} from './sparsify.js';

export const MERGE_METHOD_NAMES = ['linear', 'task_arithmetic', 'ties', 'dare_linear', 'dare_ties'] as const;
export type MergeMethodName = (typeof MERGE_METHOD_NAMES)[number];

/** Validated parameters of a merge (the ones a method does not use keep their defaults). */
export interface MergeParams {
  /** One weight per model; null = 1 for every model. */
  weights: number[] | null;
  /** λ, the scale of the merged task vector. */
  lambda: number;
  normalize: boolean;
  /** TIES: fraction of each task vector kept by magnitude, in (0, 1]. */
  density: number;
  /** DARE: drop probability p, in [0, 1). */
  drop: number;
  /** DARE: 'inverse' = ×1/(1−p), 'l1' = ×‖δ‖₁/‖m⊙δ‖₁, 'none' = no rescale. */
  rescale: DareRescale;
}

/** Which tensor is merged, for the DARE mask streams and for error messages. */
export interface TensorContext {
  name: string;
  seed: number;
}

/** A parameter as data (the GUI renders these; `validate` enforces them). */
export type ParamSpec =
  | { name: 'weights'; type: 'weights'; doc: string }
  | {
      name: 'lambda' | 'density' | 'drop';
      type: 'number';
      default: number;
      min: number;
      max: number;
      minExclusive?: boolean;
      maxExclusive?: boolean;
      doc: string;
    }
  | { name: 'normalize'; type: 'boolean'; default: boolean; doc: string }
  | { name: 'rescale'; type: 'enum'; values: readonly DareRescale[]; default: DareRescale; doc: string };

export interface MergeMethod {
  name: MergeMethodName;
  doc: string;
  /** Whether θ0's values enter the result (linear ignores them). */
  usesBase: boolean;
  /** Whether the method draws random masks (needs a seed). */
  random: boolean;
  params: readonly ParamSpec[];
  /** Check raw parameters (unknown keys, types, ranges; weights against `modelCount` when given). */
  validate(raw: Readonly<Record<string, unknown>>, modelCount?: number): MergeParams;
  mergeTensor(
    base: Float32Array,
    models: readonly Float32Array[],
    params: MergeParams,
    ctx: TensorContext,
  ): Float32Array;
}

const DEFAULTS: MergeParams = {
  weights: null,
  lambda: 1,
  normalize: false,
  density: 0.2,
  drop: 0.5,
  rescale: 'inverse',
};

const P_WEIGHTS: ParamSpec = {
  name: 'weights',
  type: 'weights',
  doc: 'one weight per model (default 1 each)',
};
const P_LAMBDA: ParamSpec = {
  name: 'lambda',
  type: 'number',
  default: 1,
  min: -1e6,
  max: 1e6,
  doc: 'scale λ of the merged task vector',
};
const normalizeSpec = (def: boolean, doc: string): ParamSpec => ({
  name: 'normalize',
  type: 'boolean',
  default: def,
  doc,
});
const P_DENSITY: ParamSpec = {
  name: 'density',
  type: 'number',
  default: 0.2,
  min: 0,
  max: 1,
  minExclusive: true,
  doc: 'fraction of each task vector kept by magnitude (TIES trim)',
};
const P_DROP: ParamSpec = {
  name: 'drop',
  type: 'number',
  default: 0.5,
  min: 0,
  max: 1,
  maxExclusive: true,
  doc: 'DARE drop probability p',
};
const P_RESCALE: ParamSpec = {
  name: 'rescale',
  type: 'enum',
  values: ['inverse', 'l1', 'none'],
  default: 'inverse',
  doc: 'rescale of kept DARE entries: 1/(1−p), L1-norm preserving, or none',
};

function validator(method: MergeMethodName, specs: readonly ParamSpec[]): MergeMethod['validate'] {
  return (raw, modelCount) => {
    const out: MergeParams = { ...DEFAULTS };
    const err = (field: string, msg: string) => fileError(`${method}.${field}`, msg);
    const known = new Map(specs.map((s) => [s.name as string, s]));
    for (const key of Object.keys(raw)) {
      if (!known.has(key)) {
        throw new UserError(
          `merge method ${method} has no parameter "${key}" (it takes ${specs.map((s) => s.name).join(', ')})`,
        );
      }
    }
    for (const s of specs) {
      const v = raw[s.name];
      switch (s.type) {
        case 'weights': {
          if (v === undefined || v === null) break;
          if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isFinite(x)))
            throw err('weights', 'must be a list of finite numbers');
          if (modelCount !== undefined && v.length !== modelCount)
            throw err('weights', `has ${v.length} entries for ${modelCount} models`);
          out.weights = [...(v as number[])];
          break;
        }
        case 'number': {
          const x = v === undefined ? s.default : v;
          if (typeof x !== 'number' || !Number.isFinite(x))
            throw err(s.name, `must be a number, got ${String(x)}`);
          const lo = s.minExclusive ? x <= s.min : x < s.min;
          const hi = s.maxExclusive ? x >= s.max : x > s.max;
          if (lo || hi) {
            const range = `${s.minExclusive ? '(' : '['}${s.min}, ${s.max}${s.maxExclusive ? ')' : ']'}`;
            throw err(s.name, `must be in ${range}, got ${x}`);
          }
          out[s.name] = x;
          break;
        }
        case 'boolean': {
          const x = v === undefined ? s.default : v;
          if (typeof x !== 'boolean') throw err(s.name, `must be true or false, got ${String(x)}`);
          out.normalize = x;
          break;
        }
        case 'enum': {
          const x = v === undefined ? s.default : v;
          if (typeof x !== 'string' || !(s.values as readonly string[]).includes(x))
            throw err(s.name, `must be one of ${s.values.join(', ')}, got ${String(x)}`);
          out.rescale = x as DareRescale;
          break;
        }
      }
    }
    return out;
  };
}

// ---- the per-tensor engine ------------------------------------------------------------------

function checkInputs(
  base: Float32Array,
  models: readonly Float32Array[],
  p: MergeParams,
  ctx: TensorContext,
) {
  if (models.length === 0) throw new UserError(`tensor ${JSON.stringify(ctx.name)}: no models to merge`);
  models.forEach((x, i) => {
    if (x.length !== base.length) {
      throw new UserError(
        `tensor ${JSON.stringify(ctx.name)}: model ${i} has ${x.length} values, the base ${base.length}`,
      );
    }
  });
  if (p.weights !== null && p.weights.length !== models.length) {
    throw new UserError(`merge weights: ${p.weights.length} weights for ${models.length} models`);
  }
  return p.weights ?? models.map(() => 1);
}

type Sparsify = 'none' | 'dare' | 'trim';

/** Per-model sparsifier state for one tensor; `coef` is the weight times the DARE rescale. */
interface Producer {
  coef: number;
  mask: MaskStream | null;
  trim: TrimStream | null;
}

function producers(
  base: Float32Array,
  models: readonly Float32Array[],
  w: readonly number[],
  p: MergeParams,
  ctx: TensorContext,
  how: Sparsify,
): Producer[] {
  return models.map((x, i) => {
    const pr: Producer = { coef: w[i]!, mask: null, trim: null };
    if (how === 'dare') {
      const mask = MaskStream.forTensor(ctx.seed, i, ctx.name, p.drop);
      pr.mask = mask;
      if (p.rescale === 'inverse') pr.coef = w[i]! * (1 / (1 - p.drop));
      else if (p.rescale === 'l1') pr.coef = w[i]! * dareL1Factor(x, base, mask);
    } else if (how === 'trim') {
      pr.trim = new TrimStream(planTrim(x, base, trimCount(base.length, p.density)));
    }
    return pr;
  });
}

/** dst[t] = coef · keep_t · (x − b) for elements off..off+len. */
function produce(
  pr: Producer,
  x: Float32Array,
  base: Float32Array,
  off: number,
  len: number,
  dst: Float64Array,
  row: number,
  keep: Uint8Array,
): void {
  const c = pr.coef;
  if (pr.mask === null && pr.trim === null) {
    for (let t = 0; t < len; t++) dst[row + t] = c * (x[off + t]! - base[off + t]!);
    return;
  }
  if (pr.mask !== null) pr.mask.fill(keep, len);
  else pr.trim!.fill(keep, x, base, off, len);
  for (let t = 0; t < len; t++) dst[row + t] = keep[t] === 1 ? c * (x[off + t]! - base[off + t]!) : 0;
}

/** θ0 + λ·Σ_i coef_i·sparsify(δ_i) (÷ Σ w_i when normalize). */
function sumMerge(
  base: Float32Array,
  models: readonly Float32Array[],
  p: MergeParams,
  ctx: TensorContext,
  how: Sparsify,
): Float32Array {
  const w = checkInputs(base, models, p, ctx);
  const wsum = w.reduce((a, b) => a + b, 0);
  if (p.normalize && wsum === 0) throw new UserError('merge weights sum to 0: cannot normalize');
  const scale = p.normalize ? p.lambda / wsum : p.lambda;
  const prs = producers(base, models, w, p, ctx, how);
  const n = base.length;
  const out = new Float32Array(n);
  const acc = new Float64Array(CHUNK);
  const d = new Float64Array(CHUNK);
  const keep = new Uint8Array(CHUNK);
  for (let off = 0; off < n; off += CHUNK) {
    const len = Math.min(CHUNK, n - off);
    acc.fill(0, 0, len);
    for (let i = 0; i < models.length; i++) {
      produce(prs[i]!, models[i]!, base, off, len, d, 0, keep);
      for (let t = 0; t < len; t++) acc[t]! += d[t]!;
    }
    for (let t = 0; t < len; t++) out[off + t] = base[off + t]! + scale * acc[t]!;
  }
  return out;
}

/** TIES combination: elect sign(Σ τ_i) per entry, keep the agreeing τ_i, disjoint (weighted) mean. */
function tiesMerge(
  base: Float32Array,
  models: readonly Float32Array[],
  p: MergeParams,
  ctx: TensorContext,
  how: Sparsify,
): Float32Array {
  const w = checkInputs(base, models, p, ctx);
  const m = models.length;
  const prs = producers(base, models, w, p, ctx, how);
  const n = base.length;
  const out = new Float32Array(n);
  const d = new Float64Array(m * CHUNK);
  const keep = new Uint8Array(CHUNK);
  for (let off = 0; off < n; off += CHUNK) {
    const len = Math.min(CHUNK, n - off);
    for (let i = 0; i < m; i++) produce(prs[i]!, models[i]!, base, off, len, d, i * CHUNK, keep);
    for (let t = 0; t < len; t++) {
      let s = 0;
      for (let i = 0; i < m; i++) s += d[i * CHUNK + t]!;
      const positive = s >= 0;
      let num = 0;
      let den = 0;
      for (let i = 0; i < m; i++) {
        const v = d[i * CHUNK + t]!;
        if (positive ? v > 0 : v < 0) {
          num += v;
          den += w[i]!;
        }
      }
      const mixed = p.normalize && den !== 0 ? num / den : num;
      out[off + t] = base[off + t]! + p.lambda * mixed;
    }
  }
  return out;
}

function linearMerge(
  base: Float32Array,
  models: readonly Float32Array[],
  p: MergeParams,
  ctx: TensorContext,
): Float32Array {
  const w = checkInputs(base, models, p, ctx);
  const wsum = w.reduce((a, b) => a + b, 0);
  if (p.normalize && wsum === 0) throw new UserError('merge weights sum to 0: cannot normalize');
  const inv = p.normalize ? 1 / wsum : 1;
  const n = base.length;
  const out = new Float32Array(n);
  const acc = new Float64Array(CHUNK);
  for (let off = 0; off < n; off += CHUNK) {
    const len = Math.min(CHUNK, n - off);
    acc.fill(0, 0, len);
    for (let i = 0; i < models.length; i++) {
      const x = models[i]!;
      const c = w[i]!;
      for (let t = 0; t < len; t++) acc[t]! += c * x[off + t]!;
    }
    for (let t = 0; t < len; t++) out[off + t] = acc[t]! * inv;
  }
  return out;
}

// ---- registry -------------------------------------------------------------------------------

function method(
  name: MergeMethodName,
  doc: string,
  opts: { usesBase: boolean; random: boolean },
  params: ParamSpec[],
  mergeTensor: MergeMethod['mergeTensor'],
): MergeMethod {
  return { name, doc, ...opts, params, validate: validator(name, params), mergeTensor };
}

export const MERGE_METHODS: Readonly<Record<MergeMethodName, MergeMethod>> = {
  linear: method(
    'linear',
    'Σ w_i θ_i (÷ Σ w_i when normalize); the base is not used',
    { usesBase: false, random: false },
    [P_WEIGHTS, normalizeSpec(true, 'divide by the sum of the weights')],
    linearMerge,
  ),
  task_arithmetic: method(
    'task_arithmetic',
    'θ0 + λ Σ w_i δ_i',
    { usesBase: true, random: false },
    [P_WEIGHTS, P_LAMBDA, normalizeSpec(false, 'divide Σ w_i δ_i by Σ w_i')],
    (b, ms, p, c) => sumMerge(b, ms, p, c, 'none'),
  ),
  ties: method(
    'ties',
    'trim each δ_i to its top-density magnitudes, elect signs by sum, disjoint mean of agreeing entries',
    { usesBase: true, random: false },
    [P_WEIGHTS, P_DENSITY, P_LAMBDA, normalizeSpec(true, 'disjoint mean (÷ Σ of agreeing weights)')],
    (b, ms, p, c) => tiesMerge(b, ms, p, c, 'trim'),
  ),
  dare_linear: method(
    'dare_linear',
    'θ0 + λ Σ w_i DARE(δ_i)',
    { usesBase: true, random: true },
    [P_WEIGHTS, P_DROP, P_RESCALE, P_LAMBDA, normalizeSpec(false, 'divide by Σ w_i')],
    (b, ms, p, c) => sumMerge(b, ms, p, c, 'dare'),
  ),
  dare_ties: method(
    'dare_ties',
    'DARE on each δ_i, then TIES sign election and sum of agreeing entries',
    { usesBase: true, random: true },
    [P_WEIGHTS, P_DROP, P_RESCALE, P_LAMBDA, normalizeSpec(false, 'divide by Σ of agreeing weights')],
    (b, ms, p, c) => tiesMerge(b, ms, p, c, 'dare'),
  ),
};

export function isMergeMethodName(s: string): s is MergeMethodName {
  return (MERGE_METHOD_NAMES as readonly string[]).includes(s);
}

export function getMergeMethod(name: string): MergeMethod {
  if (!isMergeMethodName(name))
    throw new UserError(`unknown merge method "${name}" (one of ${MERGE_METHOD_NAMES.join(', ')})`);
  return MERGE_METHODS[name];
}

/** Validate `raw` and merge one tensor (convenience for callers with a single tensor). */
export function mergeTensor(
  name: MergeMethodName,
  base: Float32Array,
  models: readonly Float32Array[],
  raw: Readonly<Record<string, unknown>>,
  ctx: TensorContext,
): Float32Array {
  const m = MERGE_METHODS[name];
  return m.mergeTensor(base, models, m.validate(raw, models.length), ctx);
}
