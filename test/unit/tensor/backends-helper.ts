/** Backend activation for the tensor tests: every backend that can run here, by name. */
import { useBackend, type BackendName } from '../../../src-main/tensor/backend.js';
import { tf } from '../../../src-main/tensor/tf.js';

export const TEST_BACKENDS: BackendName[] = ['cpu', 'wasm', 'webgpu'];

const unavailable = new Map<BackendName, string>();
const loaded = new Set<BackendName>();

/**
 * Makes `name` the active backend; returns why it cannot be used here, or undefined. Only webgpu may be
 * missing (no adapter on this machine); cpu and wasm must work, so their failure throws.
 */
export async function activate(name: BackendName): Promise<string | undefined> {
  if (unavailable.has(name)) return unavailable.get(name);
  if (loaded.has(name)) {
    await tf.setBackend(name);
    return undefined;
  }
  try {
    await useBackend(name);
    loaded.add(name);
    return undefined;
  } catch (e) {
    if (name !== 'webgpu') throw e;
    const why = `${name} backend unavailable here: ${(e as Error).message}`;
    unavailable.set(name, why);
    return why;
  }
}

/** Reads a tensor's values as float64 (asynchronously: `dataSync` does not work on webgpu in Node). */
export async function values(t: tf.Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.data());
}

export function f32(a: ArrayLike<number>): Float32Array {
  return Float32Array.from(a);
}
