/**
 * A tensor as plain host data: row-major float32 values and their shape. The io layer
 * reads and writes these; the tensor layer turns them into TensorFlow.js tensors.
 */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

/** Number of elements of a shape (1 for a scalar `[]`). Throws on an invalid shape. */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`invalid dimension ${String(d)} in shape`);
    n *= d;
    if (!Number.isSafeInteger(n)) throw new RangeError(`shape [${shape.join(', ')}] is too large`);
  }
  return n;
}
