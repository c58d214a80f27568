/**
 * How much a model's next-token prediction depends on each earlier token of its input: the
 * question "does this model use its context?", asked directly.
 *
 * For a sequence x_0 … x_{T−1}, p = softmax(logits at T−1) is the prediction after the whole
 * text. For each position j, x_j is replaced by a substitute token s (x_j unchanged when it
 * already is s: sensitivity 0 there) and
 *   sensitivity_j = KL(p ‖ p^{(j)}) in nats,
 * with p^{(j)} the prediction after the ablated sequence. Every ablated sequence is one row of a
 * batch (T + 1 rows, run in chunks), so the cost is T forward passes of length T.
 *
 * Summary figures: `reach` = the largest distance T − 1 − j (0 = the last token itself) with a
 * sensitivity of at least `threshold` nats, and `beyond` = the summed sensitivity of positions more
 * than `near` tokens back. A model that answers "Zopo has 4 marbles … How many?" must show a
 * sensitivity at the "4"; an n-gram-like model shows none past its last few tokens.
 */
import { tf } from '../tensor/tf.js';

export interface ContextSensitivity {
  /** KL(p ‖ p^{(j)}) per input position, nats. */
  sensitivity: number[];
  /** Distance back (0 = last token) of the farthest position at or above `threshold`; -1 if none. */
  reach: number;
  /** Summed sensitivity of positions more than `near` tokens back. */
  beyond: number;
  /** The prediction after the whole text: the five most likely next tokens and their probabilities. */
  top: { id: number; p: number }[];
  threshold: number;
  near: number;
}

export interface ContextSensitivityOptions {
  /** Token that replaces each position in turn. */
  substitute: number;
  /** Rows per forward pass (default 32). */
  batchSize?: number;
  /** Sensitivity counted by `reach` (default 0.05 nats). */
  threshold?: number;
  /** Positions within this many tokens of the end are "near" (default 8). */
  near?: number;
}

/** `logits(ids [B, T] int32) → [B, T, V]`: any model's forward. */
export type LogitsFn = (ids: tf.Tensor) => tf.Tensor;

export function contextSensitivity(
  logits: LogitsFn,
  ids: readonly number[],
  opts: ContextSensitivityOptions,
): ContextSensitivity {
  const T = ids.length;
  if (T === 0) throw new RangeError('contextSensitivity needs at least one token');
  const threshold = opts.threshold ?? 0.05;
  const near = opts.near ?? 8;
  const batch = Math.max(1, opts.batchSize ?? 32);
  const rows: number[][] = [[...ids]];
  for (let j = 0; j < T; j++) {
    const r = [...ids];
    r[j] = opts.substitute;
    rows.push(r);
  }
  const logProbs: Float32Array[] = [];
  for (let s = 0; s < rows.length; s += batch) {
    const chunk = rows.slice(s, s + batch);
    const lp = tf.tidy(() => {
      const out = logits(tf.tensor2d(chunk, [chunk.length, T], 'int32'));
      const V = out.shape[2]!;
      const last = tf.reshape(tf.slice(out, [0, T - 1, 0], [chunk.length, 1, V]), [chunk.length, V]);
      return tf.logSoftmax(last);
    });
    const data = lp.dataSync() as Float32Array;
    const V = lp.shape[1]!;
    lp.dispose();
    for (let r = 0; r < chunk.length; r++) logProbs.push(data.subarray(r * V, (r + 1) * V));
  }
  const full = logProbs[0]!;
  const sensitivity = ids.map((id, j) => {
    if (id === opts.substitute) return 0;
    const ablated = logProbs[j + 1]!;
    let kl = 0;
    for (let k = 0; k < full.length; k++) kl += Math.exp(full[k]!) * (full[k]! - ablated[k]!);
    return Math.max(0, kl);
  });
  let reach = -1;
  let beyond = 0;
  sensitivity.forEach((v, j) => {
    const back = T - 1 - j;
    if (v >= threshold) reach = Math.max(reach, back);
    if (back > near) beyond += v;
  });
  const top = [...full]
    .map((lp, id) => ({ id, p: Math.exp(lp) }))
    .sort((a, b) => b.p - a.p)
    .slice(0, 5);
  return { sensitivity, reach, beyond, top, threshold, near };
}
