/**
 * Sparsification of task vectors, element by element and in chunks so a merge never holds more
 * than its input tensors plus a few kilobytes of scratch:
 *
 * - DARE (Yu et al. 2023, "Language Models are Super Mario"): keep each δ entry with probability
 *   1 − p (mask m ~ Bernoulli(1 − p)), then rescale the kept ones by 1/(1 − p), or (option) by
 *   ‖δ‖₁ / ‖m ⊙ δ‖₁ so the L1 norm is preserved exactly (mergekit's `rescale_norm: l1`).
 * - magnitude trim (TIES, Yadav et al. 2023): keep the k = ⌊density·n⌋ (at least 1) entries of
 *   largest |δ|; ties at the threshold are kept in index order until k are kept.
 *
 * Masks come from xoshiro128** (the generator of `Rng`, inlined here: one uint32 per element,
 * compared with an integer threshold, no float per draw). An element is dropped when its draw u
 * satisfies u < T = round(p·2³²), so the keep probability is 1 − p to within 2⁻³³. Each tensor
 * of each model gets its own stream, `Rng.derive(seed, "dare/<model index>/<tensor name>")`, so
 * the masks do not depend on the order in which tensors are visited.
 */
import { Rng } from '../../common/rng.js';

/** Elements processed per step (the scratch of a merge is a few of these). */
export const CHUNK = 4096;

/** How kept DARE entries are rescaled. */
export type DareRescale = 'inverse' | 'l1' | 'none';

/** The label of the mask stream of model `model` (index among the merged models) on one tensor. */
export function dareLabel(model: number, tensor: string): string {
  return `dare/${model}/${tensor}`;
}

/** Integer drop threshold for probability p ∈ [0, 1): drop when the uint32 draw is below it. */
export function dropThreshold(p: number): number {
  return Math.min(Math.round(p * 4294967296), 4294967295);
}

/**
 * A Bernoulli keep-mask stream: xoshiro128** started from an `Rng`'s state (the draws are exactly
 * `rng.nextU32()`'s sequence), kept in four locals per call so the hot loop allocates nothing.
 */
export class MaskStream {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(
    rng: Rng,
    readonly threshold: number,
  ) {
    const s = rng.state();
    this.s0 = s[0]! | 0;
    this.s1 = s[1]! | 0;
    this.s2 = s[2]! | 0;
    this.s3 = s[3]! | 0;
  }

  static forTensor(seed: number, model: number, tensor: string, p: number): MaskStream {
    return new MaskStream(Rng.derive(seed, dareLabel(model, tensor)), dropThreshold(p));
  }

  clone(): MaskStream {
    const c = Object.create(MaskStream.prototype) as MaskStream;
    Object.assign(c, this);
    return c;
  }

  /** keep[t] = 1 when element t (of the next `len`) is kept, else 0; returns how many were kept. */
  fill(keep: Uint8Array, len: number): number {
    let s0 = this.s0;
    let s1 = this.s1;
    let s2 = this.s2;
    let s3 = this.s3;
    const thr = this.threshold;
    let kept = 0;
    for (let t = 0; t < len; t++) {
      // xoshiro128**: result = rotl(s1 * 5, 7) * 9
      const x = Math.imul(s1, 5);
      const u = Math.imul((x << 7) | (x >>> 25), 9) >>> 0;
      const tt = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= tt;
      s3 = (s3 << 11) | (s3 >>> 21);
      const k = u >= thr ? 1 : 0;
      keep[t] = k;
      kept += k;
    }
    this.s0 = s0;
    this.s1 = s1;
    this.s2 = s2;
    this.s3 = s3;
    return kept;
  }
}

/**
 * The L1 rescale factor of DARE on δ = x − b: ‖δ‖₁ / ‖m ⊙ δ‖₁, replaying `stream` on a clone
 * (the caller's stream is not advanced). 0 when every nonzero entry was dropped.
 */
