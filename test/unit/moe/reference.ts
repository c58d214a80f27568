/**
 * A float64 host reference of one MoE block (HF MixtralSparseMoeBlock semantics), random test data and
 * backend switching for the MoE tests.
 */
import { expect } from 'vitest';
import type { Rng } from '../../../src-main/common/rng.js';
import { useBackend } from '../../../src-main/tensor/backend.js';
import { tf } from '../../../src-main/tensor/tf.js';

export type Arr = Float64Array;

export async function setBackend(name: 'cpu' | 'wasm'): Promise<void> {
  await useBackend(name);
  expect(tf.getBackend()).toBe(name);
}

export function rand(rng: Rng, n: number, scale = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng.next() * 2 - 1) * scale;
  return out;
}

export function f32(a: ArrayLike<number>): Float32Array {
  return Float32Array.from(a);
}

/** x [in] · wᵀ with w [out, in] → [out]. */
export function matvec(w: ArrayLike<number>, x: ArrayLike<number>, out: number, inn: number): Float64Array {
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = 0;
    for (let i = 0; i < inn; i++) s += w[o * inn + i]! * x[i]!;
    y[o] = s;
  }
  return y;
}

const silu = (g: number): number => g / (1 + Math.exp(-g));

/** SwiGLU with the projections given as functions of x. */
export function refSwiglu(x: Arr, gate: (x: Arr) => Arr, up: (x: Arr) => Arr, down: (h: Arr) => Arr): Arr {
  const g = gate(x);
  const u = up(x);
  const h = new Float64Array(g.length);
  for (let i = 0; i < g.length; i++) h[i] = silu(g[i]!) * u[i]!;
  return down(h);
}

export interface RefRouting {
  probs: Arr; // [N, n]
  top: Int32Array; // [N, k], most probable first
  gates: Arr; // [N, k]
}

export function refRoute(u: Arr, router: Arr, N: number, D: number, n: number, k: number): RefRouting {
  const probs = new Float64Array(N * n);
  const top = new Int32Array(N * k);
  const gates = new Float64Array(N * k);
  for (let t = 0; t < N; t++) {
    const l = matvec(router, u.subarray(t * D, (t + 1) * D), n, D);
    const m = Math.max(...l);
    let z = 0;
    for (let e = 0; e < n; e++) z += Math.exp(l[e]! - m);
    for (let e = 0; e < n; e++) probs[t * n + e] = Math.exp(l[e]! - m) / z;
    const order = Array.from({ length: n }, (_, e) => e).sort(
      (a, b) => probs[t * n + b]! - probs[t * n + a]! || a - b,
    );
    let s = 0;
    for (let j = 0; j < k; j++) s += probs[t * n + order[j]!]!;
    for (let j = 0; j < k; j++) {
      top[t * k + j] = order[j]!;
      gates[t * k + j] = probs[t * n + order[j]!]! / s;
    }
  }
  return { probs, top, gates };
}

/** y_t = Σ_j g_tj · expert(top_tj, u_t). `fixedTop` reuses a routing choice (finite differences). */
export function refMoe(
  u: Arr,
  router: Arr,
  N: number,
  D: number,
  n: number,
  k: number,
  expert: (e: number, x: Arr) => Arr,
  fixedTop?: Int32Array,
): { y: Arr; routing: RefRouting } {
  const routing = refRoute(u, router, N, D, n, k);
  if (fixedTop) {
    // same experts, gates renormalised from the current probabilities
    for (let t = 0; t < N; t++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += routing.probs[t * n + fixedTop[t * k + j]!]!;
      for (let j = 0; j < k; j++) {
        routing.top[t * k + j] = fixedTop[t * k + j]!;
        routing.gates[t * k + j] = routing.probs[t * n + fixedTop[t * k + j]!]! / s;
      }
    }
  }
  const y = new Float64Array(N * D);
  for (let t = 0; t < N; t++) {
    const x = u.subarray(t * D, (t + 1) * D);
    for (let j = 0; j < k; j++) {
      const o = expert(routing.top[t * k + j]!, x);
      const g = routing.gates[t * k + j]!;
      for (let d = 0; d < D; d++) y[t * D + d]! += g * o[d]!;
    }
  }
  return { y, routing };
}

/** n·Σ f_i P_i with f_i the share of the N·k slots routed to i, P_i the mean probability. */
export function refLoadBalancing(r: RefRouting, N: number, n: number, k: number): number {
  let L = 0;
  for (let e = 0; e < n; e++) {
    let c = 0;
    for (let s = 0; s < N * k; s++) if (r.top[s] === e) c++;
    let p = 0;
    for (let t = 0; t < N; t++) p += r.probs[t * n + e]!;
    L += (c / (N * k)) * (p / N);
  }
  return n * L;
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Central differences of f at x (float64). */
export function numericGrad(f: (x: Arr) => number, x: Arr, eps = 1e-6): Arr {
  const g = new Float64Array(x.length);
  const xp = Float64Array.from(x);
  for (let i = 0; i < x.length; i++) {
    const v = xp[i]!;
    xp[i] = v + eps;
    const a = f(xp);
    xp[i] = v - eps;
    const b = f(xp);
    xp[i] = v;
    g[i] = (a - b) / (2 * eps);
  }
  return g;
}

/** max over i of |a−b| / (atol + rtol·|b|): < 1 means close. */
export function closeness(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol: number): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++)
    m = Math.max(m, Math.abs(a[i]! - b[i]!) / (atol + rtol * Math.abs(b[i]!)));
  return m;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
