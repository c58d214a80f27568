/**
 * Merge methods as small registered functions over one tensor (mergekit's design): each takes
 * the base θ0, the models θ_1..θ_m (same length) and validated parameters, and returns the
 * merged tensor. Task vectors are δ_i = θ_i − θ0. Arithmetic is in float64 per element, rounded
 * once to float32 at the end; the work runs in chunks of a few thousand elements (or in one loop)
 * so the scratch is small whatever the tensor size (a tensor-sized one only when the TIES trim
 * plan falls back from its one-pass selection, see planTrim).
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
 *
 * Speed: two models (the usual case) take fused kernels, one loop that reads each input once and
 * writes the output once (the trim decided in that loop, DARE masks read a word at a time), not a pass
 * per model through a float64 chunk accumulator; they compute the same float64 expressions in
 * the same order, so the values are bit for bit those of the per-pass kernels, which remain for
 * other model counts. TIES's two-model kernel also avoids the indicator divisions where they
 * provably give 0 or 1 (see tiesPairValue), falling back to the exact formulation for any chunk
 * with a value that is not finite. When the arrays are views of a SimdArena (the whole-model
 * merge puts them there), the two-model kernels run as WebAssembly SIMD (simd.ts,
 * kernels/merge-simd.wat) with the same float64 arithmetic, bit for bit, and over a whole range
 * (a tensor, or a block of one) in one call: its DARE masks drawn at once into the arena
 * (rangeKeeps; the L1 rescale draws them once for its sums and its merge), both models' trim
 * plans found in one SIMD pass (planTrimPair; in a whole-model merge, slice by slice as the tensor
 * is read: MergeMethod.landing), the TIES value finished by the cheapest of the
 * kernel's loops that gives the same bits (tiesKernelParams). test/unit/upit/merge-kernels.test.ts
 * checks every path against the reference.
 */
import { fileError, UserError } from '../../common/errors.js';
import {
  BAND_MIN,
  CHUNK,
  dareL1Factors,
  dareL1FactorsOfMasks,
  MaskStream,
  maskWords,
  planTrimPair,
  TrimPairLanding,
  TrimStream,
  trimCount,
  type TrimPlan,
  type DareRescale,
} from './sparsify.js';
import { arenaOf, type SimdArena, type TiesKernelParams } from './simd.js';

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
  /**
   * One tensor merged block by block, or null when these parameters need the whole tensor before
   * the first output value (the TIES magnitude trim, DARE's L1 rescale). Blocks of consecutive
   * elements, in order, give exactly `mergeTensor`'s values.
   */
  blocks(params: MergeParams, ctx: TensorContext, modelCount: number): BlockMerge | null;
  /**
   * For a method that needs the whole tensor before the first output: the work it can do on
   * each slice while the rest is read (where the tensor lives in `arena`), or null. Gives exactly
   * `mergeTensor`'s values.
   */
  landing(
    params: MergeParams,
    ctx: TensorContext,
    modelCount: number,
    numel: number,
    arena: SimdArena | null,
    sliceLen: number,
    /** Which of the arena's range mask pairs is this tensor's until it is merged. */
    set: number,
  ): LandingMerge | null;
}

/**
 * A tensor merged as it is read (see MergeMethod.landing): its slices are read in `order`, each
 * handed to `land` as it arrives (in the whole tensor's arrays), then `merge` writes the output.
 */
export interface LandingMerge {
  /** Elements per slice (the last may be shorter). */
  sliceLen: number;
  order: readonly number[];
  land(base: Float32Array, models: readonly Float32Array[], slice: number): void;
  /** Merges slice by slice, yielding after each (the caller lets other work run in between). */
  merge(base: Float32Array, models: readonly Float32Array[], out: Float32Array): Generator<void, void>;
}

/** A tensor merged block by block (see MergeMethod.blocks). */
export interface BlockMerge {
  /**
   * Merge the tensor's next `base.length` elements into `out` (same length). Every block but the
   * tensor's last must be a multiple of CHUNK elements (the DARE mask streams run by chunks).
   */
  next(base: Float32Array, models: readonly Float32Array[], out: Float32Array): void;
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
  models.forEach((x, i) => {
    if (x.length !== base.length) {
      throw new UserError(
        `tensor ${JSON.stringify(ctx.name)}: model ${i} has ${x.length} values, the base ${base.length}`,
      );
    }
  });
  return weightsFor(p, models.length, ctx);
}

/** The weights of `m` models (1 each by default), checked against the model count. */
function weightsFor(p: MergeParams, m: number, ctx: TensorContext): number[] {
  if (m === 0) throw new UserError(`tensor ${JSON.stringify(ctx.name)}: no models to merge`);
  if (p.weights !== null && p.weights.length !== m) {
    throw new UserError(`merge weights: ${p.weights.length} weights for ${m} models`);
  }
  return p.weights ?? new Array<number>(m).fill(1);
}

type Sparsify = 'none' | 'dare' | 'trim';

/** Per-model sparsifier state for one tensor; `coef` is the weight times the DARE rescale. */
interface Producer {
  coef: number;
  mask: MaskStream | null;
  trim: TrimStream | null;
  /** The whole tensor's DARE keep mask, already drawn (the L1 rescale reads it before the merge). */
  stored: Uint32Array | null;
}

