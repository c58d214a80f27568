/**
 * Fast paths for the heavy ops of the models. All of them are differentiable (`tf.grad`,
 * `tf.variableGrads`), and their gradients avoid what is slow on wasm (see `wasm-kernels.ts`).
 */
import { tf } from './tf.js';

type GradFn = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];
type CustomFn = Parameters<typeof tf.customGrad>[0];

/** `tf.customGrad` with honest types: `f(...inputs, save)` returns the value and the input gradients. */
function customOp<A extends tf.Tensor[]>(
  f: (...args: [...A, tf.GradSaveFunc]) => { value: tf.Tensor; gradFunc: GradFn },
): (...inputs: A) => tf.Tensor {
  return tf.customGrad(f as unknown as CustomFn) as unknown as (...inputs: A) => tf.Tensor;
}

function lastDim(t: tf.Tensor, what: string): number {
  const d = t.shape[t.rank - 1];
  if (d === undefined) throw new Error(`${what}: expected a tensor of rank >= 1, got a scalar`);
  return d;
}

function flatRows(t: tf.Tensor, cols: number): tf.Tensor2D {
  return (t.rank === 2 ? t : tf.reshape(t, [-1, cols])) as tf.Tensor2D;
}

/**
 * `dw = dyᵀ·x` [out, in]. On wasm every transposed operand is transposed explicitly and the right
 * operand is packed by XNNPACK (slower per element than the transpose), so the narrower of dy and x
 * goes on the right: x for q/k/v/o/gate/up (where its packing is also shared between the projections
 * that read the same x), dy for down.
 */
function weightGrad(dy: tf.Tensor2D, x: tf.Tensor2D): tf.Tensor2D {
  const inF = x.shape[1];
  const outF = dy.shape[1];
  if (tf.getBackend() === 'wasm' && outF < inF)
    return tf.transpose(tf.matMul(x, dy, true, false)) as tf.Tensor2D;
  return tf.matMul(dy, x, true, false);
}

const linearCore = customOp<[tf.Tensor2D, tf.Tensor2D]>((x2, w2, save) => {
  save([x2, w2]);
  return {
    value: tf.matMul(x2, w2, false, true),
    gradFunc: (dy, saved) => {
      const g = dy as tf.Tensor2D;
      const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
      return [tf.matMul(g, ws), weightGrad(g, xs)];
    },
  };
});

/**
 * `y = x·wᵀ` with `x [..., in]` and `w [out, in]` (Hugging Face layout): `y [..., out]`.
 * Leading dimensions are folded into one rank-2 product.
 */
export function linear(x: tf.Tensor, w: tf.Tensor): tf.Tensor {
  if (w.rank !== 2) throw new Error(`linear: weight must be [out, in], got shape [${w.shape}]`);
  const [outF, inF] = w.shape as [number, number];
  const xin = lastDim(x, 'linear');
  if (xin !== inF) {
    throw new Error(`linear: input has ${xin} features but the weight [${w.shape}] expects ${inF}`);
  }
  return tf.tidy(() => {
    const y = linearCore(flatRows(x, inF), w as tf.Tensor2D);
    return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), outF]);
  });
}

/**
 * Batched matmul for attention: `a [B, M, K]·b [B, K, N]` (or transposed operands) → `[B, M, N]`.
 * Batches broadcast when one side has batch 1.
 */
export function bmm(a: tf.Tensor3D, b: tf.Tensor3D, transposeA = false, transposeB = false): tf.Tensor3D {
  if (a.rank !== 3 || b.rank !== 3) {
    throw new Error(`bmm: expected rank-3 operands, got [${a.shape}] and [${b.shape}]`);
  }
  return tf.matMul(a, b, transposeA, transposeB);
}

/**
 * Embedding lookup: `ids` int32 of any shape, `table [V, D]` → `[...ids.shape, D]`. The gradient with
 * respect to the table is a segment sum of the incoming rows (no dense one-hot, no transposes).
 */
