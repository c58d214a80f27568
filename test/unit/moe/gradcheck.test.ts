/**
 * MoE gradients against central finite differences of the float64 reference (reference.ts), on cpu and
 * wasm, for both dispatches: the loss Σ y·R + 0.5·load-balancing + 0.1·z-loss is differentiated with
 * respect to the block input, the router (through the gates and the router losses) and every expert
 * weight (FFN: w1/w2/w3; LoRA: the shared W0 and each expert's A and B).
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src-main/common/rng.js';
import type { LoraSpec } from '../../../src-main/model/lora.js';
import {
  ffnMoe,
  loadBalancingLoss,
  loraMoe,
  route,
  routerZLoss,
  type MoeDispatch,
} from '../../../src-main/model/moe.js';
import { tf } from '../../../src-main/tensor/tf.js';
import {
  closeness,
  dot,
  f32,
  matvec,
  numericGrad,
  rand,
  refLoadBalancing,
  refMoe,
  refSwiglu,
  setBackend,
  type Arr,
} from './reference.js';

const ATOL = 3e-4;
const RTOL = 3e-3;
const [N, D, F, n, k, r] = [10, 4, 5, 3, 2, 2];
const ALPHA = 3;

interface Param {
  name: string;
  shape: number[];
  value: Arr;
}

/** z-loss of the reference routing: mean over tokens of logsumexp(router·u)². */
function refZLoss(u: Arr, router: Arr): number {
  let z = 0;
  for (let t = 0; t < N; t++) {
    const l = matvec(router, u.subarray(t * D, (t + 1) * D), n, D);
    const m = Math.max(...l);
    const lse = m + Math.log(l.reduce((a, v) => a + Math.exp(v - m), 0));
    z += lse * lse;
  }
  return z / N;
}

function check(
  params: Param[],
  refLoss: (p: Arr[], fixedTop?: Int32Array) => { loss: number; top: Int32Array },
  tfLoss: (ts: tf.Tensor[]) => tf.Scalar,
): void {
  const base = params.map((p) => p.value);
  const { loss: refValue, top } = refLoss(base);
  const inputs = params.map((p) => tf.tensor(f32(p.value), p.shape));
  const { value, grads } = tf.valueAndGrads((...ts: tf.Tensor[]) => tfLoss(ts))(inputs);
  expect(value.dataSync()[0]).toBeCloseTo(refValue, 3);
  params.forEach((p, i) => {
    const fd = numericGrad((v) => {
      const ps = base.slice();
      ps[i] = v;
      return refLoss(ps, top).loss;
    }, p.value);
    const got = grads[i]!.dataSync();
    expect(Math.max(...Array.from(fd, Math.abs)), `${p.name}: the loss depends on it`).toBeGreaterThan(1e-4);
    expect(
      closeness(got, fd, ATOL, RTOL),
      `d/d${p.name}: ${Array.from(got).slice(0, 4)} vs ${Array.from(fd).slice(0, 4)}`,
    ).toBeLessThan(1);
  });
  tf.dispose([value, ...grads, ...inputs]);
}

