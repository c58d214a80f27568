/**
 * Sparsification of task vectors, element by element and in chunks so a merge never holds more
 * than its input tensors plus a few kilobytes of scratch:
 *
 * - DARE (Yu et al. 2023, "Language Models are Super Mario"): keep each δ entry with probability
 *   1 − p (mask m ~ Bernoulli(1 − p)), then rescale the kept ones by 1/(1 − p), or (option) by
 *   ‖δ‖₁ / ‖m ⊙ δ‖₁ so the L1 norm is preserved exactly (mergekit's `rescale_norm: l1`).
 * - magnitude trim (TIES, Yadav et al. 2023): keep the k = ⌊density·n⌋ (at least 1) entries of
 *   largest |δ|; ties at the threshold are kept in index order until k are kept. The threshold
 *   is found by selection on the float32 bit patterns of |δ| (no sort), in one pass over the
 *   tensor when a sample predicts where it lies (`planTrim`), two models at once with the SIMD
 *   kernels (`planTrimPair`: histograms of a sample place a band per model, one pass without
 *   data-dependent branches counts the entries above it and collects those inside, and the
 *   threshold is selected among the collected ones), or slice by slice as a tensor is read
 *   (`TrimPairLanding`).
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
 * p = 0.3 about 3 ns, against 11–30 ns for one `Rng.next()` float per element.
 */
