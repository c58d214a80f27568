/**
 * Our gradients, registered by `tf.ts` over tfjs-core's once those are loaded.
 *
 * The costly upstream gradients on wasm (BatchMatMul's transposed products, Gather's segment sum) are
 * fixed at the kernel level instead (`wasm-kernels.ts`), which keeps the native transposed paths of the
 * GPU backends. Registered here:
 *
 * - `BatchMatMul`: upstream's products, summed back to each input's shape when its batch dimensions
 *   were broadcast (upstream returns the broadcast shape, and backprop then throws).
 * - `GatherV2` (batchDims 0): upstream transposes `dy` before and after the segment sum even for
 *   `axis = 0`, where both permutations are the identity (two full copies); here only for `axis > 0`.
 * - `TopK`: upstream has none, so `topk(p, k).values` (MoE gates) could not be differentiated; the
 *   gradient scatters `dy` back to the chosen positions.
 * - `StridedSlice`: upstream has none; the gradient places `dy` back into zeros.
 * - Comparisons and logical ops (`Greater`, `Equal`, `LogicalAnd`, …): upstream has none, so a mask
 *   computed from a differentiated tensor (`where(greater(x, 0), …)`) made backprop throw; their
 *   gradient is zero, as in TensorFlow.
 */
import type * as tfc from '@tensorflow/tfjs-core';

type Tf = typeof tfc;

/** Upstream configs we build on, captured once per process (a module reload must not wrap ours). */
function upstreamGradient(tf: Tf, kernelName: string): tfc.GradConfig | undefined {
  const g = globalThis as { __upitUpstreamGrads?: Map<string, tfc.GradConfig | undefined> };
  g.__upitUpstreamGrads ??= new Map();
  if (!g.__upitUpstreamGrads.has(kernelName))
    g.__upitUpstreamGrads.set(kernelName, tf.getGradient(kernelName));
  return g.__upitUpstreamGrads.get(kernelName);
}

function batchMatMulGrad(tf: Tf): tfc.GradConfig {
  const upstream = upstreamGradient(tf, tf.BatchMatMul)!;
  const reduceTo = (g: tfc.Tensor, shape: number[]): tfc.Tensor => {
    if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
    const padded = [...new Array<number>(Math.max(0, g.rank - shape.length)).fill(1), ...shape];
    const axes = tf.backend_util.getReductionAxes(padded, g.shape);
    return tf.reshape(axes.length > 0 ? tf.sum(g, axes) : g, shape);
  };
  return {
    kernelName: tf.BatchMatMul,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved as [tfc.Tensor, tfc.Tensor];
      const grads = upstream.gradFunc(dy, saved, attrs);
      return {
        a: () => reduceTo(grads['a']!(), a.shape),
        b: () => reduceTo(grads['b']!(), b.shape),
      };
    },
  };
}

function gatherGrad(tf: Tf): tfc.GradConfig {
  const upstream = upstreamGradient(tf, tf.GatherV2);
  return {
    kernelName: tf.GatherV2,
    inputsToSave: ['x', 'indices'],
    gradFunc: (dy, saved, attrs) => {
      const [x, indices] = saved as [tfc.Tensor, tfc.Tensor];
      const { axis, batchDims } = attrs as unknown as { axis: number; batchDims: number };
      if (batchDims !== 0 && upstream !== undefined) return upstream.gradFunc(dy, saved, attrs);
      const ax = tf.util.parseAxisParam(axis, x.shape)[0]!;
      const g = dy as tfc.Tensor;
      return {
        x: () => {
          const n = indices.size;
          const outer = x.shape.slice(0, ax);
          const inner = x.shape.slice(ax + 1);
          const flatIdx = tf.reshape(indices, [n]) as tfc.Tensor1D;
          const values = tf.reshape(g, [...outer, n, ...inner]);
          if (ax === 0) return tf.unsortedSegmentSum(values, flatIdx, x.shape[0]!);
          const perm = [ax, ...outer.map((_, i) => i), ...inner.map((_, i) => ax + 1 + i)];
          const summed = tf.unsortedSegmentSum(tf.transpose(values, perm), flatIdx, x.shape[ax]!);
          return tf.transpose(summed, tf.backend_util.getUndoAxesPermutation(perm));
        },
        indices: () => tf.zerosLike(indices),
      };
    },
  };
}

