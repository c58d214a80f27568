/**
 * Global-norm gradient clipping as `torch.nn.utils.clip_grad_norm_` does it:
 * norm = √(Σ‖g‖²) over all gradients; if norm > maxNorm every gradient is scaled by
 * maxNorm / (norm + 1e-6).
 */
import { tf } from '../tensor/tf.js';

export interface ClipResult {
  /** Gradients after clipping (new tensors where scaled, the inputs otherwise). */
  grads: Map<string, tf.Tensor>;
  /** The pre-clip global norm (NaN/Infinity when a gradient is non-finite). */
  norm: number;
  /** Scale applied (1 when no clipping happened). */
  scale: number;
}

/** Global L2 norm of a set of tensors (one host read). */
export function globalNorm(tensors: Iterable<tf.Tensor>): number {
  const list = [...tensors];
  if (list.length === 0) return 0;
  const sq = tf.tidy(() => tf.addN(list.map((g) => tf.sum(tf.square(g)))));
  const value = sq.dataSync()[0]!;
  sq.dispose();
  return Math.sqrt(value);
}

/**
 * Clip `grads` to a global norm of `maxNorm` (≤ 0 or Infinity: never clip, only measure).
 * Tensors that are replaced are disposed unless `keepInputs` is set.
 */
export function clipByGlobalNorm(
  grads: Map<string, tf.Tensor>,
  maxNorm: number,
  keepInputs = false,
): ClipResult {
  const norm = globalNorm(grads.values());
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm) || !Number.isFinite(norm) || norm <= maxNorm) {
    return { grads, norm, scale: 1 };
  }
  const scale = maxNorm / (norm + 1e-6);
  const out = new Map<string, tf.Tensor>();
  for (const [name, g] of grads) {
    out.set(
      name,
      tf.tidy(() => tf.mul(g, tf.scalar(scale))),
    );
    if (!keepInputs) g.dispose();
  }
  return { grads: out, norm, scale };
}