export function dareL1Factor(x: Float32Array, b: Float32Array | null, stream: MaskStream): number {
  const s = stream.clone();
  const keep = new Uint8Array(CHUNK);
  let all = 0;
  let kept = 0;
  for (let off = 0; off < x.length; off += CHUNK) {
    const len = Math.min(CHUNK, x.length - off);
    s.fill(keep, len);
    for (let t = 0; t < len; t++) {
      const d = Math.abs(b === null ? x[off + t]! : x[off + t]! - b[off + t]!);
      all += d;
      if (keep[t] === 1) kept += d;
    }
  }
  return kept > 0 ? all / kept : 0;
}

/**
 * The magnitude threshold of a TIES trim of δ = x − b (|δ| taken in float32): the bit pattern of
 * the k-th largest |δ| and how many entries equal to it are kept (the first ones in index order),
 * found by a two-pass radix select on the float bits (non-negative floats order like their bits).
 */
export interface TrimPlan {
  /** Keep |δ| whose float32 bits exceed this; ... */
  thresholdBits: number;
  /** ... plus the first `tiesToKeep` entries whose bits equal it. */
  tiesToKeep: number;
}

export function trimCount(n: number, density: number): number {
  if (density >= 1) return n;
  return Math.max(1, Math.floor(density * n));
}

export function planTrim(x: Float32Array, b: Float32Array | null, k: number): TrimPlan {
  const n = x.length;
  if (k >= n) return { thresholdBits: -1, tiesToKeep: 0 }; // every entry's bits exceed -1
  const f = new Float32Array(CHUNK);
  const u = new Uint32Array(f.buffer);
  const hist = new Uint32Array(65536);
  const absInto = (off: number, len: number) => {
    for (let t = 0; t < len; t++) f[t] = Math.abs(b === null ? x[off + t]! : x[off + t]! - b[off + t]!);
  };
  for (let off = 0; off < n; off += CHUNK) {
    const len = Math.min(CHUNK, n - off);
    absInto(off, len);
    for (let t = 0; t < len; t++) hist[u[t]! >>> 16]!++;
  }
  let above = 0; // entries in higher bins
  let hi = 65535;
  for (; hi >= 0; hi--) {
    const c = hist[hi]!;
    if (above + c >= k) break;
    above += c;
  }
  hist.fill(0);
  for (let off = 0; off < n; off += CHUNK) {
    const len = Math.min(CHUNK, n - off);
    absInto(off, len);
    for (let t = 0; t < len; t++) if (u[t]! >>> 16 === hi) hist[u[t]! & 0xffff]!++;
  }
  let lo = 65535;
  for (; lo >= 0; lo--) {
    const c = hist[lo]!;
    if (above + c >= k) break;
    above += c;
  }
  return { thresholdBits: ((hi << 16) | lo) >>> 0, tiesToKeep: k - above };
}

/** Applies a TrimPlan chunk by chunk (stateful: counts the ties kept so far). */
export class TrimStream {
  private ties: number;
  private readonly f = new Float32Array(CHUNK);
  private readonly u = new Uint32Array(this.f.buffer);

  constructor(private readonly plan: TrimPlan) {
    this.ties = plan.tiesToKeep;
  }

  /** keep[t] for elements off..off+len of δ = x − b. */
  fill(keep: Uint8Array, x: Float32Array, b: Float32Array | null, off: number, len: number): void {
    const { f, u } = this;
    const thr = this.plan.thresholdBits;
    if (thr < 0) {
      keep.fill(1, 0, len);
      return;
    }
    for (let t = 0; t < len; t++) f[t] = Math.abs(b === null ? x[off + t]! : x[off + t]! - b[off + t]!);
    for (let t = 0; t < len; t++) {
      const bits = u[t]!;
      if (bits > thr) keep[t] = 1;
      else if (bits === thr && this.ties > 0) {
        keep[t] = 1;
        this.ties--;
      } else keep[t] = 0;
    }
  }
}
