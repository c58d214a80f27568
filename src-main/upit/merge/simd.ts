/**
 * The SIMD merge kernels (kernels/merge-simd.wat, WebAssembly 128-bit SIMD) and the memory they
 * work in. A `SimdArena` is one WebAssembly memory, sized once for a merge's buffers, that hands
 * out Float32Array / Uint32Array views of itself; the merge reads tensors from disk straight into
 * those views. A kernel in methods.ts asks `arenaOf(...)` whether all its arrays are views of one
 * arena: then it runs the SIMD kernel on them in place (no copy), otherwise its JavaScript loop.
 * Both compute the same float64 expressions and round once, so the output does not depend on
 * which ran (test/unit/upit/merge-kernels.test.ts checks it bit for bit).
 *
 * Why: per element, a merge is a handful of float operations over three or four streams of
 * float32; V8's scalar loops spend 2–4 ns an element on them (bounds checks, float32 ↔ float64
 * conversions one at a time), which kept every method but `linear` below half the throughput of
 * plain file copying. The SIMD kernels take two elements per instruction, and the finiteness check
 * four per instruction.
 *
 * An arena also holds the kernels' scratch (the first RESERVED bytes: results, constants, tables)
 * and, as a merge asks for them, two chunks' keep masks, two masks of a whole range, and the TIES
 * trim planner's sample histograms and bands.
 *
 * `UPIT_MERGE_SIMD=0` turns the kernels off (the merge then uses the JavaScript loops), for
 * comparison; WebAssembly SIMD is in every Node.js and Electron this project supports.
 */
import { WASM_BASE64 } from './kernels/merge-simd.wasm.js';

interface KernelExports {
  nonfinite(p: number, n: number): number;
  linear2(x0: number, x1: number, out: number, n: number, c0: number, c1: number, inv: number): void;
  sum2(x0: number, x1: number, b: number, out: number, n: number, c0: number, c1: number, s: number): void;
  sum2m(
    k0: number,
    k1: number,
    x0: number,
    x1: number,
    b: number,
    out: number,
    n: number,
    c0: number,
    c1: number,
    s: number,
  ): void;
  ties2m(k0: number, k1: number, ...rest: TiesArgs): number;
  ties2t(cut0: number, cut1: number, ...rest: TiesArgs): number;
  trimsample2(
    x0: number,
    x1: number,
    b: number,
    runs: number,
    stride: number,
    hist0: number,
    hist1: number,
  ): void;
  trimband2(
    x0: number,
    x1: number,
    b: number,
    n: number,
    lo0: number,
    hi0: number,
    lo1: number,
    hi1: number,
    band0: number,
    at0: number,
    band1: number,
    at1: number,
    list: number,
    cap: number,
    res: number,
    idxBase: number,
  ): number;
  l1sums2(k0: number, k1: number, x0: number, x1: number, b: number, n: number, acc: number): void;
  histrank(hist: number, nbins: number, rank: number): number;
  bandselect(band: number, n: number, k: number, lo: number, hi: number, hist: number, res: number): number;
  nthequal(band: number, n: number, bits: number, nth: number): number;
}

/** The arguments the two TIES kernels share: x0, x1, b, out, n, c0, c1, lambda, mode, t1, t2, t3. */
type TiesArgs = [
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
];

const PAGE = 65536;
/** WebAssembly's 32-bit memories hold at most 4 GiB (65,536 pages). */
const MAX_PAGES = 65536;
/**
 * The bytes below the first view are the kernels' own (merge-simd.wat lays them out): results
 * at RESULT_AT, the L1 sums at L1_AT, the compress table at COMPRESS_AT (written here), the
 * coefficient tables the kernels fill at 1024..2047. Offset 0 is never a view.
 */
const RESERVED = 4096;
const RESULT_AT = 16;
const L1_AT = 64;
const CONSTANTS_AT = 128;
const COMPRESS_AT = 256;
/** Bins of the trim sample's histograms: float32 |δ| bit patterns >>> 14 (512 bins per octave). */
export const TRIM_BINS = 131072;
export const TRIM_BIN_SHIFT = 14;

