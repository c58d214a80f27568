/**
 * Small dense linear algebra on host arrays (row-major, float64 internally): dot products,
 * a symmetric eigensolver, modified Gram–Schmidt, and a truncated SVD for the
 * [out, in] matrices of LoRA modules.
 *
 * Truncated SVD, M [rows, cols] → U_k S_k V_kᵀ:
 * - 'gram' (exact): eigen-decomposition of the smaller Gram matrix (MᵀM or MMᵀ, float64) by
 *   cyclic Jacobi to convergence, then the other side as M·v_i/σ_i. Singular values come out to
 *   about 1e-15·σ₁/σ_i relative accuracy (squaring the matrix costs precision only for the small
 *   ones, which truncation discards). Cost rows·cols·min + ~4·min³: meant for min(rows, cols)
 *   up to a few hundred.
 * - 'randomized' (Halko, Martinsson & Tropp 2011, alg. 4.4 + 5.1): range finder with k + 10
 *   Gaussian probes and `powerIters` (default 4) re-orthonormalised power iterations, then the
 *   exact method on the small projected matrix. Exact when rank(M) ≤ k + oversample; otherwise
 *   the spectral error is within a factor ≈ (1 + 4√(2·min/(k−1)))^(1/(2q+1)) of σ_{k+1} (about
 *   1.7 for min = 4096, k = 8, q = 4) and much closer when the spectrum decays. Cost
 *   ≈ (2q + 2)·rows·cols·(k + 10).
 * - 'auto': 'gram' when min(rows, cols) ≤ 256, else 'randomized'.
 */
import { Rng } from '../common/rng.js';

export type Vec = Float32Array | Float64Array;

export function dot(a: Vec, b: Vec): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** ⟨a[aOff …], b[bOff …]⟩ over `len` float64 entries. */
function dot64(a: Float64Array, aOff: number, b: Float64Array, bOff: number, len: number): number {
  let s = 0;
  for (let t = 0; t < len; t++) s += a[aOff + t]! * b[bOff + t]!;
  return s;
}

/** Σ_t a_t · fround(x_t − b_t): the dot product of `a` with the float32 task vector x − b. */
export function dotDelta(a: Vec, x: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * Math.fround(x[i]! - b[i]!);
  return s;
}

/** x − b rounded to float32 (a task vector). */
export function subtract(x: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i]! - b[i]!;
  return out;
}

/** C [n, m] = A [n, k] · B [k, m] (row-major, float64 accumulation). */
export function matMul(a: Vec, b: Vec, n: number, k: number, m: number): Float64Array {
  const c = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    const ci = i * m;
    for (let p = 0; p < k; p++) {
      const v = a[i * k + p]!;
      if (v === 0) continue;
      const bp = p * m;
      for (let j = 0; j < m; j++) c[ci + j]! += v * b[bp + j]!;
    }
  }
  return c;
}

/** Aᵀ [cols, rows] of A [rows, cols]. */
export function transpose(a: Vec, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j]!;
  return t;
}

export function frobenius2(a: Vec): number {
  return dot(a, a);
}

/**
 * Eigen-decomposition of a symmetric n×n matrix: Householder reduction to tridiagonal form and
 * the implicit QL algorithm (EISPACK tred2/tql2, as in JAMA), accurate to about 1e-15·‖S‖ per
 * eigenvalue with orthonormal eigenvectors. Returns eigenvalues in descending order and the
 * eigenvectors as the columns of `vectors` (n×n, row-major).
 */
