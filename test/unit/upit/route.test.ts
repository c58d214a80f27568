/**
 * Stage 3 (upit/route.ts): the seed sample, argmin assignment (cap and floor), router stacking,
 * per-expert perplexity picking the better expert, and routing-vector pre-training raising each
 * expert's routing probability on its own bucket.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../../src-main/common/rng.js';
import type { HostTensor } from '../../../src-main/io/host-tensor.js';
import { ByteTokenizer } from '../../../src-main/io/tokenizer.js';
import { makeLlamaConfig } from '../../../src-main/model/config.js';
import { llamaForward, type MlpHook } from '../../../src-main/model/llama.js';
import { weightsFromHost, disposeWeights } from '../../../src-main/model/load.js';
import { route } from '../../../src-main/model/moe.js';
import { initLlamaWeights, MLP_PROJ, projModule } from '../../../src-main/model/params.js';
import { useBackend } from '../../../src-main/tensor/backend.js';
import { tf } from '../../../src-main/tensor/tf.js';
import {
  assignArgmin,
  assignRandom,
  expertNll,
  initRoutingVectors,
  pretrainRouter,
  sampleSeed,
  seedSampleSize,
  stackRouters,
  type BaseModel,
  type ExpertWeights,
} from '../../../src-main/upit/route.js';

describe('seed sample', () => {
  it('is max(fraction·N, minPerExpert·n), at most N, distinct and deterministic', () => {
    expect(seedSampleSize(10_000, 8, { fraction: 0.01, minPerExpert: 32 })).toBe(256);
    expect(seedSampleSize(100_000, 8, { fraction: 0.01, minPerExpert: 32 })).toBe(1000);
    expect(seedSampleSize(100, 8, { fraction: 0.01, minPerExpert: 32 })).toBe(100);
    const a = sampleSeed(5000, 4, { fraction: 0.01, minPerExpert: 32, seed: 7 });
    expect(a).toHaveLength(128);
    expect(new Set(a).size).toBe(128);
    expect(a.every((i) => i >= 0 && i < 5000)).toBe(true);
    expect([...a].sort((x, y) => x - y)).toEqual(a);
    expect(sampleSeed(5000, 4, { fraction: 0.01, minPerExpert: 32, seed: 7 })).toEqual(a);
    expect(sampleSeed(5000, 4, { fraction: 0.01, minPerExpert: 32, seed: 8 })).not.toEqual(a);
    expect(() => seedSampleSize(10, 2, { fraction: 0, minPerExpert: 1 })).toThrow(/fraction/);
  });
});

describe('bucket assignment', () => {
  // nll[expert][sample]
  const nll = [
    [1.0, 2.0, 0.5, 3.0, 1.1],
    [2.0, 1.0, 0.6, 0.2, 1.0],
    [1.5, 1.5, 0.9, 0.3, 1.0],
  ];

  it('gives each sample to the expert with the lowest perplexity (ties: lower index)', () => {
    const a = assignArgmin(nll);
    expect(a.expert).toEqual([0, 1, 0, 1, 1]);
    expect(a.sizes).toEqual([2, 3, 0]);
    expect(a.moved).toBe(0);
  });

  it('cap: the most confident samples keep their expert, the rest spill to their next best', () => {
    const a = assignArgmin(nll, { cap: 2 });
    expect(a.sizes.every((s) => s <= 2)).toBe(true);
    // sample 3 (gap 0.1) and 1 (gap 0.5) are the most confident for expert 1; 4 (gap 0) spills to 2
    expect(a.expert).toEqual([0, 1, 0, 1, 2]);
    expect(() => assignArgmin(nll, { cap: 1 })).toThrow(/cannot hold 5 seed samples/);
  });

  it('floor: an expert no sample prefers takes the samples it loses least on', () => {
    const a = assignArgmin(nll, { floor: 1 });
    expect(a.sizes).toEqual([2, 2, 1]);
    // expert 2 loses 0 on sample 4 (1.0 vs 1.0) and 0.1 on sample 3: it takes sample 4
    expect(a.expert).toEqual([0, 1, 0, 1, 2]);
    expect(a.moved).toBe(1);
    const b = assignArgmin(nll, { floor: 5 }); // floor ≤ S / n
    expect(b.sizes.every((s) => s >= 1)).toBe(true);
  });

  it('random assignment (the ablation) is deterministic and covers every sample', () => {
    const a = assignRandom(1000, 4, 3);
    expect(a.expert).toHaveLength(1000);
    expect(a.sizes.reduce((x, y) => x + y, 0)).toBe(1000);
    expect(a.sizes.every((s) => s > 200 && s < 300)).toBe(true);
    expect(assignRandom(1000, 4, 3)).toEqual(a);
  });
});

describe('router stacking', () => {
  it("stacks r_i^l per layer and rescales every row to the layer's median norm", () => {
    const v = (xs: number[]) => Float32Array.from(xs);
    const vectors = [
      [v([3, 4]), v([1, 0])], // norms 5, 1
      [v([0, 1]), v([0, 2])], // norms 1, 2
      [v([0, 2]), v([0, 3])], // norms 2, 3
    ];
    const [l0, l1] = stackRouters(vectors, 'median');
    expect(l0!.shape).toEqual([3, 2]);
    const norm = (t: HostTensor, i: number) => Math.hypot(t.data[2 * i]!, t.data[2 * i + 1]!);
    for (let i = 0; i < 3; i++) {
      expect(norm(l0!, i)).toBeCloseTo(2, 6);
      expect(norm(l1!, i)).toBeCloseTo(2, 6);
    }
    expect(Array.from(l0!.data.slice(0, 2))).toEqual([1.2000000476837158, 1.600000023841858]); // direction kept
    const raw = stackRouters(vectors, 'none');
    expect(Array.from(raw[0]!.data)).toEqual([3, 4, 0, 1, 0, 2]);
  });
});

describe.each(['cpu', 'wasm'] as const)('Stage 3 on a micro model (%s)', (backend) => {
  const cfg = makeLlamaConfig({
    vocabSize: 256,
    hiddenSize: 32,
    intermediateSize: 48,
    numLayers: 2,
    numHeads: 2,
    numKvHeads: 2,
  });
  let base: BaseModel;
  beforeAll(async () => {
    await useBackend(backend);
    base = { cfg, weights: initLlamaWeights(cfg, new Rng(11)), tokenizer: new ByteTokenizer() };
  });

  const mlpOf = (w: Map<string, HostTensor>, scale: number): Map<string, HostTensor> => {
    const out = new Map<string, HostTensor>();
    for (let l = 0; l < cfg.numLayers; l++)
      for (const p of MLP_PROJ) {
        const t = w.get(`${projModule(l, p)}.weight`)!;
        out.set(`${projModule(l, p)}.weight`, { shape: t.shape, data: t.data.map((x) => x * scale) });
      }
    return out;
  };

  it('per-expert perplexity: every sample goes to the expert that predicts it better', async () => {
    const good: ExpertWeights = { kind: 'ffn', mlp: mlpOf(base.weights, 1) };
    const broken: ExpertWeights = { kind: 'ffn', mlp: mlpOf(base.weights, 40) }; // a wildly scaled MLP
    const examples = Array.from({ length: 6 }, (_, i) => ({ prompt: `q${i}`, response: `answer ${i}` }));
    const before = tf.memory().numTensors;
    const nll = await expertNll(base, [broken, good], examples, { batchSize: 4, maxSeqLen: 64 });
    expect(tf.memory().numTensors).toBe(before);
    expect(nll).toHaveLength(2);
    expect(nll[0]!.every((x, i) => x > nll[1]![i]!)).toBe(true);
    expect(assignArgmin(nll).sizes).toEqual([0, 6]);
  });

  it("pre-training raises each expert's routing probability on its own bucket", async () => {
    const buckets = [
      Array.from({ length: 8 }, (_, i) => ({ prompt: `aaaa ${i} aaaa`, response: 'aaaaaaaa' })),
      Array.from({ length: 8 }, (_, i) => ({ prompt: `ZZZZ ${i} ZZZZ`, response: 'ZZZZZZZZ' })),
    ];
    const experts: ExpertWeights[] = [0, 1].map(() => ({ kind: 'ffn', mlp: mlpOf(base.weights, 1) }));
    const opts = {
      epochs: 6,
      lr: 1e-3,
      routerLr: 5e-2,
      lmWeight: 0.5,
      batchSize: 4,
      maxSeqLen: 64,
    };
    const before = tf.memory().numTensors;
    const trained = [];
    for (const i of [0, 1]) {
      trained.push(
        await pretrainRouter(base, experts[i]!, buckets[i]!, i === 0 ? buckets[1]! : [], {
          ...opts,
          seed: i,
          freezeExpert: i === 0, // one frozen with negatives, one trained without
        }),
      );
    }
    expect(tf.memory().numTensors).toBe(before);
    // frozen expert unchanged, trained one moved
    expect(trained[0]!.expert).toBe(experts[0]);
    const moved = (trained[1]!.expert as Extract<ExpertWeights, { kind: 'ffn' }>).mlp;
    const orig = (experts[1] as Extract<ExpertWeights, { kind: 'ffn' }>).mlp;
    const k = `${projModule(0, 'up_proj')}.weight`;
    expect(moved.get(k)!.data).not.toEqual(orig.get(k)!.data);

    /** Mean router probability of expert e over the tokens of bucket b, per layer. */
    const ownProb = (routers: HostTensor[], b: number): number[] => {
      const w = weightsFromHost(base.weights);
      const rs = routers.map((r) => tf.tensor(r.data, r.shape));
      try {
        return tf.tidy(() => {
          const text = buckets[b]!.map((x) => `${x.prompt}${x.response}`);
          const T = Math.max(...text.map((t) => t.length));
          const ids = tf.tensor2d(
            text.flatMap((t) => Array.from({ length: T }, (_, j) => (j < t.length ? t.charCodeAt(j) : 32))),
            [text.length, T],
            'int32',
          );
          const probs: number[] = [];
          const hook: MlpHook = (layer, u) => {
            const r = route(tf.reshape(u, [-1, cfg.hiddenSize]), rs[layer]!, 1);
            probs[layer] = tf.mean(tf.slice(r.probs, [0, b], [-1, 1])).dataSync()[0]!;
            return null;
          };
          llamaForward(cfg, w, ids, { mlp: hook });
          return probs;
        });
      } finally {
        disposeWeights(w);
        tf.dispose(rs);
      }
    };
    const initial = stackRouters([initRoutingVectors(cfg, 0), initRoutingVectors(cfg, 1)], 'median');
    const after = stackRouters(
      trained.map((t) => t.vectors),
      'median',
    );
    for (const b of [0, 1]) {
      const p0 = ownProb(initial, b);
      const p1 = ownProb(after, b);
      for (let l = 0; l < cfg.numLayers; l++) {
        expect(p1[l]!).toBeGreaterThan(p0[l]!);
        expect(p1[l]!).toBeGreaterThan(0.6);
      }
    }
  }, 60_000);
});
