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
 * `UPIT_MERGE_SIMD=0` turns the kernels off (the merge then uses the JavaScript loops), for
 * comparison; WebAssembly SIMD is in every Node.js and Electron this project supports.
 */
import { WASM_BASE64 } from './kernels/merge-simd.wasm.js';

interface KernelExports {
  nonfinite(p: number, n: number): number;
  linear2(x0: number, x1: number, out: number, n: number, c0: number, c1: number, inv: number): void;
  sum2(
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
  ties2(
    trim: number,
    k0: number,
    k1: number,
    cut0: number,
    cut1: number,
    x0: number,
    x1: number,
    b: number,
    out: number,
    n: number,
    c0: number,
    c1: number,
    lambda: number,
    mode: number,
    d0: number,
    d1: number,
    d2: number,
    d3: number,
  ): number;
  trimband(
    x: number,
    b: number,
    n: number,
    lo: number,
    hi: number,
    mid: number,
    h: number,
    band: number,
    at: number,
    cap: number,
    res: number,
  ): void;
}

const PAGE = 65536;
/** WebAssembly's 32-bit memories hold at most 4 GiB (65,536 pages). */
const MAX_PAGES = 65536;
/** Offset 0 is the kernels' "no mask" pointer: views start above it. */
const RESERVED = 64;
/** Where `trimband` leaves its two counts (inside the reserved bytes). */
const RESULT_AT = 16;

/** Extra regions of an arena besides the allocations of `bytes`. */
export interface ArenaScratch {
  /** Words of each of the two mask buffers (`maskScratch`). */
  maskWords: number;
  /** Elements of the trim-band scratch (`bandScratch`), 0 for none. */
  bandElements: number;
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
  private readonly band: Float32Array;

  private constructor(api: WasmApi, mod: WasmModule, pages: number, scratch: ArenaScratch) {
    const memory = new api.Memory({ initial: pages, maximum: pages });
    const inst = new api.Instance(mod, { env: { memory } });
    this.k = inst.exports as unknown as KernelExports;
    this.buffer = memory.buffer; // never grown, so this stays the memory's buffer
    arenas.set(this.buffer, this);
    this.maskScratch = [this.u32(scratch.maskWords), this.u32(scratch.maskWords)];
    this.band = this.f32(scratch.bandElements);
  }

  /**
   * An arena of at least `bytes` (plus alignment), or null when the kernels are unavailable or
   * `bytes` exceeds what a WebAssembly memory can hold (the caller then uses ordinary buffers).
   */
  static create(bytes: number, scratch: ArenaScratch): SimdArena | null {
    const mod = kernelModule();
    if (mod === null || wasm === undefined) return null;
    const extra = SimdArena.bytesFor(scratch.maskWords, scratch.maskWords, scratch.bandElements);
    const pages = Math.ceil((bytes + extra + RESERVED) / PAGE);
    if (pages > MAX_PAGES) return null;
    try {
      return new SimdArena(wasm, mod, pages, scratch);
    } catch {
      return null; // the engine refused the memory (address space): ordinary buffers instead
    }
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

  /** Bytes an arena needs for these allocations (in elements of 4 bytes), alignment included. */
  static bytesFor(...elements: number[]): number {
    return elements.reduce((a, n) => a + Math.ceil((n * 4) / 16) * 16, 0);
  }

  /** Views for a trim band of `cap` entries (values, indices) in the band scratch, or null if too small. */
  bandScratch(cap: number): { band: Float32Array; at: Int32Array } | null {
    if (2 * cap > this.band.length) return null;
    const at = this.band.byteOffset + cap * 4;
    return { band: this.band.subarray(0, cap), at: new Int32Array(this.buffer, at, cap) };
  }

  /**
   * planTrimBand's pass over elements 0..n rounded down to even (see the kernel): the count of
   * |x − b| above H, and the band's length (−1: more than its capacity).
   */
  trimband(
    x: Float32Array,
    b: Float32Array,
    n: number,
    band: { band: Float32Array; at: Int32Array },
    lo: number,
    hi: number,
    mid: number,
    h: number,
  ): { above: number; nb: number; done: number } {
    const k = this.k;
    k.trimband(
      x.byteOffset,
      b.byteOffset,
      n,
      lo,
      hi,
      mid,
      h,
      band.band.byteOffset,
      band.at.byteOffset,
      band.band.length,
      RESULT_AT,
    );
    const res = new Int32Array(this.buffer, RESULT_AT, 2);
    return { above: res[0]!, nb: res[1]!, done: n & ~1 };
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
   * sumPair over elements off..off+len (rounded down to a multiple of 4; returns how many it did), masks
   * null for "all kept" (else views of this arena whose bit 0 is element off).
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
    this.k.sum2(
      k0 === null ? 0 : k0.byteOffset,
      k1 === null ? 0 : k1.byteOffset,
      x0.byteOffset + at,
      x1.byteOffset + at,
      b.byteOffset + at,
      out.byteOffset + at,
      len,
      c0,
      c1,
      s,
    );
    return len & ~3;
  }

  /**
   * tiesPairFast (masks k0, k1) or tiesPairTrimFast (`cuts`) over elements off..off+len rounded
   * down to a multiple of 4. Returns how many it did, or -1 when some value is not finite (then the caller
   * recomputes the range with the reference kernel).
   */
  ties2(
    masks: { k0: Uint32Array; k1: Uint32Array } | { cut0: number; cut1: number },
    c0: number,
    x0: Float32Array,
    c1: number,
    x1: Float32Array,
    b: Float32Array,
    off: number,
    len: number,
    out: Float32Array,
    lambda: number,
    div: Float64Array,
    mode: number,
  ): number {
    const at = off * 4;
    const trim = 'cut0' in masks;
    const ok = this.k.ties2(
      trim ? 1 : 0,
      trim ? 0 : masks.k0.byteOffset,
      trim ? 0 : masks.k1.byteOffset,
      trim ? masks.cut0 : 0,
      trim ? masks.cut1 : 0,
      x0.byteOffset + at,
      x1.byteOffset + at,
      b.byteOffset + at,
      out.byteOffset + at,
      len,
      c0,
      c1,
      lambda,
      mode,
      div[0]!,
      div[1]!,
      div[2]!,
      div[3]!,
    );
    return ok ? len & ~3 : -1;
  }
}
