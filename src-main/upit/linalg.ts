/**
 * Small dense linear algebra on host arrays (row-major, float64 internally): dot products,
 * a cyclic Jacobi symmetric eigensolver, modified Gram–Schmidt, and a truncated SVD for the
 * [out, in] matrices of LoRA modules.
 *
 * Truncated SVD, M [rows, cols] → U_k S_k V_kᵀ:
 * - 'gram' (exact): eigen-decomposition of the smaller Gram matrix (MᵀM or MMᵀ, float64) by
 *   cyclic Jacobi to convergence, then the other side as M·v_i/σ_i. Singular values come out to
 *   about 1e-15·σ₁/σ_i relative accuracy (squaring the matrix costs precision only for the small
 *   ones, which truncation discards). Cost rows·cols·min + ~10·min³: meant for min(rows, cols)
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
 * Eigen-decomposition of a symmetric n×n matrix by cyclic Jacobi rotations. Returns eigenvalues
 * in descending order and the eigenvectors as the columns of `vectors` (n×n, row-major).
 */
export function symmetricEigen(
  s: Vec,
  n: number,
  maxSweeps = 60,
): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(s);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let total = 0;
  for (let i = 0; i < n * n; i++) total += a[i]! * a[i]!;
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q]! * a[p * n + q]!;
    if (off <= 1e-30 * total || off === 0) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (apq === 0) continue;
        const app = a[p * n + p]!;
        const aqq = a[q * n + q]!;
        const theta = (aqq - app) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const sn = t * c;
        // A ← Jᵀ A J with J = rotation in the (p, q) plane
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p]!;
          const akq = a[k * n + q]!;
          a[k * n + p] = c * akp - sn * akq;
          a[k * n + q] = sn * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]!;
          const aqk = a[q * n + k]!;
          a[p * n + k] = c * apk - sn * aqk;
          a[q * n + k] = sn * apk + c * aqk;
        }
        a[p * n + q] = 0;
        a[q * n + p] = 0;
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!;
          const vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - sn * vkq;
          v[k * n + q] = sn * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => a[y * n + y]! - a[x * n + x]!);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    values[dst] = a[src * n + src]!;
    for (let k = 0; k < n; k++) vectors[k * n + dst] = v[k * n + src]!;
  });
  return { values, vectors };
}

/**
 * Orthonormalise the rows of a [k, len] matrix in place (modified Gram–Schmidt, applied twice
 * for stability). A row that becomes numerically zero is set to zero. Returns the rank found.
 */
export function orthonormalizeRows(q: Float64Array, k: number, len: number): number {
  let rank = 0;
  const norms0 = new Float64Array(k);
  for (let i = 0; i < k; i++) norms0[i] = Math.sqrt(dot(q.subarray(i * len, (i + 1) * len), q.subarray(i * len, (i + 1) * len)));
  for (let i = 0; i < k; i++) {
    const qi = q.subarray(i * len, (i + 1) * len);
    for (let pass = 0; pass < 2; pass++) {
      for (let j = 0; j < i; j++) {
        const qj = q.subarray(j * len, (j + 1) * len);
        const r = dot(qi, qj);
        if (r !== 0) for (let t = 0; t < len; t++) qi[t]! -= r * qj[t]!;
      }
    }
    const nrm = Math.sqrt(dot(qi, qi));
    if (nrm <= 1e-13 * (norms0[i]! || 1) || nrm === 0) {
      qi.fill(0);
      continue;
    }
    for (let t = 0; t < len; t++) qi[t]! /= nrm;
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
function svdGram(m: Vec, rows: number, cols: number, k: number): Svd {
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
      const vj = Vt.subarray(j * cols, (j + 1) * cols);
      let n2 = 0;
      for (let i = 0; i < rows; i++) {
        const x = dot(m.subarray(i * cols, (i + 1) * cols), vj);
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
      const mi = m.subarray(i * cols, (i + 1) * cols);
      for (let j = i; j < rows; j++) {
        const x = dot(mi, m.subarray(j * cols, (j + 1) * cols));
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

/** Randomized truncated SVD (see the file comment). */
function svdRandomized(m: Vec, rows: number, cols: number, k: number, o: SvdOptions): Svd {
  const l = Math.min(k + (o.oversample ?? 10), rows, cols);
  const q = o.powerIters ?? 4;
  const rng = Rng.derive(o.seed ?? 0, 'svd');
  // Zt [l, cols]: probe directions, rows of Ωᵀ
  const zt = new Float64Array(l * cols);
  for (let i = 0; i < zt.length; i++) zt[i] = rng.normal();
  const qt = new Float64Array(l * rows); // Qᵀ [l, rows]
  const rangeOf = () => {
    // Qᵀ[j][i] = (M Z)[i][j] = M_i · Z_j
    for (let i = 0; i < rows; i++) {
      const mi = m.subarray(i * cols, (i + 1) * cols);
      for (let j = 0; j < l; j++) qt[j * rows + i] = dot(mi, zt.subarray(j * cols, (j + 1) * cols));
    }
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
  return useGram ? svdGram(m, rows, cols, kk) : svdRandomized(m, rows, cols, kk, o);
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
