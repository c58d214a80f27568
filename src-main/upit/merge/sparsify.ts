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
 * Masks come from xoshiro128** (the generator of `Rng`, inlined here), integer fields of its
 * uint32 words compared with an integer threshold, no float per draw (`maskPlan`: exact for
 * dyadic p such as 0.5 with 32 draws per word; one word per element otherwise, keep probability
 * 1 − p to within 2⁻³³), packed 32 elements per uint32. Each tensor of each model gets its own
 * stream, `Rng.derive(seed, "dare/<model index>/<tensor name>")`, so the masks do not depend on
 * the order in which tensors are visited. (`Rng` hashes the label to 32 bits: two labels collide
 * with probability 2⁻³², and then share a mask.)
 *
 * Measured here (2-core shared VM, best of 5): a p = 0.5 mask costs 0.16–0.2 ns per element,
 * p = 0.3 about 5 ns, against 11–30 ns for one `Rng.next()` float per element.
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

/**
 * How a drop probability p is drawn: `bits`-bit fields of the generator's uint32 words (low bits
 * first), an element dropped when its field is below `threshold`. When p·2^b is an integer for
 * b ∈ {1, 2, 4, 8, 16} (p = 0, 0.5, 0.25, 0.9375, …) the smallest such b is used and the draw is
 * exact with 32/b elements per word (p = 0.5, UpIT's default: one word per 32 elements);
 * otherwise one word per element with threshold round(p·2³²) (keep probability 1 − p to 2⁻³³).
 */
export function maskPlan(p: number): { bits: number; threshold: number } {
  for (const bits of [1, 2, 4, 8, 16]) {
    const t = p * 2 ** bits;
    if (Number.isInteger(t)) return { bits, threshold: t };
  }
  return { bits: 32, threshold: Math.min(Math.round(p * 4294967296), 4294967295) };
}

/** Bit t of a packed keep mask (word t >>> 5, bit t & 31). */
export function keepBit(bits: Uint32Array, t: number): number {
  return (bits[t >>> 5]! >>> (t & 31)) & 1;
}

/** Words of a packed keep mask for `len` elements. */
export function maskWords(len: number): number {
  return (len + 31) >>> 5;
}

/**
 * A Bernoulli keep-mask stream: xoshiro128** started from an `Rng`'s state (the words are exactly
 * `rng.nextU32()`'s sequence), inlined with the state in locals so the hot loop allocates nothing
 * and has no data-dependent branch. See `maskPlan` for how words become draws. Masks come out
 * packed, 32 elements per uint32 (for p = 0.5 the generator's words are the mask).
 */
export class MaskStream {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  /** The word being consumed and how many fields it has left. */
  private word = 0;
  private left = 0;
  readonly bits: number;
  readonly threshold: number;

  constructor(rng: Rng, p: number) {
    const s = rng.state();
    this.s0 = s[0]! | 0;
    this.s1 = s[1]! | 0;
    this.s2 = s[2]! | 0;
    this.s3 = s[3]! | 0;
    const plan = maskPlan(p);
    this.bits = plan.bits;
    this.threshold = plan.threshold;
  }

  static forTensor(seed: number, model: number, tensor: string, p: number): MaskStream {
    return new MaskStream(Rng.derive(seed, dareLabel(model, tensor)), p);
  }

  clone(): MaskStream {
    const c = Object.create(MaskStream.prototype) as MaskStream;
    Object.assign(c, this);
    return c;
  }

  private nextWord(): number {
    const x = Math.imul(this.s1, 5);
    const u = Math.imul((x << 7) | (x >>> 25), 9);
    const tt = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= tt;
    this.s3 = (this.s3 << 11) | (this.s3 >>> 21);
    return u;
  }

  /** The keep mask of the next `len` elements, packed into `out` (bit t = 1: keep element t). */
  fillBits(out: Uint32Array, len: number): void {
    const nw = len >>> 5;
    if (this.bits === 1 && this.left === 0) {
      // p ∈ {0, 0.5}: one generator word is 32 draws (a bit is kept when ≥ the threshold)
      const all = this.threshold === 0;
      for (let k = 0; k < nw; k++) {
        const w = this.nextWord();
        out[k] = all ? -1 : w;
      }
      const tail = len & 31;
      if (tail > 0) {
        const w = all ? -1 : this.nextWord();
        if (!all) {
          this.word = w >>> tail;
          this.left = 32 - tail;
        }
        out[nw] = w & ((1 << tail) - 1);
      }
      return;
    }
    this.fillGeneral(out, len);
  }

