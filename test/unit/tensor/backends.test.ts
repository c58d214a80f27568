/**
 * Backends: selection and its reasons, and agreement of every backend available here with the cpu
 * reference on forward values and gradients (model-sized shapes), including the wasm replacement
 * kernels against the cases they special-case.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src-main/common/rng.js';
import { UserError } from '../../../src-main/common/errors.js';
import { currentBackend, probeBackends, useBackend } from '../../../src-main/tensor/backend.js';
import { bmm, crossEntropy, embed, linear, tokenNll } from '../../../src-main/tensor/ops.js';
import { tf } from '../../../src-main/tensor/tf.js';
import { collapseTranspose } from '../../../src-main/tensor/wasm-kernels.js';
import { activate, f32, values } from './backends-helper.js';
import { closeness, randArray, randInts } from './reference.js';

describe('backend selection', () => {
  it('auto picks the first working backend and says why the earlier ones were passed over', async () => {
    const choice = await useBackend('auto');
    expect(['tensorflow', 'webgpu', 'wasm']).toContain(choice.name);
    expect(currentBackend()).toBe(choice.name);
    const names = choice.attempts.map((a) => a.name);
    expect(names).toEqual(['tensorflow', 'webgpu', 'wasm', 'cpu'].slice(0, names.length));
    expect(choice.attempts[choice.attempts.length - 1]).toMatchObject({ name: choice.name, status: 'ok' });
    for (const a of choice.attempts.slice(0, -1)) {
      expect(a.status).not.toBe('ok');
      expect(a.detail.length).toBeGreaterThan(5);
    }
    const tfAttempt = choice.attempts[0]!;
    if (tfAttempt.status !== 'ok') expect(tfAttempt.detail).toMatch(/tfjs-node/);
    const gpu = choice.attempts.find((a) => a.name === 'webgpu');
    if (gpu !== undefined && gpu.status === 'skipped') expect(gpu.detail).toMatch(/software adapter/);
    if (choice.name === 'wasm') {
      expect(choice.threads).toBeGreaterThanOrEqual(1);
      expect(choice.detail).toMatch(/thread/);
    }
  });

  it('asking by name for an unavailable backend throws a UserError naming why', async () => {
    let err: unknown;
    try {
      await useBackend('tensorflow');
    } catch (e) {
      err = e;
    }
    if (err === undefined) return; // tfjs-node is installed here
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/--backend tensorflow: unavailable: .*tfjs-node/);
    await expect(useBackend('nope' as 'cpu')).rejects.toThrow(UserError);
  });

  it('probeBackends reports all four and leaves the active backend alone', async () => {
    await useBackend('cpu');
    const probe = await probeBackends();
    expect(probe.map((p) => p.name)).toEqual(['tensorflow', 'webgpu', 'wasm', 'cpu']);
    expect(probe.find((p) => p.name === 'wasm')!.status).toBe('ok');
    expect(probe.find((p) => p.name === 'cpu')!.status).toBe('ok');
    expect(currentBackend()).toBe('cpu');
  });
});

describe('wasm transpose axis collapsing', () => {
  it('merges axes that stay adjacent and drops size-1 axes', () => {
    expect(collapseTranspose([2, 3, 4, 5], [0, 2, 1, 3])).toEqual({
      shape: [2, 3, 4, 5],
      perm: [0, 2, 1, 3],
    });
    expect(collapseTranspose([2, 3, 4, 5], [0, 1, 3, 2])).toEqual({ shape: [6, 4, 5], perm: [0, 2, 1] });
    expect(collapseTranspose([2, 1, 4], [1, 2, 0])).toEqual({ shape: [2, 4], perm: [1, 0] });
    expect(collapseTranspose([2, 3], [0, 1])).toEqual({ shape: [6], perm: [0] });
  });
});

/** The computations compared across backends: name → (values of forward and gradients). */
type Case = () => tf.Tensor[];

