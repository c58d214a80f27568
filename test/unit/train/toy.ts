/**
 * Test helpers: a toy next-token model built from plain tf ops (bigram table + residual
 * MLP with a 1-D gain), a masked mean cross-entropy, and a tiny byte corpus.
 */
import { Rng } from '../../../src-main/common/rng.js';
import { useBackend } from '../../../src-main/tensor/backend.js';
import { tf } from '../../../src-main/tensor/tf.js';
import type { Batch, Trainable } from '../../../src-main/train/trainer.js';
import type { TokenizedExample } from '../../../src-main/train/batches.js';

export async function setupCpu(): Promise<void> {
  await useBackend('cpu');
}

/** Mean of −log p(target) over positions with mask 1. */
export function maskedCrossEntropy(logits: tf.Tensor, targets: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const V = logits.shape[logits.shape.length - 1]!;
    const logp = tf.logSoftmax(logits);
    const onehot = tf.oneHot(targets, V);
    const nll = tf.neg(tf.sum(tf.mul(logp, onehot), -1));
    return tf.div(tf.sum(tf.mul(nll, mask)), tf.sum(mask)) as tf.Scalar;
  });
}

let counter = 0;

export interface ToyModel extends Trainable {
  dispose(): void;
  snapshot(): Map<string, Float32Array>;
}

/** Toy LM: logits = E[ids] Wᵀ + relu(E[ids] U) ⊙ g · Wᵀ, with E, W, U matrices and g 1-D. */
export function toyModel(vocab: number, dim: number, seed: number): ToyModel {
  const rng = new Rng(seed);
  const rand = (shape: number[], std: number): tf.Variable => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = rng.normal() * std;
    const t = tf.tensor(data, shape, 'float32');
    const v = tf.variable(t, true, `toy${counter++}`);
    t.dispose();
    return v;
  };
  const ones = (n: number): tf.Variable => {
    const t = tf.ones([n]);
    const v = tf.variable(t, true, `toy${counter++}`);
    t.dispose();
    return v;
  };
  const params = new Map<string, tf.Variable>([
    ['embed.weight', rand([vocab, dim], 0.5)],
    ['mlp.weight', rand([dim, dim], 0.3)],
    ['mlp.gain', ones(dim)],
    ['head.weight', rand([vocab, dim], 0.5)],
  ]);
  const p = (n: string): tf.Variable => params.get(n)!;
  return {
    params,
    loss(batch: Batch): tf.Scalar {
      const [B, T] = batch.ids.shape as [number, number];
      const x = tf.matMul(tf.oneHot(tf.reshape(batch.ids, [B * T]), vocab), p('embed.weight'));
      const h = tf.add(x, tf.mul(tf.relu(tf.matMul(x, p('mlp.weight'))), p('mlp.gain')));
      const logits = tf.reshape(tf.matMul(h, p('head.weight'), false, true), [B, T, vocab]);
      return maskedCrossEntropy(logits, batch.targets, batch.mask);
    },
    dispose() {
      for (const v of params.values()) v.dispose();
    },
    snapshot() {
      return new Map([...params].map(([k, v]) => [k, Float32Array.from(v.dataSync() as Float32Array)]));
    },
  };
}

/** Byte tokens of a repeated sentence, cut into examples; the second half of each is the "response". */
export function byteExamples(
  n: number,
  len: number,
  text = 'the quick brown fox jumps over the lazy dog. ',
): TokenizedExample[] {
  const bytes = [...Buffer.from(text.repeat(Math.ceil((n * len) / text.length) + 2))];
  const out: TokenizedExample[] = [];
  for (let i = 0; i < n; i++) {
    const start = (i * 7) % text.length;
    const ids = bytes.slice(start + i, start + i + len);
    const lossMask = ids.map((_, j) => (j >= len / 2 ? 1 : 0));
    out.push({ ids, lossMask });
  }
  return out;
}