function producers(
  base: Float32Array,
  models: readonly Float32Array[],
  w: readonly number[],
  p: MergeParams,
  ctx: TensorContext,
  how: Sparsify,
  plans?: readonly TrimPlan[],
  l1?: L1Drawn,
): Producer[] {
  const prs = w.map((wi, i) => {
    const pr: Producer = { coef: wi, mask: null, trim: null, stored: null };
    if (how === 'dare') {
      pr.mask = MaskStream.forTensor(ctx.seed, i, ctx.name, p.drop);
      if (p.rescale === 'inverse') pr.coef = w[i]! * (1 / (1 - p.drop));
    }
    return pr;
  });
  if (how === 'trim' && plans !== undefined) prs.forEach((pr, i) => (pr.trim = new TrimStream(plans[i]!)));
  else if (how === 'trim') {
    // two models at a time: one pass over the base and both (SIMD, when in an arena)
    const k = trimCount(base.length, p.density);
    for (let i = 0; i < models.length; i += 2) {
      const j = Math.min(i + 1, models.length - 1);
      const plans = planTrimPair(models[i]!, models[j]!, base, k);
      prs[i]!.trim = new TrimStream(plans[0]!);
      prs[j]!.trim = new TrimStream(plans[1]!);
    }
  }
  if (how === 'dare' && p.rescale === 'l1') {
    const streams = prs.map((pr) => pr.mask!);
    // two models in an arena: draw the masks once, for the sums and for the merge (or as the
    // tensor was read, see dareL1Landing)
    const masks = l1?.masks ?? rangeKeeps(prs, arenaOf(base, ...models), base.length, true);
    const drawn = l1 !== undefined ? l1FactorsOfSums(l1.sums) : null;
    const f =
      drawn ??
      (masks !== null && l1 === undefined ? dareL1FactorsOfMasks(models, base, masks) : null) ??
      dareL1Factors(models, base, streams);
    prs.forEach((pr, i) => {
      pr.coef = w[i]! * f[i]!;
      if (masks !== null) pr.stored = masks[i]!;
    });
  }
  return prs;
}

/** Two models' DARE masks of a whole tensor and their L1 sums (all0, all1, kept0, kept1), drawn as it was read. */
interface L1Drawn {
  sums: Float64Array;
  masks: Uint32Array[];
}

/** dareL1Factors from the SIMD sums, or null when they are not finite (the loops' sums then differ). */
function l1FactorsOfSums(sums: Float64Array): number[] | null {
  const [all0, all1, kept0, kept1] = sums as unknown as [number, number, number, number];
  if (!Number.isFinite(all0) || !Number.isFinite(all1)) return null;
  return [kept0 > 0 ? all0 / kept0 : 0, kept1 > 0 ? all1 / kept1 : 0];
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
  if (pr.stored !== null) return pr.stored.subarray(off >>> 5);
  if (pr.mask !== null) pr.mask.fillBits(bits, len);
  else if (pr.trim !== null) pr.trim.fillBits(bits, x, base, off, len);
  else return ALL_KEPT;
  return bits;
}

const ALL_KEPT = new Uint32Array(CHUNK >>> 5).fill(0xffffffff);

/**
 * Two models' DARE keep masks of the next n elements (bit t = element t) in the arena's range
 * mask buffers, drawn at once (the streams advance by n), so that a kernel can run over the whole
 * range in one call (from clones of the streams when `replay`: they do not advance); the stored
 * masks when there are; null (nothing drawn) where the arena has no buffers that large, or the
 * producers are not two DARE streams.
 */
function rangeKeeps(
  prs: readonly Producer[],
  arena: SimdArena | null,
  n: number,
  replay = false,
): Uint32Array[] | null {
  const [p0, p1] = prs;
  if (prs.length !== 2 || p0 === undefined || p1 === undefined) return null;
  if (p0.stored !== null && p1.stored !== null) return [p0.stored, p1.stored];
  const masks = arena?.rangeMasks(maskWords(n)) ?? null;
  if (masks === null || p0.mask === null || p1.mask === null) return null;
  (replay ? p0.mask.clone() : p0.mask).fillBits(masks[0]!, n);
  (replay ? p1.mask.clone() : p1.mask).fillBits(masks[1]!, n);
  return masks;
}

/** `count` mask buffers of a chunk: the arena's own when there is one, else new arrays. */
function maskScratch(arena: SimdArena | null, count: number): Uint32Array[] {
  if (arena !== null && count <= 2) return arena.maskScratch.slice(0, count);
  return Array.from({ length: count }, () => new Uint32Array(CHUNK >>> 5));
}

/** Two chunks' mask buffers (see maskScratch). */
function maskPair(arena: SimdArena | null): [Uint32Array, Uint32Array] {
  const [a, b] = maskScratch(arena, 2);
  return [a!, b!];
}

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
 * θ0 + λ·Σ_i coef_i·keep_i·δ_i (÷ Σ w_i when normalize). Two models (the usual case) in one fused
 * loop, over the whole tensor when nothing is dropped; otherwise per chunk, one pass per model:
 * the first assigns the float64 accumulator, the last writes the output.
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
  const out = outputFor(base, outBuf, ctx);
  sumRange(sumSetup(base, models, w, p, ctx, how), base, models, out);
  return out;
}

/** What sumRange needs of one tensor: the producers (mask streams, coefficients) and the scale. */
interface SumState {
  prs: Producer[];
  scale: number;
  how: Sparsify;
}

function sumSetup(
  base: Float32Array,
  models: readonly Float32Array[],
  w: readonly number[],
  p: MergeParams,
  ctx: TensorContext,
  how: Sparsify,
  l1?: L1Drawn,
): SumState {
  const wsum = w.reduce((a, b) => a + b, 0);
  if (p.normalize && wsum === 0) throw new UserError('merge weights sum to 0: cannot normalize');
  const scale = p.normalize ? p.lambda / wsum : p.lambda;
  return { prs: producers(base, models, w, p, ctx, how, undefined, l1), scale, how };
}

