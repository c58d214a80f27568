/**
 * Streaming whole-model merge: opens the base and every model lazily, checks that they agree
 * (config architecture and dimensions, tensor names and shapes) before anything is written,
 * then merges tensor by tensor straight into safetensors writers, so peak memory never grows
 * with the model. One pipeline (see Pipeline) runs jobs through a few input sets and output
 * buffers: each job's inputs are read (asynchronously, on libuv's thread pool, straight from the
 * files), merged (on this thread with the SIMD kernels, or on worker threads, see parallel.ts),
 * checked for NaN/Inf and handed to the writer (asynchronously too), in order; inputs are reused
 * once merged, outputs once written, so reads ahead, the merge and writes behind overlap, across
 * tensors. The jobs are, the same bytes either way:
 *
 * - blocks of STREAM_BLOCK elements, when the method can merge block by block (see
 *   MergeMethod.blocks) and every input is F32: four in flight each way, which stay in the CPU's
 *   cache (a tensor-sized buffer would cost a trip through main memory per pass);
 * - whole tensors otherwise (the TIES magnitude trim and DARE's L1 rescale, which need every |δ|
 *   of a tensor before the first output; BF16/F16 inputs; worker threads): two of the largest
 *   tensor's size each way (the next tensor is read while one is merged and the one before is
 *   written), one more per worker. A method with landing work (MergeMethod.landing: TIES plans
 *   its trim) has the tensor read in slices and handed each as it arrives, while it is in cache.
 *
 * Every 64 MiB written, the shard files' write-back to disk is started (startWriteback), so that
 * the final fsync does not wait for the whole output.
 *
 * The buffers are allocated once and reused: views of one SimdArena (simd.ts) on this thread
 * (handed to the next merge of the same shape, see SimdArena.acquire), or arrays of their own that
 * move to a worker and back.
 *
 * The output directory gets the base's config.json, generation_config.json and tokenizer files,
 * the merged weights (one model.safetensors, or shards + index above `maxShardBytes`) and a
 * `merge.json` recipe (method, inputs, weights, parameters, seed). Everything is written into
 * `<outDir>.tmp-<pid>` and renamed into place, so the directory appears whole or not at all.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileError, isUserError, UserError } from '../../common/errors.js';
import { fsyncDir, ioError, readJsonObject, replaceDir, rmQuiet, writeFileAtomic } from '../../io/atomic.js';
import { SafetensorsWriter } from '../../io/safetensors.js';
import {
  DEFAULT_MAX_SHARD_BYTES,
  openWeights,
  SINGLE_WEIGHTS_FILE,
  WEIGHTS_INDEX_FILE,
  type WeightSource,
} from '../../io/weights.js';
import {
  getMergeMethod,
  type BlockMerge,
  type LandingMerge,
  type MergeMethod,
  type MergeMethodName,
  type MergeParams,
} from './methods.js';
import { defaultMergeThreads, MergeWorkers } from './parallel.js';
import { arenaOf, SimdArena, simdAvailable } from './simd.js';
import { CHUNK, maskWords, type DareRescale } from './sparsify.js';

export const MERGE_RECIPE_FILE = 'merge.json';

/** Side files copied from the base when present. */
export const COPIED_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'tokenizer.model',
  'added_tokens.json',
  'vocab.json',
  'merges.txt',
  'chat_template.jinja',
] as const;

/** config.json fields that must agree between the base and every model. */
const CONFIG_KEYS = [
  'architectures',
  'model_type',
  'vocab_size',
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'head_dim',
  'tie_word_embeddings',
] as const;

export interface MergeProgress {
  tensor: string;
  /** Tensors written so far (this one included) and in all. */
  done: number;
  total: number;
  /** Parameters (elements) written so far and in all. */
  elementsDone: number;
  elementsTotal: number;
}