function topKGrad(tf: Tf): tfc.GradConfig {
  return {
    kernelName: tf.TopK,
    inputsToSave: ['x'],
    outputsToSave: [false, true],
    gradFunc: (dy, saved) => {
      const [x, indices] = saved as [tfc.Tensor, tfc.Tensor];
      const dValues = (Array.isArray(dy) ? dy[0] : dy) as tfc.Tensor;
      return {
        x: () => {
          const n = x.shape[x.rank - 1]!;
          const k = indices.shape[indices.rank - 1]!;
          const rows = n === 0 ? 0 : x.size / n;
          const rowBase = tf.mul(tf.range(0, rows, 1, 'int32'), tf.scalar(n, 'int32'));
          const flat = tf.add(tf.reshape(indices, [rows, k]), tf.reshape(rowBase, [rows, 1]));
          const summed = tf.unsortedSegmentSum(
            tf.reshape(dValues, [rows * k]),
            tf.reshape(flat, [rows * k]) as tfc.Tensor1D,
            rows * n,
          );
          return tf.reshape(summed, x.shape);
        },
      };
    },
  };
}

function stridedSliceGrad(tf: Tf): tfc.GradConfig {
  return {
    kernelName: tf.StridedSlice,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved as [tfc.Tensor];
      const a = attrs as unknown as {
        begin: number[];
        end: number[];
        strides: number[];
        beginMask: number;
        endMask: number;
        ellipsisMask: number;
        newAxisMask: number;
        shrinkAxisMask: number;
      };
      return {
        x: () => {
          const info = tf.slice_util.sliceInfo(
            x.shape,
            a.begin,
            a.end,
            a.strides,
            a.beginMask,
            a.endMask,
            a.ellipsisMask,
            a.newAxisMask,
            a.shrinkAxisMask,
          );
          const g = dy as tfc.Tensor;
          // The sliced extent along every axis of x (shrunk axes count 1, new axes none).
          const shape = info.begin.map((b, i) =>
            Math.max(0, Math.ceil((info.end[i]! - b) / info.strides[i]!)),
          );
          const dense = tf.reshape(g, shape);
          if (info.strides.every((s) => s === 1)) {
            return tf.pad(
              dense,
              x.shape.map((d, i) => [info.begin[i]!, d - info.begin[i]! - shape[i]!] as [number, number]),
            );
          }
          // General strides: scatter every element to its flat position in x.
          const xStrides = tf.util.computeStrides(x.shape);
          const count = g.size;
          const idx = new Int32Array(count);
          const loc = new Array<number>(shape.length).fill(0);
          for (let i = 0; i < count; i++) {
            let flat = 0;
            for (let j = 0; j < shape.length; j++) {
              const pos = info.begin[j]! + loc[j]! * info.strides[j]!;
              flat += j === shape.length - 1 ? pos : pos * xStrides[j]!;
            }
            idx[i] = flat;
            for (let j = shape.length - 1; j >= 0; j--) {
              if (++loc[j]! < shape[j]!) break;
              loc[j] = 0;
            }
          }
          const summed = tf.unsortedSegmentSum(tf.reshape(g, [count]), tf.tensor1d(idx, 'int32'), x.size);
          return tf.reshape(summed, x.shape);
        },
      };
    },
  };
}

function zeroGrad(tf: Tf, kernelName: string, inputs: string[]): tfc.GradConfig {
  return {
    kernelName,
    inputsToSave: inputs,
    gradFunc: (_dy, saved) => {
      const out: Record<string, () => tfc.Tensor> = {};
      inputs.forEach((name, i) => {
        out[name] = () => tf.zerosLike(saved[i]!);
      });
      return out;
    },
  };
}

export function registerReplacementGradients(tf: Tf): void {
  const configs: tfc.GradConfig[] = [batchMatMulGrad(tf), gatherGrad(tf), topKGrad(tf), stridedSliceGrad(tf)];
  for (const k of [
    tf.Greater,
    tf.GreaterEqual,
    tf.Less,
    tf.LessEqual,
    tf.Equal,
    tf.NotEqual,
    tf.LogicalAnd,
    tf.LogicalOr,
    tf.LogicalXor,
  ]) {
    configs.push(zeroGrad(tf, k, ['a', 'b']));
  }
  configs.push(zeroGrad(tf, tf.LogicalNot, ['x']));
  for (const c of configs) tf.registerGradient(c);
}
