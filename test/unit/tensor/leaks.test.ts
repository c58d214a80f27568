/**
 * No leaks: repeated forward + gradient of every op leaves the tensor count (and on wasm the bytes)
 * unchanged, and so does a small training loop with variables and an optimizer.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src-main/common/rng.js';
import { bmm, crossEntropy, embed, linear, tokenNll } from '../../../src-main/tensor/ops.js';
import { tf } from '../../../src-main/tensor/tf.js';
import { activate, f32 } from './backends-helper.js';
import { randArray, randInts } from './reference.js';

function stepFns(): Record<string, () => void> {
  const rng = new Rng(21);
  const t = (shape: number[]) =>
    tf.tensor(
      f32(
        randArray(
          rng,
          shape.reduce((a, b) => a * b, 1),
        ),
      ),
      shape,
    );
  const x = t([2, 8, 12]);
  const w = t([10, 12]);
  const q = t([4, 8, 6]);
  const ids = tf.tensor(randInts(rng, 16, 10), [2, 8], 'int32');
  const table = t([10, 12]);
  const logits = t([2, 8, 10]);
  const mask = tf.ones([2, 8]);
  const b3 = (a: tf.Tensor) => a as tf.Tensor3D;
  const fwdGrad =
    (f: (...a: tf.Tensor[]) => tf.Tensor, ...inputs: tf.Tensor[]) =>
    () => {
      const { value, grads } = tf.valueAndGrads((...a: tf.Tensor[]) => tf.sum(f(...a)) as tf.Scalar)(inputs);
      tf.dispose([value, ...grads]);
    };
  return {
    linear: fwdGrad(linear, x, w),
    bmm: fwdGrad((a, b) => bmm(b3(a), b3(b), false, true), q, q),
    'bmm transposeA': fwdGrad((a, b) => bmm(b3(a), b3(b), true, false), q, q),
    embed: fwdGrad((tb) => embed(ids, tb), table),
    crossEntropy: fwdGrad((l) => crossEntropy(l, ids, mask), logits),
    tokenNll: fwdGrad((l) => tokenNll(l, ids), logits),
    'transpose/gather/concat/sum': fwdGrad(
      (a) => tf.transpose(tf.sum(tf.concat([a, tf.gather(a, tf.tensor1d([1, 1], 'int32'), 1)], 1), 0)),
      x,
    ),
  };
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`no tensor leaks on ${backend}`, () => {
    it('forward + gradient of every op, repeated', async () => {
      expect(await activate(backend)).toBeUndefined();
      for (const [name, fn] of Object.entries(stepFns())) {
        fn(); // warm-up (kernel setup, scratch buffers)
        const before = tf.memory();
        for (let i = 0; i < 4; i++) fn();
        const after = tf.memory();
        expect(after.numTensors, name).toBe(before.numTensors);
        expect(after.numBytes, name).toBe(before.numBytes);
      }
    });

    it('a training loop (variables, AdamW-style optimizer) keeps the tensor count flat', async () => {
      expect(await activate(backend)).toBeUndefined();
      const rng = new Rng(22);
      const table = tf.variable(tf.tensor(f32(randArray(rng, 16 * 8, 0.1)), [16, 8]));
      const w1 = tf.variable(tf.tensor(f32(randArray(rng, 12 * 8, 0.1)), [12, 8]));
      const head = tf.variable(tf.tensor(f32(randArray(rng, 16 * 12, 0.1)), [16, 12]));
      const ids = tf.tensor(randInts(rng, 2 * 6, 16), [2, 6], 'int32');
      const targets = tf.tensor(randInts(rng, 2 * 6, 16), [2, 6], 'int32');
      const opt = tf.train.adam(1e-2);
      const step = () =>
        opt.minimize(() => {
          const h = tf.relu(linear(embed(ids, table), w1));
          const s = tf.reshape(h, [2, 6, 12]);
          const att = bmm(s as tf.Tensor3D, s as tf.Tensor3D, false, true);
          return crossEntropy(
            linear(tf.add(s, bmm(tf.softmax(att) as tf.Tensor3D, s as tf.Tensor3D)), head),
            targets,
          );
        });
      step();
      const before = tf.memory().numTensors;
      const losses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const loss = opt.minimize(() => {
          const h = tf.relu(linear(embed(ids, table), w1));
          return crossEntropy(linear(h, head), targets);
        }, true);
        losses.push((await loss!.data())[0]!);
        loss!.dispose();
        step();
      }
      expect(tf.memory().numTensors).toBe(before);
      expect(losses[4]!).toBeLessThan(losses[0]!);
      opt.dispose();
      tf.dispose([table, w1, head, ids, targets]);
    });
  });
}