/** sumMerge over the tensor's next base.length elements (the mask streams continue). */
function sumRange(
  st: SumState,
  base: Float32Array,
  models: readonly Float32Array[],
  out: Float32Array,
  from = 0,
  to = base.length,
): void {
  const { prs, scale, how } = st;
  const n = base.length;
  const m = models.length;
  if (from !== 0 || to !== n) {
    // part of a tensor whose masks are all drawn (dareL1Landing's merge)
    const [k0, k1] = prs.map((pr) => pr.stored!.subarray(from >>> 5)) as [Uint32Array, Uint32Array];
    sumPair(k0, prs[0]!.coef, models[0]!, k1, prs[1]!.coef, models[1]!, base, from, to - from, out, scale);
    return;
  }
  if (m === 2 && how === 'none') {
    // no masks: one loop over the whole tensor (no chunk bookkeeping, no all-ones mask to read)
    sumPairDense(prs[0]!.coef, models[0]!, prs[1]!.coef, models[1]!, base, 0, n, out, scale);
    return;
  }
  const arena = arenaOf(base, out, ...models);
  // two models' masks of the whole range in the arena: one kernel call
  const wide = how === 'dare' ? rangeKeeps(prs, arena, n) : null;
  if (wide !== null) {
    const [k0, k1] = wide as [Uint32Array, Uint32Array];
    sumPair(k0, prs[0]!.coef, models[0]!, k1, prs[1]!.coef, models[1]!, base, 0, n, out, scale);
    return;
  }
  const acc = m > 2 ? new Float64Array(CHUNK) : new Float64Array(0);
  // mask words beside the data when it lives in a SIMD arena (the kernels read them in place)
  const [bits, bits2] = maskPair(arena);
  for (let off = 0; off < n; off += CHUNK) {
    const len = Math.min(CHUNK, n - off);
    if (m === 2) {
      const k0 = keepBits(prs[0]!, models[0]!, base, off, len, bits);
      const k1 = keepBits(prs[1]!, models[1]!, base, off, len, bits2);
      sumPair(k0, prs[0]!.coef, models[0]!, k1, prs[1]!.coef, models[1]!, base, off, len, out, scale);
      continue;
    }
    for (let i = 0; i < m; i++) {
      const k = keepBits(prs[i]!, models[i]!, base, off, len, bits);
      const role = m === 1 ? ONLY : i === 0 ? FIRST : i === m - 1 ? LAST : MIDDLE;
      sumPass(role, k, prs[i]!.coef, models[i]!, base, off, len, acc, out, scale);
    }
  }
}

// Two-model kernels handle several elements per loop iteration (four; TIES two, V8 inlining its
// larger per-element function only so many times): V8 checks each typed array (map, length,
// pointers) once per iteration rather than once per access, which saves about a quarter of the
// time. The per-element arithmetic is in small functions that V8 inlines.

/**
 * b + s·((k0·c0)·(x0 − b) + (k1·c1)·(x1 − b)) at one element, k_i bit j of mask word m_i: FIRST
 * + LAST's arithmetic.
 */
function sumPairValue(
  bo: number,
  x0: number,
  x1: number,
  m0: number,
  m1: number,
  j: number,
  c0: number,
  c1: number,
  s: number,
): number {
  return bo + s * (((m0 >>> j) & 1) * c0 * (x0 - bo) + ((m1 >>> j) & 1) * c1 * (x1 - bo));
}

/** sumPair without masks: b + s·(c0·(x0 − b) + c1·(x1 − b)), the same values ((1·c)·δ = c·δ). */
function sumPairDenseValue(bo: number, x0: number, x1: number, c0: number, c1: number, s: number): number {
  return bo + s * (c0 * (x0 - bo) + c1 * (x1 - bo));
}

/** sumPair without masks over elements off..off+len (no mask to read: about twice as fast). */
function sumPairDense(
  c0: number,
  x0: Float32Array,
  c1: number,
  x1: Float32Array,
  b: Float32Array,
  off: number,
  len: number,
  out: Float32Array,
  s: number,
): void {
  const end = off + len;
  const simd = arenaOf(x0, x1, b, out);
  let o = off + (simd === null ? 0 : simd.sum2(null, c0, x0, null, c1, x1, b, off, len, out, s));
  for (; o + 4 <= end; o += 4) {
    out[o] = sumPairDenseValue(b[o]!, x0[o]!, x1[o]!, c0, c1, s);
    out[o + 1] = sumPairDenseValue(b[o + 1]!, x0[o + 1]!, x1[o + 1]!, c0, c1, s);
    out[o + 2] = sumPairDenseValue(b[o + 2]!, x0[o + 2]!, x1[o + 2]!, c0, c1, s);
    out[o + 3] = sumPairDenseValue(b[o + 3]!, x0[o + 3]!, x1[o + 3]!, c0, c1, s);
  }
  for (; o < end; o++) out[o] = sumPairDenseValue(b[o]!, x0[o]!, x1[o]!, c0, c1, s);
}

