/**
 * Token batches for next-token training.
 *
 * An example is a token sequence with a loss mask of the same length (1 on response
 * tokens, 0 on prompt tokens). Input position t predicts token t + 1, so a sequence of
 * L tokens gives T = L − 1 positions: ids = x[0..L−1), targets = x[1..L), mask =
 * lossMask[1..L) — the mask is aligned to the targets. Rows are right-padded with the pad
 * id and mask 0. With causal attention right padding never changes the real positions.
 */
import { Rng } from '../common/rng.js';
import { UserError } from '../common/errors.js';
import { tf } from '../tensor/tf.js';

export interface TokenizedExample {
  ids: number[];
  /** Same length as ids; 1 where the token is to be predicted (response), 0 elsewhere. */
  lossMask: number[];
}

/** Tensors for one (micro-)batch. The caller owns and disposes the tensors. */
export interface Batch {
  /** int32 [B, T] */
  ids: tf.Tensor;
  /** int32 [B, T] */
  targets: tf.Tensor;
  /** float32 [B, T], 1 where the loss counts */
  mask: tf.Tensor;
  /** float32 [B, T], 1 at every real (non-padding) input position: routing losses count these. */
  inputMask: tf.Tensor;
  /** Number of positions with mask 1. */
  tokens: number;
}

/** The same batch on the host. */
export interface HostBatch {
  rows: number;
  seqLen: number;
  ids: Int32Array;
  targets: Int32Array;
  mask: Float32Array;
  /** 1 at real input positions, 0 at padding. */
  inputMask: Float32Array;
  /** Masked (loss) positions. */
  tokens: number;
  /** Non-padding input positions. */
  inputTokens: number;
}

export interface BatchOptions {
  padId: number;
  /** Largest number of input positions T; longer examples keep their first T + 1 tokens. */
  maxSeqLen?: number;
  /** Pad T up to a multiple of this (fewer distinct shapes; default 1). */
  padMultiple?: number;
}

/** Check an example and cut it to at most maxSeqLen + 1 tokens. */
export function truncateExample(
  ex: TokenizedExample,
  maxSeqLen?: number,
  where = 'example',
): TokenizedExample {
  if (ex.ids.length !== ex.lossMask.length) {
    throw new UserError(`${where}: ids has ${ex.ids.length} tokens but lossMask has ${ex.lossMask.length}`);
  }
  if (maxSeqLen === undefined || ex.ids.length <= maxSeqLen + 1) return ex;
  return { ids: ex.ids.slice(0, maxSeqLen + 1), lossMask: ex.lossMask.slice(0, maxSeqLen + 1) };
}

/** Loss positions of an example (mask ones among its targets). */
export function lossTokens(ex: TokenizedExample): number {
  let n = 0;
  for (let i = 1; i < ex.lossMask.length; i++) if (ex.lossMask[i]) n++;
  return n;
}

/**
 * Truncate every example and drop those left with no loss position (e.g. a response cut
 * off by truncation): they would contribute 0/0 to a mean loss.
 */
export function prepareExamples(
  examples: readonly TokenizedExample[],
  maxSeqLen?: number,
): { examples: TokenizedExample[]; dropped: number } {
  const out: TokenizedExample[] = [];
  let dropped = 0;
  examples.forEach((ex, i) => {
    const t = truncateExample(ex, maxSeqLen, `example ${i}`);
    if (lossTokens(t) > 0) out.push(t);
    else dropped++;
  });
  return { examples: out, dropped };
}

/** Build the shifted, right-padded host batch for `examples` (already truncated). */
export function makeHostBatch(examples: readonly TokenizedExample[], opts: BatchOptions): HostBatch {
  if (examples.length === 0) throw new Error('makeHostBatch: empty batch');
  const mult = Math.max(1, opts.padMultiple ?? 1);
  let longest = 1;
  for (const ex of examples) {
    const t = truncateExample(ex, opts.maxSeqLen);
    longest = Math.max(longest, t.ids.length - 1);
  }
  let seqLen = Math.ceil(longest / mult) * mult;
  if (opts.maxSeqLen !== undefined) seqLen = Math.max(longest, Math.min(seqLen, opts.maxSeqLen));
  const rows = examples.length;
  const ids = new Int32Array(rows * seqLen).fill(opts.padId);
  const targets = new Int32Array(rows * seqLen).fill(opts.padId);
  const mask = new Float32Array(rows * seqLen);
  const inputMask = new Float32Array(rows * seqLen);
  let tokens = 0;
  let inputTokens = 0;
  examples.forEach((raw, r) => {
    const ex = truncateExample(raw, opts.maxSeqLen);
    const n = ex.ids.length - 1;
    const off = r * seqLen;
    for (let t = 0; t < n; t++) {
      ids[off + t] = ex.ids[t]!;
      targets[off + t] = ex.ids[t + 1]!;
      inputMask[off + t] = 1;
      const m = ex.lossMask[t + 1] ? 1 : 0;
      mask[off + t] = m;
      tokens += m;
    }
    inputTokens += Math.max(0, n);
  });
  return { rows, seqLen, ids, targets, mask, inputMask, tokens, inputTokens };
}

