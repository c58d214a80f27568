import { expect } from 'vitest';
import { tf } from '../../../src-main/tensor/tf.js';
import { useBackend } from '../../../src-main/tensor/backend.js';

export { FIXTURES, fixtureDir, readExpected, type Expected, type FixtureName } from './fixtures.js';

export async function setBackend(name: 'cpu' | 'wasm'): Promise<void> {
  await useBackend(name);
  expect(tf.getBackend()).toBe(name);
}

/** max |a - b| over two same-shape nested arrays / typed arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Tensors alive; for leak checks. */
export function numTensors(): number {
  return tf.memory().numTensors;
}
