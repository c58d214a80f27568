/**
 * Replacement kernels for `@tensorflow/tfjs-backend-wasm`, registered by `useBackend('wasm')` after the
 * backend module is imported (a later registration replaces the stock one).
 *
 * - `BatchMatMul`: the stock kernel reaches XNNPACK (fast, threaded) only for rank-2, non-transposed
 *   operands; everything else runs a naive loop about 10x slower. Here every case is routed to the
 *   XNNPACK path: transposed operands are transposed in JS (cache-blocked) into scratch memory, and
 *   batches become one XNNPACK call per slice by registering throw-away tensor ids that point into the
 *   slices of the operands (no copies). A batched left operand against a shared right operand becomes a
 *   single `[batch·M, K]` product. The stock gradients of `matMul` (which use transposed products)
 *   therefore run at full speed too.
 * - `Transpose`: the stock kernel is a naive strided loop; this one collapses axes, copies contiguous
 *   runs when the last axis stays in place (attention head reshuffles) and blocks 2-D transposes.
 * - `UnsortedSegmentSum`: missing on wasm (needed by the gradient of `gather`, i.e. embeddings).
 * - `GatherV2` (batchDims 0) and `Concat`: the stock kernels copy element by element (about 30 and 150
 *   M elements/s); these copy whole rows with `copyWithin` (embedding lookups, RoPE halves, KV caches).
 * - `Sum` over leading/middle axes (the gradients of broadcast multiplications, e.g. norm weights): the
 *   stock kernel first transposes with its naive loop; this one accumulates rows in place.
 * - `Identity` (clones, tensors saved for backprop): shares the data (reference counted, like the CPU
 *   backend) instead of copying it. `Slice`/`SplitV`: contiguous runs copied with `copyWithin`.
 * - `OneHot`: the stock kernel writes int32 bit patterns whatever the dtype, so
 *   `oneHot(..., 'float32')` silently returns ~0 (1.4e-45) instead of 1.
 */
import { tf } from './tf.js';

