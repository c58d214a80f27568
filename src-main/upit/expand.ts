/**
 * Stage 2, expand (m → n experts): UpIT's genetic algorithm over task vectors.
 *
 * Task vectors: δ_i = expert i's tensors − θ0's. FFN mode: over the MLP weights
 * `model.layers.{l}.mlp.{gate,up,down}_proj.weight` (rounded to float32, as a checkpoint reader
 * would see them). LoRA mode: ΔW = (α/r)·B·A per adapted module.
 *
 * Distance d(i, j) = 1 − cos(δ_i, δ_j) over all expert tensors of all layers concatenated (or the
 * L2 distance). It comes from the Gram matrix G_ij = ⟨δ_i, δ_j⟩ accumulated tensor by tensor in
 * float64, so the flattened vectors never exist; L2 = √(G_ii + G_jj − 2G_ij) (loses relative
 * precision only for experts closer than ~1e-8 of their norm). LoRA inner products are taken in
 * factor space without forming ΔW: ⟨s_i B_i A_i, s_j B_j A_j⟩ = s_i s_j tr((B_iᵀB_j)(A_j A_iᵀ)).
 *
 * While the pool has fewer than n experts: parents (j, k), j < k = the most distant pair not
 * used before (the pool includes children; ties go to the smallest (j, k)), or a uniformly random
 * unused pair with `selection: 'random'`; α ~ U(0, 1) (clamped to `alphaClamp`), β = 1 − α;
 * child δ = α·(m_j ⊙ δ_j)/(1−p) + β·(m_k ⊙ δ_k)/(1−p) with independent masks per parent and
 * tensor. Randomness: one stream `Rng.derive(seed, "expand")` gives, per child, the random pair
 * (if any), α, then the child's seed; the child's masks are `Rng.derive(childSeed,
 * "dare/<0|1>/<tensor>")` for parent j / k: exactly `dare_linear` over [θ_j, θ_k] with weights
 * [α, β], drop p and that seed, so a child is reproducible from its lineage record alone.
 *
 * LoRA children: 'delta' space (default) forms ΔW_j, ΔW_k per module, applies DARE there, and
 * truncates the sum back to rank r with an SVD (linalg.ts): B' = U_r S_r / s, A' = V_rᵀ, where
 * s = α/r of the pool (so the child loads with the parents' adapter scale). 'factor' space (the
 * fast option, approximate) applies DARE to the factors and puts α, β on B only:
 * A' = ½(Â_j + Â_k), B' = α·B̂_j + β·B̂_k (same rank, no SVD). It is exact (p = 0) when the
 * parents share A, the usual case for checkpoints of one LoRA run (A moves little from its
 * initialisation while B grows from zero); for unrelated A's, B'A' = ½(αB̂_jÂ_j + βB̂_kÂ_k) plus
 * the cross terms ½(αB̂_jÂ_k + βB̂_kÂ_j). (A plain sum A' = Â_j + Â_k would double shared A's.)
 *
 * Memory: the original experts are read through `TensorSource`s, one tensor name at a time (a
 * `WeightSource` reads them from disk lazily), so they never need to be in memory together.
 * Children are kept in memory (they are returned, and they are parents and distance partners of
 * later children): (n − m) × the MLP (or adapter) size. A child's Gram row is computed while the
 * child is generated, against every pool member's tensor of the same name, so each child costs
 * one pass over the pool and the distance matrix is never recomputed from scratch.
 */
import { fileError, UserError } from '../common/errors.js';
import { Rng } from '../common/rng.js';
import type { HostTensor } from '../io/host-tensor.js';
import type { LoraHost, LoraSpec } from '../model/lora.js';
import { dotDelta, matMul, truncatedSvd, type SvdOptions } from './linalg.js';
import { MERGE_METHODS, type MergeParams } from './merge/methods.js';
import type { DareRescale } from './merge/sparsify.js';

export type DistanceMetric = 'cosine' | 'l2';

/** Lazily readable named tensors (a `WeightSource` is one). */
export interface TensorSource {
  readonly dir?: string;
  names(): string[];
  has(name: string): boolean;
  read(name: string): HostTensor;
}