export function embed(ids: tf.Tensor, table: tf.Tensor): tf.Tensor {
  if (table.rank !== 2) throw new Error(`embed: table must be [V, D], got [${table.shape}]`);
  if (ids.dtype !== 'int32') throw new Error(`embed: ids must be int32, got ${ids.dtype}`);
  const [V, D] = table.shape as [number, number];
  return tf.tidy(() => {
    const flat = tf.reshape(ids, [-1]) as tf.Tensor1D;
    const lookup = customOp<[tf.Tensor]>((t, save) => {
      save([flat]);
      return {
        value: tf.gather(t, flat),
        gradFunc: (dy, saved) => [tf.unsortedSegmentSum(dy, saved[0] as tf.Tensor1D, V)],
      };
    });
    return tf.reshape(lookup(table), [...ids.shape, D]);
  });
}

/**
 * Per-row negative log-likelihood of `targets` under `softmax(logits)`, as one differentiable unit:
 * forward `logsumexp(l) - l[target]` computed stably, backward `(softmax(l) - onehot) · dnll`, reusing
 * the exponentials of the forward pass.
 */
function rowNll(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const [N, V] = logits.shape;
  const f = customOp<[tf.Tensor2D]>((l, save) => {
    const m = tf.max(l, 1, true);
    const z = tf.sub(l, m);
    const e = tf.exp(z);
    const s = tf.sum(e, 1, true);
    const flatIdx = tf.add(tf.mul(tf.range(0, N, 1, 'int32'), tf.scalar(V, 'int32')), targets);
    const picked = tf.gather(tf.reshape(z, [N * V]), flatIdx);
    const nll = tf.sub(tf.reshape(tf.log(s), [N]), picked);
    save([e, s, targets]);
    return {
      value: nll,
      gradFunc: (dy, saved) => {
        const [es, ss, ts] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
        const g = tf.reshape(dy, [N, 1]);
        const p = tf.div(es, ss);
        const onehot = tf.oneHot(ts, V, 1, 0, 'float32');
        return [tf.mul(tf.sub(p, onehot), g)];
      },
    };
  });
  return f(logits) as tf.Tensor1D;
}

function prepareXent(logits: tf.Tensor, targets: tf.Tensor, what: string): [tf.Tensor2D, tf.Tensor1D] {
  const V = lastDim(logits, what);
  const lead = logits.shape.slice(0, -1);
  if (lead.length !== targets.rank || lead.some((d, i) => d !== targets.shape[i])) {
    throw new Error(`${what}: targets [${targets.shape}] do not match logits [${logits.shape}]`);
  }
  if (targets.dtype !== 'int32') throw new Error(`${what}: targets must be int32, got ${targets.dtype}`);
  const l2 = tf.cast(flatRows(logits, V), 'float32') as tf.Tensor2D;
  // Out-of-range ids (e.g. an ignore index under a zero mask) must not index outside the row.
  const t1 = tf.minimum(
    tf.maximum(tf.reshape(targets, [-1]), tf.scalar(0, 'int32')),
    tf.scalar(V - 1, 'int32'),
  ) as tf.Tensor1D;
  return [l2, t1];
}

/**
 * Mean negative log-likelihood: `logits [N, V]` or `[B, T, V]`, int32 `targets` of the leading shape,
 * optional float `mask` of the same shape → `sum(mask·nll) / max(sum(mask), 1)` (plain mean without a
 * mask). Targets are clamped into `[0, V)`, so masked-out positions may hold any id.
 */
export function crossEntropy(logits: tf.Tensor, targets: tf.Tensor, mask?: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const [l2, t1] = prepareXent(logits, targets, 'crossEntropy');
    const nll = rowNll(l2, t1);
    if (mask === undefined) return tf.mean(nll);
    if (mask.size !== t1.size) {
      throw new Error(`crossEntropy: mask [${mask.shape}] does not match targets [${targets.shape}]`);
    }
    const m = tf.reshape(tf.cast(mask, 'float32'), [-1]);
    return tf.div(tf.sum(tf.mul(nll, m)), tf.maximum(tf.sum(m), 1));
  });
}

/** Per-position negative log-likelihood (no reduction): `logits [..., V]`, `targets [...]` → `[...]`. */
export function tokenNll(logits: tf.Tensor, targets: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const [l2, t1] = prepareXent(logits, targets, 'tokenNll');
    return tf.reshape(rowNll(l2, t1), targets.shape);
  });
}