export interface MergeModelsOptions {
  method: MergeMethodName | string;
  baseDir: string;
  modelDirs: string[];
  /** One per model (default 1 each). */
  weights?: number[];
  /** DARE drop probability p ∈ [0, 1) (dare_linear, dare_ties). */
  drop?: number;
  /** TIES density ∈ (0, 1]. */
  density?: number;
  lambda?: number;
  normalize?: boolean;
  rescale?: DareRescale;
  seed: number;
  outDir: string;
  /** Output dtype; default BF16 when every base tensor is BF16, else F32. */
  dtype?: 'F32' | 'BF16';
  /** Shard above this many output bytes (default 5 GB, as Hugging Face). */
  maxShardBytes?: number;
  /** Merge only the tensors this accepts; the others are copied from the base. Default: all. */
  only?: (name: string) => boolean;
  onProgress?: (p: MergeProgress) => void;
  /** Checked between tensors; an aborted merge leaves no output. */
  signal?: AbortSignal;
  /**
   * Worker threads that merge tensors in parallel, overlapping this thread's reads and writes
   * (default `defaultMergeThreads()`); 0 merges on this thread. The output does not depend on it.
   */
  threads?: number;
}

/** The content of merge.json. */
export interface MergeRecipe {
  format: 'upit-merge/1';
  method: MergeMethodName;
  base: string;
  models: { dir: string; weight: number }[];
  params: Omit<MergeParams, 'weights'>;
  seed: number;
  dtype: 'F32' | 'BF16';
  tensors: number;
  /** Tensors copied from the base unmerged (when `only` was given). */
  copiedFromBase: number;
}

function readConfig(dir: string): Record<string, unknown> {
  return readJsonObject(path.join(dir, 'config.json'));
}

/** The fields of CONFIG_KEYS with Hugging Face's defaults filled in (absent kv heads = heads, …). */
function configShape(c: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of CONFIG_KEYS) out[k] = c[k] ?? null;
  out.num_key_value_heads ??= out.num_attention_heads;
  const h = c.hidden_size;
  const nh = c.num_attention_heads;
  if (out.head_dim === null && typeof h === 'number' && typeof nh === 'number' && nh > 0)
    out.head_dim = h / nh;
  out.tie_word_embeddings ??= false;
  return out;
}

/** Throws a UserError naming the field and both directories when `dir`'s config disagrees with the base's. */
export function checkConfigsCompatible(baseDir: string, dir: string): void {
  const a = configShape(readConfig(baseDir));
  const b = configShape(readConfig(dir));
  for (const k of CONFIG_KEYS) {
    if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) {
      throw fileError(
        path.join(dir, 'config.json'),
        `${k} is ${JSON.stringify(b[k])} but the base (${baseDir}) has ${JSON.stringify(a[k])}: models of different architectures or sizes cannot be merged`,
      );
    }
  }
}

/** Throws a UserError naming the tensor and directory when `src` lacks, adds or reshapes a tensor of `base`. */
export function checkTensorsMatch(base: WeightSource, src: WeightSource): void {
  for (const name of base.names()) {
    if (!src.has(name))
      throw fileError(src.dir, `missing tensor ${JSON.stringify(name)} (the base ${base.dir} has it)`);
    const a = base.entry(name).shape;
    const b = src.entry(name).shape;
    if (a.length !== b.length || a.some((d, i) => d !== b[i])) {
      throw fileError(
        src.dir,
        `tensor ${JSON.stringify(name)} has shape [${b.join(', ')}], the base ${base.dir} has [${a.join(', ')}]`,
      );
    }
  }
  for (const name of src.names()) {
    if (!base.has(name))
      throw fileError(src.dir, `tensor ${JSON.stringify(name)} is not in the base ${base.dir}`);
  }
}

