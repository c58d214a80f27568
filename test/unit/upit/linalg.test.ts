import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src-main/common/rng.js';
import {
  matMul,
  orthonormalizeRows,
  reconstruct,
  symmetricEigen,
  transpose,
  truncatedSvd,
  type Svd,
} from '../../../src-main/upit/linalg.js';

function gaussian(rng: Rng, n: number): Float64Array {
  return Float64Array.from({ length: n }, () => rng.normal());
}

/** Random [n, k] with orthonormal columns. */
function orthonormalColumns(rng: Rng, n: number, k: number): Float64Array {
  const rows = gaussian(rng, k * n); // [k, n], rows to orthonormalise
  expect(orthonormalizeRows(rows, k, n)).toBe(k);
  return transpose(rows, k, n);
}

/** M = U diag(σ) Vᵀ with random orthonormal U [rows, q], V [cols, q]. */
function withSpectrum(rng: Rng, rows: number, cols: number, sigma: number[]): Float64Array {
  const q = sigma.length;
  const U = orthonormalColumns(rng, rows, q);
  const V = orthonormalColumns(rng, cols, q);
  const US = U.map((v, i) => v * sigma[i % q]!);
  return matMul(US, transpose(V, cols, q), rows, q, cols);
}

function err2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return s;
}

function norm2(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! ** 2;
  return s;
}

function expectOrthonormalColumns(svd: Svd, rows: number, cols: number): void {
  for (let a = 0; a < svd.k; a++) {
    for (let b = 0; b < svd.k; b++) {
      let u = 0;
      for (let i = 0; i < rows; i++) u += svd.U[i * svd.k + a]! * svd.U[i * svd.k + b]!;
      let v = 0;
      for (let c = 0; c < cols; c++) v += svd.Vt[a * cols + c]! * svd.Vt[b * cols + c]!;
      expect(u).toBeCloseTo(a === b ? 1 : 0, 9);
      expect(v).toBeCloseTo(a === b ? 1 : 0, 9);
    }
  }
}

describe('symmetricEigen', () => {
  it('decomposes a symmetric matrix: S = V Λ Vᵀ with orthonormal V, eigenvalues descending', () => {
    const rng = new Rng(3);
    const n = 12;
    const x = gaussian(rng, n * n);
    const s = matMul(x, transpose(x, n, n), n, n, n); // SPD
    s[0] = (s[0] ?? 0) - 50; // make it indefinite too
    const { values, vectors } = symmetricEigen(s, n);
    for (let i = 1; i < n; i++) expect(values[i]!).toBeLessThanOrEqual(values[i - 1]!);
    const VL = vectors.map((v, i) => v * values[i % n]!);
    const back = matMul(VL, transpose(vectors, n, n), n, n, n);
    expect(Math.sqrt(err2(back, s) / norm2(s))).toBeLessThan(1e-12);
    const vtv = matMul(transpose(vectors, n, n), vectors, n, n, n);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) expect(vtv[i * n + j]).toBeCloseTo(i === j ? 1 : 0, 12);
  });
});

describe('truncatedSvd', () => {
  const sigma = [10, 7, 5, 3, 1, 0.5, 0.25, 0.1];

  for (const [rows, cols] of [
    [40, 24],
    [24, 40],
  ] as const) {
    it(`recovers a known spectrum and ‖M − M_r‖²_F = Σ_{i>r} σ_i² (${rows}×${cols}, exact method)`, () => {
      const M = withSpectrum(new Rng(rows), rows, cols, sigma);
      for (const r of [1, 3, 5]) {
        const svd = truncatedSvd(M, rows, cols, r, { method: 'gram' });
        expect(svd.k).toBe(r);
        for (let i = 0; i < r; i++) expect(svd.S[i]! / sigma[i]!).toBeCloseTo(1, 10);
        expectOrthonormalColumns(svd, rows, cols);
        const tail = sigma.slice(r).reduce((a, s) => a + s * s, 0);
        expect(err2(M, reconstruct(svd, rows, cols)) / tail).toBeCloseTo(1, 9);
      }
      // beyond the rank, singular values are ~0
      const full = truncatedSvd(M, rows, cols, Math.min(rows, cols), { method: 'gram' });
      for (let i = sigma.length; i < full.k; i++) expect(full.S[i]!).toBeLessThan(1e-6);
    });
  }

  it('reconstructs a rank-r matrix exactly (both methods)', () => {
    const rng = new Rng(11);
    const [rows, cols, r] = [50, 30, 4];
    const M = matMul(gaussian(rng, rows * r), gaussian(rng, r * cols), rows, r, cols);
    for (const method of ['gram', 'randomized'] as const) {
      const svd = truncatedSvd(M, rows, cols, r, { method });
      expect(Math.sqrt(err2(M, reconstruct(svd, rows, cols)) / norm2(M))).toBeLessThan(1e-10);
    }
  });

  it('on rank-r structure + noise, the truncation error is the tail Σ_{i>r} σ_i² (randomized ≈ exact)', () => {
    const rng = new Rng(12);
    const [rows, cols, r] = [120, 90, 6];
    const M = matMul(gaussian(rng, rows * r), gaussian(rng, r * cols), rows, r, cols);
    for (let i = 0; i < M.length; i++) M[i]! += 1e-3 * rng.normal();
    const full = truncatedSvd(M, rows, cols, cols, { method: 'gram' });
    let tail = 0;
    for (let i = r; i < full.k; i++) tail += full.S[i]! ** 2;
    let total = 0;
    for (let i = 0; i < full.k; i++) total += full.S[i]! ** 2;
    expect(total / norm2(M)).toBeCloseTo(1, 9); // Σ σ_i² = ‖M‖²_F
    const exact = truncatedSvd(M, rows, cols, r, { method: 'gram' });
    expect(err2(M, reconstruct(exact, rows, cols)) / tail).toBeCloseTo(1, 6);
    const rand = truncatedSvd(M, rows, cols, r, { method: 'randomized' });
    const e = err2(M, reconstruct(rand, rows, cols)) / tail;
    expect(e).toBeGreaterThan(1 - 1e-6);
    expect(e).toBeLessThan(1 + 1e-4);
    for (let i = 0; i < r; i++) expect(rand.S[i]! / exact.S[i]!).toBeCloseTo(1, 8);
  });
});
