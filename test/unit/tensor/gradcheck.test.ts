/**
 * Gradient checks: on every backend available here, each op's forward matches a float64 reference and
 * its gradient matches central finite differences of that reference (so the gradient is the derivative
 * of what the op computes, to float32 accuracy).
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src-main/common/rng.js';
import { bmm, crossEntropy, embed, linear, tokenNll } from '../../../src-main/tensor/ops.js';
import { tf } from '../../../src-main/tensor/tf.js';
import { activate, f32, TEST_BACKENDS, values } from './backends-helper.js';
import {
  closeness,
  dot,
  numericGrad,
  randArray,
  randInts,
  refBmm,
  refCrossEntropy,
  refEmbed,
  refLinear,
  refTokenNll,
  type Arr,
} from './reference.js';

const ATOL = 2e-4;
const RTOL = 2e-3;

/** Runs `loss(...inputs)` on the active backend: its value and gradients as float64. */
async function tfValueAndGrads(
  loss: (...ts: tf.Tensor[]) => tf.Scalar,
  inputs: tf.Tensor[],
): Promise<{ value: number; grads: Float64Array[] }> {
  const { value, grads } = tf.tidy(() => {
    const r = tf.valueAndGrads((...ts: tf.Tensor[]) => loss(...ts))(inputs);
    return { value: r.value, grads: r.grads };
  });
  const out = { value: (await values(value))[0]!, grads: await Promise.all(grads.map(values)) };
  tf.dispose([value, ...grads]);
  return out;
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  const c = closeness(actual, expected, ATOL, RTOL);
  expect(c, `${what}: ${Array.from(actual).slice(0, 6)} vs ${Array.from(expected).slice(0, 6)}`).toBeLessThan(
    1,
  );
}