/** Extra regions of an arena besides the allocations of `bytes`. */
export interface ArenaScratch {
  /** Words of each of the two mask buffers (`maskScratch`). */
  maskWords: number;
  /** Entries of each of the two trim bands (`trimBand`), 0 for none (no trim scratch at all). */
  bandElements: number;
  /** Words of each of the two range-wide mask buffers (`rangeMasks`), 0 for none. */
  rangeMaskWords?: number;
  /** How many such pairs (`rangeMasks`' set), default 1. */
  rangeMaskSets?: number;
}

/** Kernel parameters of a two-model TIES merge (see methods.ts, tiesKernelParams). */
export interface TiesKernelParams {
  /**
   * 0: b + v·t2; 1: b + v·t_a; 2: b + λ·(v / t_a); 3: b + v·t_a with t1 = t2 (t_a picked by the
   * agreement pattern a; each has its own loop, the cheaper ones selecting less).
   */
  mode: number;
  t1: number;
  t2: number;
  t3: number;
  /** Run with the models swapped (the kernel needs t2 > 0; the sums are symmetric). */
  swap: boolean;
}

/** What trimBand found for one model: the count above its band, and the band (values, indices). */
export interface TrimBandResult {
  above: number;
  band: Int32Array;
  at: Int32Array;
}

/** The members of the WebAssembly JS API used here (the project's lib is ES2023, without them). */
interface WasmModule {
  readonly __wasmModule: unique symbol;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Memory: new (d: { initial: number; maximum: number }) => { buffer: ArrayBuffer };
  Instance: new (m: WasmModule, imports: object) => { exports: unknown };
}
const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

let compiled: WasmModule | null | undefined;

/** The compiled kernel module, or null where WebAssembly SIMD is unavailable or turned off. */
function kernelModule(): WasmModule | null {
  if (process.env.UPIT_MERGE_SIMD === '0' || wasm === undefined) return null;
  if (compiled === undefined) {
    try {
      compiled = new wasm.Module(Buffer.from(WASM_BASE64, 'base64'));
    } catch {
      compiled = null; // no SIMD in this engine: the JavaScript kernels run
    }
  }
  return compiled;
}

/** Whether the SIMD kernels can run here (and are not turned off by UPIT_MERGE_SIMD=0). */
export function simdAvailable(): boolean {
  return kernelModule() !== null;
}

const arenas = new WeakMap<ArrayBufferLike, SimdArena>();

/** The arena the last merge released (SimdArena.release), kept this long for the next one. */
let released: SimdArena | null = null;
let releasedTimer: ReturnType<typeof setTimeout> | undefined;
const RELEASE_KEEP_MS = 3000;

function keep(a: SimdArena): void {
  released = a;
  clearTimeout(releasedTimer);
  releasedTimer = setTimeout(() => (released = null), RELEASE_KEEP_MS);
  releasedTimer.unref();
}

/** The arena whose memory every array is a view of, or null (then the JavaScript kernels run). */
export function arenaOf(...arrays: readonly ArrayBufferView[]): SimdArena | null {
  const a = arenas.get(arrays[0]!.buffer);
  if (a === undefined) return null;
  for (const x of arrays) if (x.buffer !== a.buffer) return null;
  return a;
}

/** A WebAssembly memory of fixed size with the kernels instantiated over it; see the file comment. */
export class SimdArena {
  private readonly k: KernelExports;
  readonly buffer: ArrayBuffer;
  private top = RESERVED;
  /** Two chunks' keep masks (a two-model merge's DARE or trim masks), for the kernels to read. */
  readonly maskScratch: Uint32Array[];
  /** The trim sample's two histograms and the two bands (values, indices), when asked for. */
  private readonly trim: {
    hists: Uint32Array[];
    band: Int32Array[];
    at: Int32Array[];
    list: Int32Array;
  } | null;
  /** Two models' keep masks of a whole range (a tensor, or a block of one), when asked for. */
  private readonly rangeMaskBuffers: Uint32Array[];