import { Rng } from '../../common/rng.js';
import { arenaOf, TRIM_BIN_SHIFT, type SimdArena } from './simd.js';

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
    if (this.bits === 32) this.fillWords(out, len);
    else this.fillGeneral(out, len);
  }

  /**
   * p not dyadic: one generator word per element, kept when the word (unsigned) ≥ the threshold.
   * The same draws as fillGeneral with bits = 32 (a word never spans calls) without its field
   * bookkeeping and borrow arithmetic: a plain unsigned compare, about 2× faster.
   */
  private fillWords(out: Uint32Array, len: number): void {
    let s0 = this.s0;
    let s1 = this.s1;
    let s2 = this.s2;
    let s3 = this.s3;
    const thr = this.threshold >>> 0;
    for (let k = 0; k < len; k += 32) {
      const n = Math.min(32, len - k);
      let packed = 0;
      for (let j = 0; j < n; j++) {
        const x = Math.imul(s1, 5);
        const w = Math.imul((x << 7) | (x >>> 25), 9);
        const tt = s1 << 9;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= tt;
        s3 = (s3 << 11) | (s3 >>> 21);
        packed |= +(w >>> 0 >= thr) << j; // +(boolean) compiles to a flag, no branch
      }
      out[k >>> 5] = packed;
    }
    this.s0 = s0;
    this.s1 = s1;
    this.s2 = s2;
    this.s3 = s3;
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
 * |δ| = |x − b| (|x| when b is null) of elements off..off+len, rounded to float32 into `f`: the
 * caller reads the bit patterns through an Int32Array view of `f` (non-negative floats, NaN
 * included, order like their bits, all below 2³¹). One loop per case: no per-element null test.
 */
function absDelta(x: Float32Array, b: Float32Array | null, off: number, len: number, f: Float32Array): void {
  if (b === null) for (let t = 0; t < len; t++) f[t] = Math.abs(x[off + t]!);
  else for (let t = 0; t < len; t++) f[t] = Math.abs(x[off + t]! - b[off + t]!);
}

/**
 * The L1 rescale factor of DARE on δ = x − b: ‖δ‖₁ / ‖m ⊙ δ‖₁, replaying `stream` on a clone
 * (the caller's stream is not advanced). 0 when every nonzero entry was dropped. Both sums run
 * in index order, in float64 (reordering them would change the factor's last bits).
 */
export function dareL1Factor(x: Float32Array, b: Float32Array | null, stream: MaskStream): number {
  const s = stream.clone();
  const keep = new Uint32Array(CHUNK >>> 5);
  let all = 0;
  let kept = 0;
  for (let off = 0; off < x.length; off += CHUNK) {
    const len = Math.min(CHUNK, x.length - off);
    s.fillBits(keep, len);
    // one loop per case: the null test is out of the per-element path
    if (b === null) {
      for (let t = 0; t < len; t++) {
        const d = Math.abs(x[off + t]!);
        all += d;
        kept += ((keep[t >>> 5]! >>> (t & 31)) & 1) * d;
      }
    } else {
      for (let t = 0; t < len; t++) {
        const d = Math.abs(x[off + t]! - b[off + t]!);
        all += d;
        kept += ((keep[t >>> 5]! >>> (t & 31)) & 1) * d;
      }
    }
  }
  return kept > 0 ? all / kept : 0;
}

/**
 * dareL1Factor of every model (streams[i] is model i's mask), two models in one pass: the base is
 * read once and the four sums (each still in index order) run side by side.
 */
export function dareL1Factors(
  xs: readonly Float32Array[],
  b: Float32Array,
  streams: readonly MaskStream[],
): number[] {
  if (xs.length !== 2) return xs.map((x, i) => dareL1Factor(x, b, streams[i]!));
  const [x0, x1] = xs as [Float32Array, Float32Array];
  const arena = arenaOf(x0, x1, b);
  if (arena !== null) {
    // the SIMD kernel: the same four sums (lanes of one float64 pair per sum kind, in index order)
    const s0 = streams[0]!.clone();
    const s1 = streams[1]!.clone();
    const [k0, k1] = arena.maskScratch as [Uint32Array, Uint32Array];
    const sums = new Float64Array(4); // all0, all1, kept0, kept1
    for (let off = 0; off < b.length; off += CHUNK) {
      const len = Math.min(CHUNK, b.length - off);
      s0.fillBits(k0, len);
      s1.fillBits(k1, len);
      arena.l1Sums(k0, k1, x0, x1, b, off, len, sums);
    }
    const [all0, all1, kept0, kept1] = sums as unknown as [number, number, number, number];
    // a dropped entry added +0 where the loops below add 0·d: the same while every d is finite
    if (Number.isFinite(all0) && Number.isFinite(all1))
      return [kept0 > 0 ? all0 / kept0 : 0, kept1 > 0 ? all1 / kept1 : 0];
  }
  const s0 = streams[0]!.clone();
  const s1 = streams[1]!.clone();
  const k0 = new Uint32Array(CHUNK >>> 5);
  const k1 = new Uint32Array(CHUNK >>> 5);
  let all0 = 0;
  let kept0 = 0;
  let all1 = 0;
  let kept1 = 0;
  for (let off = 0; off < b.length; off += CHUNK) {
    const len = Math.min(CHUNK, b.length - off);
    s0.fillBits(k0, len);
    s1.fillBits(k1, len);
    for (let t = 0; t < len; t++) {
      const bo = b[off + t]!;
      const d0 = Math.abs(x0[off + t]! - bo);
      const d1 = Math.abs(x1[off + t]! - bo);
      all0 += d0;
      kept0 += ((k0[t >>> 5]! >>> (t & 31)) & 1) * d0;
      all1 += d1;
      kept1 += ((k1[t >>> 5]! >>> (t & 31)) & 1) * d1;
    }
  }
  return [kept0 > 0 ? all0 / kept0 : 0, kept1 > 0 ? all1 / kept1 : 0];
}

/**
 * dareL1Factors of two models from their keep masks of the whole tensor (bit t = element t,
 * views of the arena the data lives in), with the SIMD kernel in one call; null when some |δ|
 * is not finite (the kernel's sums then differ from the loops': the caller takes dareL1Factors).
 */
export function dareL1FactorsOfMasks(
  xs: readonly Float32Array[],
  b: Float32Array,
  masks: readonly Uint32Array[],
): number[] | null {
  const [x0, x1] = xs as [Float32Array, Float32Array];
  const [k0, k1] = masks as [Uint32Array, Uint32Array];
  const arena = arenaOf(x0, x1, b, k0, k1);
  if (arena === null) return null;
  const sums = new Float64Array(4); // all0, all1, kept0, kept1
  arena.l1Sums(k0, k1, x0, x1, b, 0, b.length, sums);
  const [all0, all1, kept0, kept1] = sums as unknown as [number, number, number, number];
  if (!Number.isFinite(all0) || !Number.isFinite(all1)) return null;
  return [kept0 > 0 ? all0 / kept0 : 0, kept1 > 0 ? all1 / kept1 : 0];
}

/**
 * The magnitude threshold of a TIES trim of δ = x − b (|δ| taken in float32): the bit pattern of
 * the k-th largest |δ| and how many entries equal to it are kept (the first ones in index order).
 * It is defined by the multiset of bit patterns alone, so how it is found does not change it.
 */
export interface TrimPlan {
  /** Keep |δ| whose float32 bits exceed this; ... */
  thresholdBits: number;
  /** ... plus the first `tiesToKeep` entries whose bits equal it, ... */
  tiesToKeep: number;
  /** ... which are the entries equal to it at indices ≤ lastTie (-1: none). */
  lastTie: number;
}

export function trimCount(n: number, density: number): number {
  if (density >= 1) return n;
  return Math.max(1, Math.floor(density * n));
}

/** Tensors at least this long are planned by `planTrimBand` (one pass); smaller ones by `planTrimAll`. */
export const BAND_MIN = 1 << 16;
/** |δ| samples that place the band: runs of 16 consecutive entries (one cache line), evenly spaced. */
const BAND_SAMPLES = 1 << 14;
const BAND_RUN = 16;
/** Half-width of the band in standard deviations of the sample's rank (a miss costs a second pass). */
const BAND_SD = 6;

export function planTrim(x: Float32Array, b: Float32Array | null, k: number): TrimPlan {
  const n = x.length;
  if (k >= n) return { thresholdBits: -1, tiesToKeep: 0, lastTie: -1 }; // every entry's bits exceed -1
  return (n >= BAND_MIN ? planTrimBand(x, b, k) : null) ?? planTrimAll(x, b, k);
}

/**
 * The k-th largest of `v[0..len)` (non-negative int32) and how many are strictly larger, by a
 * 16 + 16-bit radix select: a histogram of the high halves finds the high half of the answer, a
 * second one of the low halves of the entries in that bin finds the rest. Two linear passes.
 */
function kthLargest(v: Int32Array, len: number, k: number): { bits: number; above: number } {
  const hist = HIST.fill(0);
  for (let t = 0; t < len; t++) hist[v[t]! >>> 16]!++;
  let above = 0; // entries in higher bins
  let hi = 65535;
  for (; hi >= 0; hi--) {
    const c = hist[hi]!;
    if (above + c >= k) break;
    above += c;
  }
  hist.fill(0);
  for (let t = 0; t < len; t++) {
    const u = v[t]!;
    if (u >>> 16 === hi) hist[u & 0xffff]!++; // rare: the branch is predicted
  }
  let lo = 65535;
  for (; lo >= 0; lo--) {
    const c = hist[lo]!;
    if (above + c >= k) break;
    above += c;
  }
  return { bits: (hi << 16) | lo, above };
}

const HIST = new Uint32Array(65536);

/** The position of the `nth` (1-based) entry of `v` equal to `bits`. */
function nthEqual(v: Int32Array, len: number, bits: number, nth: number): number {
  for (let t = 0; t < len; t++) if (v[t] === bits && --nth === 0) return t;
  throw new Error('trim plan: fewer ties than counted');
}

/** Exact plan from every |δ|'s bits held at once (one tensor-sized int32 scratch). */
function planTrimAll(x: Float32Array, b: Float32Array | null, k: number): TrimPlan {
  const f = new Float32Array(x.length);
  absDelta(x, b, 0, x.length, f);
  const v = new Int32Array(f.buffer);
  const { bits, above } = kthLargest(v, x.length, k);
  const tiesToKeep = k - above;
  return { thresholdBits: bits, tiesToKeep, lastTie: nthEqual(v, x.length, bits, tiesToKeep) };
}

const F32 = new Float32Array(1);
const I32 = new Int32Array(F32.buffer);

/** The float32 whose bit pattern is `bits` (0 ≤ bits < 2³¹). */
function floatOfBits(bits: number): number {
  I32[0] = bits;
  return F32[0]!;
}

/** The bit pattern of float32 `f` (f ≥ 0). */
function bitsOfFloat(f: number): number {
  F32[0] = f;
  return I32[0]!;
}

/** The largest float64 that rounds to a float32 ≤ `f` (f a non-negative float32, +∞ included). */
function roundingLimit(f: number): number {
  if (f === Infinity) return Infinity;
  const up = f === 3.4028234663852886e38 ? 2 ** 128 : floatOfBits(bitsOfFloat(f) + 1);
  const mid = 0.5 * (f + up); // exact: a 25-bit significand
  if (Math.fround(mid) <= f) return mid; // the halfway point rounds to f (f's significand is even)
  const v = new DataView(new ArrayBuffer(8));
  v.setFloat64(0, mid);
  v.setBigUint64(0, v.getBigUint64(0) - 1n); // the next float64 down
  return v.getFloat64(0);
}

/**
 * Exact plan in one pass over the tensor (instead of writing every |δ| and selecting in two more):
 * the sorted bits of a strided sample give a band of |δ| that holds the threshold with
 * overwhelming odds (± BAND_SD standard deviations of the sample rank, a few % of the entries);
 * the pass counts the entries above the band and collects those inside it (with their indices,
 * for `lastTie`), and the threshold is selected among the collected ones. null when the band
 * missed (or overflowed): the caller then plans with `planTrimAll`, so the plan is exact
 * whatever the data.
 *
 * The pass compares float64s, not bits (no rounding to float32, no store and reload per
 * element): with a = |δ| unrounded, fround(a) ≤ hi ⇔ a ≤ H = roundingLimit(hi), so "above"
 * (!(a ≤ H): NaN included, NaN patterns being the largest bits) is counted exactly, branch-free;
 * a cheap test |a − mid| ≤ h, slightly wider than the band, guards the rare branch that checks
 * L < a ≤ H exactly and collects fround(a).
 */
export function planTrimBand(x: Float32Array, b: Float32Array | null, k: number): TrimPlan | null {
  const n = x.length;
  const S = BAND_SAMPLES;
  const stride = Math.floor(n / (S / BAND_RUN)); // ≥ 64 (n ≥ BAND_MIN)
  const sample = new Float32Array(S);
  for (let j = 0; j < S; j++) {
    const i = Math.floor(j / BAND_RUN) * stride + (j % BAND_RUN);
    sample[j] = Math.abs(b === null ? x[i]! : x[i]! - b[i]!);
  }
  const sampleBits = new Int32Array(sample.buffer).sort();
  // in ascending order the threshold has rank n − k of n; in the sample about q·S
  const q = (n - k) / n;
  const sd = Math.sqrt(S * q * (1 - q)) + 1;
  const rLo = Math.floor(q * S - BAND_SD * sd);
  const rHi = Math.ceil(q * S + BAND_SD * sd);
  const lo = rLo < 0 ? 0 : floatOfBits(sampleBits[rLo]!);
  const hi = rHi >= S ? 3.4028234663852886e38 : floatOfBits(sampleBits[rHi]!);
  // the band is lo ≤ fround(a) ≤ hi, i.e. L < a ≤ H
  const L = lo === 0 ? -1 : roundingLimit(floatOfBits(bitsOfFloat(lo) - 1));
  const H = roundingLimit(hi);
  const mid = 0.5 * (L + H);
  const h = 0.5 * (H - L) + H * 2 ** -40; // wider than the rounding errors of a − mid and mid
  // room for twice the expected band (a larger one means the sample misled: give up)
  const cap = Math.min(n, 2 * Math.ceil(((rHi - rLo + 2) / S) * n) + 1024);
  const band = new Float32Array(cap);
  const at = new Int32Array(cap);
  let nb = 0;
  let above = 0;
  const bb = b ?? new Float32Array(n); // |x − 0| = |x|, bit for bit
  for (let i = 0; i < n; i++) {
    const a = Math.abs(x[i]! - bb[i]!);
    above += +!(a <= H); // +(boolean) compiles to a flag, no branch
    if (Math.abs(a - mid) <= h) {
      // near the band: a few % of the entries, so the branch is mostly predicted
      if (a > L && a <= H) {
        if (nb === cap) return null;
        band[nb] = a; // rounded to float32 here
        at[nb++] = i;
      }
    }
  }
  if (above >= k || above + nb < k) return null; // the threshold is outside the band
  const v = new Int32Array(band.buffer, band.byteOffset, band.length);
  const sel = kthLargest(v, nb, k - above);
  const tiesToKeep = k - above - sel.above;
  return { thresholdBits: sel.bits, tiesToKeep, lastTie: at[nthEqual(v, nb, sel.bits, tiesToKeep)]! };
}

/** Sample sizes of the pair planner: n / 16 entries, within these bounds (runs of 16). */
const PAIR_SAMPLE_MIN = 1 << 14;
const PAIR_SAMPLE_MAX = 1 << 18;
/** Half-width of a pair band in standard deviations of the sample rank (a miss costs a pass). */
const PAIR_SD = 5;

/**
 * Bands of float32 |δ| bits [lo_i, hi_i] likely to hold each model's trim threshold (the k-th
 * largest of n), from histograms of a sample (arena.trimSample: runs of 16 entries spread over
 * the tensor): the bins holding the sample ranks q·S ± PAIR_SD standard deviations, whole bins.
 * About 2·PAIR_SD·√(q(1 − q)/S) of the entries (1–2% here) fall in a band.
 */
function pairBands(
  arena: SimdArena,
  x0: Float32Array,
  x1: Float32Array,
  b: Float32Array,
  k: number,
): { lo: number[]; hi: number[] } {
  const n = b.length;
  const runs = Math.min(PAIR_SAMPLE_MAX, Math.max(PAIR_SAMPLE_MIN, n >>> 4)) >>> 4;
  const stride = Math.floor(n / runs); // ≥ 16 (n ≥ BAND_MIN)
  const hists = arena.trimSample(x0, x1, b, runs, stride);
  return bandsOf(arena, hists, runs * 16, n, k, PAIR_SD);
}

/**
 * The bands of pairBands from the sample's histograms (S entries): the bins holding the sample
 * ranks q·S ± sds standard deviations, whole bins.
 */
function bandsOf(
  arena: SimdArena,
  hists: readonly Uint32Array[],
  S: number,
  n: number,
  k: number,
  sds: number,
): { lo: number[]; hi: number[] } {
  // in ascending order the threshold has rank n − k of n; in the sample about q·S
  const q = (n - k) / n;
  const sd = Math.sqrt(S * q * (1 - q)) + 1;
  const rLo = Math.floor(q * S - sds * sd);
  const rHi = Math.ceil(q * S + sds * sd);
  const lo: number[] = [];
  const hi: number[] = [];
  for (const h of hists) {
    const binHi = rHi >= S ? h.length : arena.histRank(h, rHi);
    lo.push(rLo < 0 ? 0 : arena.histRank(h, rLo) << TRIM_BIN_SHIFT);
    hi.push(binHi >= h.length ? INF_BITS : Math.min(INF_BITS, ((binHi + 1) << TRIM_BIN_SHIFT) - 1));
  }
  return { lo, hi };
}

/**
 * The trim plan of a model whose |δ| bits above its band [lo, hi] number `above` and whose band
 * entries (bits, indices in ascending order) are given, or null when the k-th largest is not in
 * the band.
 */
function planFromBand(
  above: number,
  band: Int32Array,
  at: Int32Array,
  k: number,
  lo: number,
  hi: number,
): TrimPlan | null {
  const nb = band.length;
  if (above >= k || above + nb < k) return null;
  // the selection and the tie's position in the kernels when the band lives in an arena
  const arena = arenaOf(band);
  const sel = arena?.bandSelect(band, k - above, lo, hi) ?? kthLargestIn(band, k - above, lo, hi);
  const tiesToKeep = k - above - sel.above;
  const pos =
    arena !== null ? arena.nthEqual(band, sel.bits, tiesToKeep) : nthEqual(band, nb, sel.bits, tiesToKeep);
  if (pos < 0) throw new Error('trim plan: fewer ties than counted');
  return { thresholdBits: sel.bits, tiesToKeep, lastTie: at[pos]! };
}

const BAND_BINS = 4096;
const BAND_HIST = new Uint32Array(BAND_BINS);

/**
 * kthLargest for entries known to lie in [lo, hi]: a histogram of at most BAND_BINS bins over the
 * range finds the bin of the k-th largest, and the few entries in that bin are sorted. One pass.
 */
function kthLargestIn(v: Int32Array, k: number, lo: number, hi: number): { bits: number; above: number } {
  let shift = 0;
  while ((hi - lo) >>> shift >= BAND_BINS) shift++;
  const bins = ((hi - lo) >>> shift) + 1;
  const hist = BAND_HIST.fill(0, 0, bins);
  for (let t = 0; t < v.length; t++) hist[(v[t]! - lo) >>> shift]!++;
  let above = 0;
  let bin = bins - 1;
  for (; bin > 0; bin--) {
    if (above + hist[bin]! >= k) break;
    above += hist[bin]!;
  }
  const inBin: number[] = [];
  for (let t = 0; t < v.length; t++) if ((v[t]! - lo) >>> shift === bin) inBin.push(v[t]!);
  inBin.sort((a, b) => b - a);
  const bits = inBin[k - above - 1]!;
  for (const x of inBin) if (x > bits) above++;
  return { bits, above };
}

/**
 * Entries off..n of |x − b| as float32 bits, split by a band [lo, hi]: how many lie above it, and
 * the bits and indices of those in it (the few entries a four-at-a-time kernel leaves).
 */
function bandTail(
  x: Float32Array,
  b: Float32Array,
  off: number,
  lo: number,
  hi: number,
): { above: number; band: number[]; at: number[] } {
  const f = new Float32Array(x.length - off);
  absDelta(x, b, off, f.length, f);
  const bits = new Int32Array(f.buffer);
  const r = { above: 0, band: [] as number[], at: [] as number[] };
  bits.forEach((v, t) => {
    if (v > hi) r.above++;
    else if (v >= lo) {
      r.band.push(v);
      r.at.push(off + t);
    }
  });
  return r;
}

/**
 * planTrim of two task vectors x0 − b, x1 − b at once with the SIMD kernels (when the three live
 * in an arena with trim scratch; else planTrim of each): the same exact plans, found in one pass
 * over the three arrays instead of one per model, and with the band placed by histograms of a
 * sample rather than by sorting it. The pass works on the float32 bits of |f32(x − b)|, which are
 * those of fround(|x − b|) (the float32 subtraction rounds the exact difference once, and a
 * float64 one then fround: double rounding is harmless from 53 to 24 bits); a model whose band
 * misses falls back to planTrim.
 */
export function planTrimPair(x0: Float32Array, x1: Float32Array, b: Float32Array, k: number): TrimPlan[] {
  const n = b.length;
  const arena = arenaOf(x0, x1, b);
  if (k >= n || n < BAND_MIN || arena === null || arena.bandCapacity === 0)
    return [planTrim(x0, b, k), planTrim(x1, b, k)];
  const { lo, hi } = pairBands(arena, x0, x1, b, k);
  const r = arena.trimBand(x0, x1, b, n, lo, hi);
  if (r === null) return [planTrim(x0, b, k), planTrim(x1, b, k)];
  return [x0, x1].map((x, i) => {
    let { above, band, at } = r.models[i]!;
    if (r.done < n) {
      // the last few entries (the kernel does four at a time), appended in place (room for four)
      const tail = bandTail(x, b, r.done, lo[i]!, hi[i]!);
      above += tail.above;
      const nb = band.length + tail.band.length;
      band = new Int32Array(band.buffer, band.byteOffset, nb);
      at = new Int32Array(at.buffer, at.byteOffset, nb);
      band.set(tail.band, nb - tail.band.length);
      at.set(tail.at, nb - tail.at.length);
    }
    return planFromBand(above, band, at, k, lo[i]!, hi[i]!) ?? planTrim(x, b, k);
  });
}

/**
 * planTrimPair while the tensor is read, slice by slice, so that the band pass finds each slice in
 * the CPU's cache instead of making another trip through main memory (on the VM this was built on,
 * the pass over a whole tensor read earlier cost three times the pass over a slice just read).
 * The slices are read in `order`, which spreads the first quarter of them over the tensor; their
 * sample places the bands (as pairBands does for a whole tensor, twice as wide, since a few
 * slices of rows are less random than runs spread everywhere); the slices are then band-passed
 * as they arrive. When every slice is in, `plans` selects the thresholds, or, when a band
 * overflowed or missed the threshold, plans the whole tensor with planTrimPair: exact either way.
 */
export class TrimPairLanding {
  /** Slice indices in the order to read them. */
  readonly order: number[];
  private readonly slices: number;
  private readonly sampleSlices: Set<number>;
  private readonly landed: number[] = [];
  private bands: { lo: number[]; hi: number[] } | null = null;
  private readonly acc = { above: [0, 0], nb: [0, 0] };
  /** Per band-passed slice: where its entries start in each model's band. */
  private readonly segments: { slice: number; start: number[]; end: number[] }[] = [];
  private failed = false;

  constructor(
    private readonly arena: SimdArena,
    private readonly n: number,
    private readonly k: number,
    readonly sliceLen: number,
  ) {
    this.slices = Math.ceil(n / sliceLen);
    this.order = spreadOrder(this.slices);
    this.sampleSlices = new Set(this.order.slice(0, Math.max(2, Math.ceil(this.slices / 4))));
  }

  /**
   * Slice `slice` of the three arrays (the whole tensor's) has been read. Once the last one has,
   * the plans are made (and the arena's band scratch is free for the next tensor).
   */
  land(x0: Float32Array, x1: Float32Array, b: Float32Array, slice: number): void {
    this.landed.push(slice);
    if (!this.failed) {
      if (this.bands !== null) this.pass(x0, x1, b, slice);
      else if (this.landed.filter((s) => this.sampleSlices.has(s)).length === this.sampleSlices.size) {
        this.bands = this.sampleBands(x0, x1, b);
        for (const s of this.landed) this.pass(x0, x1, b, s);
      }
    }
    if (this.landed.length === this.slices) this.result = this.select(x0, x1, b);
  }

  /** The two models' plans (every slice must have landed). */
  plans(): TrimPlan[] {
    if (this.result === null) throw new Error('trim plan: not every slice has landed');
    return this.result;
  }

  private result: TrimPlan[] | null = null;

  private select(x0: Float32Array, x1: Float32Array, b: Float32Array): TrimPlan[] {
    const { bands, acc } = this;
    if (this.failed || bands === null || this.landed.length < this.slices)
      return planTrimPair(x0, x1, b, this.k);
    // segments in index order, for the tie's position
    const segs = [...this.segments].sort((p, q) => p.slice - q.slice);
    const plans: TrimPlan[] = [];
    for (let i = 0; i < 2; i++) {
      const above = acc.above[i]!;
      const { band, at } = this.arena.bandEntries(i, 0, acc.nb[i]!);
      if (above >= this.k || above + band.length < this.k) return planTrimPair(x0, x1, b, this.k);
      const sel = this.arena.bandSelect(band, this.k - above, bands.lo[i]!, bands.hi[i]!);
      if (sel === null) return planTrimPair(x0, x1, b, this.k);
      const tiesToKeep = this.k - above - sel.above;
      let nth = tiesToKeep;
      let lastTie = -1;
      for (const seg of segs) {
        const pos = this.arena.nthEqual(band.subarray(seg.start[i], seg.end[i]), sel.bits, nth);
        if (pos >= 0) {
          lastTie = at[seg.start[i]! + pos]!;
          break;
        }
        nth -= -1 - pos; // the segment's equal entries
      }
      if (lastTie < 0) throw new Error('trim plan: fewer ties than counted');
      plans.push({ thresholdBits: sel.bits, tiesToKeep, lastTie });
    }
    return plans;
  }

  private range(slice: number): [number, number] {
    const off = slice * this.sliceLen;
    return [off, Math.min(this.sliceLen, this.n - off)];
  }

  /** Bands from the sample slices: runs of 16 spread over each (every 16th run of the slice). */
  private sampleBands(x0: Float32Array, x1: Float32Array, b: Float32Array): { lo: number[]; hi: number[] } {
    let hists: Uint32Array[] = [];
    let S = 0;
    let add = false;
    for (const s of this.sampleSlices) {
      const [off, len] = this.range(s);
      const runs = len >>> 7; // an eighth of the slice
      if (runs === 0) continue;
      const v = (a: Float32Array) => a.subarray(off, off + len);
      hists = this.arena.trimSample(v(x0), v(x1), v(b), runs, Math.floor(len / runs), add);
      add = true;
      S += runs * 16;
    }
    return bandsOf(this.arena, hists, S, this.n, this.k, 2 * PAIR_SD);
  }

  /** The band pass over one slice, its entries appended to the bands. */
  private pass(x0: Float32Array, x1: Float32Array, b: Float32Array, slice: number): void {
    const { bands, acc } = this;
    const [off, len] = this.range(slice);
    const start = [...acc.nb];
    const done = this.arena.trimBandRange(x0, x1, b, off, len, bands!.lo, bands!.hi, acc);
    if (done < 0) {
      this.failed = true;
      return;
    }
    if (done < len) {
      // the slice's last few entries (the kernel does four at a time), appended in place
      [x0, x1].forEach((x, i) => {
        const tail = bandTail(x.subarray(0, off + len), b, off + done, bands!.lo[i]!, bands!.hi[i]!);
        acc.above[i]! += tail.above;
        const { band, at } = this.arena.bandEntries(i, acc.nb[i]!, acc.nb[i]! + tail.band.length);
        band.set(tail.band);
        at.set(tail.at);
        acc.nb[i]! += tail.band.length;
      });
    }
    this.segments.push({ slice, start, end: [...acc.nb] });
  }
}

/** 0..count − 1 in an order whose every prefix spreads over the range (bit-reversed). */
function spreadOrder(count: number): number[] {
  let bits = 0;
  while (1 << bits < count) bits++;
  const out: number[] = [];
  for (let i = 0; i < 1 << bits; i++) {
    let r = 0;
    for (let j = 0; j < bits; j++) r |= ((i >>> j) & 1) << (bits - 1 - j);
    if (r < count) out.push(r);
  }
  return out;
}

/** The bit pattern of +∞ (every NaN pattern is above it). */
const INF_BITS = 0x7f800000;

/**
 * Applies a TrimPlan (stateless: any range, in any order). An entry is kept when its float32
 * |δ| has bits above the threshold, or equal to it at an index ≤ lastTie. As float64 compares:
 * with a = |δ| unrounded, keep ⇔ !(a ≤ cut) where cut = `cutUpTo` at indices ≤ lastTie and
 * `cutAfter` past it (`roundingLimit` of the threshold and of the float32 below it): the same
 * decision, NaN included (kept: NaN patterns are the largest bits), without rounding each |δ| to
 * float32 or a branch for the ties. Only a NaN threshold (`floatKeep` false) compares bits.
 */
export class TrimStream {
  /** Keep an entry at index ≤ lastTie when !(|δ| ≤ cutUpTo) (its float32 is ≥ the threshold). */
  readonly cutUpTo: number;
  /** Keep an entry at index > lastTie when !(|δ| ≤ cutAfter) (its float32 is > the threshold). */
  readonly cutAfter: number;
  readonly lastTie: number;
  /** Whether the cuts apply (the threshold is not a NaN pattern). */
  readonly floatKeep: boolean;
  private readonly f = new Float32Array(CHUNK);
  private readonly u = new Int32Array(this.f.buffer);

  constructor(private readonly plan: TrimPlan) {
    const thr = plan.thresholdBits;
    this.lastTie = plan.lastTie;
    this.floatKeep = thr <= 0x7f800000;
    if (thr < 0) {
      this.cutUpTo = -1;
      this.cutAfter = -1;
    } else {
      this.cutAfter = this.floatKeep ? roundingLimit(floatOfBits(thr)) : NaN;
      this.cutUpTo = !this.floatKeep ? NaN : thr === 0 ? -1 : roundingLimit(floatOfBits(thr - 1));
    }
  }

  /** The keep mask of elements off..off+len of δ = x − b, packed into `out` (len ≤ CHUNK). */
  fillBits(out: Uint32Array, x: Float32Array, b: Float32Array | null, off: number, len: number): void {
    if (this.plan.thresholdBits < 0) {
      out.fill(-1, 0, maskWords(len));
      return;
    }
    if (!this.floatKeep || b === null) {
      this.fillBitsExact(out, x, b, off, len);
      return;
    }
    const { lastTie, cutUpTo, cutAfter } = this;
    // a word of 32 elements at a time, kept in a register (no read-modify-write of `out` per element)
    for (let w = 0; w << 5 < len; w++) {
      const t0 = w << 5;
      const end = Math.min(t0 + 32, len);
      let word = 0;
      for (let t = t0; t < end; t++) {
        const cut = off + t <= lastTie ? cutUpTo : cutAfter; // changes once: predicted
        word |= +!(Math.abs(x[off + t]! - b[off + t]!) <= cut) << (t & 31); // a flag, no branch
      }
      out[w] = word;
    }
  }

  /** fillBits by comparing bit patterns (any plan, b null included). */
  private fillBitsExact(
    out: Uint32Array,
    x: Float32Array,
    b: Float32Array | null,
    off: number,
    len: number,
  ): void {
    const { f, u } = this;
    const thr = this.plan.thresholdBits;
    absDelta(x, b, off, len, f);
    out.fill(0, 0, maskWords(len));
    for (let t = 0; t < len; t++) {
      const bits = u[t]!;
      const keep = bits > thr || (bits === thr && off + t <= this.lastTie);
      out[t >>> 5]! |= +keep << (t & 31);
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
