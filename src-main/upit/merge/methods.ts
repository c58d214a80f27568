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
 * models hold only floating tensors here (F32/F16/BF16 are read as float32). A dropped or
 * disagreeing entry is multiplied by 0 (as mergekit's tensor·mask), so a non-finite input entry
 * yields NaN even where it is dropped. The kernels are branch-free per element (masks are 0/1
 * multipliers): a mispredicted branch per element costs more than the arithmetic.
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
  /** Merge one tensor; writes into `out` when given (same length as `base`), else a new array. */
  mergeTensor(
    base: Float32Array,
    models: readonly Float32Array[],
    params: MergeParams,
    ctx: TensorContext,
    out?: Float32Array,
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

/** Keep mask of elements off..off+len for one model (all ones without sparsification). */
function keepBits(
  pr: Producer,
  x: Float32Array,
  base: Float32Array,
  off: number,
  len: number,
  bits: Uint32Array,
): Uint32Array {
  if (pr.mask !== null) pr.mask.fillBits(bits, len);
  else if (pr.trim !== null) pr.trim.fillBits(bits, x, base, off, len);
  else return ALL_KEPT;
  return bits;
}

const ALL_KEPT = new Uint32Array(CHUNK >>> 5).fill(0xffffffff);

/** The output buffer: `out` when given (must have the base's length), else a new array. */
function outputFor(base: Float32Array, out: Float32Array | undefined, ctx: TensorContext): Float32Array {
  if (out === undefined) return new Float32Array(base.length);
  if (out.length !== base.length)
    throw new Error(
      `tensor ${JSON.stringify(ctx.name)}: output has ${out.length} values, the base ${base.length}`,
    );
  return out;
}

/**
 * θ0 + λ·Σ_i coef_i·keep_i·δ_i (÷ Σ w_i when normalize). Per chunk, one pass per model: the first
 * assigns the float64 accumulator, the last writes the output (a single model: one pass).
 */
function sumMerge(
  base: Float32Array,
  models: readonly Float32Array[],
  p: MergeParams,
  ctx: TensorContext,
  how: Sparsify,
  outBuf?: Float32Array,
): Float32Array {
  const w = checkInputs(base, models, p, ctx);
  const wsum = w.reduce((a, b) => a + b, 0);
  if (p.normalize && wsum === 0) throw new UserError('merge weights sum to 0: cannot normalize');
  const scale = p.normalize ? p.lambda / wsum : p.lambda;
  const prs = producers(base, models, w, p, ctx, how);
  const n = base.length;
  const m = models.length;
  const out = outputFor(base, outBuf, ctx);
  const acc = new Float64Array(CHUNK);
  const bits = new Uint32Array(CHUNK >>> 5);
  const bits2 = new Uint32Array(CHUNK >>> 5);
  for (let off = 0; off < n; off += CHUNK) {
    const len = Math.min(CHUNK, n - off);
    if (m === 2) {
      // the common case (two parents) in one pass
      const k0 = keepBits(prs[0]!, models[0]!, base, off, len, bits);
      const k1 = keepBits(prs[1]!, models[1]!, base, off, len, bits2);
      if (k0 === ALL_KEPT && k1 === ALL_KEPT)
        sumPairDense(prs[0]!.coef, models[0]!, prs[1]!.coef, models[1]!, base, off, len, out, scale);
      else sumPair(k0, prs[0]!.coef, models[0]!, k1, prs[1]!.coef, models[1]!, base, off, len, out, scale);
      continue;
    }
    for (let i = 0; i < m; i++) {
      const k = keepBits(prs[i]!, models[i]!, base, off, len, bits);
      const role = m === 1 ? ONLY : i === 0 ? FIRST : i === m - 1 ? LAST : MIDDLE;
      sumPass(role, k, prs[i]!.coef, models[i]!, base, off, len, acc, out, scale);
    }
  }
  return out;
}

/** sumPair without masks (the same values: (1·c)·δ = c·δ), about twice as fast. */
function sumPairDense(
  c0: number,
  x0: Float32Array,
  c1: number,
  x1: Float32Array,
  b: Float32Array,
  off: number,
  len: number,
  out: Float32Array,
  scale: number,
): void {
  for (let t = 0; t < len; t++) {
    const o = off + t;
    const bo = b[o]!;
    out[o] = bo + scale * (c0 * (x0[o]! - bo) + c1 * (x1[o]! - bo));
  }
}

/** out_t = b_t + scale·((k0_t·c0)·(x0_t − b_t) + (k1_t·c1)·(x1_t − b_t)): the same arithmetic as FIRST + LAST. */
function sumPair(
  k0: Uint32Array,
  c0: number,
  x0: Float32Array,
  k1: Uint32Array,
  c1: number,
  x1: Float32Array,
  b: Float32Array,
  off: number,
  len: number,
  out: Float32Array,
  scale: number,
): void {
  for (let t = 0; t < len; t++) {
    const o = off + t;
    const w = t >>> 5;
    const s = t & 31;
    const bo = b[o]!;
    const v0 = ((k0[w]! >>> s) & 1) * c0 * (x0[o]! - bo);
    out[o] = bo + scale * (v0 + ((k1[w]! >>> s) & 1) * c1 * (x1[o]! - bo));
  }
}

const ONLY = 0;
const FIRST = 1;
const MIDDLE = 2;
const LAST = 3;

/** One model's pass over a chunk: v_t = (keep_t·c)·(x_t − b_t) into acc / out by role. */
function sumPass(
  role: number,
  k: Uint32Array,
  c: number,
  x: Float32Array,
  b: Float32Array,
  off: number,
  len: number,
  acc: Float64Array,
  out: Float32Array,
  scale: number,
): void {
  switch (role) {
    case ONLY:
      for (let t = 0; t < len; t++) {
        const o = off + t;
        out[o] = b[o]! + scale * (((k[t >>> 5]! >>> (t & 31)) & 1) * c * (x[o]! - b[o]!));
      }
      break;
    case FIRST:
      for (let t = 0; t < len; t++)
        acc[t] = ((k[t >>> 5]! >>> (t & 31)) & 1) * c * (x[off + t]! - b[off + t]!);
      break;
    case MIDDLE:
      for (let t = 0; t < len; t++)
        acc[t]! += ((k[t >>> 5]! >>> (t & 31)) & 1) * c * (x[off + t]! - b[off + t]!);
      break;
    default:
      for (let t = 0; t < len; t++) {
        const o = off + t;
        out[o] = b[o]! + scale * (acc[t]! + ((k[t >>> 5]! >>> (t & 31)) & 1) * c * (x[o]! - b[o]!));
      }
  }
}

/** Below this a positive |τ| would count fractionally in the TIES divisor (float32 data never is). */
const TINY = 1e-300;

/**
 * Per element t of a chunk (τ_i in rows of `d`): σ_t = sign(Σ_i τ_i) (+ for 0); the τ_i that agree
 * (σ·τ_i > 0) give num_t = Σ σ·τ_i ≥ 0 and den_t = Σ w_i. Branch-free (a data-dependent branch
 * per element costs several times the arithmetic): max(x, 0) = ½(x + |x|) exactly, and for
 * q ≥ 0 the indicator [q > 0] is q/(q + 1e-300), exactly 0 or 1 for any q above ~1e-284.
 */
function tiesCombine(
  d: Float64Array,
  m: number,
  len: number,
  w: readonly number[],
  sgn: Float64Array,
  num: Float64Array,
  den: Float64Array,
): void {
  for (let t = 0; t < len; t++) sgn[t] = d[t]!;
  for (let i = 1; i < m; i++) {
    const row = i * CHUNK;
    for (let t = 0; t < len; t++) sgn[t]! += d[row + t]!;
  }
  for (let t = 0; t < len; t++) {
    const s = sgn[t]!;
    const neg = 0.5 * (Math.abs(s) - s); // max(−s, 0): > 0 exactly when s < 0
    sgn[t] = 1 - 2 * (neg / (neg + TINY));
  }
  for (let i = 0; i < m; i++) {
    const row = i * CHUNK;
    const wi = w[i]!;
    if (i === 0) {
      for (let t = 0; t < len; t++) {
        const x = sgn[t]! * d[t]!;
        const q = 0.5 * (x + Math.abs(x)); // x when it agrees, else 0
        num[t] = q;
        den[t] = wi * (q / (q + TINY));
      }
    } else {
      for (let t = 0; t < len; t++) {
        const x = sgn[t]! * d[row + t]!;
        const q = 0.5 * (x + Math.abs(x));
        num[t]! += q;
        den[t]! += wi * (q / (q + TINY));
      }
    }
  }
}

/** TIES combination: elect sign(Σ τ_i) per entry, keep the agreeing τ_i, disjoint (weighted) mean. */
function tiesMerge(
  base: Float32Array,
  models: readonly Float32Array[],
  p: MergeParams,
  ctx: TensorContext,
  how: Sparsify,
  outBuf?: Float32Array,
): Float32Array {
  const w = checkInputs(base, models, p, ctx);
  const m = models.length;
  const prs = producers(base, models, w, p, ctx, how);
  const n = base.length;
  const out = outputFor(base, outBuf, ctx);
  const d = new Float64Array(m * CHUNK);
  const bits = new Uint32Array(CHUNK >>> 5);
  const sgn = new Float64Array(CHUNK);
  const num = new Float64Array(CHUNK);
  const den = new Float64Array(CHUNK);
  const lambda = p.lambda;
  for (let off = 0; off < n; off += CHUNK) {
    const len = Math.min(CHUNK, n - off);
    for (let i = 0; i < m; i++) {
      const k = keepBits(prs[i]!, models[i]!, base, off, len, bits);
      tauPass(k, prs[i]!.coef, models[i]!, base, off, len, d, i * CHUNK);
    }
    tiesCombine(d, m, len, w, sgn, num, den);
    if (p.normalize) {
      for (let t = 0; t < len; t++) {
        const dn = den[t]!;
        // ÷ den, or ÷ 1 where no model agrees (num = 0 there): dn + [dn = 0], branch-free
        out[off + t] = base[off + t]! + lambda * ((sgn[t]! * num[t]!) / (dn + (1 - dn / (dn + TINY))));
      }
    } else {
      for (let t = 0; t < len; t++) out[off + t] = base[off + t]! + lambda * (sgn[t]! * num[t]!);
    }
  }
  return out;
}

/** d[row + t] = (keep_t·c)·(x_t − b_t). */
function tauPass(
  k: Uint32Array,
  c: number,
  x: Float32Array,
  b: Float32Array,
  off: number,
  len: number,
  d: Float64Array,
  row: number,
): void {
  for (let t = 0; t < len; t++)
    d[row + t] = ((k[t >>> 5]! >>> (t & 31)) & 1) * c * (x[off + t]! - b[off + t]!);
}

function linearMerge(
  base: Float32Array,
  models: readonly Float32Array[],
  p: MergeParams,
  ctx: TensorContext,
  outBuf?: Float32Array,
): Float32Array {
  const w = checkInputs(base, models, p, ctx);
  const wsum = w.reduce((a, b) => a + b, 0);
  if (p.normalize && wsum === 0) throw new UserError('merge weights sum to 0: cannot normalize');
  const inv = p.normalize ? 1 / wsum : 1;
  const n = base.length;
  const m = models.length;
  const out = outputFor(base, outBuf, ctx);
  const acc = new Float64Array(CHUNK);
  for (let off = 0; off < n; off += CHUNK) {
    const len = Math.min(CHUNK, n - off);
    for (let i = 0; i < m; i++) linearPass(i === 0, i === m - 1, w[i]!, models[i]!, off, len, acc, out, inv);
  }
  return out;
}

function linearPass(
  first: boolean,
  last: boolean,
  c: number,
  x: Float32Array,
  off: number,
  len: number,
  acc: Float64Array,
  out: Float32Array,
  inv: number,
): void {
  if (first && last) for (let t = 0; t < len; t++) out[off + t] = c * x[off + t]! * inv;
  else if (first) for (let t = 0; t < len; t++) acc[t] = c * x[off + t]!;
  else if (last) for (let t = 0; t < len; t++) out[off + t] = (acc[t]! + c * x[off + t]!) * inv;
  else for (let t = 0; t < len; t++) acc[t]! += c * x[off + t]!;
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
    (b, ms, p, c, o) => sumMerge(b, ms, p, c, 'none', o),
  ),
  ties: method(
    'ties',
    'trim each δ_i to its top-density magnitudes, elect signs by sum, disjoint mean of agreeing entries',
    { usesBase: true, random: false },
    [P_WEIGHTS, P_DENSITY, P_LAMBDA, normalizeSpec(true, 'disjoint mean (÷ Σ of agreeing weights)')],
    (b, ms, p, c, o) => tiesMerge(b, ms, p, c, 'trim', o),
  ),
  dare_linear: method(
    'dare_linear',
    'θ0 + λ Σ w_i DARE(δ_i)',
    { usesBase: true, random: true },
    [P_WEIGHTS, P_DROP, P_RESCALE, P_LAMBDA, normalizeSpec(false, 'divide by Σ w_i')],
    (b, ms, p, c, o) => sumMerge(b, ms, p, c, 'dare', o),
  ),
  dare_ties: method(
    'dare_ties',
    'DARE on each δ_i, then TIES sign election and sum of agreeing entries',
    { usesBase: true, random: true },
    [P_WEIGHTS, P_DROP, P_RESCALE, P_LAMBDA, normalizeSpec(false, 'divide by Σ of agreeing weights')],
    (b, ms, p, c, o) => tiesMerge(b, ms, p, c, 'dare', o),
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