  private constructor(api: WasmApi, mod: WasmModule, pages: number, scratch: ArenaScratch) {
    const memory = new api.Memory({ initial: pages, maximum: pages });
    const inst = new api.Instance(mod, { env: { memory } });
    this.k = inst.exports as unknown as KernelExports;
    this.buffer = memory.buffer; // never grown, so this stays the memory's buffer
    arenas.set(this.buffer, this);
    this.maskScratch = [this.u32(scratch.maskWords), this.u32(scratch.maskWords)];
    const wide = scratch.rangeMaskWords ?? 0;
    const pairs = wide === 0 ? 0 : (scratch.rangeMaskSets ?? 1);
    this.rangeMaskBuffers = Array.from({ length: 2 * pairs }, () => this.u32(wide));
    const cap = scratch.bandElements;
    this.trim =
      cap === 0
        ? null
        : {
            hists: [this.u32(TRIM_BINS), this.u32(TRIM_BINS)],
            band: [this.i32(cap + 4), this.i32(cap + 4)],
            at: [this.i32(cap + 4), this.i32(cap + 4)],
            list: this.i32(cap + 4),
          };
    // constants the kernels load (a v128.const in a loop is rematerialized at every use)
    const c = new DataView(this.buffer, CONSTANTS_AT, 64);
    for (let i = 0; i < 2; i++) {
      c.setBigUint64(8 * i, 0x8000000000000000n, true); // f64 sign bits
      c.setBigUint64(16 + 8 * i, 0x7fffffffffffffffn, true); // f64 |x|
      c.setBigUint64(48 + 8 * i, 1n, true); // i64 1
    }
    for (let i = 0; i < 4; i++) c.setUint32(32 + 4 * i, 0x7fffffff, true); // f32 |x|
    // the compress table: for each 4-bit lane mask, the byte shuffle packing its lanes forward
    const table = new Uint8Array(this.buffer, COMPRESS_AT, 256).fill(0x80);
    for (let m = 0; m < 16; m++) {
      let at = 0;
      for (let lane = 0; lane < 4; lane++) {
        if ((m >>> lane) & 1) for (let j = 0; j < 4; j++) table[m * 16 + at++] = lane * 4 + j;
      }
    }
  }

  /**
   * An arena of at least `bytes` (plus alignment), or null when the kernels are unavailable or
   * `bytes` exceeds what a WebAssembly memory can hold (the caller then uses ordinary buffers).
   */
  static create(bytes: number, scratch: ArenaScratch): SimdArena | null {
    const mod = kernelModule();
    if (mod === null || wasm === undefined) return null;
    const band =
      scratch.bandElements === 0
        ? []
        : [TRIM_BINS, TRIM_BINS, ...new Array<number>(5).fill(scratch.bandElements + 4)];
    const wide = scratch.rangeMaskWords ?? 0;
    const masks = new Array<number>(2 * (wide === 0 ? 0 : (scratch.rangeMaskSets ?? 1))).fill(wide);
    const extra = SimdArena.bytesFor(scratch.maskWords, scratch.maskWords, ...masks, ...band);
    const pages = Math.ceil((bytes + extra + RESERVED) / PAGE);
    if (pages > MAX_PAGES) return null;
    try {
      return new SimdArena(wasm, mod, pages, scratch);
    } catch {
      return null; // the engine refused the memory (address space): ordinary buffers instead
    }
  }

  /** What `acquire` matches a released arena on (size and scratch), and where its views start. */
  private key = '';
  private mark = RESERVED;