export function symmetricEigen(s: Vec, n: number): { values: Float64Array; vectors: Float64Array } {
  const V = Float64Array.from(s);
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  if (n === 0) return { values: d, vectors: V };
  // ---- tred2
  for (let j = 0; j < n; j++) d[j] = V[(n - 1) * n + j]!;
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]!);
    if (scale === 0) {
      e[i] = d[i - 1]!;
      for (let j = 0; j < i; j++) {
        d[j] = V[(i - 1) * n + j]!;
        V[i * n + j] = 0;
        V[j * n + i] = 0;
      }
    } else {
      for (let k = 0; k < i; k++) {
        d[k]! /= scale;
        h += d[k]! * d[k]!;
      }
      let f = d[i - 1]!;
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        V[j * n + i] = f;
        g = e[j]! + V[j * n + j]! * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += V[k * n + j]! * d[k]!;
          e[k]! += V[k * n + j]! * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j]! /= h;
        f += e[j]! * d[j]!;
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j]! -= hh * d[j]!;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        g = e[j]!;
        for (let k = j; k <= i - 1; k++) V[k * n + j]! -= f * e[k]! + g * d[k]!;
        d[j] = V[(i - 1) * n + j]!;
        V[i * n + j] = 0;
      }
    }
    d[i] = h;
  }
  for (let i = 0; i < n - 1; i++) {
    V[(n - 1) * n + i] = V[i * n + i]!;
    V[i * n + i] = 1;
    const h = d[i + 1]!;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = V[k * n + i + 1]! / h;
      for (let j = 0; j <= i; j++) {
        let g = 0;
        for (let k = 0; k <= i; k++) g += V[k * n + i + 1]! * V[k * n + j]!;
        for (let k = 0; k <= i; k++) V[k * n + j]! -= g * d[k]!;
      }
    }
    for (let k = 0; k <= i; k++) V[k * n + i + 1] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = V[(n - 1) * n + j]!;
    V[(n - 1) * n + j] = 0;
  }
  V[(n - 1) * n + (n - 1)] = 1;
  e[0] = 0;
  // ---- tql2, rotating the rows of W = Vᵀ (contiguous) rather than the columns of V
  const W = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) W[j * n + i] = V[i * n + j]!;
  for (let i = 1; i < n; i++) e[i - 1] = e[i]!;
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]!) + Math.abs(e[l]!));
    let m = l;
    while (m < n) {
      if (Math.abs(e[m]!) <= eps * tst1) break;
      m++;
    }
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > 100) throw new Error('symmetricEigen: no convergence');
        let g = d[l]!;
        let p = (d[l + 1]! - g) / (2 * e[l]!);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l]! / (p + r);
        d[l + 1] = e[l]! * (p + r);
        const dl1 = d[l + 1]!;
        let h = g - d[l]!;
        for (let i = l + 2; i < n; i++) d[i]! -= h;
        f += h;
        p = d[m]!;
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1]!;
        let sn = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = sn;
          g = c * e[i]!;
          h = c * p;
          r = Math.hypot(p, e[i]!);
          e[i + 1] = sn * r;
          sn = e[i]! / r;
          c = p / r;
          p = c * d[i]! - sn * g;
          d[i + 1] = h + sn * (c * g + sn * d[i]!);
          const wi = i * n;
          const wi1 = wi + n;
          for (let k = 0; k < n; k++) {
            const a = W[wi + k]!;
            const b = W[wi1 + k]!;
            W[wi1 + k] = sn * a + c * b;
            W[wi + k] = c * a - sn * b;
          }
        }
        p = (-sn * s2 * c3 * el1 * e[l]!) / dl1;
        e[l] = sn * p;
        d[l] = c * p;
      } while (Math.abs(e[l]!) > eps * tst1);
    }
    d[l] = d[l]! + f;
    e[l] = 0;
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => d[y]! - d[x]!);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    values[dst] = d[src]!;
    for (let k = 0; k < n; k++) vectors[k * n + dst] = W[src * n + k]!;
  });
  return { values, vectors };
}

/**
 * Orthonormalise the rows of a [k, len] matrix in place (modified Gram–Schmidt, applied twice
 * for stability). A row that becomes numerically zero is set to zero. Returns the rank found.
 */
export function orthonormalizeRows(q: Float64Array, k: number, len: number): number {
  let rank = 0;
  for (let i = 0; i < k; i++) {
    const qi = i * len;
    const norm0 = Math.sqrt(dot64(q, qi, q, qi, len));
    for (let pass = 0; pass < 2; pass++) {
      for (let j = 0; j < i; j++) {
        const qj = j * len;
        const r = dot64(q, qi, q, qj, len);
        if (r !== 0) for (let t = 0; t < len; t++) q[qi + t]! -= r * q[qj + t]!;
      }
    }
    const nrm = Math.sqrt(dot64(q, qi, q, qi, len));
    if (nrm === 0 || nrm <= 1e-13 * norm0) {
      q.fill(0, qi, qi + len);
      continue;
    }
    for (let t = 0; t < len; t++) q[qi + t]! /= nrm;
    rank++;
  }
  return rank;
}