/** Upload a host batch. */
export function toBatch(h: HostBatch): Batch {
  return {
    ids: tf.tensor2d(h.ids, [h.rows, h.seqLen], 'int32'),
    targets: tf.tensor2d(h.targets, [h.rows, h.seqLen], 'int32'),
    mask: tf.tensor2d(h.mask, [h.rows, h.seqLen], 'float32'),
    inputMask: tf.tensor2d(h.inputMask, [h.rows, h.seqLen], 'float32'),
    tokens: h.tokens,
  };
}

export function disposeBatch(b: Batch): void {
  b.ids.dispose();
  b.targets.dispose();
  b.mask.dispose();
  b.inputMask.dispose();
}

/**
 * The order of `n` examples in `epoch`: a permutation that depends only on (seed, epoch),
 * so a run resumes from a cursor (epoch, position) without replaying earlier epochs.
 */
export function epochOrder(n: number, seed: number, epoch: number, shuffle = true): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  if (shuffle) Rng.derive(seed, `train-data-epoch:${epoch}`).shuffle(order);
  return order;
}

/** Where the data stream stands: the next example is order(epoch)[position]. */
export interface DataCursor {
  epoch: number;
  position: number;
}

/**
 * Cuts epochs into optimizer steps of `batchSize · gradAccum` examples and each step into
 * micro-batches of at most `batchSize`. A step never spans two epochs: the last step of an
 * epoch takes what is left (so the number of steps per epoch is ⌈n / (B·G)⌉).
 */
export class EpochSampler {
  readonly stepsPerEpoch: number;
  private cursor: DataCursor = { epoch: 0, position: 0 };
  private order: number[] | null = null;
  private orderEpoch = -1;

  constructor(
    private readonly n: number,
    private readonly batchSize: number,
    private readonly gradAccum: number,
    private readonly seed: number,
    private readonly shuffle = true,
  ) {
    if (n < 1) throw new UserError('training data: no usable examples');
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new UserError(`batchSize must be a positive integer (got ${batchSize})`);
    }
    if (!Number.isInteger(gradAccum) || gradAccum < 1) {
      throw new UserError(`gradAccum must be a positive integer (got ${gradAccum})`);
    }
    this.stepsPerEpoch = Math.ceil(n / (batchSize * gradAccum));
  }

  get position(): DataCursor {
    return { ...this.cursor };
  }

  seek(c: DataCursor): void {
    if (!Number.isInteger(c.epoch) || c.epoch < 0 || !Number.isInteger(c.position)) {
      throw new UserError(`data cursor is invalid (${JSON.stringify(c)})`);
    }
    if (c.position < 0 || c.position >= this.n) {
      throw new UserError(`data cursor position ${c.position} is outside 0..${this.n - 1}`);
    }
    this.cursor = { ...c };
  }

  /** Example indices for the next optimizer step, split into micro-batches. */
  nextStep(): number[][] {
    if (this.orderEpoch !== this.cursor.epoch) {
      this.order = epochOrder(this.n, this.seed, this.cursor.epoch, this.shuffle);
      this.orderEpoch = this.cursor.epoch;
    }
    const order = this.order!;
    const start = this.cursor.position;
    const end = Math.min(this.n, start + this.batchSize * this.gradAccum);
    const micro: number[][] = [];
    for (let i = start; i < end; i += this.batchSize) {
      micro.push(order.slice(i, Math.min(end, i + this.batchSize)));
    }
    this.cursor =
      end >= this.n ? { epoch: this.cursor.epoch + 1, position: 0 } : { ...this.cursor, position: end };
    return micro;
  }
}

export interface PackOptions {
  /** Input positions per window (T); windows hold T + 1 tokens. */
  seqLen: number;
  /** Appended after every document. */
  eos: number;
}

/**
 * Pre-training packer: concatenate documents, each followed by EOS, and cut the stream into
 * windows of T + 1 tokens with stride T (consecutive windows share one token, so every
 * token after the first is a target exactly once). Every position counts in the loss.
 * A tail shorter than T + 1 tokens is dropped.
 */
export function packDocuments(docs: Iterable<readonly number[]>, opts: PackOptions): TokenizedExample[] {
  const T = opts.seqLen;
  if (!Number.isInteger(T) || T < 1) throw new UserError(`seqLen must be a positive integer (got ${T})`);
  const stream: number[] = [];
  for (const d of docs) {
    for (const t of d) stream.push(t);
    stream.push(opts.eos);
  }
  const out: TokenizedExample[] = [];
  for (let s = 0; s + T + 1 <= stream.length; s += T) {
    const ids = stream.slice(s, s + T + 1);
    out.push({ ids, lossMask: new Array<number>(T + 1).fill(1) });
  }
  if (out.length === 0) {
    throw new UserError(`pre-training corpus has ${stream.length} tokens, fewer than one window of ${T + 1}`);
  }
  return out;
}