  /**
   * create(), or the arena the last merge released (`release`) when it has this size and scratch:
   * its pages are then already in memory. A fresh arena's first touch of each page costs the
   * kernel a fault and a zeroed page (about 0.4 ms per MiB on the VM this was built on: 40 ms for
   * a 300 MB model's whole-tensor buffers), which merges run one after another (the expansion
   * stage, a benchmark) need not pay each time. Its views are handed out anew; the previous
   * merge's are no longer used (it released the arena once nothing was in flight).
   */
  static acquire(bytes: number, scratch: ArenaScratch): SimdArena | null {
    if (kernelModule() === null) return null; // (UPIT_MERGE_SIMD=0 holds for a released arena too)
    const key = `${bytes}/${JSON.stringify(scratch)}`;
    const kept = released;
    if (kept !== null && kept.key === key) {
      released = null;
      clearTimeout(releasedTimer);
      kept.top = kept.mark;
      return kept;
    }
    const a = SimdArena.create(bytes, scratch);
    if (a !== null) {
      a.key = key;
      a.mark = a.top;
    }
    return a;
  }

  /**
   * Hands the arena back (nothing may use its views any more): the next `acquire` of the same
   * shape reuses it within RELEASE_KEEP_MS; after that it is left to the garbage collector.
   */
  release(): void {
    if (this.key === '') return; // not from acquire
    keep(this);
  }

  private take(bytes: number): number {
    const at = this.top;
    const next = at + Math.ceil(bytes / 16) * 16;
    if (next > this.buffer.byteLength) throw new Error(`SimdArena: out of memory (${bytes} bytes asked)`);
    this.top = next;
    return at;
  }

  f32(n: number): Float32Array {
    return new Float32Array(this.buffer, this.take(n * 4), n);
  }

  u32(n: number): Uint32Array {
    return new Uint32Array(this.buffer, this.take(n * 4), n);
  }

  private i32(n: number): Int32Array {
    return new Int32Array(this.buffer, this.take(n * 4), n);
  }

  /** Bytes an arena needs for these allocations (in elements of 4 bytes), alignment included. */
  static bytesFor(...elements: number[]): number {
    return elements.reduce((a, n) => a + Math.ceil((n * 4) / 16) * 16, 0);
  }

  /**
   * Two mask buffers of at least `words` words each (views of this arena; pair `set` of the
   * rangeMaskSets), or null when it has none that large.
   */
  rangeMasks(words: number, set = 0): Uint32Array[] | null {
    const [a, b] = this.rangeMaskBuffers.slice(2 * set, 2 * set + 2);
    return a !== undefined && b !== undefined && a.length >= words ? [a, b] : null;
  }

  /** Entries each trim band holds (0: this arena has no trim scratch). */
  get bandCapacity(): number {
    return this.trim === null ? 0 : this.trim.band[0]!.length - 4;
  }

  /**
   * Histograms (TRIM_BINS bins of float32 bits >>> TRIM_BIN_SHIFT) of |x_i − b| over `runs` runs
   * of 16 elements, run r starting at element r·stride, for the two models (added to the counts
   * so far when `add`). Views of the arena's scratch, valid until the next call.
   */
  trimSample(
    x0: Float32Array,
    x1: Float32Array,
    b: Float32Array,
    runs: number,
    stride: number,
    add = false,
  ): Uint32Array[] {
    const t = this.trim!;
    if (!add) for (const h of t.hists) h.fill(0);
    this.k.trimsample2(
      x0.byteOffset,
      x1.byteOffset,
      b.byteOffset,
      runs,
      stride * 4,
      t.hists[0]!.byteOffset,
      t.hists[1]!.byteOffset,
    );
    return t.hists;
  }

  /** The bin of `hist` (a view of this arena) holding the entry of ascending rank `rank` (0-based), or its length. */
  histRank(hist: Uint32Array, rank: number): number {
    return this.k.histrank(hist.byteOffset, hist.length, Math.max(0, Math.min(rank, 0x7fffffff)));
  }

  /**
   * The k-th largest (1-based) of `band` (a view of this arena) whose entries lie in [lo, hi], and
   * how many are strictly above it; null when hi − lo is too wide for the kernel (2^24 or more).
   */
  bandSelect(band: Int32Array, k: number, lo: number, hi: number): { bits: number; above: number } | null {
    if (hi - lo >= 1 << 24 || arenaOf(band) !== this) return null;
    const hist = this.trim!.hists[0]!; // free once the bands are placed
    const bits = this.k.bandselect(band.byteOffset, band.length, k, lo, hi, hist.byteOffset, RESULT_AT);
    return { bits, above: new Int32Array(this.buffer, RESULT_AT, 1)[0]! };
  }