/** The parts of the emscripten module and of tfjs-backend-wasm's `BackendWasm` that we use. */
interface WasmModule {
  HEAPU8: Uint8Array;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
  _BatchMatMul(
    aId: number,
    aShapePtr: number,
    aShapeLen: number,
    bId: number,
    bShapePtr: number,
    bShapeLen: number,
    transposeA: number,
    transposeB: number,
    outId: number,
  ): void;
  tfjs: {
    registerTensor(id: number, size: number, offset: number): void;
    disposeData(id: number): void;
  };
}
interface WasmData {
  id: number;
  memoryOffset: number;
  /** `K×N` this tensor was packed as when used directly as a right operand (see batchMatMul). */
  upitPackedAs?: string;
}
export interface WasmBackendLike {
  wasm: WasmModule;
  dataIdNextNumber: number;
  dataIdMap: { get(dataId: object): WasmData | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  incRef(dataId: object): void;
}

const F32 = 4;

function offsetOf(backend: WasmBackendLike, t: tf.TensorInfo): number {
  const d = backend.dataIdMap.get(t.dataId);
  if (d === undefined) throw new Error('wasm kernel: input tensor has no data on the wasm backend');
  return d.memoryOffset;
}

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A `[rows, cols]` → `[cols, rows]` transpose of `count` consecutive matrices, cache-blocked. */
function transposeBatch(
  src: Float32Array | Int32Array | Uint8Array,
  srcOff: number,
  dst: Float32Array | Int32Array | Uint8Array,
  dstOff: number,
  count: number,
  rows: number,
  cols: number,
): void {
  const B = 32;
  const mat = rows * cols;
  for (let m = 0; m < count; m++) {
    const s0 = srcOff + m * mat;
    const d0 = dstOff + m * mat;
    for (let j0 = 0; j0 < cols; j0 += B) {
      const j1 = Math.min(j0 + B, cols);
      for (let i0 = 0; i0 < rows; i0 += B) {
        const i1 = Math.min(i0 + B, rows);
        for (let j = j0; j < j1; j++) {
          const o = d0 + j * rows;
          for (let i = i0; i < i1; i++) dst[o + i] = src[s0 + i * cols + j]!;
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Scratch memory and throw-away tensor ids

class Scratch {
  private ptr = 0;
  private bytes = 0;
  constructor(private readonly wasm: WasmModule) {}
  /** A scratch buffer of at least `bytes` (grows, never shrinks; invalidates earlier views). */
  get(bytes: number): number {
    if (bytes > this.bytes) {
      if (this.ptr !== 0) this.wasm._free(this.ptr);
      this.bytes = Math.max(bytes, Math.ceil(this.bytes * 1.5));
      this.ptr = this.wasm._malloc(this.bytes) >>> 0;
      if (this.ptr === 0) throw new Error(`wasm: cannot allocate ${this.bytes} bytes of scratch memory`);
    }
    return this.ptr;
  }
}

interface WasmState {
  scratchA: Scratch;
  scratchB: Scratch;
  /** Three `size_t[3]` shape vectors in wasm memory: a, b. */
  shapePtr: number;
}
const states = new WeakMap<WasmModule, WasmState>();

function stateOf(backend: WasmBackendLike): WasmState {
  let s = states.get(backend.wasm);
  if (s === undefined) {
    const shapePtr = backend.wasm._malloc(6 * 4) >>> 0;
    s = { scratchA: new Scratch(backend.wasm), scratchB: new Scratch(backend.wasm), shapePtr };
    states.set(backend.wasm, s);
  }
  return s;
}

function tempId(backend: WasmBackendLike, size: number, offset: number): number {
  const id = backend.dataIdNextNumber++;
  backend.wasm.tfjs.registerTensor(id, size, offset);
  return id;
}

// ---------------------------------------------------------------------------------------------------
// BatchMatMul

function batchMatMul(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: object;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const a = args.inputs['a']!;
  const b = args.inputs['b']!;
  const transposeA = args.attrs?.['transposeA'] === true;
  const transposeB = args.attrs?.['transposeB'] === true;
  if (a.dtype !== 'float32' || b.dtype !== 'float32') {
    throw new Error('BatchMatMul for non-float32 tensors is not supported on wasm');
  }
  const ra = a.shape.length;
  const rb = b.shape.length;
  const K = transposeA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const Kb = transposeB ? b.shape[rb - 1]! : b.shape[rb - 2]!;
  const M = transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const N = transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  if (K !== Kb) {
    throw new Error(
      `Error in matMul: inner shapes (${K}) and (${Kb}) of Tensors with shapes ${a.shape} and ` +
        `${b.shape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`,
    );
  }
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const batchA = sizeOf(outerA);
  const batchB = sizeOf(outerB);
  const outOuter = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  if (batchA !== batchB && batchA !== 1 && batchB !== 1) {
    throw new Error(`BatchMatMul on wasm: cannot broadcast batch shapes ${outerA} and ${outerB}`);
  }
  const batch = Math.max(batchA, batchB);
  const out = backend.makeOutput([...outOuter, M, N], 'float32');
  if (batch === 0 || M === 0 || N === 0) return out;
  const outOff = offsetOf(backend, out);
  if (K === 0) {
    new Float32Array(backend.wasm.HEAPU8.buffer, outOff, batch * M * N).fill(0);
    return out;
  }
  const st = stateOf(backend);
  const wasm = backend.wasm;

  // Left operand as row-major [M, K] slices.
  let aOff = offsetOf(backend, a);
  // Right operand as row-major [K, N] slices.
  let bOff = offsetOf(backend, b);
  if (transposeA) {
    const dst = st.scratchA.get(batchA * M * K * F32);
    const heap = new Float32Array(wasm.HEAPU8.buffer);
    transposeBatch(heap, aOff / F32, heap, dst / F32, batchA, K, M);
    aOff = dst;
  }
  if (transposeB) {
    const dst = st.scratchB.get(batchB * K * N * F32);
    const heap = new Float32Array(wasm.HEAPU8.buffer);
    transposeBatch(heap, bOff / F32, heap, dst / F32, batchB, N, K);
    bOff = dst;
  }

  const shapes = new Uint32Array(wasm.HEAPU8.buffer, st.shapePtr, 6);
  if (batchB === 1) {
    // One product: [batchA·M, K] x [K, N].
    const rows = batchA * M;
    shapes.set([1, rows, K, 1, K, N]);
    const aId = tempId(backend, rows * K, aOff);
    // XNNPACK packs the right operand into an operator cached on its tensor id (freed with the tensor).
    // Used as is, the tensor's own id lets later products with the same operand (q/k/v or gate/up
    // weight gradients share x) skip the packing, which costs as much as a third of the product. The
    // cache key has no shape, so an id is reused only with the K×N it was first packed as.
    const bData = transposeB ? undefined : backend.dataIdMap.get(b.dataId);
    const kn = `${K}x${N}`;
    const reuse = bData !== undefined && (bData.upitPackedAs ?? kn) === kn;
    if (reuse) bData.upitPackedAs = kn;
    const bId = reuse ? bData.id : tempId(backend, K * N, bOff);
    const oId = tempId(backend, rows * N, outOff);
    wasm._BatchMatMul(aId, st.shapePtr, 3, bId, st.shapePtr + 12, 3, 0, 0, oId);
    wasm.tfjs.disposeData(aId);
    if (!reuse) wasm.tfjs.disposeData(bId);
    wasm.tfjs.disposeData(oId);
    return out;
  }
  shapes.set([1, M, K, 1, K, N]);
  for (let i = 0; i < batch; i++) {
    const aId = tempId(backend, M * K, aOff + (batchA === 1 ? 0 : i * M * K * F32));
    const bId = tempId(backend, K * N, bOff + i * K * N * F32);
    const oId = tempId(backend, M * N, outOff + i * M * N * F32);
    wasm._BatchMatMul(aId, st.shapePtr, 3, bId, st.shapePtr + 12, 3, 0, 0, oId);
    wasm.tfjs.disposeData(aId);
    wasm.tfjs.disposeData(bId);
    wasm.tfjs.disposeData(oId);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Transpose

type Heap = Float32Array | Int32Array | Uint8Array;

function heapView(backend: WasmBackendLike, dtype: tf.DataType, offset: number, size: number): Heap {
  const buf = backend.wasm.HEAPU8.buffer;
  switch (dtype) {
    case 'float32':
      return new Float32Array(buf, offset, size);
    case 'int32':
      return new Int32Array(buf, offset, size);
    case 'bool':
      return new Uint8Array(buf, offset, size);
    default:
      throw new Error(`wasm kernel: unsupported dtype ${dtype}`);
  }
}

/** Drops size-1 axes and merges input axes that stay adjacent in the permutation. */
export function collapseTranspose(
  shape: readonly number[],
  perm: readonly number[],
): { shape: number[]; perm: number[] } {
  const keep = perm.filter((p) => shape[p] !== 1);
  // Group runs of consecutive input axes in output order.
  const groups: number[][] = [];
  for (const p of keep) {
    const last = groups[groups.length - 1];
    if (last !== undefined && last[last.length - 1]! + 1 === p) last.push(p);
    else groups.push([p]);
  }
  // Rank the groups by their first input axis.
  const order = groups.map((g, i) => [g[0]!, i] as const).sort((x, y) => x[0] - y[0]);
  const newShape: number[] = new Array<number>(groups.length);
  const inputPos = new Array<number>(groups.length);
  order.forEach(([, gi], rank) => {
    newShape[rank] = groups[gi]!.reduce((n, ax) => n * shape[ax]!, 1);
    inputPos[gi] = rank;
  });
  return { shape: newShape, perm: inputPos };
}

/**
 * Permutes `shape`-shaped data at `src[s0…]` into `dst[d0…]`. When the last axis stays in place and
 * `src === dst` (one view of the whole heap), each run is moved with `copyWithin` (a memmove).
 */
function transposeInto(src: Heap, s0: number, dst: Heap, d0: number, shape: number[], perm: number[]): void {
  const rank = shape.length;
  const size = sizeOf(shape);
  if (rank <= 1) {
    if (src === dst) dst.copyWithin(d0, s0, s0 + size);
    else dst.set(src.subarray(s0, s0 + size), d0);
    return;
  }
  const inStrides = new Array<number>(rank);
  inStrides[rank - 1] = 1;
  for (let i = rank - 2; i >= 0; i--) inStrides[i] = inStrides[i + 1]! * shape[i + 1]!;
  // [batch, r, c] -> [batch, c, r]
  if (rank === 2 || (rank === 3 && perm[0] === 0 && perm[1] === 2 && perm[2] === 1)) {
    const count = rank === 2 ? 1 : shape[0]!;
    const r = shape[rank - 2]!;
    const c = shape[rank - 1]!;
    transposeBatch(src, s0, dst, d0, count, r, c);
    return;
  }
  const outShape = perm.map((p) => shape[p]!);
  const strides = perm.map((p) => inStrides[p]!);
  const lastKept = perm[rank - 1] === rank - 1;
  const inner = outShape[rank - 1]!;
  const innerStride = strides[rank - 1]!;
  // Odometer over all output axes but the last.
  const idx = new Array<number>(rank - 1).fill(0);
  let o = d0;
  let s = s0;
  const move = lastKept && src === dst && inner >= 16;
  const rows = size / inner;
  for (let row = 0; row < rows; row++) {
    if (lastKept) {
      if (move) dst.copyWithin(o, s, s + inner);
      else for (let j = 0; j < inner; j++) dst[o + j] = src[s + j]!;
    } else {
      for (let j = 0; j < inner; j++) dst[o + j] = src[s + j * innerStride]!;
    }
    o += inner;
    for (let ax = rank - 2; ax >= 0; ax--) {
      idx[ax]!++;
      s += strides[ax]!;
      if (idx[ax]! < outShape[ax]!) break;
      s -= strides[ax]! * outShape[ax]!;
      idx[ax] = 0;
    }
  }
}

function transpose(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: object;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const x = args.inputs['x']!;
  const perm = args.attrs?.['perm'] as number[];
  const outShape = perm.map((p) => x.shape[p]!);
  const out = backend.makeOutput(outShape, x.dtype);
  const size = sizeOf(x.shape);
  if (size === 0) return out;
  const c = collapseTranspose(x.shape, perm);
  const { heap, unit } = rawHeap(backend, x.dtype);
  if (x.dtype === 'float32' && c.perm[c.perm.length - 1] !== c.perm.length - 1) {
    // Element-wise gathers: a float view keeps V8's loads monomorphic with the matmul transposes.
    const f = new Float32Array(heap.buffer);
    transposeInto(f, offsetOf(backend, x) / 4, f, offsetOf(backend, out) / 4, c.shape, c.perm);
  } else {
    transposeInto(heap, offsetOf(backend, x) / unit, heap, offsetOf(backend, out) / unit, c.shape, c.perm);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// UnsortedSegmentSum

function unsortedSegmentSum(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: object;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const x = args.inputs['x']!;
  const ids = args.inputs['segmentIds']!;
  const numSegments = args.attrs?.['numSegments'] as number;
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new Error(`UnsortedSegmentSum on wasm supports float32 and int32, not ${x.dtype}`);
  }
  if (ids.dtype !== 'int32') throw new Error('UnsortedSegmentSum: segmentIds must be int32');
  const n = sizeOf(ids.shape);
  const inner = n === 0 ? 0 : sizeOf(x.shape) / n;
  const outShape = [numSegments, ...x.shape.slice(ids.shape.length)];
  const out = backend.makeOutput(outShape, x.dtype);
  const dst = heapView(backend, x.dtype, offsetOf(backend, out), numSegments * inner);
  dst.fill(0);
  if (n === 0) return out;
  const src = heapView(backend, x.dtype, offsetOf(backend, x), n * inner);
  const seg = heapView(backend, 'int32', offsetOf(backend, ids), n);
  for (let r = 0; r < n; r++) {
    const t = seg[r]!;
    if (t < 0 || t >= numSegments) continue; // like TensorFlow: out-of-range ids are dropped
    const o = t * inner;
    const s = r * inner;
    for (let j = 0; j < inner; j++) dst[o + j]! += src[s + j]!;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// GatherV2 and Concat: row copies

/** An integer view of the whole heap in units of the dtype's element size (bits copied exactly). */
function rawHeap(
  backend: WasmBackendLike,
  dtype: tf.DataType,
): { heap: Int32Array | Uint8Array; unit: number } {
  const buf = backend.wasm.HEAPU8.buffer;
  if (dtype === 'bool') return { heap: new Uint8Array(buf), unit: 1 };
  if (dtype === 'float32' || dtype === 'int32') return { heap: new Int32Array(buf), unit: 4 };
  throw new Error(`wasm kernel: unsupported dtype ${dtype}`);
}

function copyRow(heap: Int32Array | Uint8Array, dst: number, src: number, n: number): void {
  if (n >= 16) heap.copyWithin(dst, src, src + n);
  else for (let j = 0; j < n; j++) heap[dst + j] = heap[src + j]!;
}

function gatherV2(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: object;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const x = args.inputs['x']!;
  const indices = args.inputs['indices']!;
  const batchDims = (args.attrs?.['batchDims'] as number | undefined) ?? 0;
  if (batchDims !== 0 || indices.dtype !== 'int32') return fallback(tf.GatherV2, args);
  const axis = tf.util.parseAxisParam(args.attrs?.['axis'] as number, x.shape)[0]!;
  const n = sizeOf(indices.shape);
  const dim = x.shape[axis]!;
  const outer = sizeOf(x.shape.slice(0, axis));
  const inner = sizeOf(x.shape.slice(axis + 1));
  const out = backend.makeOutput(
    [...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)],
    x.dtype,
  );
  if (outer * n * inner === 0) return out;
  const idx = heapView(backend, 'int32', offsetOf(backend, indices), n);
  for (let i = 0; i < n; i++) {
    const k = idx[i]!;
    if (k < 0 || k >= dim) throw new Error(`GatherV2: the index value ${k} is not in [0, ${dim - 1}]`);
  }
  const { heap, unit } = rawHeap(backend, x.dtype);
  const src0 = offsetOf(backend, x) / unit;
  const dst0 = offsetOf(backend, out) / unit;
  for (let o = 0; o < outer; o++) {
    const s = src0 + o * dim * inner;
    const d = dst0 + o * n * inner;
    for (let i = 0; i < n; i++) copyRow(heap, d + i * inner, s + idx[i]! * inner, inner);
  }
  return out;
}

function concat(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: object;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const all = Object.values(args.inputs).filter((t): t is tf.TensorInfo => t !== undefined);
  const first = all[0]!;
  const axis = tf.util.parseAxisParam(args.attrs?.['axis'] as number, first.shape)[0]!;
  const shapes = all.map((t) => t.shape);
  tf.backend_util.assertParamsConsistent(shapes, axis);
  const outShape = tf.backend_util.computeOutShape(shapes, axis);
  const dtype = first.dtype;
  if (all.some((t) => t.dtype !== dtype)) return fallback(tf.Concat, args);
  const out = backend.makeOutput(outShape, dtype);
  const total = sizeOf(outShape);
  if (total === 0) return out;
  const outer = sizeOf(outShape.slice(0, axis));
  const row = total / outer;
  const { heap, unit } = rawHeap(backend, dtype);
  const dst0 = offsetOf(backend, out) / unit;
  let col = 0;
  for (const t of all) {
    const size = sizeOf(t.shape);
    if (size === 0) continue;
    const w = size / outer;
    const src0 = offsetOf(backend, t) / unit;
    if (outer === 1) copyRow(heap, dst0 + col, src0, w);
    else for (let o = 0; o < outer; o++) copyRow(heap, dst0 + o * row + col, src0 + o * w, w);
    col += w;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Sum over a contiguous block of axes that is not the innermost

function sum(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: object;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const x = args.inputs['x']!;
  const keepDims = args.attrs?.['keepDims'] === true;
  const axes = tf.util
    .parseAxisParam(args.attrs?.['axis'] as number | number[], x.shape)
    .sort((a, b) => a - b);
  const rank = x.shape.length;
  const contiguous = axes.every((a, i) => i === 0 || a === axes[i - 1]! + 1);
  const last = axes[axes.length - 1];
  if (x.dtype !== 'float32' || axes.length === 0 || !contiguous || last === rank - 1 || last === undefined) {
    return fallback(tf.Sum, args);
  }
  const first = axes[0]!;
  const outer = sizeOf(x.shape.slice(0, first));
  const reduce = sizeOf(x.shape.slice(first, last + 1));
  const inner = sizeOf(x.shape.slice(last + 1));
  const outShape = keepDims
    ? x.shape.map((d, i) => (i >= first && i <= last ? 1 : d))
    : x.shape.filter((_, i) => i < first || i > last);
  const out = backend.makeOutput(outShape, 'float32');
  const dst = heapView(backend, 'float32', offsetOf(backend, out), outer * inner) as Float32Array;
  dst.fill(0);
  if (outer * reduce * inner === 0) return out;
  const src = heapView(backend, 'float32', offsetOf(backend, x), outer * reduce * inner) as Float32Array;
  // Accumulate in float64 blocks of `inner` to keep the error of long sums (thousands of rows) small.
  const acc = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    acc.fill(0);
    let s = o * reduce * inner;
    for (let r = 0; r < reduce; r++, s += inner) for (let j = 0; j < inner; j++) acc[j]! += src[s + j]!;
    dst.set(acc, o * inner);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Identity (no copy), Slice and SplitV (row copies)

function identity(args: { inputs: tf.NamedTensorInfoMap; backend: object }): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const x = args.inputs['x']!;
  if (x.dtype === 'string') return fallback(tf.Identity, args);
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

function sliceInto(
  backend: WasmBackendLike,
  x: tf.TensorInfo,
  begin: number[],
  size: number[],
): tf.TensorInfo {
  const out = backend.makeOutput(size, x.dtype);
  const total = sizeOf(size);
  if (total === 0) return out;
  const { heap, unit } = rawHeap(backend, x.dtype);
  const src0 = offsetOf(backend, x) / unit;
  const dst0 = offsetOf(backend, out) / unit;
  const rank = x.shape.length;
  const strides = new Array<number>(rank);
  let st = 1;
  for (let i = rank - 1; i >= 0; i--) {
    strides[i] = st;
    st *= x.shape[i]!;
  }
  // The innermost axis `a` that is cut; everything after it is whole, so each run is contiguous.
  let a = rank - 1;
  while (a > 0 && size[a] === x.shape[a]) a--;
  const run = size[a]! * strides[a]!;
  let s = src0;
  for (let i = 0; i <= a; i++) s += begin[i]! * strides[i]!;
  const runs = total / run;
  const idx = new Array<number>(a).fill(0);
  for (let r = 0, d = dst0; r < runs; r++, d += run) {
    copyRow(heap, d, s, run);
    for (let ax = a - 1; ax >= 0; ax--) {
      idx[ax]!++;
      s += strides[ax]!;
      if (idx[ax]! < size[ax]!) break;
      s -= strides[ax]! * size[ax]!;
      idx[ax] = 0;
    }
  }
  return out;
}

function slice(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: object;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const x = args.inputs['x']!;
  if (x.dtype === 'string' || x.dtype === 'complex64') return fallback(tf.Slice, args);
  const parsed = tf.slice_util.parseSliceParams(
    x as tf.Tensor,
    args.attrs?.['begin'] as number[],
    args.attrs?.['size'] as number[],
  );
  const begin = parsed[0]!;
  const size = parsed[1]!;
  tf.slice_util.assertParamsValid(x as tf.Tensor, begin, size);
  return sliceInto(backend, x, begin, size);
}

function splitV(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: object;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo[] {
  const backend = args.backend as WasmBackendLike;
  const x = args.inputs['x']!;
  if (x.dtype === 'string' || x.dtype === 'complex64') {
    return stock.get(tf.SplitV)!.kernelFunc(args) as tf.TensorInfo[];
  }
  const axis = tf.util.parseAxisParam(args.attrs?.['axis'] as number, x.shape)[0]!;
  const sizes = tf.backend_util.prepareSplitSize(
    x as tf.Tensor,
    args.attrs?.['numOrSizeSplits'] as number[] | number,
    axis,
  );
  const begin = new Array<number>(x.shape.length).fill(0);
  return sizes.map((n) => {
    const size = x.shape.slice();
    size[axis] = n;
    const part = sliceInto(backend, x, begin.slice(), size);
    begin[axis]! += n;
    return part;
  });
}

// ---------------------------------------------------------------------------------------------------
// OneHot

function oneHot(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: object;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const indices = args.inputs['indices']!;
  const depth = args.attrs?.['depth'] as number;
  const onValue = args.attrs?.['onValue'] as number;
  const offValue = args.attrs?.['offValue'] as number;
  const dtype = (args.attrs?.['dtype'] as tf.DataType | undefined) ?? 'int32';
  const n = sizeOf(indices.shape);
  const out = backend.makeOutput([...indices.shape, depth], dtype);
  if (n * depth === 0) return out;
  const dst = heapView(backend, dtype, offsetOf(backend, out), n * depth);
  dst.fill(offValue);
  const idx = heapView(backend, 'int32', offsetOf(backend, indices), n);
  for (let i = 0; i < n; i++) {
    const k = idx[i]!;
    if (k >= 0 && k < depth) dst[i * depth + k] = onValue;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------

const REPLACEMENTS: [string, tf.KernelFunc][] = [
  [tf.BatchMatMul, batchMatMul as tf.KernelFunc],
  [tf.Transpose, transpose as tf.KernelFunc],
  [tf.UnsortedSegmentSum, unsortedSegmentSum as tf.KernelFunc],
  [tf.OneHot, oneHot as tf.KernelFunc],
  [tf.GatherV2, gatherV2 as tf.KernelFunc],
  [tf.Concat, concat as tf.KernelFunc],
  [tf.Sum, sum as tf.KernelFunc],
  [tf.Identity, identity as tf.KernelFunc],
  [tf.Slice, slice as tf.KernelFunc],
  [tf.SplitV, splitV as tf.KernelFunc],
];
const stock = new Map<string, tf.KernelConfig | undefined>();
let active = false;

/** Runs tfjs's own wasm kernel for the cases a replacement does not handle. */
function fallback(
  kernelName: string,
  args: { inputs: tf.NamedTensorInfoMap; backend: object; attrs?: tf.NamedAttrMap },
): tf.TensorInfo {
  const k = stock.get(kernelName);
  if (k === undefined) throw new Error(`${kernelName}: no stock wasm kernel to fall back to`);
  return k.kernelFunc(args) as tf.TensorInfo;
}

/**
 * Installs (`true`) or removes (`false`, restoring tfjs's own kernels) the replacements above.
 * Call after `@tensorflow/tfjs-backend-wasm` is imported; `useBackend('wasm')` does. Turning them off
 * is for benchmarks and tests that compare against the stock kernels.
 */
export function setWasmKernels(enabled: boolean): void {
  if (enabled === active) return;
  for (const [kernelName, kernelFunc] of REPLACEMENTS) {
    if (!stock.has(kernelName)) stock.set(kernelName, tf.getKernel(kernelName, 'wasm'));
    const original = stock.get(kernelName);
    // a kernel upstream lacks (UnsortedSegmentSum) stays: "stock" means stock wherever there is one
    if (original === undefined) {
      if (tf.getKernel(kernelName, 'wasm') === undefined)
        tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
      continue;
    }
    if (tf.getKernel(kernelName, 'wasm') !== undefined) tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel(enabled ? { kernelName, backendName: 'wasm', kernelFunc } : original);
  }
  active = enabled;
}

export function registerWasmKernels(): void {
  setWasmKernels(true);
}