for (const backend of TEST_BACKENDS) {
  describe(`gradients on ${backend}`, () => {
    it('linear (leading dims, HF [out, in] weight)', async (ctx) => {
      const why = await activate(backend);
      if (why) ctx.skip(why);
      const rng = new Rng(1);
      const [B, T, inF, outF] = [2, 3, 4, 5];
      const x = randArray(rng, B * T * inF);
      const w = randArray(rng, outF * inF);
      const R = randArray(rng, B * T * outF);
      const lossOf = (xv: Arr, wv: Arr) => dot(refLinear(xv, wv, B * T, inF, outF), R);
      const got = await tfValueAndGrads(
        (xt, wt) => tf.sum(tf.mul(linear(xt!, wt!), tf.tensor(f32(R), [B, T, outF]))),
        [tf.tensor(f32(x), [B, T, inF]), tf.tensor(f32(w), [outF, inF])],
      );
      expect(got.value).toBeCloseTo(lossOf(x, w), 4);
      expectClose(
        got.grads[0]!,
        numericGrad((v) => lossOf(v, w), x),
        'd/dx',
      );
      expectClose(
        got.grads[1]!,
        numericGrad((v) => lossOf(x, v), w),
        'd/dw',
      );
    });

    for (const [ta, tb] of [
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ] as const) {
      it(`bmm transposeA=${ta} transposeB=${tb}`, async (ctx) => {
        const why = await activate(backend);
        if (why) ctx.skip(why);
        const rng = new Rng(2);
        const [P, M, K, N] = [3, 4, 5, 2];
        const a = randArray(rng, P * M * K);
        const b = randArray(rng, P * K * N);
        const R = randArray(rng, P * M * N);
        const lossOf = (av: Arr, bv: Arr) => dot(refBmm(av, bv, P, M, K, N, ta, tb), R);
        const got = await tfValueAndGrads(
          (at, bt) =>
            tf.sum(tf.mul(bmm(at as tf.Tensor3D, bt as tf.Tensor3D, ta, tb), tf.tensor(f32(R), [P, M, N]))),
          [tf.tensor(f32(a), ta ? [P, K, M] : [P, M, K]), tf.tensor(f32(b), tb ? [P, N, K] : [P, K, N])],
        );
        expect(got.value).toBeCloseTo(lossOf(a, b), 4);
        expectClose(
          got.grads[0]!,
          numericGrad((v) => lossOf(v, b), a),
          'd/da',
        );
        expectClose(
          got.grads[1]!,
          numericGrad((v) => lossOf(a, v), b),
          'd/db',
        );
      });
    }

    it('bmm broadcasting a batch of 1', async (ctx) => {
      const why = await activate(backend);
      if (why) ctx.skip(why);
      const rng = new Rng(3);
      const [P, M, K, N] = [3, 2, 4, 3];
      const a = randArray(rng, M * K);
      const b = randArray(rng, P * K * N);
      const R = randArray(rng, P * M * N);
      const tiled = (av: Arr) => Float64Array.from({ length: P * M * K }, (_, i) => av[i % (M * K)]!);
      const lossOf = (av: Arr, bv: Arr) => dot(refBmm(tiled(av), bv, P, M, K, N, false, false), R);
      const got = await tfValueAndGrads(
        (at, bt) => tf.sum(tf.mul(bmm(at as tf.Tensor3D, bt as tf.Tensor3D), tf.tensor(f32(R), [P, M, N]))),
        [tf.tensor(f32(a), [1, M, K]), tf.tensor(f32(b), [P, K, N])],
      );
      expect(got.value).toBeCloseTo(lossOf(a, b), 4);
      expectClose(
        got.grads[0]!,
        numericGrad((v) => lossOf(v, b), a),
        'd/da',
      );
      expectClose(
        got.grads[1]!,
        numericGrad((v) => lossOf(a, v), b),
        'd/db',
      );
    });

    it('embed (repeated ids; gradient wrt the table)', async (ctx) => {
      const why = await activate(backend);
      if (why) ctx.skip(why);
      const rng = new Rng(4);
      const [V, D] = [5, 3];
      const ids = Int32Array.from([4, 0, 4, 2, 4, 1]);
      const table = randArray(rng, V * D);
      const R = randArray(rng, ids.length * D);
      const lossOf = (t: Arr) => dot(refEmbed(ids, t, D), R);
      const got = await tfValueAndGrads(
        (t) => tf.sum(tf.mul(embed(tf.tensor(ids, [2, 3], 'int32'), t!), tf.tensor(f32(R), [2, 3, D]))),
        [tf.tensor(f32(table), [V, D])],
      );
      expect(got.value).toBeCloseTo(lossOf(table), 4);
      expectClose(got.grads[0]!, numericGrad(lossOf, table), 'd/dtable');
    });

    it('crossEntropy with a mask on [B, T, V] logits', async (ctx) => {
      const why = await activate(backend);
      if (why) ctx.skip(why);
      const rng = new Rng(5);
      const [B, T, V] = [2, 3, 6];
      const logits = randArray(rng, B * T * V, 3);
      const targets = randInts(rng, B * T, V);
      const mask = Float64Array.from([1, 0, 1, 1, 1, 0]);
      const lossOf = (l: Arr) => refCrossEntropy(l, targets, V, mask);
      const got = await tfValueAndGrads(
        (l) => crossEntropy(l!, tf.tensor(targets, [B, T], 'int32'), tf.tensor(f32(mask), [B, T])),
        [tf.tensor(f32(logits), [B, T, V])],
      );
      expect(got.value).toBeCloseTo(lossOf(logits), 4);
      expectClose(got.grads[0]!, numericGrad(lossOf, logits), 'd/dlogits');
    });

    it('crossEntropy without a mask on [N, V] logits', async (ctx) => {
      const why = await activate(backend);
      if (why) ctx.skip(why);
      const rng = new Rng(6);
      const [N, V] = [4, 5];
      const logits = randArray(rng, N * V, 2);
      const targets = randInts(rng, N, V);
      const lossOf = (l: Arr) => refCrossEntropy(l, targets, V);
      const got = await tfValueAndGrads(
        (l) => crossEntropy(l!, tf.tensor(targets, [N], 'int32')),
        [tf.tensor(f32(logits), [N, V])],
      );
      expect(got.value).toBeCloseTo(lossOf(logits), 4);
      expectClose(got.grads[0]!, numericGrad(lossOf, logits), 'd/dlogits');
    });

    it('tokenNll per position, and its gradient', async (ctx) => {
      const why = await activate(backend);
      if (why) ctx.skip(why);
      const rng = new Rng(7);
      const [B, T, V] = [2, 2, 7];
      const logits = randArray(rng, B * T * V, 2);
      const targets = randInts(rng, B * T, V);
      const R = randArray(rng, B * T);
      const nll = tf.tidy(() =>
        tokenNll(tf.tensor(f32(logits), [B, T, V]), tf.tensor(targets, [B, T], 'int32')),
      );
      expect(nll.shape).toEqual([B, T]);
      expectClose(await values(nll), refTokenNll(logits, targets, V), 'nll');
      nll.dispose();
      const lossOf = (l: Arr) => dot(refTokenNll(l, targets, V), R);
      const got = await tfValueAndGrads(
        (l) => tf.sum(tf.mul(tokenNll(l!, tf.tensor(targets, [B, T], 'int32')), tf.tensor(f32(R), [B, T]))),
        [tf.tensor(f32(logits), [B, T, V])],
      );
      expectClose(got.grads[0]!, numericGrad(lossOf, logits), 'd/dlogits');
    });

    it('crossEntropy is stable for huge logits and ignores masked out-of-range targets', async (ctx) => {
      const why = await activate(backend);
      if (why) ctx.skip(why);
      const logits = tf.tensor2d([1000, -1000, 0, -1e4, 3e3, 2999], [2, 3]);
      const targets = tf.tensor1d([0, -100], 'int32');
      const mask = tf.tensor1d([1, 0]);
      const got = await tfValueAndGrads((l) => crossEntropy(l!, targets, mask), [logits]);
      expect(got.value).toBeCloseTo(0, 5);
      expect(Array.from(got.grads[0]!).every(Number.isFinite)).toBe(true);
      tf.dispose([targets, mask]);
    });

    it('replacement gradients: topk values, strided slice, gather on axis 1, masks from comparisons', async (ctx) => {
      const why = await activate(backend);
      if (why) ctx.skip(why);
      const x = [0.3, -1.2, 2.5, 0.7, 1.1, -0.4, 0.9, 0.2, -2.0, 1.7, 0.05, 0.6];
      const got = await tfValueAndGrads(
        (t) => {
          const m = tf.reshape(t!, [3, 4]);
          const top = tf.sum(tf.mul(tf.topk(m, 2).values, tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2])));
          const strided = tf.sum(
            tf.mul(tf.stridedSlice(m, [0, 1], [3, 4], [2, 2]), tf.tensor2d([7, 8, 9, 10], [2, 2])),
          );
          const gathered = tf.sum(tf.gather(m, tf.tensor1d([3, 0, 3], 'int32'), 1));
          const masked = tf.sum(tf.where(tf.greater(m, 0.5), tf.square(m), tf.zerosLike(m)));
          const plain = tf.sum(tf.stridedSlice(m, [1, 1], [2, 3]));
          return tf.addN([top, strided, gathered, masked, plain]) as tf.Scalar;
        },
        [tf.tensor1d(x)],
      );
      // topk rows [0.3,-1.2,2.5,0.7] → 2.5 (×1), 0.7 (×2); [1.1,-0.4,0.9,0.2] → 1.1 (×3), 0.9 (×4);
      // [-2,1.7,0.05,0.6] → 1.7 (×5), 0.6 (×6). strided picks (0,1),(0,3),(2,1),(2,3) ×7,8,9,10.
      // gather adds 1 at columns 0 and 3 (twice). where adds 2x for x > 0.5. plain adds 1 at (1,1), (1,2).
      const expected = [
        1,
        7,
        1 + 2 * 2.5,
        2 + 2 + 8 + 2 * 0.7,
        3 + 1 + 2 * 1.1,
        1,
        4 + 2 * 0.9 + 1,
        2,
        1,
        5 + 9 + 2 * 1.7,
        0,
        6 + 2 + 10 + 2 * 0.6,
      ];
      expectClose(got.grads[0]!, expected, 'grad');
    });
  });
}
