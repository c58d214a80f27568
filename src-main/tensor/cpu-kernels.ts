/**
 * Replacement kernels for `@tensorflow/tfjs-backend-cpu`, registered by `tf.ts`.
 *
 * - `UnsortedSegmentSum`: the stock kernel builds a mask per segment (`equal`, `cast`, `mul`, `sum` for
 *   each of `numSegments`), O(segments × size): an embedding gradient over a 256-token vocabulary took
 *   11 s. This one adds each row once.
 */
import type * as tfc from '@tensorflow/tfjs-core';

interface CpuBackendLike {
  readSync(dataId: object): ArrayLike<number>;
  makeTensorInfo(shape: number[], dtype: tfc.DataType, values: Float32Array | Int32Array): tfc.TensorInfo;
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function registerCpuKernels(tf: typeof tfc): void {
  const kernelFunc = (args: {
    inputs: tfc.NamedTensorInfoMap;
    backend: object;
    attrs?: tfc.NamedAttrMap;
  }): tfc.TensorInfo => {
    const backend = args.backend as CpuBackendLike;
    const x = args.inputs['x']!;
    const ids = args.inputs['segmentIds']!;
    const numSegments = args.attrs?.['numSegments'] as number;
    if (x.dtype !== 'float32' && x.dtype !== 'int32') {
      throw new Error(`UnsortedSegmentSum supports float32 and int32, not ${x.dtype}`);
    }
    const n = sizeOf(ids.shape);
    const inner = n === 0 ? 0 : sizeOf(x.shape) / n;
    const out =
      x.dtype === 'float32' ? new Float32Array(numSegments * inner) : new Int32Array(numSegments * inner);
    if (n > 0) {
      const src = backend.readSync(x.dataId);
      const seg = backend.readSync(ids.dataId);
      for (let r = 0; r < n; r++) {
        const t = seg[r]!;
        if (t < 0 || t >= numSegments) continue; // like TensorFlow: out-of-range ids are dropped
        const o = t * inner;
        const s = r * inner;
        for (let j = 0; j < inner; j++) out[o + j]! += src[s + j]!;
      }
    }
    return backend.makeTensorInfo([numSegments, ...x.shape.slice(ids.shape.length)], x.dtype, out);
  };
  if (tf.getKernel(tf.UnsortedSegmentSum, 'cpu') !== undefined)
    tf.unregisterKernel(tf.UnsortedSegmentSum, 'cpu');
  tf.registerKernel({
    kernelName: tf.UnsortedSegmentSum,
    backendName: 'cpu',
    kernelFunc: kernelFunc as tfc.KernelFunc,
  });
}