  /**
   * The position in `band` (a view of this arena) of its nth (1-based) entry equal to `bits`;
   * when it has fewer, -1 minus how many it has.
   */
  nthEqual(band: Int32Array, bits: number, nth: number): number {
    return this.k.nthequal(band.byteOffset, band.length, bits, nth);
  }

  /**
   * The band pass of planTrimPair over elements 0..n rounded down to a multiple of 4 (`done`):
   * per model, the count of float32 |δ| bits above hi_i and the bits in [lo_i, hi_i] with their
   * indices, in index order (views of the scratch, valid until the next call). null when a band
   * would pass bandCapacity entries.
   */
  trimBand(
    x0: Float32Array,
    x1: Float32Array,
    b: Float32Array,
    n: number,
    lo: readonly number[],
    hi: readonly number[],
  ): { done: number; models: TrimBandResult[] } | null {
    const acc = { above: [0, 0], nb: [0, 0] };
    const done = this.trimBandRange(x0, x1, b, 0, n, lo, hi, acc);
    if (done < 0) return null;
    return {
      done,
      models: [0, 1].map((i) => ({ above: acc.above[i]!, ...this.bandEntries(i, 0, acc.nb[i]!) })),
    };
  }

  /**
   * trimBand over elements off..off + len (len rounded down to a multiple of 4: returns how many
   * it did, or -1 when a band is full), the counts added to `acc` and the entries appended to the
   * bands from acc.nb on (indices counted from the arrays' start, not from off).
   */
  trimBandRange(
    x0: Float32Array,
    x1: Float32Array,
    b: Float32Array,
    off: number,
    len: number,
    lo: readonly number[],
    hi: readonly number[],
    acc: { above: number[]; nb: number[] },
  ): number {
    const t = this.trim!;
    const [nb0, nb1] = acc.nb as [number, number];
    const room = this.bandCapacity - Math.max(nb0, nb1);
    if (room < 0) return -1;
    const at = off * 4;
    const done = this.k.trimband2(
      x0.byteOffset + at,
      x1.byteOffset + at,
      b.byteOffset + at,
      len,
      lo[0]!,
      hi[0]!,
      lo[1]!,
      hi[1]!,
      t.band[0]!.byteOffset + nb0 * 4,
      t.at[0]!.byteOffset + nb0 * 4,
      t.band[1]!.byteOffset + nb1 * 4,
      t.at[1]!.byteOffset + nb1 * 4,
      t.list.byteOffset,
      room,
      RESULT_AT,
      off,
    );
    if (done < 0) return -1;
    const res = new Int32Array(this.buffer, RESULT_AT, 4);
    for (let i = 0; i < 2; i++) {
      acc.above[i]! += res[i]!;
      acc.nb[i]! += res[2 + i]!;
    }
    return done;
  }

  /** Model i's band entries from..to (bits and indices; views of the scratch, with room for 4 more). */
  bandEntries(i: number, from: number, to: number): { band: Int32Array; at: Int32Array } {
    const t = this.trim!;
    return { band: t.band[i]!.subarray(from, to), at: t.at[i]!.subarray(from, to) };
  }

  /**
   * dareL1Factors' four sums (all0, all1, kept0, kept1 in `sums`, continued in place) over
   * elements off..off+len, masks k0, k1 with bit 0 = element off.
   */
  l1Sums(
    k0: Uint32Array,
    k1: Uint32Array,
    x0: Float32Array,
    x1: Float32Array,
    b: Float32Array,
    off: number,
    len: number,
    sums: Float64Array,
  ): void {
    const acc = new Float64Array(this.buffer, L1_AT, 4);
    acc.set(sums);
    const at = off * 4;
    this.k.l1sums2(
      k0.byteOffset,
      k1.byteOffset,
      x0.byteOffset + at,
      x1.byteOffset + at,
      b.byteOffset + at,
      len,
      L1_AT,
    );
    sums.set(acc);
  }