function shardName(i: number, n: number): string {
  return `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
}

/** Greedy shards in tensor order (a tensor larger than the limit gets a shard of its own). */
function planShards(
  tensors: { name: string; shape: number[]; numel: number }[],
  elemBytes: number,
  max: number,
): { name: string; shape: number[]; numel: number }[][] {
  const shards: (typeof tensors)[] = [];
  let cur: typeof tensors = [];
  let bytes = 0;
  for (const t of tensors) {
    const b = t.numel * elemBytes;
    if (cur.length > 0 && bytes + b > max) {
      shards.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(t);
    bytes += b;
  }
  if (cur.length > 0 || shards.length === 0) shards.push(cur);
  return shards;
}

/**
 * The input buffers of one job in flight (base, then one per model), each of the largest job's
 * size, allocated once and reused (no allocation, no page faults per job). Views of a SimdArena
 * when the merge runs on this thread (the SIMD kernels work on them in place); else arrays of
 * their own, whose buffers can be transferred to a worker thread and back.
 */
class InputSet {
  base: Float32Array;
  models: Float32Array[];

  constructor(models: number, numel: number, alloc: (n: number) => Float32Array) {
    this.base = alloc(numel);
    this.models = Array.from({ length: models }, () => alloc(numel));
  }
}

function readAt(fd: number, bytes: Uint8Array, offset: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.read(fd, bytes, offset, Math.min(bytes.byteLength - offset, 1 << 30), position, (err, n) =>
      err ? reject(err) : resolve(n),
    );
  });
}

/**
 * The index of the first NaN/±Inf of `a`, or -1: x − x is 0 for every finite x and NaN otherwise
 * (the SIMD kernel when `a` lives in an arena).
 */
function nonfiniteAt(a: Float32Array): number {
  const arena = arenaOf(a);
  if (arena !== null) return arena.nonfinite(a);
  for (let t = 0; t < a.length; t++) if (a[t]! - a[t]! !== 0) return t;
  return -1;
}

/** Throws a UserError naming the file, tensor and element when `a` holds a NaN or ±Inf. */
function assertFinite(a: Float32Array, name: string, file: string, offset = 0): void {
  const i = nonfiniteAt(a);
  if (i >= 0)
    throw fileError(
      file,
      `tensor ${name} contains ${Number.isNaN(a[i]) ? 'NaN' : 'Inf'} (element ${offset + i})`,
    );
}

/**
 * Reads tensors of a WeightSource into given buffers (asynchronously, on libuv's thread pool):
 * F32 tensors go straight from the file into the buffer; F16/BF16 through the source
 * (converted, then copied).
 */
class TensorReader {
  private readonly fds = new Map<string, number>();

  constructor(private readonly src: WeightSource) {}

  /** Tensor `name` into `out` (F16/BF16 converted). Not checked for NaN/Inf: see `check`. */
  async read(name: string, out: Float32Array): Promise<void> {
    const e = this.src.entry(name);
    if (e.dtype !== 'F32') {
      out.set(this.src.read(name).data);
      return;
    }
    await this.readRange(name, 0, out.subarray(0, e.byteLength / 4));
  }

  /** Elements off..off + out.length of an F32 tensor, straight from the file into `out`. */
  async readRange(name: string, off: number, out: Float32Array): Promise<void> {
    const e = this.src.entry(name);
    try {
      const fd = this.fd(e.file);
      const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
      let done = 0;
      while (done < bytes.length) {
        const n = await readAt(fd, bytes, done, e.byteOffset + off * 4 + done);
        if (n <= 0) throw fileError(e.file, `tensor ${JSON.stringify(name)}: unexpected end of file`);
        done += n;
      }
    } catch (err) {
      throw ioError(e.file, `cannot read tensor ${JSON.stringify(name)}`, err);
    }
  }

  /** Throws, naming the file and element, when elements off..off + data.length of `name` hold a NaN or ±Inf. */
  check(name: string, off: number, data: Float32Array): void {
    assertFinite(data, name, this.src.entry(name).file, off);
  }

  private fd(file: string): number {
    let fd = this.fds.get(file);
    if (fd === undefined) {
      fd = fs.openSync(file, 'r');
      this.fds.set(file, fd);
    }
    return fd;
  }

  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
  }
}

/**
 * Elements per block of a streamed merge: 256 Ki (1 MiB per input), so the blocks in flight
 * (inputs and output) stay in the CPU's cache between the read, the merge and the write, and the
 * reads are few enough that their per-request cost is small.
 */
const STREAM_BLOCK = 64 * CHUNK;

/** One step of the pipeline: a tensor's elements off..off+len, merged, or copied from the base. */
interface Job {
  name: string;
  numel: number;
  /** Index of the tensor's shard (and writer). */
  shard: number;
  off: number;
  len: number;
  merged: boolean;
  /** Whether this is the tensor's last job. */
  last: boolean;
}

/**
 * The merge pipeline: job j (a whole tensor, or a block of one when the method can merge by
 * blocks) reads into input set j mod inputs and merges into output buffer j mod outputs. Its reads
 * (asynchronous, on libuv's thread pool) start once the job before it in that input set has been
 * merged (up to `inputs` jobs ahead); its merge (on this thread in job order, or on a worker) once
 * its inputs are in and its output buffer's previous write has finished; its write (asynchronous
 * too) once it is merged and checked, in job order. So reads ahead, the merge and writes behind
 * overlap, across tensor boundaries, and a read never waits for a write (the inputs are free as
 * soon as they are merged; a tensor copied from the base is copied into its output buffer).
 */
class Pipeline {
  private readonly bms = new Map<string, BlockMerge>();
  /** Per job: its output, merged and checked. */
  private readonly merged: Promise<Float32Array>[] = [];
  /** Per job: settled once its inputs are no longer needed (it has been merged, or failed). */
  private readonly consumed: Promise<unknown>[] = [];
  /** Per job: settled once its write has (the output buffer is free again). */
  private readonly written: { done: Promise<unknown>; settle: () => void }[] = [];
  /** The previous job's merge on this thread (blocks of a tensor merge in order). */
  private chain: Promise<unknown> = Promise.resolve();
  /** The last slice handed to a LandingMerge (they are handed in job order). */
  private landChain: Promise<unknown> = Promise.resolve();

  /** The method's LandingMerge for a whole-tensor job on this thread whose inputs are F32, or null. */
  private landingOf(job: Job, set: InputSet, index: number): LandingMerge | null {
    if (!this.sliced || !job.merged || this.workers !== null || job.len !== job.numel) return null;
    const ctx = { name: job.name, seed: this.seed };
    return this.method.landing(
      this.params,
      ctx,
      this.modelReaders.length,
      job.numel,
      arenaOf(set.base),
      STREAM_BLOCK,
      index,
    );
  }

  constructor(
    private readonly jobs: readonly Job[],
    private readonly inputs: InputSet[],
    private readonly outs: Float32Array[],
    private readonly method: MergeMethod,
    private readonly params: MergeParams,
    private readonly seed: number,
    private readonly baseReader: TensorReader,
    private readonly modelReaders: TensorReader[],
    private readonly workers: MergeWorkers | null,
    /** Whether every input is F32 (read straight into the buffers, in any slices). */
    private readonly sliced: boolean,
  ) {}

  /** Start job j (jobs start in order). */
  private start(j: number): void {
    const job = this.jobs[j]!;
    const ni = this.inputs.length;
    const no = this.outs.length;
    let settle = () => undefined as void;
    const done = new Promise<void>((r) => (settle = r));
    this.written[j] = { done, settle };
    const inputFree = j >= ni ? this.consumed[j - ni]! : Promise.resolve();
    const outFree = j >= no ? this.written[j - no]!.done : Promise.resolve();
    const set = this.inputs[j % ni]!;
    const landing = this.landingOf(job, set, j % ni);
    const readInto = async (off: number, len: number) => {
      const view = (b: Float32Array) => b.subarray(off, off + len);
      const whole = off === 0 && len === job.numel;
      const readOne = (r: TensorReader, into: Float32Array) =>
        whole ? r.read(job.name, view(into)) : r.readRange(job.name, job.off + off, view(into));
      const reads: Promise<void>[] = [];
      // linear does not read the base (its values are unused: any buffer of the size will do)
      if (!job.merged || this.method.usesBase) reads.push(readOne(this.baseReader, set.base));
      if (job.merged) this.modelReaders.forEach((r, i) => reads.push(readOne(r, set.models[i]!)));
      await Promise.all(reads);
    };
    let read: Promise<unknown>;
    if (landing === null) read = inputFree.then(() => readInto(0, job.len));
    else {
      // slice by slice, each handed to the method as it arrives (in order, one tensor after the
      // other: the methods' landing work shares the arena's scratch)
      const view = (b: Float32Array) => b.subarray(0, job.len);
      for (const slice of landing.order) {
        const off = slice * landing.sliceLen;
        const sliceRead = inputFree.then(() => readInto(off, Math.min(landing.sliceLen, job.len - off)));
        sliceRead.catch(() => undefined); // awaited through the chain
        this.landChain = Promise.all([sliceRead, this.landChain]).then(() =>
          landing.land(view(set.base), set.models.map(view), slice),
        );
      }
      read = this.landChain;
    }
    let merged: Promise<Float32Array>;
    if (this.workers !== null && job.merged) {
      merged = Promise.all([read, outFree]).then(() => this.mergeOnWorker(job, set, j % no));
    } else {
      // on this thread, in job order (a tensor's blocks continue its mask streams)
      merged = Promise.all([read, outFree, this.chain]).then(() =>
        landing !== null ? this.mergeLanding(job, set, j % no, landing) : this.mergeHere(job, set, j % no),
      );
      this.chain = merged.catch(() => undefined);
    }
    merged = merged.then((out) => {
      this.checkFinite(job, set, out);
      return out;
    });
    merged.catch(() => undefined); // awaited in order by `run` (or in its finally)
    this.merged[j] = merged;
    this.consumed[j] = merged.catch(() => undefined);
  }

  /**
   * Refuses NaN/Inf weights as the model loaders do (a merge would spread them silently). Every
   * method's output is NaN or ±Inf wherever an input it reads is (the merges multiply a dropped
   * entry by 0, never mask it away; the SIMD kernels that skip entries hand such ranges to the
   * reference loops), so one pass over the output finds them; the inputs are then searched for the
   * element to name. (An output that overflowed from finite inputs is not refused.)
   */
  private checkFinite(job: Job, set: InputSet, out: Float32Array): void {
    if (nonfiniteAt(out) < 0) return;
    const view = (b: Float32Array) => b.subarray(0, job.len);
    if (!job.merged || this.method.usesBase) this.baseReader.check(job.name, job.off, view(set.base));
    if (job.merged) this.modelReaders.forEach((r, i) => r.check(job.name, job.off, view(set.models[i]!)));
  }

  /**
   * A LandingMerge's merge, a slice at a time, letting the event loop run in between: the next
   * tensor's slices are then handed to the method as they arrive, while they are in cache.
   */
  private async mergeLanding(
    job: Job,
    set: InputSet,
    o: number,
    landing: LandingMerge,
  ): Promise<Float32Array> {
    const view = (b: Float32Array) => b.subarray(0, job.len);
    const out = view(this.outs[o]!);
    for (const _ of landing.merge(view(set.base), set.models.map(view), out)) await nextTurn();
    return out;
  }

  private mergeHere(job: Job, set: InputSet, o: number): Float32Array {
    const view = (b: Float32Array) => b.subarray(0, job.len);
    const out = view(this.outs[o]!);
    if (!job.merged) {
      out.set(view(set.base)); // copied from the base (the inputs are reused before the write)
      return out;
    }
    const ctx = { name: job.name, seed: this.seed };
    if (job.len === job.numel) {
      this.method.mergeTensor(view(set.base), set.models.map(view), this.params, ctx, out);
      return out;
    }
    let bm = this.bms.get(job.name);
    if (bm === undefined) {
      bm = this.method.blocks(this.params, ctx, this.modelReaders.length)!;
      this.bms.set(job.name, bm);
    }
    bm.next(view(set.base), set.models.map(view), out);
    if (job.last) this.bms.delete(job.name);
    return out;
  }

  private async mergeOnWorker(job: Job, set: InputSet, o: number): Promise<Float32Array> {
    const r = await this.workers!.merge({
      method: this.method.name,
      params: this.params,
      name: job.name,
      seed: this.seed,
      numel: job.len,
      base: set.base.buffer as ArrayBuffer,
      models: set.models.map((x) => x.buffer as ArrayBuffer),
      out: this.outs[o]!.buffer as ArrayBuffer,
    });
    set.base = new Float32Array(r.base);
    set.models = r.models.map((b) => new Float32Array(b));
    this.outs[o] = new Float32Array(r.out);
    return this.outs[o].subarray(0, job.len);
  }

  /**
   * Run every job: `write(job, data)` hands a job's output to its writer and returns the write's
   * promise; `between(job, pending)` runs before each job is written (cancellation, shard
   * changes; `pending` waits for every write so far). Nothing is left in flight when this returns
   * or throws.
   */
  async run(
    write: (job: Job, data: Float32Array) => Promise<void>,
    between: (job: Job, pending: () => Promise<void>) => Promise<void>,
  ): Promise<void> {
    const n = this.jobs.length;
    let next = 0;
    const writes: Promise<void>[] = [];
    const pending = async () => {
      await Promise.all(writes);
    };
    try {
      for (let j = 0; j < n; j++) {
        // reads run up to one input set's worth of jobs ahead
        while (next < n && next <= j + this.inputs.length) this.start(next++);
        const data = await this.merged[j]!;
        await between(this.jobs[j]!, pending);
        const w = write(this.jobs[j]!, data);
        writes.push(w);
        w.then(this.written[j]!.settle, this.written[j]!.settle);
      }
      await pending();
    } finally {
      // never leave a read, merge or write in flight on buffers (or files) about to be reused or
      // closed; a job not yet merged when this stopped never gets its output buffer back
      for (const w of this.written) w.settle();
      await Promise.allSettled([...this.merged, ...writes]);
    }
  }
}

/** A turn of the event loop (I/O callbacks included). */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Bytes written between two calls of startWriteback. */
const WRITEBACK_BYTES = 64 << 20;

/**
 * Starts writing back to disk what the shard writers have written so far: fdatasync, on libuv's
 * thread pool, of each file still being written in the merge's own temporary directory (the
 * writers' `<file>.tmp-…`), so that the fsync of their `finish` waits for the last part only
 * (the page cache otherwise holds the whole output until then: on the VM this was built on, that
 * fsync of a 300 MB model took ~100 ms, as long as the merge's arithmetic). Resolves once the
 * data is on disk or failed to get there (the fsync of `finish` reports errors).
 */
async function startWriteback(dir: string): Promise<void> {
  const files = fs.readdirSync(dir).filter((f) => f.includes('.tmp-'));
  await Promise.all(
    files.map(
      (f) =>
        new Promise<void>((resolve) =>
          fs.open(path.join(dir, f), 'r', (err, fd) => {
            if (err) return resolve();
            fs.fdatasync(fd, () => fs.close(fd, () => resolve()));
          }),
        ),
    ),
  );
}

/** Merge whole models into `outDir` (see the file comment). Returns the recipe written to merge.json. */
export async function mergeModels(opts: MergeModelsOptions): Promise<MergeRecipe> {
  const method = getMergeMethod(opts.method);
  if (opts.modelDirs.length === 0) throw new UserError('merge: no models given');
  if (!Number.isSafeInteger(opts.seed))
    throw new UserError(`merge: seed must be an integer, got ${opts.seed}`);
  const raw: Record<string, unknown> = {};
  for (const k of ['weights', 'drop', 'density', 'lambda', 'normalize', 'rescale'] as const) {
    if (opts[k] !== undefined) raw[k] = opts[k];
  }
  const params = method.validate(raw, opts.modelDirs.length);
  const weights = params.weights ?? opts.modelDirs.map(() => 1);
  const target = path.resolve(opts.outDir);
  const baseDir = path.resolve(opts.baseDir);
  const modelDirs = opts.modelDirs.map((d) => path.resolve(d));
  for (const d of [baseDir, ...modelDirs]) {
    if (d === target) throw new UserError(`merge: the output directory ${target} is one of the inputs`);
  }

  for (const d of modelDirs) checkConfigsCompatible(baseDir, d);
  // the SIMD kernels on this thread outrun the file I/O: worker threads only when asked for
  const threads = opts.threads ?? (simdAvailable() ? 0 : defaultMergeThreads());
  if (!Number.isSafeInteger(threads) || threads < 0)
    throw new UserError(`merge: threads must be a whole number ≥ 0, got ${threads}`);
  const sources: WeightSource[] = [];
  const readers: TensorReader[] = [];
  try {
    const base = openWeights(baseDir);
    sources.push(base);
    for (const d of modelDirs) {
      const s = openWeights(d);
      sources.push(s);
      checkTensorsMatch(base, s);
    }
    for (const src of sources) readers.push(new TensorReader(src));
    const names = base.names();
    const dtype = opts.dtype ?? (names.every((n) => base.entry(n).dtype === 'BF16') ? 'BF16' : 'F32');
    const only = opts.only ?? (() => true);
    const tensors = names.map((name) => {
      const shape = base.entry(name).shape;
      return { name, shape, numel: shape.reduce((a, b) => a * b, 1) };
    });
    const elementsTotal = tensors.reduce((a, t) => a + t.numel, 0);
    const max = opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
    if (!(max > 0)) throw new UserError(`merge: maxShardBytes must be positive, not ${max}`);
    const shards = planShards(tensors, dtype === 'BF16' ? 2 : 4, max);

    // null where worker threads cannot start: then this thread merges
    const workers = threads > 0 ? await MergeWorkers.shared(threads) : null;

    const tmp = `${target}.tmp-${process.pid}`;
    rmQuiet(tmp);
    let copied = 0;
    const recipe: MergeRecipe = {
      format: 'upit-merge/1',
      method: method.name,
      base: baseDir,
      models: modelDirs.map((dir, i) => ({ dir, weight: weights[i]! })),
      params: {
        lambda: params.lambda,
        normalize: params.normalize,
        density: params.density,
        drop: params.drop,
        rescale: params.rescale,
      },
      seed: opts.seed,
      dtype,
      tensors: tensors.length,
      copiedFromBase: 0,
    };
    try {
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.mkdirSync(tmp);
      for (const f of COPIED_FILES) {
        const from = path.join(baseDir, f);
        if (fs.existsSync(from) && fs.statSync(from).isFile()) {
          try {
            fs.copyFileSync(from, path.join(tmp, f));
          } catch (e) {
            throw ioError(from, 'cannot copy', e);
          }
        }
      }
      let done = 0;
      let elementsDone = 0;
      const owner: [string, string][] = [];
      const largest = tensors.reduce((a, t) => Math.max(a, t.numel), 0);
      const m = modelDirs.length;
      // streamed in blocks when the method allows it and every input is F32 (read in place)
      const allF32 = sources.every((src) => names.every((n) => src.entry(n).dtype === 'F32'));
      const stream =
        workers === null && allF32 && method.blocks(params, { name: '', seed: opts.seed }, m) !== null;
      const bufferElements = stream ? Math.min(largest, STREAM_BLOCK) : largest;
      // blocks: four in flight (reads ahead, the merge, writes behind; all in cache); whole
      // tensors: the next one read (once the one before has been written) while one is merged
      // (per worker: one more)
      // blocks: four in flight each way (reads ahead, writes behind; all in the CPU's cache);
      // whole tensors: the next one read while one is merged and the one before written (per
      // worker: one more each way)
      const slots = stream ? 4 : workers === null ? 2 : workers.size + 2;
      const scratch = {
        maskWords: CHUNK >>> 5,
        // TIES plans each model's trim in a band of |δ| (a percent or two of a tensor)
        bandElements: method.name === 'ties' ? Math.ceil(largest / 8) + 1024 : 0,
        // DARE draws the masks of a whole block or tensor at once (one kernel call over it); with
        // the L1 rescale, as each tensor is read, one pair per input set
        rangeMaskWords: method.random ? maskWords(bufferElements) : 0,
        rangeMaskSets: stream ? 1 : slots,
      };
      const bytes = SimdArena.bytesFor(...new Array<number>(slots * (m + 2)).fill(bufferElements));
      const arena = workers === null ? SimdArena.acquire(bytes, scratch) : null;
      const alloc = (n: number) => (arena === null ? new Float32Array(n) : arena.f32(n));
      const inputs = Array.from({ length: slots }, () => new InputSet(m, bufferElements, alloc));
      const outs = Array.from({ length: slots }, () => alloc(bufferElements));
      const jobs: Job[] = [];
      shards.forEach((plan, shard) => {
        for (const t of plan) {
          const merged = only(t.name);
          const step = stream ? STREAM_BLOCK : Math.max(1, t.numel);
          for (let off = 0; off < t.numel || off === 0; off += step) {
            const len = Math.min(step, t.numel - off);
            jobs.push({ name: t.name, numel: t.numel, shard, off, len, merged, last: off + len >= t.numel });
          }
        }
      });
      const fileOf = (s: number) => (shards.length === 1 ? SINGLE_WEIGHTS_FILE : shardName(s, shards.length));
      const writers: SafetensorsWriter[] = [];
      const open = (s: number) => {
        const plan = shards[s]!;
        writers[s] = new SafetensorsWriter(
          path.join(tmp, fileOf(s)),
          plan.map((t) => ({ name: t.name, shape: t.shape })),
          { dtype, metadata: { merge_method: method.name } },
        );
        return writers[s];
      };
      let finished = 0;
      let sinceWriteback = 0;
      const writebacks: Promise<void>[] = [];
      /** Finish the shards before `s` (an empty one is written empty). */
      const finishUpTo = (s: number) => {
        for (; finished < s; finished++) (writers[finished] ?? open(finished)).finish();
      };
      const pipeline = new Pipeline(
        jobs,
        inputs,
        outs,
        method,
        params,
        opts.seed,
        readers[0]!,
        readers.slice(1),
        workers,
        allF32,
      );
      try {
        await pipeline.run(
          (job, data) => {
            const w = writers[job.shard]!.writePartAsync(job.name, job.off, data);
            sinceWriteback += data.length * 4;
            if (sinceWriteback >= WRITEBACK_BYTES) {
              sinceWriteback = 0;
              // (a failed write is reported by the pipeline, a failed writeback by finish)
              writebacks.push(w.then(() => startWriteback(tmp)).catch(() => undefined));
            }
            if (job.last) {
              // the tensor is done once its last part is with the writer
              if (!job.merged) copied++;
              owner.push([job.name, fileOf(job.shard)]);
              done++;
              elementsDone += job.numel;
              opts.onProgress?.({
                tensor: job.name,
                done,
                total: tensors.length,
                elementsDone,
                elementsTotal,
              });
            }
            return w;
          },
          async (job, pending) => {
            if (opts.signal?.aborted) throw new UserError('merge cancelled');
            if (writers[job.shard] !== undefined) return;
            // a new shard: the previous ones' writes finish, then their files
            await pending();
            finishUpTo(job.shard);
            open(job.shard);
          },
        );
        await Promise.allSettled(writebacks);
        finishUpTo(shards.length);
      } catch (e) {
        for (const w of writers) w?.abort();
        throw e;
      } finally {
        await Promise.allSettled(writebacks);
        arena?.release(); // nothing is in flight on it any more (Pipeline.run settled everything)
      }
      if (shards.length > 1) {
        owner.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
        const bytes = elementsTotal * (dtype === 'BF16' ? 2 : 4);
        const index = { metadata: { total_size: bytes }, weight_map: Object.fromEntries(owner) };
        writeFileAtomic(path.join(tmp, WEIGHTS_INDEX_FILE), JSON.stringify(index, null, 2) + '\n');
      }
      recipe.copiedFromBase = copied;
      writeFileAtomic(path.join(tmp, MERGE_RECIPE_FILE), JSON.stringify(recipe, null, 2) + '\n');
      fsyncDir(tmp);
    } catch (e) {
      rmQuiet(tmp);
      if (isUserError(e)) throw new UserError(e.message.split(tmp).join(target));
      throw ioError(target, 'cannot write merged model', e);
    }
    replaceDir(tmp, target, 'cannot move the merged model into place');
    return recipe;
  } finally {
    for (const r of readers) r.close();
    for (const s of sources) s.close();
  }
}

/** Move `tmp` to `target`, replacing an existing directory (moved aside, then removed). */