function cases(): Record<string, Case> {
  const rng = new Rng(11);
  const t = (shape: number[], scale = 1) =>
    tf.tensor(
      f32(
        randArray(
          rng,
          shape.reduce((a, b) => a * b, 1),
          scale,
        ),
      ),
      shape,
    );
  const ints = (shape: number[], max: number) =>
    tf.tensor(
      randInts(
        rng,
        shape.reduce((a, b) => a * b, 1),
        max,
      ),
      shape,
      'int32',
    );
  const x = t([2, 16, 24]);
  const w = t([40, 24], 0.3);
  const q = t([6, 16, 8]) as tf.Tensor3D;
  const k = t([6, 16, 8]) as tf.Tensor3D;
  const p = tf.softmax(t([6, 16, 16], 2)) as tf.Tensor3D;
  const ids = ints([2, 16], 50);
  const table = t([50, 24]);
  const logits = t([2, 16, 50], 3);
  const mask = tf.tensor(f32(Array.from({ length: 32 }, (_, i) => (i % 5 === 0 ? 0 : 1))), [2, 16]);
  const grads = (f: (...a: tf.Tensor[]) => tf.Tensor, ...inputs: tf.Tensor[]) => {
    const { value, grads: g } = tf.valueAndGrads(
      (...a: tf.Tensor[]) => tf.sum(tf.square(f(...a))) as tf.Scalar,
    )(inputs);
    return [value, ...g];
  };
  const b3 = (a: tf.Tensor) => a as tf.Tensor3D;
  return {
    linear: () => [linear(x, w), ...grads(linear, x, w)],
    'bmm q·kᵀ': () => [bmm(q, k, false, true), ...grads((a, b) => bmm(b3(a), b3(b), false, true), q, k)],
    'bmm p·v': () => [bmm(p, k), ...grads((a, b) => bmm(b3(a), b3(b)), p, k)],
    'bmm aᵀ·b': () => [bmm(q, k, true, false), ...grads((a, b) => bmm(b3(a), b3(b), true, false), q, k)],
    'bmm aᵀ·bᵀ': () => [bmm(q, p, true, true), ...grads((a, b) => bmm(b3(a), b3(b), true, true), q, p)],
    embed: () => [embed(ids, table), ...grads((tb) => embed(ids, tb), table)],
    crossEntropy: () =>
      tf
        .valueAndGrads((l: tf.Tensor) => crossEntropy(l, ids, mask))([logits])
        .grads.concat(crossEntropy(logits, ids, mask)),
    tokenNll: () => [tokenNll(logits, ids)],
    'transpose 0213': () => [tf.transpose(tf.reshape(x, [2, 16, 4, 6]), [0, 2, 1, 3])],
    'transpose 2d + 3d + 4d general': () => [
      tf.transpose(w),
      tf.transpose(q, [0, 2, 1]),
      tf.transpose(q, [2, 0, 1]),
      tf.transpose(tf.reshape(x, [2, 4, 4, 24]), [3, 1, 0, 2]),
      tf.transpose(tf.cast(ids, 'int32'), [1, 0]),
    ],
    'gather axes 0/1/2, int32 and bool': () => [
      tf.gather(table, tf.tensor1d([3, 3, 0, 49], 'int32')),
      tf.gather(
        x,
        tf.tensor2d(
          [
            [1, 0],
            [15, 3],
          ],
          [2, 2],
          'int32',
        ),
        1,
      ),
      tf.gather(x, tf.tensor1d([23, 0], 'int32'), 2),
      tf.cast(tf.gather(ids, tf.tensor1d([1, 0, 1], 'int32')), 'float32'),
      tf.cast(tf.gather(tf.greater(x, 0), tf.tensor1d([1], 'int32'), 1), 'float32'),
    ],
    'concat axes 0/1/2, int32': () => [
      tf.concat([x, x], 0),
      tf.concat([x, tf.slice(x, [0, 0, 0], [2, 3, 24])], 1),
      tf.concat([tf.slice(x, [0, 0, 0], [2, 16, 5]), x, tf.slice(x, [0, 0, 0], [2, 16, 1])], 2),
      tf.cast(tf.concat([ids, ids], -1), 'float32'),
    ],
    'sum over leading and middle axes': () => [
      tf.sum(x, 0),
      tf.sum(x, [0, 1]),
      tf.sum(x, 1, true),
      tf.sum(x, [1, 2]),
      tf.sum(x, [0, 2]),
      tf.cast(tf.sum(ids, 0), 'float32'),
    ],
    'oneHot float32 and int32, unsortedSegmentSum': () => [
      tf.oneHot(tf.tensor1d([3, 0, 7, -1], 'int32'), 5, 2, -1, 'float32'),
      tf.cast(tf.oneHot(tf.tensor1d([1, 4], 'int32'), 5), 'float32'),
      tf.unsortedSegmentSum(tf.reshape(x, [32, 24]), tf.reshape(tf.mod(ids, tf.scalar(7, 'int32')), [32]), 7),
    ],
    'matMul broadcasting rank 4 × rank 2': () => [tf.matMul(tf.reshape(x, [2, 2, 8, 24]), w, false, true)],
  };
}

async function run(backend: string): Promise<Record<string, Float64Array[]>> {
  const out: Record<string, Float64Array[]> = {};
  for (const [name, f] of Object.entries(cases())) {
    const ts = tf.tidy(f);
    out[name] = await Promise.all(ts.map(values));
    tf.dispose(ts);
  }
  expect(currentBackend()).toBe(backend);
  return out;
}

describe('backends agree with cpu on forward values and gradients', () => {
  let reference: Record<string, Float64Array[]> | undefined;
  const ref = async () => {
    if (reference === undefined) {
      await activate('cpu');
      reference = await run('cpu');
    }
    return reference;
  };

  for (const backend of ['wasm', 'webgpu'] as const) {
    it(`${backend} matches cpu`, async (ctx) => {
      const expected = await ref();
      const why = await activate(backend);
      if (why) ctx.skip(why);
      const got = await run(backend);
      for (const [name, exp] of Object.entries(expected)) {
        const g = got[name]!;
        expect(g.length, name).toBe(exp.length);
        exp.forEach((e, i) => {
          const c = closeness(g[i]!, e, 1e-4, 1e-3);
          expect(c, `${name} output ${i}: ${g[i]!.slice(0, 5)} vs ${e.slice(0, 5)}`).toBeLessThan(1);
        });
      }
    });
  }
});