/**
 * out_t = b_t + s·((k0_t·c0)·(x0_t − b_t) + (k1_t·c1)·(x1_t − b_t)) over one chunk (off is a
 * multiple of 32). The masks are read a 32-bit word at a time (one load per 32 elements).
 */
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
  s: number,
): void {
  // the SIMD kernel does a multiple of 4 elements; the loop below the rest
  const simd = arenaOf(k0, k1, x0, x1, b, out);
  const start = simd === null ? 0 : simd.sum2(k0, c0, x0, k1, c1, x1, b, off, len, out, s);
  for (let w = start >>> 5; w << 5 < len; w++) {
    const m0 = k0[w]!;
    const m1 = k1[w]!;
    const end = off + Math.min((w << 5) + 32, len);
    let o = off + Math.max(w << 5, start);
    for (let j = o & 31; o + 4 <= end; o += 4, j += 4) {
      out[o] = sumPairValue(b[o]!, x0[o]!, x1[o]!, m0, m1, j, c0, c1, s);
      out[o + 1] = sumPairValue(b[o + 1]!, x0[o + 1]!, x1[o + 1]!, m0, m1, j + 1, c0, c1, s);
      out[o + 2] = sumPairValue(b[o + 2]!, x0[o + 2]!, x1[o + 2]!, m0, m1, j + 2, c0, c1, s);
      out[o + 3] = sumPairValue(b[o + 3]!, x0[o + 3]!, x1[o + 3]!, m0, m1, j + 3, c0, c1, s);
    }
    for (; o < end; o++) out[o] = sumPairValue(b[o]!, x0[o]!, x1[o]!, m0, m1, o & 31, c0, c1, s);
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
 * This is the reference formulation; two models normally take `tiesPairFast` (the same values).
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

/** Scratch of the reference TIES kernel (τ rows, sign, numerator, denominator). */
interface TiesScratch {
  d: Float64Array;
  sgn: Float64Array;
  num: Float64Array;
  den: Float64Array;
}

/** The reference TIES kernel over one chunk, given each model's keep mask. */
function tiesChunk(
  ks: readonly Uint32Array[],
  prs: readonly Producer[],
  models: readonly Float32Array[],
  base: Float32Array,
  off: number,
  len: number,
  w: readonly number[],
  p: MergeParams,
  s: TiesScratch,
  out: Float32Array,
): void {
  const m = models.length;
  for (let i = 0; i < m; i++) tauPass(ks[i]!, prs[i]!.coef, models[i]!, base, off, len, s.d, i * CHUNK);
  tiesCombine(s.d, m, len, w, s.sgn, s.num, s.den);
  const { sgn, num, den } = s;
  const lambda = p.lambda;
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

/** How a two-model TIES value is divided: not (no normalize), by a reciprocal, by a divisor. */
const DIV_NONE = 0;
const DIV_RECIP = 1;
const DIV_EXACT = 2;

/** How the two-model kernels finish a TIES value: b + λ·v, or with a divisor picked by agreement. */
interface TiesDiv {
  lambda: number;
  /** Divisors (DIV_EXACT) or their reciprocals (DIV_RECIP) by agreement pattern a. */
  table: Float64Array;
  mode: number;
  /** The SIMD kernels' form of the same arithmetic, or null where it has none (JavaScript runs). */
  kernel: TiesKernelParams | null;
}

/**
 * The divisors of the disjoint mean for two models, by agreement pattern a (bit i: model i
 * agrees), evaluated exactly as tiesCombine and tiesChunk do with indicators 0/1: den = w0·a0 +
 * w1·a1, divisor = den + (1 − den/(den + 1e-300)). Without normalize there is no division
 * (DIV_NONE). DIV_RECIP: every divisor is a power of two in the normal range, so x/d = x·(1/d)
 * bit for bit (the same real number, rounded once), and the table holds the reciprocals (a
 * multiply, not a division).
 */
function tiesPairDivisors(w: readonly number[], normalize: boolean, lambda: number): TiesDiv {
  const table = new Float64Array(4);
  if (!normalize) return { lambda, table, mode: DIV_NONE, kernel: tiesKernelParams(table, DIV_NONE, lambda) };
  for (let a = 0; a < 4; a++) {
    let dn = w[0]! * (a & 1);
    dn += w[1]! * (a >>> 1);
    table[a] = dn + (1 - dn / (dn + TINY));
  }
  let mode = DIV_EXACT;
  if (table.every(isNormalPowerOfTwo)) {
    for (let a = 0; a < 4; a++) table[a] = 1 / table[a]!;
    mode = DIV_RECIP;
  }
  return { lambda, table, mode, kernel: tiesKernelParams(table, mode, lambda) };
}

/**
 * The SIMD TIES kernels' parameters for a tiesPairDivisors result. They compute v = Σ of the
 * agreeing τ_i (exactly the reference's sg·Σ q_i, see tiesPairValue) and then b + λ·v (mode 0),
 * b + v·t_a (mode 1) or b + λ·(v / t_a) (mode 2), picking t_a with two selects: t3 when both
 * models agree, t1 when model 0 alone, t2 otherwise, i.e. also when none agrees. That is exact
 * because then v = +0 and the reference's divisor is 1: +0/t2 and +0·t2 are +0 like +0/1 when
 * t2 > 0 (else the models are swapped, the sums being symmetric, when t1 > 0; else no kernel).
 * Mode 1 folds λ into the reciprocals: λ·(v·r) = v·(λ·r) when both products are exact, which
 * holds for r = ±2^e with |e| ≤ 100 (v lies within 1e±99 under tiesPairFastApplies) and λ·r
 * not under- or overflowing; otherwise mode 2 divides (x/d = x·(1/d) for these d).
 */
function tiesKernelParams(table: Float64Array, mode: number, lambda: number): TiesKernelParams | null {
  // b + λ·v is b + v·λ (a product is commutative): one t_a = λ for every a
  if (mode === DIV_NONE) return { mode: KERNEL_UNIFORM, t1: lambda, t2: lambda, t3: lambda, swap: false };
  const recip = mode === DIV_RECIP;
  const r = [0, 1, 2, 3].map((a) => table[a]!);
  const divisors = recip ? r.map((x) => 1 / x) : r;
  const foldable =
    recip &&
    r.every((x) => Math.abs(x) >= 2 ** -100 && Math.abs(x) <= 2 ** 100) &&
    r.every((x) => lambda === 0 || (Number.isFinite(lambda * x) && Math.abs(lambda * x) >= 2 ** -1000));
  const t = foldable ? r.map((x) => lambda * x) : divisors;
  let kp: TiesKernelParams;
  if (divisors[2]! > 0) kp = { mode: 0, t1: t[1]!, t2: t[2]!, t3: t[3]!, swap: false };
  else if (divisors[1]! > 0) kp = { mode: 0, t1: t[2]!, t2: t[1]!, t3: t[3]!, swap: true };
  else return null;
  // the cheapest loop that picks the same t_a (Object.is: a zero's sign counts)
  if (!foldable) kp.mode = KERNEL_DIVIDE;
  else if (Object.is(kp.t1, kp.t2) && Object.is(kp.t2, kp.t3)) kp.mode = KERNEL_UNIFORM;
  else if (Object.is(kp.t1, kp.t2)) kp.mode = KERNEL_SYMMETRIC;
  else kp.mode = KERNEL_MULTIPLY;
  return kp;
}

/** The TIES kernels' finishes (merge-simd.wat): b + v·t2; b + v·t_a; b + λ·(v / t_a); t1 = t2. */
const KERNEL_UNIFORM = 0;
const KERNEL_MULTIPLY = 1;
const KERNEL_DIVIDE = 2;
const KERNEL_SYMMETRIC = 3;

/** ±2^e with −1022 ≤ e ≤ 1022 (so its reciprocal is exact and normal too). */
function isNormalPowerOfTwo(x: number): boolean {
  const v = new DataView(new ArrayBuffer(8));
  v.setFloat64(0, x);
  const hi = v.getUint32(0);
  const e = (hi >>> 20) & 0x7ff;
  return v.getUint32(4) === 0 && (hi & 0xfffff) === 0 && e >= 1 && e <= 2045;
}

/**
 * Whether `tiesPairFast` may stand for the reference kernel with these coefficients: each 0 or of
 * magnitude in [1e-30, 1e30]. Then for finite float32 data every nonzero τ = (keep·c)·δ, sum of
 * two τ and agreeing τ lies between ~1e-91 (δ ≥ 2⁻¹⁴⁹, and a nonzero sum of two such doubles is a
 * multiple of their ulp) and ~1e69, far from where q/(q + 1e-300) is not exactly [q > 0].
 */
function tiesPairFastApplies(c0: number, c1: number): boolean {
  const ok = (c: number) => c === 0 || (Math.abs(c) >= 1e-30 && Math.abs(c) <= 1e30);
  return ok(c0) && ok(c1);
}

/**
 * TIES of two models at one element, given τ_i = (keep_i·c_i)·δ_i: the reference kernel's
 * arithmetic (tiesCombine, then tiesChunk's output) without its five divisions (most of its
 * time). Under `tiesPairFastApplies` and with τ finite, each indicator q/(q + 1e-300) is exactly
 * the comparison [q > 0] (a flag, no branch), so the sign is 1 − 2·[Σ τ < 0] and the divisor one
 * of four (`tiesPairDivisors`, indexed by the agreement bits); every other operation is the
 * reference's, in its order, so the value is bit for bit the same. A τ that is not finite makes
 * the value not finite (NaN or ±∞ whatever λ and the divisor), which is what the callers test.
 */
function tiesPairValue(tau0: number, tau1: number, bo: number, d: TiesDiv): number {
  const { lambda, table: div, mode } = d;
  const sg = 1 - 2 * +(tau0 + tau1 < 0); // +(boolean): a flag, no branch
  const y0 = sg * tau0;
  const y1 = sg * tau1;
  const q0 = 0.5 * (y0 + Math.abs(y0));
  const q1 = 0.5 * (y1 + Math.abs(y1));
  const v = sg * (q0 + q1);
  if (mode === DIV_NONE) return bo + lambda * v; // (the same branch for every element: predicted)
  const a = +(q0 > 0) | (+(q1 > 0) << 1);
  return bo + lambda * (mode === DIV_RECIP ? v * div[a]! : v / div[a]!);
}

/**
 * TIES of two models over one chunk with DARE masks (off a multiple of 32), masks read a word at
 * a time, two elements per iteration. Returns false when some value is not finite (Σ value·0 is
 * then NaN), as it is whenever some τ is not, having written values the caller must replace by
 * the reference kernel's for this chunk.
 */
function tiesPairFast(
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
  d: TiesDiv,
): boolean {
  // the SIMD kernel does a multiple of 4 elements; the loop below the rest
  const simd = d.kernel === null ? null : arenaOf(k0, k1, x0, x1, b, out);
  const start =
    simd === null ? 0 : simd.ties2({ k0, k1 }, c0, x0, c1, x1, b, off, len, out, d.lambda, d.kernel!);
  if (start < 0) return false;
  let bad = 0;
  for (let w = start >>> 5; w << 5 < len; w++) {
    const m0 = k0[w]!;
    const m1 = k1[w]!;
    const end = off + Math.min((w << 5) + 32, len);
    for (let o = off + Math.max(w << 5, start); o < end; o += 2) {
      // τ = (keep·c)·δ, keep = bit j of the mask word; the pair's second element may not exist
      const j = o & 31;
      const bo = b[o]!;
      const r = tiesPairValue(
        ((m0 >>> j) & 1) * c0 * (x0[o]! - bo),
        ((m1 >>> j) & 1) * c1 * (x1[o]! - bo),
        bo,
        d,
      );
      out[o] = r;
      bad += r * 0;
      if (o + 1 === end) break;
      const bo1 = b[o + 1]!;
      const r1 = tiesPairValue(
        ((m0 >>> (j + 1)) & 1) * c0 * (x0[o + 1]! - bo1),
        ((m1 >>> (j + 1)) & 1) * c1 * (x1[o + 1]! - bo1),
        bo1,
        d,
      );
      out[o + 1] = r1;
      bad += r1 * 0;
    }
  }
  return bad === 0;
}

/**
 * tiesPairFast for the magnitude trim over elements off..end, with each keep decision made in the
 * same loop from the δ it already computes (a mask pass per model would read and subtract
 * everything again): keep = !(|δ| ≤ cut), TrimStream's float decision, with the cut the caller
 * passes for this range (a stream's cut changes at its lastTie).
 */
function tiesPairTrimFast(
  cut0: number,
  c0: number,
  x0: Float32Array,
  cut1: number,
  c1: number,
  x1: Float32Array,
  b: Float32Array,
  off: number,
  end: number,
  out: Float32Array,
  d: TiesDiv,
): boolean {
  const simd = d.kernel === null ? null : arenaOf(x0, x1, b, out);
  let done = 0;
  if (simd !== null) {
    // the kernel does a multiple of 4; the loop below the last few elements of the range
    done = simd.ties2({ cut0, cut1 }, c0, x0, c1, x1, b, off, end - off, out, d.lambda, d.kernel!);
    if (done < 0) return false;
  }
  let bad = 0;
  for (let o = off + done; o < end; o += 2) {
    const bo = b[o]!;
    const d0 = x0[o]! - bo;
    const d1 = x1[o]! - bo;
    const r = tiesPairValue(+!(Math.abs(d0) <= cut0) * c0 * d0, +!(Math.abs(d1) <= cut1) * c1 * d1, bo, d);
    out[o] = r;
    bad += r * 0;
    if (o + 1 === end) break;
    const bo1 = b[o + 1]!;
    const e0 = x0[o + 1]! - bo1;
    const e1 = x1[o + 1]! - bo1;
    const r1 = tiesPairValue(+!(Math.abs(e0) <= cut0) * c0 * e0, +!(Math.abs(e1) <= cut1) * c1 * e1, bo1, d);
    out[o + 1] = r1;
    bad += r1 * 0;
  }
  return bad === 0;
}

/**
 * tiesPairTrimFast over elements off..off+len: split where either stream's cut changes (its
 * lastTie), so the kernel sees one cut per model and no per-element test.
 */
function tiesPairTrimRange(
  tr0: TrimStream,
  c0: number,
  x0: Float32Array,
  tr1: TrimStream,
  c1: number,
  x1: Float32Array,
  b: Float32Array,
  off: number,
  len: number,
  out: Float32Array,
  d: TiesDiv,
): boolean {
  const end = off + len;
  const s0 = Math.min(Math.max(tr0.lastTie + 1, off), end);
  const s1 = Math.min(Math.max(tr1.lastTie + 1, off), end);
  const run = (from: number, to: number): boolean => {
    if (from >= to) return true;
    const cut0 = from < s0 ? tr0.cutUpTo : tr0.cutAfter;
    const cut1 = from < s1 ? tr1.cutUpTo : tr1.cutAfter;
    return tiesPairTrimFast(cut0, c0, x0, cut1, c1, x1, b, from, to, out, d);
  };
  const [a, z] = s0 < s1 ? [s0, s1] : [s1, s0];
  return run(off, a) && run(a, z) && run(z, end);
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
  const out = outputFor(base, outBuf, ctx);
  tiesRange(tiesSetup(base, models, w, p, ctx, how), base, models, out);
  return out;
}

/** What tiesRange needs of one tensor (see tiesMerge). */
interface TiesState {
  w: readonly number[];
  p: MergeParams;
  prs: Producer[];
  fast: boolean;
  div: TiesDiv;
  scratch: TiesScratch;
}

function tiesSetup(
  base: Float32Array,
  models: readonly Float32Array[],
  w: readonly number[],
  p: MergeParams,
  ctx: TensorContext,
  how: Sparsify,
  plans?: readonly TrimPlan[],
  l1?: L1Drawn,
): TiesState {
  const m = w.length;
  const prs = producers(base, models, w, p, ctx, how, plans, l1);
  const scratch: TiesScratch = {
    d: new Float64Array(m * CHUNK),
    sgn: new Float64Array(CHUNK),
    num: new Float64Array(CHUNK),
    den: new Float64Array(CHUNK),
  };
  const fast = m === 2 && tiesPairFastApplies(prs[0]!.coef, prs[1]!.coef);
  const div = tiesPairDivisors(m === 2 ? w : [1, 1], p.normalize, p.lambda);
  return { w, p, prs, fast, div, scratch };
}

/**
 * tiesMerge over the tensor's next base.length elements (the mask streams continue; a trim plan's
 * indices are the tensor's, so a trimmed merge runs over the whole tensor in one call).
 */
function tiesRange(
  st: TiesState,
  base: Float32Array,
  models: readonly Float32Array[],
  out: Float32Array,
  from = 0,
  to = base.length,
): void {
  const { w, p, prs, fast, div, scratch } = st;
  const m = models.length;
  const n = to; // (a part of the tensor only with masks drawn or trims: stateless by index)
  const arena = arenaOf(base, out, ...models);
  const bits = maskScratch(arena, m);
  const ks: Uint32Array[] = [];
  const [p0, p1] = prs;
  const tr0 = p0?.trim ?? null;
  const tr1 = p1?.trim ?? null;
  const trimFast = fast && tr0 !== null && tr1 !== null && tr0.floatKeep && tr1.floatKeep;
  const [x0, x1] = models as [Float32Array, Float32Array];
  // the fast kernels over the whole range at once (chunk by chunk below only when some value is
  // not finite, so that the reference kernel redoes just those chunks): the trim decided in the
  // kernel, or the DARE masks of the range drawn at once
  if (trimFast && tiesPairTrimRange(tr0, p0!.coef, x0, tr1, p1!.coef, x1, base, from, n - from, out, div))
    return;
  const drawn = fast && !trimFast ? rangeKeeps(prs, arena, n) : null;
  const wide = drawn?.map((k) => k.subarray(from >>> 5)) ?? null;
  if (
    wide !== null &&
    tiesPairFast(wide[0]!, p0!.coef, x0, wide[1]!, p1!.coef, x1, base, from, n - from, out, div)
  )
    return;
  for (let off = from; off < n; off += CHUNK) {
    const len = Math.min(CHUNK, n - off);
    // the fast kernels return false on a chunk with a value that is not finite: rerun it exactly
    if (trimFast) {
      if (tiesPairTrimRange(tr0, p0!.coef, x0, tr1, p1!.coef, x1, base, off, len, out, div)) continue;
    }
    for (let i = 0; i < m; i++)
      ks[i] = drawn?.[i]?.subarray(off >>> 5) ?? keepBits(prs[i]!, models[i]!, base, off, len, bits[i]!);
    if (fast && !trimFast) {
      const [k0, k1] = ks as [Uint32Array, Uint32Array];
      if (tiesPairFast(k0, p0!.coef, x0, k1, p1!.coef, x1, base, off, len, out, div)) continue;
    }
    tiesChunk(ks, prs, models, base, off, len, w, p, scratch, out);
  }
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

/**
 * Σ w_i θ_i (÷ Σ w_i when normalize): one or two models in one loop over the whole tensor (the
 * same sums as the passes, without the float64 accumulator round trip), more per chunk.
 */
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
  if (m === 1) {
    const c0 = w[0]!;
    const x0 = models[0]!;
    for (let t = 0; t < n; t++) out[t] = c0 * x0[t]! * inv;
    return out;
  }
  if (m === 2) {
    linearPair(w[0]!, models[0]!, w[1]!, models[1]!, n, out, inv);
    return out;
  }
  const acc = new Float64Array(CHUNK);
  for (let off = 0; off < n; off += CHUNK) {
    const len = Math.min(CHUNK, n - off);
    for (let i = 0; i < m; i++) linearPass(i === 0, i === m - 1, w[i]!, models[i]!, off, len, acc, out, inv);
  }
  return out;
}

/** (c0·x0 + c1·x1)·inv at one element: FIRST then LAST's arithmetic. */
function linearPairValue(x0: number, x1: number, c0: number, c1: number, inv: number): number {
  return (c0 * x0 + c1 * x1) * inv;
}

/** Two-model linear over the whole tensor, four elements per iteration (see sumPairDense). */
function linearPair(
  c0: number,
  x0: Float32Array,
  c1: number,
  x1: Float32Array,
  n: number,
  out: Float32Array,
  inv: number,
): void {
  let t = arenaOf(x0, x1, out)?.linear2(x0, x1, out, n, c0, c1, inv) ?? 0;
  for (; t + 4 <= n; t += 4) {
    out[t] = linearPairValue(x0[t]!, x1[t]!, c0, c1, inv);
    out[t + 1] = linearPairValue(x0[t + 1]!, x1[t + 1]!, c0, c1, inv);
    out[t + 2] = linearPairValue(x0[t + 2]!, x1[t + 2]!, c0, c1, inv);
    out[t + 3] = linearPairValue(x0[t + 3]!, x1[t + 3]!, c0, c1, inv);
  }
  for (; t < n; t++) out[t] = linearPairValue(x0[t]!, x1[t]!, c0, c1, inv);
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
  blocks: MergeMethod['blocks'],
  landing: MergeMethod['landing'] = () => null,
): MergeMethod {
  return { name, doc, ...opts, params, validate: validator(name, params), mergeTensor, blocks, landing };
}

/**
 * TIES's LandingMerge: both models' trim plans made while the tensor is read (TrimPairLanding,
 * the band pass over each slice as it arrives), then the merge with them.
 */
function tiesLanding(
  p: MergeParams,
  ctx: TensorContext,
  m: number,
  n: number,
  arena: SimdArena | null,
  sliceLen: number,
): LandingMerge | null {
  if (m !== 2 || arena === null || arena.bandCapacity === 0 || n < BAND_MIN) return null;
  const k = trimCount(n, p.density);
  if (k >= n) return null;
  const planner = new TrimPairLanding(arena, n, k, sliceLen);
  return {
    sliceLen,
    order: planner.order,
    land: (base, models, slice) => planner.land(models[0]!, models[1]!, base, slice),
    *merge(base, models, out) {
      const w = checkInputs(base, models, p, ctx);
      const st = tiesSetup(base, models, w, p, ctx, 'trim', planner.plans());
      const o = outputFor(base, out, ctx);
      for (let off = 0; off < n; off += sliceLen) {
        tiesRange(st, base, models, o, off, Math.min(n, off + sliceLen));
        yield;
      }
    },
  };
}

/**
 * DARE's LandingMerge with the L1 rescale: both models' masks drawn and their L1 sums taken slice
 * by slice (in order: the sums run in index order) as the tensor is read, into the arena's range
 * mask pair `set` (this tensor's until merged); then the merge with those factors and masks.
 */
function dareL1Landing(how: 'sum' | 'ties'): MergeMethod['landing'] {
  return (p, ctx, m, n, arena, sliceLen, set) => {
    if (p.rescale !== 'l1' || m !== 2 || arena === null) return null;
    const masks = arena.rangeMasks(maskWords(n), set);
    if (masks === null) return null;
    const [k0, k1] = masks as [Uint32Array, Uint32Array];
    const draws = [0, 1].map((i) => MaskStream.forTensor(ctx.seed, i, ctx.name, p.drop));
    const sums = new Float64Array(4);
    return {
      sliceLen,
      order: Array.from({ length: Math.ceil(n / sliceLen) }, (_, i) => i),
      land: (base, models, slice) => {
        const off = slice * sliceLen;
        const len = Math.min(sliceLen, n - off);
        const [m0, m1] = [k0.subarray(off >>> 5), k1.subarray(off >>> 5)];
        draws[0]!.fillBits(m0, len);
        draws[1]!.fillBits(m1, len);
        arena.l1Sums(m0, m1, models[0]!, models[1]!, base, off, len, sums);
      },
      *merge(base, models, out) {
        const w = checkInputs(base, models, p, ctx);
        const o = outputFor(base, out, ctx);
        const l1 = { sums, masks };
        const sum = how === 'sum' ? sumSetup(base, models, w, p, ctx, 'dare', l1) : null;
        const ties = how === 'ties' ? tiesSetup(base, models, w, p, ctx, 'dare', undefined, l1) : null;
        for (let off = 0; off < n; off += sliceLen) {
          const to = Math.min(n, off + sliceLen);
          if (sum !== null) sumRange(sum, base, models, o, off, to);
          else tiesRange(ties!, base, models, o, off, to);
          yield;
        }
      },
    };
  };
}

/** No data is needed to set up these sparsifiers (no magnitude trim, no L1 rescale). */
const NO_DATA = new Float32Array(0);

/** BlockMerge of a sum method (task arithmetic, DARE-linear), null for the L1 rescale. */
function sumBlocks(p: MergeParams, ctx: TensorContext, m: number, how: Sparsify): BlockMerge | null {
  if (how === 'trim' || (how === 'dare' && p.rescale === 'l1')) return null;
  const st = sumSetup(NO_DATA, [], weightsFor(p, m, ctx), p, ctx, how);
  return { next: (base, models, out) => sumRange(st, base, models, out) };
}

/** BlockMerge of DARE-TIES, null for the L1 rescale (and for the magnitude trim). */
function tiesBlocks(p: MergeParams, ctx: TensorContext, m: number, how: Sparsify): BlockMerge | null {
  if (how === 'trim' || (how === 'dare' && p.rescale === 'l1')) return null;
  const st = tiesSetup(NO_DATA, [], weightsFor(p, m, ctx), p, ctx, how);
  return { next: (base, models, out) => tiesRange(st, base, models, out) };
}

export const MERGE_METHODS: Readonly<Record<MergeMethodName, MergeMethod>> = {
  linear: method(
    'linear',
    'Σ w_i θ_i (÷ Σ w_i when normalize); the base is not used',
    { usesBase: false, random: false },
    [P_WEIGHTS, normalizeSpec(true, 'divide by the sum of the weights')],
    linearMerge,
    (p, ctx) => ({ next: (base, models, out) => void linearMerge(base, models, p, ctx, out) }),
  ),
  task_arithmetic: method(
    'task_arithmetic',
    'θ0 + λ Σ w_i δ_i',
    { usesBase: true, random: false },
    [P_WEIGHTS, P_LAMBDA, normalizeSpec(false, 'divide Σ w_i δ_i by Σ w_i')],
    (b, ms, p, c, o) => sumMerge(b, ms, p, c, 'none', o),
    (p, c, m) => sumBlocks(p, c, m, 'none'),
  ),
  ties: method(
    'ties',
    'trim each δ_i to its top-density magnitudes, elect signs by sum, disjoint mean of agreeing entries',
    { usesBase: true, random: false },
    [P_WEIGHTS, P_DENSITY, P_LAMBDA, normalizeSpec(true, 'disjoint mean (÷ Σ of agreeing weights)')],
    (b, ms, p, c, o) => tiesMerge(b, ms, p, c, 'trim', o),
    () => null,
    tiesLanding,
  ),
  dare_linear: method(
    'dare_linear',
    'θ0 + λ Σ w_i DARE(δ_i)',
    { usesBase: true, random: true },
    [P_WEIGHTS, P_DROP, P_RESCALE, P_LAMBDA, normalizeSpec(false, 'divide by Σ w_i')],
    (b, ms, p, c, o) => sumMerge(b, ms, p, c, 'dare', o),
    (p, c, m) => sumBlocks(p, c, m, 'dare'),
    dareL1Landing('sum'),
  ),
  dare_ties: method(
    'dare_ties',
    'DARE on each δ_i, then TIES sign election and sum of agreeing entries',
    { usesBase: true, random: true },
    [P_WEIGHTS, P_DROP, P_RESCALE, P_LAMBDA, normalizeSpec(false, 'divide by Σ of agreeing weights')],
    (b, ms, p, c, o) => tiesMerge(b, ms, p, c, 'dare', o),
    (p, c, m) => tiesBlocks(p, c, m, 'dare'),
    dareL1Landing('ties'),
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
