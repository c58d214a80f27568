/**
 * The MoE block (model/moe.ts): n identical experts are the dense model, the top-k gates are the
 * renormalised router probabilities, the routed ('gather') and dense dispatch agree with a float64
 * reference, the auxiliary losses, and no tensor leaks — on cpu and wasm.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src-main/common/rng.js';
import { makeLlamaConfig } from '../../../src-main/model/config.js';
import { llamaLogits } from '../../../src-main/model/llama.js';
import { weightsFromHost } from '../../../src-main/model/load.js';
import { initLora, loraState, type LoraHost, type LoraSpec } from '../../../src-main/model/lora.js';
import {
  disposeMoe,
  ffnExpertsFromDense,
  ffnMoe,
  initRouters,
  loadBalancingLoss,
  loraMoe,
  moeFromHost,
  moeLogits,
  moeTrainLoss,
  route,
  routerEntropy,
  routerZLoss,
  routingTable,
  RoutingCollector,
  expertLoad,
  validateMoeSpec,
  type MoeSpec,
} from '../../../src-main/model/moe.js';
import { initLlamaWeights } from '../../../src-main/model/params.js';
import { tf } from '../../../src-main/tensor/tf.js';
import {
  f32,
  matvec,
  maxAbsDiff,
  rand,
  refLoadBalancing,
  refMoe,
  refRoute,
  refSwiglu,
  setBackend,
} from './reference.js';

const cfg = makeLlamaConfig({
  vocabSize: 40,
  hiddenSize: 16,
  intermediateSize: 24,
  numLayers: 2,
  numHeads: 2,
  numKvHeads: 1,
});

function randomLora(spec: LoraSpec, rng: Rng): LoraHost {
  const h = initLora(cfg, spec, rng);
  for (const b of h.B.values()) for (let i = 0; i < b.data.length; i++) b.data[i] = 0.2 * rng.normal();
  return h;
}

describe('routing table', () => {
  it('sorts the slots by expert and inverts the permutation', () => {
    // 3 tokens, k 2, 4 experts: t0 → 2,0; t1 → 0,3; t2 → 2,3
    const tab = routingTable([2, 0, 0, 3, 2, 3], 3, 4, 2);
    expect(tab.counts).toEqual([2, 0, 2, 2]);
    expect(Array.from(tab.token)).toEqual([0, 1, 0, 2, 1, 2]);
    expect(Array.from(tab.slot)).toEqual([1, 2, 0, 4, 3, 5]);
    for (let s = 0; s < 6; s++) expect(tab.slot[tab.position[s]!]).toBe(s);
    expect(() => routingTable([0, 4], 1, 4, 2)).toThrow(/outside/);
  });

  it('validates specs', () => {
    expect(() => validateMoeSpec({ numExperts: 4, topK: 5, kind: 'ffn' })).toThrow(/topK/);
    expect(() =>
      validateMoeSpec({
        numExperts: 4,
        topK: 2,
        kind: 'lora',
        lora: { r: 4, alpha: 8, targets: ['q_proj'] },
      }),
    ).toThrow(/MLP projections only/);
    expect(() => validateMoeSpec({ numExperts: 4, topK: 2, kind: 'lora' })).toThrow(/lora spec/);
  });
});

describe.each(['cpu', 'wasm'] as const)('MoE on %s', (backend) => {
  it('top-k gates are the renormalised router probabilities of the k most probable experts', async () => {
    await setBackend(backend);
    const rng = new Rng(7);
    const [N, D, n, k] = [9, 5, 6, 3];
    const u = rand(rng, N * D);
    const router = rand(rng, n * D, 1.5);
    const ref = refRoute(u, router, N, D, n, k);
    const r = route(tf.tensor2d(f32(u), [N, D]), tf.tensor2d(f32(router), [n, D]), k);
    expect(Array.from(r.topIdx.dataSync())).toEqual(Array.from(ref.top));
    expect(maxAbsDiff(r.gates.dataSync(), ref.gates)).toBeLessThan(1e-6);
    expect(maxAbsDiff(r.probs.dataSync(), ref.probs)).toBeLessThan(1e-6);
    const sums = tf.sum(r.gates, -1).dataSync();
    for (const s of sums) expect(s).toBeCloseTo(1, 6);
    tf.dispose([r.logits, r.probs, r.gates, r.topIdx]);
  });

  it('FFN experts: gather and dense dispatch match the float64 reference (an unused expert included)', async () => {
    await setBackend(backend);
    const rng = new Rng(11);
    const [N, D, F, n, k] = [14, 6, 8, 4, 2];
    const u = rand(rng, N * D);
    for (let t = 0; t < N; t++) u[t * D + D - 1] = 2; // a constant feature …
    const router = rand(rng, n * D);
    router[3 * D + D - 1] = -20; // … that keeps expert 3 out of every top-2
    const ex = Array.from({ length: n }, () => ({
      w1: rand(rng, F * D),
      w2: rand(rng, D * F),
      w3: rand(rng, F * D),
    }));
    const ref = refMoe(u, router, N, D, n, k, (e, x) =>
      refSwiglu(
        x,
        (v) => matvec(ex[e]!.w1, v, F, D),
        (v) => matvec(ex[e]!.w3, v, F, D),
        (h) => matvec(ex[e]!.w2, h, D, F),
      ),
    );
    expect(Array.from(ref.routing.top)).not.toContain(3);
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const u2 = tf.tensor2d(f32(u), [N, D]);
      const r = route(u2, tf.tensor2d(f32(router), [n, D]), k);
      const experts = ex.map((e) => ({
        w1: tf.tensor2d(f32(e.w1), [F, D]),
        w2: tf.tensor2d(f32(e.w2), [D, F]),
        w3: tf.tensor2d(f32(e.w3), [F, D]),
      }));
      for (const dispatch of ['gather', 'dense'] as const) {
        const y = ffnMoe(u2, r, experts, k, dispatch);
        expect(y.shape).toEqual([N, D]);
        expect(maxAbsDiff(y.dataSync(), ref.y), dispatch).toBeLessThan(2e-5);
      }
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('LoRA experts: gather and dense dispatch match the float64 reference', async () => {
    await setBackend(backend);
    const rng = new Rng(12);
    const [N, D, F, n, k, r] = [13, 6, 8, 5, 2, 3];
    const alpha = 6;
    const s = alpha / r;
    for (const targets of [['gate_proj', 'up_proj', 'down_proj'], ['up_proj'], ['down_proj']]) {
      const u = rand(rng, N * D);
      const router = rand(rng, n * D, 2);
      const W0 = { gate: rand(rng, F * D), up: rand(rng, F * D), down: rand(rng, D * F) };
      const dims = { gate_proj: [F, D], up_proj: [F, D], down_proj: [D, F] } as const;
      const lora = Array.from({ length: n }, () => {
        const A = new Map<string, Float64Array>();
        const B = new Map<string, Float64Array>();
        for (const p of targets as (keyof typeof dims)[]) {
          A.set(p, rand(rng, r * dims[p][1]));
          B.set(p, rand(rng, dims[p][0] * r));
        }
        return { A, B };
      });
      const proj = (e: number, p: keyof typeof dims, w: Float64Array) => (x: Float64Array) => {
        const [o, i] = dims[p];
        const y = matvec(w, x, o, i);
        const A = lora[e]!.A.get(p);
        if (!A) return y;
        const z = matvec(lora[e]!.B.get(p)!, matvec(A, x, r, i), o, r);
        for (let j = 0; j < o; j++) y[j]! += s * z[j]!;
        return y;
      };
      const ref = refMoe(u, router, N, D, n, k, (e, x) =>
        refSwiglu(x, proj(e, 'gate_proj', W0.gate), proj(e, 'up_proj', W0.up), proj(e, 'down_proj', W0.down)),
      );
      const spec: LoraSpec = { r, alpha, targets };
      tf.tidy(() => {
        const u2 = tf.tensor2d(f32(u), [N, D]);
        const rt = route(u2, tf.tensor2d(f32(router), [n, D]), k);
        const w0 = {
          gate: tf.tensor2d(f32(W0.gate), [F, D]),
          up: tf.tensor2d(f32(W0.up), [F, D]),
          down: tf.tensor2d(f32(W0.down), [D, F]),
        };
        const states = lora.map((l) => ({
          spec,
          A: new Map(
            [...l.A].map(([p, a]) => [
              `model.layers.0.mlp.${p}`,
              tf.tensor2d(f32(a), [r, dims[p as keyof typeof dims][1]]),
            ]),
          ),
          B: new Map(
            [...l.B].map(([p, b]) => [
              `model.layers.0.mlp.${p}`,
              tf.tensor2d(f32(b), [dims[p as keyof typeof dims][0], r]),
            ]),
          ),
        }));
        for (const dispatch of ['gather', 'dense'] as const) {
          const y = loraMoe(u2, rt, w0, states, 0, spec, k, dispatch);
          expect(maxAbsDiff(y.dataSync(), ref.y), `${targets.join('+')} ${dispatch}`).toBeLessThan(5e-5);
        }
      });
    }
  });

  it('n identical FFN experts give exactly the dense model, whatever the router', async () => {
    await setBackend(backend);
    const rng = new Rng(3);
    const host = initLlamaWeights(cfg, rng, 0.3);
    const w = weightsFromHost(host);
    const ids = tf.tensor2d([[1, 5, 9, 2, 33, 7, 7, 0, 12]], undefined, 'int32');
    const dense = llamaLogits(cfg, w, ids);
    for (const [n, k] of [
      [4, 2],
      [8, 2],
      [3, 3],
      [1, 1],
    ] as const) {
      const spec: MoeSpec = { numExperts: n, topK: k, kind: 'ffn' };
      const moe = moeFromHost(spec, {
        routers: initRouters(cfg, n, rng, 2),
        ffn: ffnExpertsFromDense(cfg, host, n),
      });
      for (const dispatch of ['gather', 'dense'] as const) {
        const y = moeLogits(cfg, w, moe, spec, ids, { dispatch });
        expect(maxAbsDiff(y.dataSync(), dense.dataSync()), `${n}e top-${k} ${dispatch}`).toBeLessThan(2e-5);
        y.dispose();
      }
      disposeMoe(moe);
    }
    tf.dispose([ids, dense, ...w.values()]);
  });

  it('n identical LoRA experts give exactly the dense model with that LoRA', async () => {
    await setBackend(backend);
    const rng = new Rng(4);
    const host = initLlamaWeights(cfg, rng, 0.3);
    const w = weightsFromHost(host);
    const spec: LoraSpec = { r: 4, alpha: 8, targets: ['gate_proj', 'up_proj', 'down_proj'] };
    const one = randomLora(spec, rng);
    const single = loraState(spec, one);
    const ids = tf.tensor2d([[3, 1, 4, 1, 5, 9, 2, 6]], undefined, 'int32');
    const dense = llamaLogits(cfg, w, ids, { lora: single });
    const plain = llamaLogits(cfg, w, ids);
    expect(maxAbsDiff(dense.dataSync(), plain.dataSync())).toBeGreaterThan(1e-2); // the LoRA matters
    const moeSpec: MoeSpec = { numExperts: 8, topK: 2, kind: 'lora', lora: spec };
    const moe = moeFromHost(moeSpec, {
      routers: initRouters(cfg, 8, rng, 2),
      lora: Array.from({ length: 8 }, () => one),
    });
    for (const dispatch of ['gather', 'dense'] as const) {
      const y = moeLogits(cfg, w, moe, moeSpec, ids, { dispatch });
      expect(maxAbsDiff(y.dataSync(), dense.dataSync()), dispatch).toBeLessThan(2e-5);
      y.dispose();
    }
    disposeMoe(moe);
    tf.dispose([ids, dense, plain, ...w.values(), ...single.A.values(), ...single.B.values()]);
  });

  it('load-balancing loss: 1 under uniform routing, > 1 when collapsed; z-loss and entropy', async () => {
    await setBackend(backend);
    const n = 8;
    const k = 2;
    const N = 16;
    // uniform probabilities, every expert chosen equally often
    const uniformTop = Array.from({ length: N * k }, (_, s) => s % n);
    const uniform = tf.fill([N, n], 1 / n);
    const topU = tf.tensor2d(uniformTop, [N, k], 'int32');
    expect(loadBalancingLoss(uniform, topU, n).dataSync()[0]).toBeCloseTo(1, 6);
    expect(routerEntropy(uniform).dataSync()[0]).toBeCloseTo(Math.log(n), 5);
    expect(Array.from(expertLoad(topU, n).dataSync())).toEqual(new Array(n).fill(1 / n));
    // collapsed: every token on experts 0 and 1, most of the mass there
    const p = new Float32Array(N * n).fill(0.1 / (n - 2));
    for (let t = 0; t < N; t++) [p[t * n], p[t * n + 1]] = [0.5, 0.4];
    const probs = tf.tensor2d(p, [N, n]);
    const topC = tf.tensor2d(
      Array.from({ length: N * k }, (_, s) => s % 2),
      [N, k],
      'int32',
    );
    const ref = refLoadBalancing(
      { probs: Float64Array.from(p), top: Int32Array.from(topC.dataSync()), gates: new Float64Array() },
      N,
      n,
      k,
    );
    const lb = loadBalancingLoss(probs, topC, n).dataSync()[0]!;
    expect(lb).toBeCloseTo(ref, 5);
    expect(lb).toBeCloseTo(n * (0.5 * 0.5 + 0.5 * 0.4), 5);
    expect(lb).toBeGreaterThan(1);
    // masked tokens do not count
    const mask = tf.tensor1d(Array.from({ length: N }, (_, t) => (t < N / 2 ? 1 : 0)));
    const mixedProbs = tf.concat([
      tf.slice(probs, [0, 0], [N / 2, n]),
      tf.slice(uniform, [0, 0], [N / 2, n]),
    ]);
    expect(loadBalancingLoss(mixedProbs, topC, n, mask).dataSync()[0]).toBeCloseTo(lb, 5);
    // z-loss = mean logsumexp²
    const logits = tf.tensor2d([
      [0, 0],
      [1, 2],
    ]);
    const lse = (a: number, b: number) => Math.log(Math.exp(a) + Math.exp(b));
    expect(routerZLoss(logits).dataSync()[0]).toBeCloseTo((lse(0, 0) ** 2 + lse(1, 2) ** 2) / 2, 5);
    tf.dispose([uniform, topU, probs, topC, mask, mixedProbs, logits]);
  });

  it('a training step with the router losses leaves no tensor behind and trains router and experts', async () => {
    await setBackend(backend);
    const rng = new Rng(5);
    const host = initLlamaWeights(cfg, rng, 0.3);
    const w = weightsFromHost(host);
    const ids = tf.tensor2d(
      [
        [1, 2, 3, 4, 5, 6, 7, 8],
        [9, 10, 11, 12, 13, 14, 15, 16],
      ],
      undefined,
      'int32',
    );
    const targets = tf.tensor2d(
      [
        [2, 3, 4, 5, 6, 7, 8, 9],
        [10, 11, 12, 13, 14, 15, 16, 17],
      ],
      undefined,
      'int32',
    );
    for (const kind of ['ffn', 'lora'] as const) {
      const lora: LoraSpec = { r: 4, alpha: 8, targets: ['gate_proj', 'up_proj', 'down_proj'] };
      const spec: MoeSpec =
        kind === 'ffn' ? { numExperts: 4, topK: 2, kind } : { numExperts: 4, topK: 2, kind, lora };
      const moe = moeFromHost(
        spec,
        kind === 'ffn'
          ? { routers: initRouters(cfg, 4, rng, 0.5), ffn: ffnExpertsFromDense(cfg, host, 4) }
          : {
              routers: initRouters(cfg, 4, rng, 0.5),
              lora: Array.from({ length: 4 }, () => randomLora(lora, rng)),
            },
        true,
      );
      const step = () => {
        const { value, grads } = tf.variableGrads(() => {
          const parts = moeTrainLoss(cfg, w, moe, spec, { ids, targets }, { auxCoef: 0.01, zCoef: 0.001 });
          tf.dispose([parts.lm, parts.aux, parts.z]);
          return parts.loss;
        });
        const names = Object.keys(grads);
        for (const g of Object.values(grads)) expect(g.dataSync().every(Number.isFinite)).toBe(true);
        tf.dispose([value, ...Object.values(grads)]);
        return names;
      };
      step(); // warm-up (kernels, caches)
      const before = tf.memory().numTensors;
      const names = step();
      expect(tf.memory().numTensors).toBe(before);
      // every router and (with 16 tokens over 4 experts) every expert gets a gradient
      const vars = [
        ...moe.routers,
        ...(moe.ffn?.flat().flatMap((e) => [e.w1, e.w2, e.w3]) ?? []),
        ...(moe.lora?.flatMap((l) => [...l.A.values(), ...l.B.values()]) ?? []),
      ];
      const trained = new Set(names);
      const routed = vars.filter((v) => trained.has((v as tf.Variable).name)).length;
      expect(moe.routers.every((r) => trained.has((r as tf.Variable).name))).toBe(true);
      expect(routed).toBeGreaterThan(vars.length * 0.75);
      disposeMoe(moe);
    }
    tf.dispose([ids, targets, ...w.values()]);
  });

  it('RoutingCollector keeps per-layer routing for the losses and statistics', async () => {
    await setBackend(backend);
    const rng = new Rng(6);
    const host = initLlamaWeights(cfg, rng, 0.3);
    const w = weightsFromHost(host);
    const spec: MoeSpec = { numExperts: 4, topK: 2, kind: 'ffn' };
    const moe = moeFromHost(spec, {
      routers: initRouters(cfg, 4, rng, 1),
      ffn: ffnExpertsFromDense(cfg, host, 4),
    });
    const ids = tf.tensor2d([[1, 2, 3, 4, 5, 6]], undefined, 'int32');
    const before = tf.memory().numTensors;
    const rc = new RoutingCollector();
    const y = moeLogits(cfg, w, moe, spec, ids, { onRouting: rc.onRouting });
    expect(rc.layers.length).toBe(cfg.numLayers);
    expect(rc.layers[1]!.probs.shape).toEqual([6, 4]);
    expect(rc.layers[1]!.topIdx.shape).toEqual([6, 2]);
    const stats = rc.stats();
    expect(stats.map((s) => s.layer)).toEqual([0, 1]);
    for (const s of stats) {
      expect(s.load.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
      expect(s.entropy).toBeGreaterThan(0);
      expect(s.entropy).toBeLessThanOrEqual(Math.log(4) + 1e-6);
    }
    const lb = rc.loadBalancingLoss();
    const perLayer = rc.layers.map((l) => loadBalancingLoss(l!.probs, l!.topIdx, 4));
    const mean = (perLayer[0]!.dataSync()[0]! + perLayer[1]!.dataSync()[0]!) / 2;
    expect(lb.dataSync()[0]).toBeCloseTo(mean, 6);
    tf.dispose([lb, ...perLayer]);
    rc.dispose();
    y.dispose();
    expect(tf.memory().numTensors).toBe(before);
    disposeMoe(moe);
    tf.dispose([ids, ...w.values()]);
  });
});