export interface SvdOptions {
  method?: 'auto' | 'gram' | 'randomized';
  /** Randomized: extra probe vectors (default 10). */
  oversample?: number;
  /** Randomized: power iterations (default 4). */
  powerIters?: number;
  /** Randomized: seed of the Gaussian probes (default 0). */
  seed?: number;
}

export interface Svd {
  k: number;
  /** [rows, k] */
  U: Float64Array;
  /** [k], descending */
  S: Float64Array;
  /** [k, cols] */
  Vt: Float64Array;
}

/** Exact truncated SVD via the smaller Gram matrix (see the file comment). */
function svdGram(m: Float64Array, rows: number, cols: number, k: number): Svd {
  const U = new Float64Array(rows * k);
  const S = new Float64Array(k);
  const Vt = new Float64Array(k * cols);
  if (cols <= rows) {
    // G = MᵀM [cols, cols]
    const g = new Float64Array(cols * cols);
    for (let i = 0; i < rows; i++) {
      const r = i * cols;
      for (let a = 0; a < cols; a++) {
        const ra = m[r + a]!;
        if (ra === 0) continue;
        const ga = a * cols;
        for (let b = a; b < cols; b++) g[ga + b]! += ra * m[r + b]!;
      }
    }
    for (let a = 0; a < cols; a++) for (let b = 0; b < a; b++) g[a * cols + b] = g[b * cols + a]!;
    const { values, vectors } = symmetricEigen(g, cols);
    const sigma1 = Math.sqrt(Math.max(values[0]!, 0));
    for (let j = 0; j < k; j++) {
      for (let c = 0; c < cols; c++) Vt[j * cols + c] = vectors[c * cols + j]!;
      // U_j σ_j = M v_j
      let n2 = 0;
      for (let i = 0; i < rows; i++) {
        const x = dot64(m, i * cols, Vt, j * cols, cols);
        U[i * k + j] = x;
        n2 += x * x;
      }
      const s = Math.sqrt(n2); // = σ_j, computed from M v_j (more accurate than √λ_j for small σ)
      S[j] = s;
      if (s > 1e-15 * sigma1 && s > 0) for (let i = 0; i < rows; i++) U[i * k + j]! /= s;
      else for (let i = 0; i < rows; i++) U[i * k + j] = 0;
    }
  } else {
    // G = MMᵀ [rows, rows]
    const g = new Float64Array(rows * rows);
    for (let i = 0; i < rows; i++) {
      for (let j = i; j < rows; j++) {
        const x = dot64(m, i * cols, m, j * cols, cols);
        g[i * rows + j] = x;
        g[j * rows + i] = x;
      }
    }
    const { values, vectors } = symmetricEigen(g, rows);
    const sigma1 = Math.sqrt(Math.max(values[0]!, 0));
    for (let j = 0; j < k; j++) {
      for (let i = 0; i < rows; i++) U[i * k + j] = vectors[i * rows + j]!;
      // σ_j v_jᵀ = u_jᵀ M
      const row = Vt.subarray(j * cols, (j + 1) * cols);
      for (let i = 0; i < rows; i++) {
        const u = U[i * k + j]!;
        if (u === 0) continue;
        const mi = i * cols;
        for (let c = 0; c < cols; c++) row[c]! += u * m[mi + c]!;
      }
      const s = Math.sqrt(dot(row, row));
      S[j] = s;
      if (s > 1e-15 * sigma1 && s > 0) for (let c = 0; c < cols; c++) row[c]! /= s;
      else row.fill(0);
    }
  }
  return { k, U, S, Vt };
}

/** out[j] = ⟨m[mOff …], z[j·len …]⟩ for j < l (four rows of z at a time). */
function dotsInto(
  m: Float64Array,
  mOff: number,
  z: Float64Array,
  l: number,
  len: number,
  out: Float64Array,
  outStride: number,
  outOff: number,
): void {
  let j = 0;
  for (; j + 4 <= l; j += 4) {
    const z0 = j * len;
    const z1 = z0 + len;
    const z2 = z1 + len;
    const z3 = z2 + len;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let t = 0; t < len; t++) {
      const v = m[mOff + t]!;
      s0 += v * z[z0 + t]!;
      s1 += v * z[z1 + t]!;
      s2 += v * z[z2 + t]!;
      s3 += v * z[z3 + t]!;
    }
    out[outOff + j * outStride] = s0;
    out[outOff + (j + 1) * outStride] = s1;
    out[outOff + (j + 2) * outStride] = s2;
    out[outOff + (j + 3) * outStride] = s3;
  }
  for (; j < l; j++) {
    const z0 = j * len;
    let s0 = 0;
    for (let t = 0; t < len; t++) s0 += m[mOff + t]! * z[z0 + t]!;
    out[outOff + j * outStride] = s0;
  }
}