/** A TensorSource over tensors in memory. */
export function memorySource(tensors: ReadonlyMap<string, HostTensor>, label = 'memory'): TensorSource {
  return {
    dir: label,
    names: () => [...tensors.keys()],
    has: (n) => tensors.has(n),
    read: (n) => {
      const t = tensors.get(n);
      if (!t) throw fileError(label, `no tensor named ${JSON.stringify(n)}`);
      return t;
    },
  };
}

export const FFN_TENSOR = /^model\.layers\.\d+\.mlp\.(gate|up|down)_proj\.weight$/;

/** The MLP weight names among `names`, in their order. */
export function ffnTensorNames(names: Iterable<string>): string[] {
  return [...names].filter((n) => FFN_TENSOR.test(n));
}

/** A LoRA expert: PEFT factors A [r, in], B [out, r] per module, and its spec (scale α/r). */
export interface LoraExpert extends LoraHost {
  spec: LoraSpec;
}

/** Task vectors of a pool, produced per tensor name (callers go name by name, expert by expert). */
export interface TaskVectors {
  readonly count: number;
  readonly names: readonly string[];
  delta(i: number, name: string): Float32Array;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function shapeOf(src: TensorSource, name: string): number[] {
  const e = (src as { entry?: (n: string) => { shape: number[] } }).entry;
  return e ? e.call(src, name).shape : src.read(name).shape;
}

/** Check that every expert has each tensor with the base's shape (errors name tensor and source). */
function checkFfn(base: TensorSource, experts: readonly TensorSource[], names: readonly string[]): void {
  if (names.length === 0)
    throw fileError(base.dir ?? 'base', 'no MLP weights (model.layers.N.mlp.*_proj.weight) to expand');
  experts.forEach((e, i) => {
    const where = e.dir ?? `expert ${i}`;
    for (const name of names) {
      if (!base.has(name)) throw fileError(base.dir ?? 'base', `missing tensor ${JSON.stringify(name)}`);
      if (!e.has(name)) throw fileError(where, `missing tensor ${JSON.stringify(name)}`);
      const a = shapeOf(base, name);
      const b = shapeOf(e, name);
      if (!sameShape(a, b)) {
        throw fileError(
          where,
          `tensor ${JSON.stringify(name)} has shape [${b.join(', ')}], the base has [${a.join(', ')}]`,
        );
      }
    }
  });
}

/** FFN task vectors δ_i = expert_i − base over `names` (default: the base's MLP weights). */
export function ffnTaskVectors(
  base: TensorSource,
  experts: readonly TensorSource[],
  names: readonly string[] = ffnTensorNames(base.names()),
): TaskVectors {
  checkFfn(base, experts, names);
  let cached: { name: string; data: Float32Array } | null = null;
  const baseOf = (name: string) => {
    if (cached?.name !== name) cached = { name, data: base.read(name).data };
    return cached.data;
  };
  return {
    count: experts.length,
    names,
    delta: (i, name) => {
      const b = baseOf(name);
      const x = experts[i]!.read(name).data;
      const d = new Float32Array(x.length);
      for (let t = 0; t < x.length; t++) d[t] = x[t]! - b[t]!;
      return d;
    },
  };
}

/** Task vectors held in memory: one map name → δ per expert. */
export function memoryTaskVectors(
  deltas: readonly ReadonlyMap<string, HostTensor | Float32Array>[],
): TaskVectors {
  const names = deltas.length > 0 ? [...deltas[0]!.keys()] : [];
  return {
    count: deltas.length,
    names,
    delta: (i, name) => {
      const t = deltas[i]!.get(name);
      if (t === undefined) throw new UserError(`expert ${i} has no tensor ${JSON.stringify(name)}`);
      return t instanceof Float32Array ? t : t.data;
    },
  };
}

export function loraScaleOf(spec: Pick<LoraSpec, 'r' | 'alpha'>): number {
  return spec.alpha / spec.r;
}

/** ΔW = (α/r)·B·A [out, in] of one module. */
export function loraDeltaW(e: LoraExpert, module: string): Float32Array {
  const A = e.A.get(module);
  const B = e.B.get(module);
  if (!A || !B) throw new UserError(`LoRA expert has no factors for ${module}`);
  const [r, inn] = A.shape as [number, number];
  const [out] = B.shape as [number, number];
  const w = matMul(B.data, A.data, out, r, inn);
  const s = loraScaleOf(e.spec);
  const d = new Float32Array(out * inn);
  for (let i = 0; i < d.length; i++) d[i] = s * w[i]!;
  return d;
}

/** Module names and [out, in] of a LoRA pool; every expert must adapt the same modules with the same shapes. */
function loraModules(experts: readonly LoraExpert[]): { module: string; out: number; inn: number }[] {
  const first = experts[0];
  if (!first) return [];
  const mods = [...first.A.keys()].map((module) => {
    const A = first.A.get(module)!;
    const B = first.B.get(module);
    if (!B) throw new UserError(`LoRA expert 0: module ${module} has A but no B`);
    return { module, out: B.shape[0]!, inn: A.shape[1]! };
  });
  experts.forEach((e, i) => {
    if (e.A.size !== mods.length || e.B.size !== mods.length)
      throw new UserError(`LoRA expert ${i} adapts ${e.A.size} modules, expert 0 adapts ${mods.length}`);
    for (const { module, out, inn } of mods) {
      const A = e.A.get(module);
      const B = e.B.get(module);
      if (!A || !B) throw new UserError(`LoRA expert ${i} has no factors for ${module}`);
      const r = A.shape[0]!;
      if (
        A.shape.length !== 2 ||
        B.shape.length !== 2 ||
        A.shape[1] !== inn ||
        B.shape[0] !== out ||
        B.shape[1] !== r
      ) {
        throw new UserError(
          `LoRA expert ${i}, module ${module}: A [${A.shape.join(', ')}] and B [${B.shape.join(', ')}] do not fit [${out}, ${inn}]`,
        );
      }
    }
  });
  return mods;
}

/** ⟨ΔW_i, ΔW_j⟩ summed over modules, in factor space. */
function loraInner(
  a: LoraExpert,
  b: LoraExpert,
  modules: readonly { module: string; out: number; inn: number }[],
): number {
  let total = 0;
  for (const { module, out, inn } of modules) {
    const Ai = a.A.get(module)!.data;
    const Bi = a.B.get(module)!.data;
    const Aj = b.A.get(module)!.data;
    const Bj = b.B.get(module)!.data;
    const ri = Ai.length / inn;
    const rj = Aj.length / inn;
    // P = B_iᵀ B_j [ri, rj]
    const P = new Float64Array(ri * rj);
    for (let o = 0; o < out; o++) {
      for (let x = 0; x < ri; x++) {
        const v = Bi[o * ri + x]!;
        if (v === 0) continue;
        for (let y = 0; y < rj; y++) P[x * rj + y]! += v * Bj[o * rj + y]!;
      }
    }
    // tr(P · A_j A_iᵀ) = Σ_{x,y} P[x][y] ⟨A_j[y], A_i[x]⟩
    let s = 0;
    for (let x = 0; x < ri; x++) {
      for (let y = 0; y < rj; y++) {
        const p = P[x * rj + y]!;
        if (p === 0) continue;
        let d = 0;
        const ax = x * inn;
        const ay = y * inn;
        for (let c = 0; c < inn; c++) d += Ai[ax + c]! * Aj[ay + c]!;
        s += p * d;
      }
    }
    total += s;
  }
  return total * loraScaleOf(a.spec) * loraScaleOf(b.spec);
}

function isLoraPool(x: unknown): x is readonly LoraExpert[] {
  return (
    Array.isArray(x) &&
    x.length > 0 &&
    typeof x[0] === 'object' &&
    x[0] !== null &&
    'spec' in x[0] &&
    'A' in x[0]
  );
}

/** G_ij = ⟨δ_i, δ_j⟩ [count, count] (float64), accumulated tensor by tensor. */
export function gramMatrix(experts: TaskVectors | readonly LoraExpert[]): Float64Array {
  if (isLoraPool(experts)) {
    const mods = loraModules(experts);
    const m = experts.length;
    const g = new Float64Array(m * m);
    for (let i = 0; i < m; i++) {
      for (let j = i; j < m; j++) {
        const v = loraInner(experts[i]!, experts[j]!, mods);
        g[i * m + j] = v;
        g[j * m + i] = v;
      }
    }
    return g;
  }
  const tv = experts as TaskVectors;
  const m = tv.count;
  const g = new Float64Array(m * m);
  for (const name of tv.names) {
    const ds = Array.from({ length: m }, (_, i) => tv.delta(i, name));
    for (let i = 0; i < m; i++) {
      const a = ds[i]!;
      for (let j = i; j < m; j++) {
        const b = ds[j]!;
        if (b.length !== a.length)
          throw new UserError(
            `tensor ${JSON.stringify(name)}: expert ${j} has ${b.length} values, expert ${i} ${a.length}`,
          );
        let s = 0;
        for (let t = 0; t < a.length; t++) s += a[t]! * b[t]!;
        g[i * m + j]! += s;
      }
    }
  }
  for (let i = 0; i < m; i++) for (let j = 0; j < i; j++) g[i * m + j] = g[j * m + i]!;
  return g;
}

/** Distances from a Gram matrix: symmetric, zero diagonal. A zero task vector is at cosine distance 1. */
export function distancesFromGram(g: Float64Array, m: number, metric: DistanceMetric): number[][] {
  const d = Array.from({ length: m }, () => new Array<number>(m).fill(0));
  for (let i = 0; i < m; i++) {
    for (let j = i + 1; j < m; j++) {
      const gii = g[i * m + i]!;
      const gjj = g[j * m + j]!;
      const gij = g[i * m + j]!;
      let v: number;
      if (metric === 'cosine') {
        const den = Math.sqrt(gii * gjj);
        v = den > 0 ? 1 - Math.min(1, Math.max(-1, gij / den)) : 1;
      } else {
        v = Math.sqrt(Math.max(0, gii + gjj - 2 * gij));
      }
      d[i]![j] = v;
      d[j]![i] = v;
    }
  }
  return d;
}

/**
 * Pairwise distances of task vectors: FFN/any task vectors (`TaskVectors`, or one in-memory map
 * name → δ per expert) or LoRA experts (factor space). See the file comment.
 */
export function distanceMatrix(
  experts: TaskVectors | readonly LoraExpert[] | readonly ReadonlyMap<string, HostTensor | Float32Array>[],
  metric: DistanceMetric = 'cosine',
): number[][] {
  const src: TaskVectors | readonly LoraExpert[] = Array.isArray(experts)
    ? isLoraPool(experts)
      ? experts
      : memoryTaskVectors(experts as readonly ReadonlyMap<string, HostTensor | Float32Array>[])
    : (experts as TaskVectors);
  const m = isLoraPool(src) ? src.length : (src as TaskVectors).count;
  return distancesFromGram(gramMatrix(src), m, metric);
}

// ---- the genetic algorithm ------------------------------------------------------------------

export interface Lineage {
  /** Pool index of the child (m, m + 1, …). */
  child: number;
  /** Pool indices, j < k; α goes with j. */
  parents: [number, number];
  alpha: number;
  beta: number;
  p: number;
  rescale: DareRescale;
  /** The child's mask seed (merge `dare_linear` of the parents with this seed reproduces it). */
  seed: number;
  /** d(j, k) when the pair was chosen. */
  distance: number;
}

export interface ExpandCommonOptions {
  /** Target pool size (≥ the number of experts given). */
  n: number;
  /** DARE drop probability, [0, 1) (default 0.5). */
  p?: number;
  rescale?: DareRescale;
  alphaClamp?: [number, number];
  metric?: DistanceMetric;
  selection?: 'most-distant' | 'random';
  seed: number;
  /** Called after each child with its lineage record. */
  onChild?: (l: Lineage) => void;
}

export interface ExpandFfnOptions extends ExpandCommonOptions {
  mode: 'ffn';
  base: TensorSource;
  experts: readonly TensorSource[];
  /** Tensors that make up an expert (default: the base's MLP weights). */
  tensors?: readonly string[];
}

export interface ExpandLoraOptions extends ExpandCommonOptions {
  mode: 'lora';
  experts: readonly LoraExpert[];
  /** Rank of the children (delta space only; default the rank of expert 0). */
  loraRank?: number;
  loraMergeSpace?: 'delta' | 'factor';
  svd?: SvdOptions;
}

export interface ExpandResult<T> {
  /** The new experts, pool indices m … n − 1. FFN: θ0 + δ_child per MLP weight. LoRA: factors + spec. */
  children: T[];
  lineage: Lineage[];
  /** n × n distances over the final pool. */
  distances: number[][];
  metric: DistanceMetric;
}

interface Resolved {
  n: number;
  m: number;
  p: number;
  rescale: DareRescale;
  clamp: [number, number];
  metric: DistanceMetric;
  selection: 'most-distant' | 'random';
  seed: number;
}

function resolve(o: ExpandCommonOptions, m: number): Resolved {
  const err = (field: string, msg: string) => fileError(`expand.${field}`, msg);
  if (!Number.isSafeInteger(o.n) || o.n < m)
    throw err('n', `must be an integer ≥ the ${m} experts given, got ${o.n}`);
  if (o.n > m && m < 2) throw err('n', `growing the pool needs at least 2 experts, got ${m}`);
  const p = o.p ?? 0.5;
  if (!(typeof p === 'number' && p >= 0 && p < 1)) throw err('p', `must be in [0, 1), got ${p}`);
  const clamp = o.alphaClamp ?? [0, 1];
  if (!(clamp.length === 2 && clamp[0] >= 0 && clamp[0] <= clamp[1] && clamp[1] <= 1))
    throw err('alphaClamp', `must be [lo, hi] with 0 ≤ lo ≤ hi ≤ 1, got [${clamp.join(', ')}]`);
  if (!Number.isSafeInteger(o.seed)) throw err('seed', `must be an integer, got ${o.seed}`);
  const rescale = o.rescale ?? 'inverse';
  if (!['inverse', 'l1', 'none'].includes(rescale))
    throw err('rescale', `must be inverse, l1 or none, got ${rescale}`);
  const metric = o.metric ?? 'cosine';
  if (metric !== 'cosine' && metric !== 'l2')
    throw err('metric', `must be cosine or l2, got ${String(metric)}`);
  const selection = o.selection ?? 'most-distant';
  if (selection !== 'most-distant' && selection !== 'random')
    throw err('selection', `must be most-distant or random, got ${String(selection)}`);
  return { n: o.n, m, p, rescale, clamp: [clamp[0], clamp[1]], metric, selection, seed: o.seed };
}

/** A pool being grown: makes a child of (j, k) and returns its Gram row against members 0..c. */
interface PoolOps<T> {
  makeChild(
    j: number,
    k: number,
    alpha: number,
    childSeed: number,
    c: number,
  ): { child: T; row: Float64Array };
}

function runGa<T>(
  r: Resolved,
  g0: Float64Array,
  ops: PoolOps<T>,
  onChild?: (l: Lineage) => void,
): ExpandResult<T> {
  const { n, m } = r;
  const g = new Float64Array(n * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) g[i * n + j] = g0[i * m + j]!;
  const rng = Rng.derive(r.seed, 'expand');
  const used = new Set<number>();
  const children: T[] = [];
  const lineage: Lineage[] = [];
  const dist = (i: number, j: number): number => {
    const gii = g[i * n + i]!;
    const gjj = g[j * n + j]!;
    const gij = g[i * n + j]!;
    if (r.metric === 'l2') return Math.sqrt(Math.max(0, gii + gjj - 2 * gij));
    const den = Math.sqrt(gii * gjj);
    return den > 0 ? 1 - Math.min(1, Math.max(-1, gij / den)) : 1;
  };
  for (let c = m; c < n; c++) {
    let best: [number, number] | null = null;
    if (r.selection === 'most-distant') {
      let bestD = -Infinity;
      for (let i = 0; i < c; i++) {
        for (let j = i + 1; j < c; j++) {
          if (used.has(i * n + j)) continue;
          const d = dist(i, j);
          if (d > bestD) {
            bestD = d;
            best = [i, j];
          }
        }
      }
    } else {
      const free: [number, number][] = [];
      for (let i = 0; i < c; i++) for (let j = i + 1; j < c; j++) if (!used.has(i * n + j)) free.push([i, j]);
      if (free.length > 0) best = free[rng.int(free.length)]!;
    }
    if (best === null) throw new UserError(`expand: no unused pair of parents left for expert ${c}`);
    const [j, k] = best;
    used.add(j * n + k);
    const alpha = Math.min(r.clamp[1], Math.max(r.clamp[0], rng.next()));
    const childSeed = rng.nextU32();
    const { child, row } = ops.makeChild(j, k, alpha, childSeed, c);
    for (let i = 0; i <= c; i++) {
      g[c * n + i] = row[i]!;
      g[i * n + c] = row[i]!;
    }
    const l: Lineage = {
      child: c,
      parents: [j, k],
      alpha,
      beta: 1 - alpha,
      p: r.p,
      rescale: r.rescale,
      seed: childSeed,
      distance: dist(j, k),
    };
    children.push(child);
    lineage.push(l);
    onChild?.(l);
  }
  return { children, lineage, distances: distancesFromGram(g, n, r.metric), metric: r.metric };
}

function dareParams(r: Resolved, weights: number[]): MergeParams {
  return { weights, lambda: 1, normalize: false, density: 1, drop: r.p, rescale: r.rescale };
}

function expandFfn(o: ExpandFfnOptions): ExpandResult<Map<string, HostTensor>> {
  const r = resolve(o, o.experts.length);
  const names = o.tensors ? [...o.tensors] : ffnTensorNames(o.base.names());
  const g0 = gramMatrix(ffnTaskVectors(o.base, o.experts, names));
  const pool: TensorSource[] = [...o.experts];
  const dare = MERGE_METHODS.dare_linear;
  return runGa(
    r,
    g0,
    {
      makeChild(j, k, alpha, childSeed, c) {
        const child = new Map<string, HostTensor>();
        const row = new Float64Array(c + 1);
        const params = dareParams(r, [alpha, 1 - alpha]);
        for (const name of names) {
          const b = o.base.read(name);
          const out = dare.mergeTensor(b.data, [pool[j]!.read(name).data, pool[k]!.read(name).data], params, {
            name,
            seed: childSeed,
          });
          child.set(name, { shape: [...b.shape], data: out });
          const dc = new Float32Array(out.length);
          for (let t = 0; t < out.length; t++) dc[t] = out[t]! - b.data[t]!;
          for (let i = 0; i < c; i++) row[i]! += dotDelta(dc, pool[i]!.read(name).data, b.data);
          let s = 0;
          for (let t = 0; t < dc.length; t++) s += dc[t]! * dc[t]!;
          row[c]! += s;
        }
        pool.push(memorySource(child, `child ${c}`));
        return { child, row };
      },
    },
    o.onChild,
  );
}

function expandLora(o: ExpandLoraOptions): ExpandResult<LoraExpert> {
  const r = resolve(o, o.experts.length);
  const mods = loraModules(o.experts);
  if (mods.length === 0) throw new UserError('expand: LoRA experts adapt no modules');
  const space = o.loraMergeSpace ?? 'delta';
  if (space !== 'delta' && space !== 'factor')
    throw fileError('expand.loraMergeSpace', `must be delta or factor, got ${String(space)}`);
  const spec0 = o.experts[0]!.spec;
  const scale = loraScaleOf(spec0);
  const rank = o.loraRank ?? spec0.r;
  if (!Number.isSafeInteger(rank) || rank < 1)
    throw fileError('expand.loraRank', `must be a positive integer, got ${rank}`);
  if (space === 'factor') {
    if (o.loraRank !== undefined && o.loraRank !== spec0.r)
      throw fileError(
        'expand.loraRank',
        `factor-space merging keeps the adapters' rank ${spec0.r}; use delta space to change it`,
      );
    o.experts.forEach((e, i) => {
      if (e.spec.r !== spec0.r)
        throw new UserError(
          `expand: factor-space merging needs one rank; expert ${i} has r ${e.spec.r}, expert 0 ${spec0.r}`,
        );
    });
  }
  for (const { module, out, inn } of mods) {
    if (rank > Math.min(out, inn))
      throw fileError('expand.loraRank', `${rank} exceeds min(out, in) = ${Math.min(out, inn)} of ${module}`);
  }
  const childSpec: LoraSpec = { ...spec0, targets: [...spec0.targets], r: rank, alpha: scale * rank };
  const pool: LoraExpert[] = [...o.experts];
  const dare = MERGE_METHODS.dare_linear;
  return runGa(
    r,
    gramMatrix(o.experts),
    {
      makeChild(j, k, alpha, childSeed, c) {
        const P = pool[j]!;
        const Q = pool[k]!;
        const A = new Map<string, HostTensor>();
        const B = new Map<string, HostTensor>();
        for (const { module, out, inn } of mods) {
          if (space === 'delta') {
            const merged = dare.mergeTensor(
              new Float32Array(out * inn),
              [loraDeltaW(P, module), loraDeltaW(Q, module)],
              dareParams(r, [alpha, 1 - alpha]),
              { name: module, seed: childSeed },
            );
            const svd = truncatedSvd(merged, out, inn, rank, { seed: childSeed, ...o.svd });
            const b = new Float32Array(out * rank);
            const a = new Float32Array(rank * inn);
            for (let x = 0; x < svd.k; x++) {
              const s = svd.S[x]! / scale;
              for (let y = 0; y < out; y++) b[y * rank + x] = svd.U[y * svd.k + x]! * s;
              a.set(svd.Vt.subarray(x * inn, (x + 1) * inn), x * inn);
            }
            A.set(module, { shape: [rank, inn], data: a });
            B.set(module, { shape: [out, rank], data: b });
          } else {
            const Pa = P.A.get(module)!;
            const Pb = P.B.get(module)!;
            const a = dare.mergeTensor(
              new Float32Array(Pa.data.length),
              [Pa.data, Q.A.get(module)!.data],
              dareParams(r, [0.5, 0.5]),
              { name: `${module}.lora_A`, seed: childSeed },
            );
            const wj = (alpha * loraScaleOf(P.spec)) / scale;
            const wk = ((1 - alpha) * loraScaleOf(Q.spec)) / scale;
            const b = dare.mergeTensor(
              new Float32Array(Pb.data.length),
              [Pb.data, Q.B.get(module)!.data],
              dareParams(r, [wj, wk]),
              { name: `${module}.lora_B`, seed: childSeed },
            );
            A.set(module, { shape: [...Pa.shape], data: a });
            B.set(module, { shape: [...Pb.shape], data: b });
          }
        }
        const child: LoraExpert = { A, B, spec: { ...childSpec, targets: [...childSpec.targets] } };
        const row = new Float64Array(c + 1);
        for (let i = 0; i < c; i++) row[i] = loraInner(child, pool[i]!, mods);
        row[c] = loraInner(child, child, mods);
        pool.push(child);
        return { child, row };
      },
    },
    o.onChild,
  );
}

/** Grow a pool of m experts to n (see the file comment). */
export function expandPool(o: ExpandFfnOptions): ExpandResult<Map<string, HostTensor>>;
export function expandPool(o: ExpandLoraOptions): ExpandResult<LoraExpert>;
export function expandPool(
  o: ExpandFfnOptions | ExpandLoraOptions,
): ExpandResult<Map<string, HostTensor>> | ExpandResult<LoraExpert> {
  if (o.mode === 'ffn') return expandFfn(o);
  if (o.mode === 'lora') return expandLora(o);
  throw fileError('expand.mode', `must be ffn or lora, got ${String((o as { mode: unknown }).mode)}`);
}