  private fillGeneral(out: Uint32Array, len: number): void {
    let s0 = this.s0;
    let s1 = this.s1;
    let s2 = this.s2;
    let s3 = this.s3;
    const thr = this.threshold | 0;
    const bits = this.bits;
    const mask = bits >= 16 ? (bits === 32 ? -1 : 0xffff) : (1 << bits) - 1;
    const per = 32 / bits;
    let w = this.word;
    let left = this.left;
    for (let k = 0; k < len; k += 32) {
      const n = Math.min(32, len - k);
      let packed = 0;
      for (let j = 0; j < n; j++) {
        if (left === 0) {
          // xoshiro128**: result = rotl(s1·5, 7)·9
          const x = Math.imul(s1, 5);
          w = Math.imul((x << 7) | (x >>> 25), 9);
          const tt = s1 << 9;
          s2 ^= s0;
          s3 ^= s1;
          s1 ^= s2;
          s0 ^= s3;
          s2 ^= tt;
          s3 = (s3 << 11) | (s3 >>> 21);
          left = per;
        }
        const f = w & mask;
        w = bits === 32 ? 0 : w >>> bits;
        left--;
        // unsigned f < thr, branch-free: the borrow out of f − thr
        const lt = ((~f & thr) | (~(f ^ thr) & ((f - thr) | 0))) >>> 31;
        packed |= (lt ^ 1) << j;
      }
      out[k >>> 5] = packed;
    }
    this.word = w;
    this.left = left;
    this.s0 = s0;
    this.s1 = s1;
    this.s2 = s2;
    this.s3 = s3;
  }

  /** For the next `len` elements: mult[t] = c when element t is kept, else 0. */
  fill(mult: Float64Array, len: number, c: number): void {
    const bits = new Uint32Array(maskWords(len));
    this.fillBits(bits, len);
    for (let t = 0; t < len; t++) mult[t] = keepBit(bits, t) * c;
  }
}

/**
 * The L1 rescale factor of DARE on δ = x − b: ‖δ‖₁ / ‖m ⊙ δ‖₁, replaying `stream` on a clone
 * (the caller's stream is not advanced). 0 when every nonzero entry was dropped.
 */
export function dareL1Factor(x: Float32Array, b: Float32Array | null, stream: MaskStream): number {
  const s = stream.clone();
  const keep = new Uint32Array(CHUNK >>> 5);
  let all = 0;
  let kept = 0;
  for (let off = 0; off < x.length; off += CHUNK) {
    const len = Math.min(CHUNK, x.length - off);
    s.fillBits(keep, len);
    for (let t = 0; t < len; t++) {
      const d = Math.abs(b === null ? x[off + t]! : x[off + t]! - b[off + t]!);
      all += d;
      kept += ((keep[t >>> 5]! >>> (t & 31)) & 1) * d;
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

  /** The keep mask of elements off..off+len of δ = x − b, packed into `out` (len ≤ CHUNK). */
  fillBits(out: Uint32Array, x: Float32Array, b: Float32Array | null, off: number, len: number): void {
    const { f, u } = this;
    const thr = this.plan.thresholdBits;
    if (thr < 0) {
      out.fill(-1, 0, maskWords(len));
      return;
    }
    out.fill(0, 0, maskWords(len));
    for (let t = 0; t < len; t++) f[t] = Math.abs(b === null ? x[off + t]! : x[off + t]! - b[off + t]!);
    for (let t = 0; t < len; t++) {
      const bits = u[t]!;
      out[t >>> 5]! |= ((thr - bits) >>> 31) << (t & 31); // bits > thr, branch-free (both < 2³¹)
      if (bits === thr && this.ties > 0) {
        // rare: entries equal to the threshold, kept in index order while the budget lasts
        out[t >>> 5]! |= 1 << (t & 31);
        this.ties--;
      }
    }
  }

  /** For elements off..off+len: mult[t] = c when kept, else 0 (any len). */
  fill(
    mult: Float64Array,
    c: number,
    x: Float32Array,
    b: Float32Array | null,
    off: number,
    len: number,
  ): void {
    const bits = new Uint32Array(maskWords(CHUNK));
    for (let start = 0; start < len; start += CHUNK) {
      const l = Math.min(CHUNK, len - start);
      this.fillBits(bits, x, b, off + start, l);
      for (let t = 0; t < l; t++) mult[start + t] = keepBit(bits, t) * c;
    }
  }
}
