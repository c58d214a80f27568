import { beforeAll, describe, expect, it } from 'vitest';

import { tf } from '../../../src-main/tensor/tf.js';
import { clipByGlobalNorm, globalNorm } from '../../../src-main/train/clip.js';
import { setupCpu } from './toy.js';

beforeAll(setupCpu);

describe('global-norm clipping', () => {
  it('measures the global norm over all tensors', () => {
    const a = tf.tensor([3, 0]);
    const b = tf.tensor([[0, 4]]);
    expect(globalNorm([a, b])).toBeCloseTo(5, 6);
    a.dispose();
    b.dispose();
  });

  it('scales to the max norm and returns the pre-clip norm', () => {
    const grads = new Map([
      ['a', tf.tensor([3, 0])],
      ['b', tf.tensor([[0, 4]])],
    ]);
    const before = tf.memory().numTensors;
    const r = clipByGlobalNorm(grads, 1.0);
    expect(r.norm).toBeCloseTo(5, 6);
    expect(r.scale).toBeCloseTo(0.2, 6);
    expect(globalNorm(r.grads.values())).toBeCloseTo(1, 5);
    expect([...r.grads.get('a')!.dataSync()][0]).toBeCloseTo(0.6, 6);
    expect(tf.memory().numTensors).toBe(before); // inputs replaced and disposed
    for (const t of r.grads.values()) t.dispose();
  });

  it('leaves gradients under the limit untouched', () => {
    const a = tf.tensor([0.3, 0.4]);
    const r = clipByGlobalNorm(new Map([['a', a]]), 1.0);
    expect(r.scale).toBe(1);
    expect(r.grads.get('a')).toBe(a);
    expect(r.norm).toBeCloseTo(0.5, 6);
    a.dispose();
  });

  it('reports a non-finite norm without scaling', () => {
    const a = tf.tensor([NaN, 1]);
    const r = clipByGlobalNorm(new Map([['a', a]]), 1.0);
    expect(Number.isNaN(r.norm)).toBe(true);
    expect(r.scale).toBe(1);
    a.dispose();
  });
});