  /** Index of the first NaN/±Inf of `a` (a view of this arena), or -1. */
  nonfinite(a: Float32Array): number {
    return this.k.nonfinite(a.byteOffset, a.length);
  }

  /** linearPair over elements 0..n rounded down to a multiple of 4; returns how many it did. */
  linear2(
    x0: Float32Array,
    x1: Float32Array,
    out: Float32Array,
    n: number,
    c0: number,
    c1: number,
    inv: number,
  ) {
    this.k.linear2(x0.byteOffset, x1.byteOffset, out.byteOffset, n, c0, c1, inv);
    return n & ~3;
  }

  /**
   * sumPair over elements off..off+len (rounded down to a multiple of 4; returns how many it did),
   * masks null for "all kept" (else views of this arena whose bit 0 is element off; both or neither).
   */
  sum2(
    k0: Uint32Array | null,
    c0: number,
    x0: Float32Array,
    k1: Uint32Array | null,
    c1: number,
    x1: Float32Array,
    b: Float32Array,
    off: number,
    len: number,
    out: Float32Array,
    s: number,
  ): number {
    const at = off * 4;
    const [px0, px1, pb, po] = [
      x0.byteOffset + at,
      x1.byteOffset + at,
      b.byteOffset + at,
      out.byteOffset + at,
    ];
    if (k0 === null || k1 === null) this.k.sum2(px0, px1, pb, po, len, c0, c1, s);
    else this.k.sum2m(k0.byteOffset, k1.byteOffset, px0, px1, pb, po, len, c0, c1, s);
    return len & ~3;
  }

  /** The kernels' shared TIES arguments, with the models in the kernel's order (see TiesKernelParams.swap). */
  private tiesArgs(
    c0: number,
    x0: Float32Array,
    c1: number,
    x1: Float32Array,
    b: Float32Array,
    off: number,
    len: number,
    out: Float32Array,
    lambda: number,
    kp: TiesKernelParams,
  ): TiesArgs {
    const at = off * 4;
    const [a, z] = kp.swap ? [1, 0] : [0, 1];
    const xs = [x0.byteOffset + at, x1.byteOffset + at];
    const cs = [c0, c1];
    return [
      xs[a]!,
      xs[z]!,
      b.byteOffset + at,
      out.byteOffset + at,
      len,
      cs[a]!,
      cs[z]!,
      lambda,
      kp.mode,
      kp.t1,
      kp.t2,
      kp.t3,
    ];
  }

  /**
   * tiesPairFast (masks k0, k1 with bit 0 = element off) or tiesPairTrimFast (`cuts`) over
   * elements off..off+len rounded down to a multiple of 4. Returns how many it did, or -1 when
   * some input is not finite (then the caller recomputes the range with the reference kernel).
   */
  ties2(
    keep: { k0: Uint32Array; k1: Uint32Array } | { cut0: number; cut1: number },
    c0: number,
    x0: Float32Array,
    c1: number,
    x1: Float32Array,
    b: Float32Array,
    off: number,
    len: number,
    out: Float32Array,
    lambda: number,
    kp: TiesKernelParams,
  ): number {
    const rest = this.tiesArgs(c0, x0, c1, x1, b, off, len, out, lambda, kp);
    const [a, z] = kp.swap ? [1, 0] : [0, 1];
    let ok: number;
    if ('cut0' in keep) {
      const cuts = [keep.cut0, keep.cut1];
      ok = this.k.ties2t(cuts[a]!, cuts[z]!, ...rest);
    } else {
      const ks = [keep.k0.byteOffset, keep.k1.byteOffset];
      ok = this.k.ties2m(ks[a]!, ks[z]!, ...rest);
    }
    return ok ? len & ~3 : -1;
  }
}