/** Randomized truncated SVD (see the file comment). */
function svdRandomized(m: Float64Array, rows: number, cols: number, k: number, o: SvdOptions): Svd {
  const l = Math.min(k + (o.oversample ?? 10), rows, cols);
  const q = o.powerIters ?? 4;
  const rng = Rng.derive(o.seed ?? 0, 'svd');
  // Zt [l, cols]: probe directions, rows of Ωᵀ
  const zt = new Float64Array(l * cols);
  for (let i = 0; i < zt.length; i++) zt[i] = rng.normal();
  const qt = new Float64Array(l * rows); // Qᵀ [l, rows]
  const rangeOf = () => {
    // Qᵀ[j][i] = (M Z)[i][j] = M_i · Z_j
    for (let i = 0; i < rows; i++) dotsInto(m, i * cols, zt, l, cols, qt, rows, i);
    orthonormalizeRows(qt, l, rows);
  };
  const coRangeOf = () => {
    // Zᵀ = Qᵀ M: Zt[j] = Σ_i Qt[j][i] M_i
    zt.fill(0);
    for (let i = 0; i < rows; i++) {
      const mi = i * cols;
      for (let j = 0; j < l; j++) {
        const c = qt[j * rows + i]!;
        if (c === 0) continue;
        const zj = j * cols;
        for (let t = 0; t < cols; t++) zt[zj + t]! += c * m[mi + t]!;
      }
    }
  };
  rangeOf();
  for (let it = 0; it < q; it++) {
    coRangeOf();
    orthonormalizeRows(zt, l, cols);
    rangeOf();
  }
  coRangeOf(); // B = QᵀM [l, cols]
  const small = svdGram(zt, l, cols, Math.min(k, l));
  // U = Q U_small: U[i][j] = Σ_a Qt[a][i] Us[a][j]
  const kk = small.k;
  const U = new Float64Array(rows * kk);
  for (let a = 0; a < l; a++) {
    for (let i = 0; i < rows; i++) {
      const qa = qt[a * rows + i]!;
      if (qa === 0) continue;
      for (let j = 0; j < kk; j++) U[i * kk + j]! += qa * small.U[a * kk + j]!;
    }
  }
  return { k: kk, U, S: small.S, Vt: small.Vt };
}

/** The k leading singular triplets of M [rows, cols] (k is clamped to min(rows, cols)). */
export function truncatedSvd(m: Vec, rows: number, cols: number, k: number, o: SvdOptions = {}): Svd {
  if (m.length !== rows * cols) throw new RangeError(`matrix has ${m.length} values, not ${rows}×${cols}`);
  if (!Number.isSafeInteger(k) || k < 1) throw new RangeError(`rank must be a positive integer, got ${k}`);
  const kk = Math.min(k, rows, cols);
  const method = o.method ?? 'auto';
  const useGram = method === 'gram' || (method === 'auto' && Math.min(rows, cols) <= 256);
  // one element type in the kernels (float64: exact products, monomorphic loops); a transient copy
  const m64 = m instanceof Float64Array ? m : Float64Array.from(m);
  return useGram ? svdGram(m64, rows, cols, kk) : svdRandomized(m64, rows, cols, kk, o);
}

/** U_k S_k V_kᵀ as a dense [rows, cols] matrix. */
export function reconstruct(svd: Svd, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let j = 0; j < svd.k; j++) {
    const s = svd.S[j]!;
    for (let i = 0; i < rows; i++) {
      const us = svd.U[i * svd.k + j]! * s;
      if (us === 0) continue;
      for (let c = 0; c < cols; c++) out[i * cols + c]! += us * svd.Vt[j * cols + c]!;
    }
  }
  return out;
}