describe.each(['cpu', 'wasm'] as const)('MoE gradients on %s', (backend) => {
  describe.each(['gather', 'dense'] as MoeDispatch[])('%s dispatch', (dispatch) => {
    it('FFN experts', async () => {
      await setBackend(backend);
      const rng = new Rng(21);
      const R = rand(rng, N * D);
      const params: Param[] = [
        { name: 'u', shape: [N, D], value: rand(rng, N * D) },
        { name: 'router', shape: [n, D], value: rand(rng, n * D, 1.5) },
      ];
      for (let e = 0; e < n; e++) {
        params.push({ name: `w1[${e}]`, shape: [F, D], value: rand(rng, F * D) });
        params.push({ name: `w2[${e}]`, shape: [D, F], value: rand(rng, D * F) });
        params.push({ name: `w3[${e}]`, shape: [F, D], value: rand(rng, F * D) });
      }
      const refLoss = (p: Arr[], fixedTop?: Int32Array) => {
        const [u, router] = [p[0]!, p[1]!];
        const { y, routing } = refMoe(
          u,
          router,
          N,
          D,
          n,
          k,
          (e, x) =>
            refSwiglu(
              x,
              (v) => matvec(p[2 + 3 * e]!, v, F, D),
              (v) => matvec(p[4 + 3 * e]!, v, F, D),
              (h) => matvec(p[3 + 3 * e]!, h, D, F),
            ),
          fixedTop,
        );
        const loss = dot(y, R) + 0.5 * refLoadBalancing(routing, N, n, k) + 0.1 * refZLoss(u, router);
        return { loss, top: routing.top };
      };
      const Rt = tf.tensor2d(f32(R), [N, D]);
      check(params, refLoss, (ts) => {
        const [u, router] = [ts[0]!, ts[1]!];
        const rt = route(u, router, k);
        const experts = Array.from({ length: n }, (_, e) => ({
          w1: ts[2 + 3 * e]!,
          w2: ts[3 + 3 * e]!,
          w3: ts[4 + 3 * e]!,
        }));
        const y = ffnMoe(u, rt, experts, k, dispatch);
        return tf.addN([
          tf.sum(tf.mul(y, Rt)),
          tf.mul(loadBalancingLoss(rt.probs, rt.topIdx, n), 0.5),
          tf.mul(routerZLoss(rt.logits), 0.1),
        ]) as tf.Scalar;
      });
      Rt.dispose();
    });

    it('LoRA experts', async () => {
      await setBackend(backend);
      const rng = new Rng(22);
      const R = rand(rng, N * D);
      const s = ALPHA / r;
      const projs = ['gate_proj', 'up_proj', 'down_proj'] as const;
      const dims = { gate_proj: [F, D], up_proj: [F, D], down_proj: [D, F] } as const;
      const params: Param[] = [
        { name: 'u', shape: [N, D], value: rand(rng, N * D) },
        { name: 'router', shape: [n, D], value: rand(rng, n * D, 1.5) },
        ...projs.map((p) => ({
          name: `W0.${p}`,
          shape: [...dims[p]],
          value: rand(rng, dims[p][0] * dims[p][1]),
        })),
      ];
      const at = new Map<string, number>();
      for (let e = 0; e < n; e++) {
        for (const p of projs) {
          at.set(`A${e}${p}`, params.length);
          params.push({ name: `A[${e}].${p}`, shape: [r, dims[p][1]], value: rand(rng, r * dims[p][1]) });
          at.set(`B${e}${p}`, params.length);
          params.push({ name: `B[${e}].${p}`, shape: [dims[p][0], r], value: rand(rng, dims[p][0] * r) });
        }
      }
      const refLoss = (p: Arr[], fixedTop?: Int32Array) => {
        const [u, router] = [p[0]!, p[1]!];
        const proj = (e: number, j: number) => (x: Arr) => {
          const q = projs[j]!;
          const [o, i] = dims[q];
          const y = matvec(p[2 + j]!, x, o, i);
          const z = matvec(p[at.get(`B${e}${q}`)!]!, matvec(p[at.get(`A${e}${q}`)!]!, x, r, i), o, r);
          for (let c = 0; c < o; c++) y[c]! += s * z[c]!;
          return y;
        };
        const { y, routing } = refMoe(
          u,
          router,
          N,
          D,
          n,
          k,
          (e, x) => refSwiglu(x, proj(e, 0), proj(e, 1), proj(e, 2)),
          fixedTop,
        );
        const loss = dot(y, R) + 0.5 * refLoadBalancing(routing, N, n, k) + 0.1 * refZLoss(u, router);
        return { loss, top: routing.top };
      };
      const spec: LoraSpec = { r, alpha: ALPHA, targets: [...projs] };
      const Rt = tf.tensor2d(f32(R), [N, D]);
      check(params, refLoss, (ts) => {
        const [u, router] = [ts[0]!, ts[1]!];
        const rt = route(u, router, k);
        const experts = Array.from({ length: n }, (_, e) => ({
          spec,
          A: new Map(projs.map((q) => [`model.layers.0.mlp.${q}`, ts[at.get(`A${e}${q}`)!]!])),
          B: new Map(projs.map((q) => [`model.layers.0.mlp.${q}`, ts[at.get(`B${e}${q}`)!]!])),
        }));
        const y = loraMoe(u, rt, { gate: ts[2]!, up: ts[3]!, down: ts[4]! }, experts, 0, spec, k, dispatch);
        return tf.addN([
          tf.sum(tf.mul(y, Rt)),
          tf.mul(loadBalancingLoss(rt.probs, rt.topIdx, n), 0.5),
          tf.mul(routerZLoss(rt.logits), 0.1),
        ]) as tf.Scalar;
      });
      Rt.dispose();
    });
  });
});
