/**
 * Float64 reference implementations of the engine's ops, random inputs, and finite differences, for the
 * tensor tests.
 */
import type { Rng } from '../../../src-main/common/rng.js';

export type Arr = Float64Array;

export function randArray(rng: Rng, n: number, scale = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng.next() * 2 - 1) * scale;
  return out;
}

export function randInts(rng: Rng, n: number, max: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.int(max);
  return out;
}

/** `y = x·wᵀ`: x [rows, inF], w [outF, inF]. */
export function refLinear(x: Arr, w: Arr, rows: number, inF: number, outF: number): Arr {
  const y = new Float64Array(rows * outF);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outF; o++) {
      let s = 0;
      for (let i = 0; i < inF; i++) s += x[r * inF + i]! * w[o * inF + i]!;
      y[r * outF + o] = s;
    }
  }
  return y;
}

/** Batched matmul with optional transposes; a, b given in their stored layouts. */
export function refBmm(
  a: Arr,
  b: Arr,
  batch: number,
  m: number,
  k: number,
  n: number,
  ta: boolean,
  tb: boolean,
): Arr {
  const out = new Float64Array(batch * m * n);
  for (let p = 0; p < batch; p++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let q = 0; q < k; q++) {
          const av = ta ? a[p * k * m + q * m + i]! : a[p * m * k + i * k + q]!;
          const bv = tb ? b[p * n * k + j * k + q]! : b[p * k * n + q * n + j]!;
          s += av * bv;
        }
        out[p * m * n + i * n + j] = s;
      }
    }
  }
  return out;
}

export function refEmbed(ids: Int32Array, table: Arr, dim: number): Arr {
  const out = new Float64Array(ids.length * dim);
  ids.forEach((id, r) => out.set(table.subarray(id * dim, (id + 1) * dim), r * dim));
  return out;
}

/** Per-row NLL of `targets` under softmax(logits [rows, V]). */
export function refTokenNll(logits: Arr, targets: Int32Array, V: number): Arr {
  const rows = targets.length;
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, logits[r * V + v]!);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[r * V + v]! - m);
    out[r] = Math.log(s) + m - logits[r * V + targets[r]!]!;
  }
  return out;
}

export function refCrossEntropy(logits: Arr, targets: Int32Array, V: number, mask?: Arr): number {
  const nll = refTokenNll(logits, targets, V);
  let num = 0;
  let den = 0;
  nll.forEach((v, i) => {
    const w = mask === undefined ? 1 : mask[i]!;
    num += w * v;
    den += w;
  });
  return mask === undefined ? num / nll.length : num / Math.max(den, 1);
}

/** Gradient of scalar `f` at `x` by central differences (float64). */
export function numericGrad(f: (x: Arr) => number, x: Arr, eps = 1e-6): Arr {
  const g = new Float64Array(x.length);
  const xp = Float64Array.from(x);
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    xp[i] = v + eps;
    const fp = f(xp);
    xp[i] = v - eps;
    const fm = f(xp);
    xp[i] = v;
    g[i] = (fp - fm) / (2 * eps);
  }
  return g;
}

/** Σ y·R for a fixed random R: turns an op's output into a scalar whose gradient exercises every entry. */
export function dot(y: Arr, r: Arr): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += y[i]! * r[i]!;
  return s;
}

/** Largest |a - b| / (atol + rtol·|b|); ≤ 1 means close. */
export function closeness(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol: number): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!) / (atol + rtol * Math.abs(b[i]!));
    if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
  }
  return worst;
}
