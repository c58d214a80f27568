/**
 * Log-likelihood of continuations given contexts, batched: the core of multiple-choice scoring
 * and of perplexity.
 *
 * Tokenisation (lm-eval-harness `_encode_pair`, made exact where it can be): the full text
 * context + continuation is encoded once; when the encoded context is a token prefix of it
 * (always, for the byte tokenizer) the continuation is the rest. Otherwise a token straddles the
 * boundary (BPE: "A: " + "Paris" → "A", ":", " Paris"), so trailing whitespace moves from the
 * context into the continuation, as lm-eval does, and the split is retried; failing that, the
 * two parts are encoded separately. Sequences longer than `maxSeqLen + 1` lose tokens from the
 * left (context first); a continuation token at position 0 has no prediction and is not scored.
 *
 * Batching: rows are sorted by length (longest first, so padding is small and the first batch
 * shows the peak memory), right-padded, one forward per batch; the model returns the NLL of only
 * the scored positions (`Scorable.selectedNll`), so the [B, T, V] logits are never needed.
 */
import { tf } from '../tensor/tf.js';
import type { Scorable } from './scorable.js';

/** One scored sequence: `ids[firstTarget..]` are the continuation tokens that are scored. */
export interface ScoreRow {
  ids: number[];
  /** ≥ 1; tokens before it are context. */
  firstTarget: number;
  /** UTF-8 bytes of the continuation text that the scored tokens spell (for length normalisation). */
  contBytes: number;
}

export interface BatchOptions {
  /** Sequences per forward pass. */
  batchSize: number;
  /** Optional cap on batch rows × padded length (long real-data inputs); at least one row per batch. */
  maxBatchTokens?: number;
  signal?: AbortSignal;
}

function isPrefix(prefix: readonly number[], of: readonly number[]): boolean {
  if (prefix.length > of.length) return false;
  for (let i = 0; i < prefix.length; i++) if (prefix[i] !== of[i]) return false;
  return true;
}

const utf8Bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

/** Tokens of `context + continuation` and where the continuation starts (see the module comment). */
export function encodePair(model: Scorable, context: string, continuation: string): ScoreRow {
  const tok = model.tokenizer;
  const enc = (s: string) => tok.encode(s, { addBos: model.addBos });
  const full = enc(context + continuation);
  const ctx = enc(context);
  let row: ScoreRow;
  if (isPrefix(ctx, full)) {
    row = { ids: full, firstTarget: ctx.length, contBytes: utf8Bytes(continuation) };
  } else {
    const stripped = context.replace(/\s+$/, '');
    const moved = context.slice(stripped.length) + continuation;
    const ctx2 = enc(stripped);
    if (stripped.length < context.length && isPrefix(ctx2, full)) {
      row = { ids: full, firstTarget: ctx2.length, contBytes: utf8Bytes(moved) };
    } else {
      const cont = tok.encode(continuation);
      row = { ids: [...ctx, ...cont], firstTarget: ctx.length, contBytes: utf8Bytes(continuation) };
    }
  }
  return truncateRow(row, model.maxSeqLen);
}

/** Keep the last `maxSeqLen + 1` tokens; the first kept token can only be context. */
export function truncateRow(row: ScoreRow, maxSeqLen: number): ScoreRow {
  const drop = row.ids.length - (maxSeqLen + 1);
  const first = Math.max(1, row.firstTarget - Math.max(0, drop));
  if (drop <= 0) return { ...row, firstTarget: Math.max(1, row.firstTarget) };
  return { ids: row.ids.slice(drop), firstTarget: first, contBytes: row.contBytes };
}

/** Number of scored tokens of a row. */
export function scoredTokens(row: ScoreRow): number {
  return Math.max(0, row.ids.length - row.firstTarget);
}

/** Yield to the event loop (so an abort request can arrive) and honour the signal. */
export async function checkpoint(signal?: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  signal?.throwIfAborted();
}

/** Batches of row indices: longest first, at most `batchSize` rows and `maxBatchTokens` cells. */
export function planBatches(lengths: readonly number[], opts: BatchOptions): number[][] {
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) {
    throw new RangeError(`batchSize must be a positive integer, got ${opts.batchSize}`);
  }
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b]! - lengths[a]! || a - b);
  const batches: number[][] = [];
  let cur: number[] = [];
  let width = 0;
  for (const i of order) {
    const w = Math.max(width, lengths[i]!);
    const tooMany = cur.length >= opts.batchSize;
    const tooBig = opts.maxBatchTokens !== undefined && (cur.length + 1) * w > opts.maxBatchTokens;
    if (cur.length > 0 && (tooMany || tooBig)) {
      batches.push(cur);
      cur = [];
      width = 0;
    }
    cur.push(i);
    width = Math.max(width, lengths[i]!);
  }
  if (cur.length > 0) batches.push(cur);
  return batches;
}

/**
 * Summed NLL and count of the scored tokens of every row. `onBatch(rowsDone)` after each batch;
 * the signal is checked before each batch.
 */
export async function scoreRows(
  model: Scorable,
  rows: readonly ScoreRow[],
  opts: BatchOptions,
  onBatch?: (rowsDone: number) => void,
): Promise<{ nll: Float64Array; tokens: Int32Array }> {
  const nll = new Float64Array(rows.length);
  const tokens = new Int32Array(rows.length);
  const inputLen = rows.map((r) => r.ids.length - 1);
  let done = 0;
  for (const batch of planBatches(inputLen, opts)) {
    await checkpoint(opts.signal);
    const B = batch.length;
    const T = Math.max(1, ...batch.map((i) => inputLen[i]!));
    const ids = new Int32Array(B * T).fill(model.tokenizer.padId);
    const mask = new Float32Array(B * T);
    const positions: number[] = [];
    const targets: number[] = [];
    batch.forEach((r, b) => {
      const row = rows[r]!;
      const n = row.ids.length - 1;
      for (let t = 0; t < n; t++) ids[b * T + t] = row.ids[t]!;
      mask.fill(1, b * T, b * T + n);
      for (let t = row.firstTarget - 1; t < n; t++) {
        positions.push(b * T + t);
        targets.push(row.ids[t + 1]!);
      }
    });
    let values: Float32Array | Int32Array | Uint8Array = new Float32Array(0);
    if (positions.length > 0) {
      const out = tf.tidy(() =>
        model.selectedNll(
          tf.tensor2d(ids, [B, T], 'int32'),
          tf.tensor2d(mask, [B, T], 'float32'),
          tf.tensor1d(positions, 'int32'),
          tf.tensor1d(targets, 'int32'),
        ),
      );
      try {
        values = await out.data();
      } finally {
        out.dispose();
      }
    }
    let k = 0;
    for (const r of batch) {
      const row = rows[r]!;
      const n = scoredTokens(row);
      let s = 0;
      for (let j = 0; j < n; j++) s += values[k++]!;
      nll[r] = s;
      tokens[r] = n;
    }
    done += B;
    onBatch?.(done);
  }
  return { nll, tokens };
}
