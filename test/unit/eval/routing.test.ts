/**
 * Routing analysis (eval/routing.ts) on a micro FFN-MoE: the fractions against a brute-force count
 * of the router's top-k choices from one unbatched forward per item, token counts = the rendered
 * items' tokens (pads never counted), batching invariance, a hand-made router that sends every
 * token to one expert, progress, abort, and no tensor leaks — on cpu and wasm.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../../src-main/common/rng.js';
import { renderExample } from '../../../src-main/data/template.js';
import type { EvalItem } from '../../../src-main/data/types.js';
import { routingAnalysis, type RoutingModel, type RoutingStat } from '../../../src-main/eval/routing.js';
import type { HostTensor } from '../../../src-main/io/host-tensor.js';
import { ByteTokenizer } from '../../../src-main/io/tokenizer.js';
import { makeLlamaConfig } from '../../../src-main/model/config.js';
import { llamaForward } from '../../../src-main/model/llama.js';
import { disposeWeights, weightsFromHost } from '../../../src-main/model/load.js';
import {
  disposeMoe,
  ffnExpertsFromDense,
  initRouters,
  moeFromHost,
  moeMlpHook,
  type MoeHost,
  type MoeSpec,
  type MoeWeights,
} from '../../../src-main/model/moe.js';
import { EMBED, initLlamaWeights, type Weights } from '../../../src-main/model/params.js';
import { useBackend } from '../../../src-main/tensor/backend.js';
import { tf } from '../../../src-main/tensor/tf.js';

const tok = new ByteTokenizer();
const cfg = makeLlamaConfig({
  vocabSize: 256,
  hiddenSize: 16,
  intermediateSize: 24,
  numLayers: 2,
  numHeads: 2,
  numKvHeads: 1,
  padTokenId: 0,
});
const N_EXPERTS = 4;

const item = (domain: string, id: number, prompt: string, answer: string, choices?: string[]): EvalItem => ({
  domain,
  id: `${domain}-${id}`,
  prompt,
  answer,
  metric: choices ? 'choice' : 'exact',
  ...(choices ? { choices } : {}),
});

const items: EvalItem[] = [
  item('arith', 0, 'Ann has 3 apples and buys 4 more. How many?', '3+4=7. #### 7'),
  item('code', 0, 'x = 2\nprint(x * 5)', '10'),
  item('qa', 0, 'What is the capital of Velmora?', 'Ostrik'),
  item('arith', 1, 'What is 12 - 5?', '#### 7'),
  item('mc', 0, 'Which animal has 6 legs?\nA) cat B) ant', 'ant', ['cat', 'ant']),
  item('code', 1, 'def f(a):\n    return a + 1\nprint(f(41))', '42'),
  item('qa', 1, 'Who founded Brindle Co?', 'Mara Quell'),
  item('mc', 1, 'What colour is a crow?', 'black', ['black', 'white', 'green']),
  item('arith', 2, 'A box holds 6 eggs. How many eggs are in 3 boxes?', '6*3=18. #### 18'),
];

const textIds = (it: EvalItem): number[] => {
  const r = renderExample({ prompt: it.prompt, response: it.answer });
  return tok.encode(r.prompt + r.response);
};

function model(w: Weights, moe: MoeWeights, spec: MoeSpec): RoutingModel {
  return {
    cfg,
    weights: w,
    tokenizer: tok,
    moe: { spec, hook: (o) => moeMlpHook(cfg, w, moe, spec, o) },
  };
}

/** Top-k slot counts [layer][domain][expert] and token counts from one unbatched forward per item. */
function bruteForce(m: RoutingModel): { slots: Map<string, number>; tokens: Map<string, number> } {
  const slots = new Map<string, number>();
  const tokens = new Map<string, number>();
  for (const it of items) {
    const ids = textIds(it);
    tokens.set(it.domain, (tokens.get(it.domain) ?? 0) + ids.length);
    const hook = m.moe.hook({
      onRouting: (layer, _p, topIdx) => {
        expect(topIdx.shape).toEqual([ids.length, m.moe.spec.topK]);
        for (const e of topIdx.dataSync()) {
          const key = `${layer}/${it.domain}/${e}`;
          slots.set(key, (slots.get(key) ?? 0) + 1);
        }
      },
    });
    tf.tidy(() => {
      llamaForward(cfg, m.weights, tf.tensor2d([ids], undefined, 'int32'), { mlp: hook });
    });
  }
  return { slots, tokens };
}

function byKey(stats: readonly RoutingStat[]): Map<string, RoutingStat> {
  return new Map(stats.map((s) => [`${s.layer}/${s.domain}/${s.expert}`, s]));
}

describe.each(['cpu', 'wasm'] as const)('routing analysis on a micro FFN-MoE (%s)', (backend) => {
  let w: Weights;
  let host: Map<string, HostTensor>;
  const owned: MoeWeights[] = [];

  function ffnMoe(spec: MoeSpec, routers: HostTensor[]): MoeWeights {
    const ffn = ffnExpertsFromDense(cfg, host, spec.numExperts);
    const rng = new Rng(5);
    for (const layer of ffn)
      for (const e of layer)
        for (const t of [e.w1, e.w2, e.w3]) t.data.forEach((v, i) => (t.data[i] = v + 0.3 * rng.normal()));
    const moeHost: MoeHost = { routers, ffn };
    const moe = moeFromHost(spec, moeHost);
    owned.push(moe);
    return moe;
  }

  beforeAll(async () => {
    await useBackend(backend);
    expect(tf.getBackend()).toBe(backend);
    host = initLlamaWeights(cfg, new Rng(3), 0.3);
    w = weightsFromHost(host);
  });
  afterAll(() => {
    disposeWeights(w);
    for (const m of owned) disposeMoe(m);
  });

  it('equals a brute-force count of the top-k choices; fractions sum to 1; tokens are the real tokens', async () => {
    const spec: MoeSpec = { numExperts: N_EXPERTS, topK: 2, kind: 'ffn' };
    const m = model(w, ffnMoe(spec, initRouters(cfg, N_EXPERTS, new Rng(4), 1)), spec);
    const before = tf.memory().numTensors;
    const stats = await routingAnalysis(m, items, { batchSize: 4 });
    expect(tf.memory().numTensors).toBe(before);

    const domains = ['arith', 'code', 'qa', 'mc'];
    expect(stats).toHaveLength(cfg.numLayers * domains.length * N_EXPERTS);
    // layer, then domain in first-appearance order, then expert
    expect(stats.slice(0, 2 * N_EXPERTS).map((s) => `${s.layer}/${s.domain}/${s.expert}`)).toEqual([
      ...[0, 1, 2, 3].map((e) => `0/arith/${e}`),
      ...[0, 1, 2, 3].map((e) => `0/code/${e}`),
    ]);
    const ref = bruteForce(m);
    const got = byKey(stats);
    for (let l = 0; l < cfg.numLayers; l++) {
      for (const d of domains) {
        const tokens = ref.tokens.get(d)!;
        let sum = 0;
        for (let e = 0; e < N_EXPERTS; e++) {
          const s = got.get(`${l}/${d}/${e}`)!;
          expect(s.tokens).toBe(tokens);
          expect(s.fraction, `${l}/${d}/${e}`).toBeCloseTo(
            (ref.slots.get(`${l}/${d}/${e}`) ?? 0) / (2 * tokens),
            12,
          );
          sum += s.fraction;
        }
        expect(sum).toBeCloseTo(1, 12);
      }
    }
    // the routing is not trivial: some domain uses more than one expert at some layer
    expect(stats.some((s) => s.fraction > 0 && s.fraction < 0.5)).toBe(true);
  });

  it('does not depend on the batching (batch 1, 4, 16 and a token cap give the same statistics)', async () => {
    const spec: MoeSpec = { numExperts: N_EXPERTS, topK: 1, kind: 'ffn' };
    const m = model(w, ffnMoe(spec, initRouters(cfg, N_EXPERTS, new Rng(6), 1)), spec);
    const one = await routingAnalysis(m, items, { batchSize: 1 });
    expect(await routingAnalysis(m, items, { batchSize: 4 })).toEqual(one);
    expect(await routingAnalysis(m, items, { batchSize: 16 })).toEqual(one);
    expect(await routingAnalysis(m, items, { batchSize: 16, maxBatchTokens: 150 })).toEqual(one);
  });

  it('a router that prefers expert j for every token gives fraction 1 at j (top-1), 1/2 at j (top-2)', async () => {
    // A constant first feature in every token's embedding keeps u[0] > 0 after every norm; router row j
    // reads it with a large positive weight, the other rows with a large negative one.
    const embed = host.get(EMBED)!;
    const hostC = new Map(host);
    const e2 = { shape: [...embed.shape], data: Float32Array.from(embed.data) };
    for (let v = 0; v < cfg.vocabSize; v++) e2.data[v * cfg.hiddenSize] = 5;
    hostC.set(EMBED, e2);
    const wc = weightsFromHost(hostC);
    try {
      const favourite = [2, 1]; // per layer
      const routers: HostTensor[] = favourite.map((j) => {
        const data = new Float32Array(N_EXPERTS * cfg.hiddenSize);
        for (let e = 0; e < N_EXPERTS; e++) data[e * cfg.hiddenSize] = e === j ? 20 : -20;
        return { shape: [N_EXPERTS, cfg.hiddenSize], data };
      });
      for (const topK of [1, 2]) {
        const spec: MoeSpec = { numExperts: N_EXPERTS, topK, kind: 'ffn' };
        const m = model(wc, ffnMoe(spec, routers), spec);
        const stats = await routingAnalysis(m, items, { batchSize: 3 });
        for (const s of stats) {
          const expected = s.expert === favourite[s.layer] ? 1 / topK : topK === 1 ? 0 : undefined;
          if (expected !== undefined) expect(s.fraction, `${s.layer}/${s.domain}/${s.expert}`).toBe(expected);
        }
      }
    } finally {
      disposeWeights(wc);
    }
  });

  it('reports progress per batch, honours an abort, and cuts long items to maxSeqLen', async () => {
    const spec: MoeSpec = { numExperts: N_EXPERTS, topK: 2, kind: 'ffn' };
    const m = model(w, ffnMoe(spec, initRouters(cfg, N_EXPERTS, new Rng(8), 1)), spec);
    const progress: number[] = [];
    await routingAnalysis(m, items, { batchSize: 4, onProgress: (p) => progress.push(p.done) });
    expect(progress).toEqual([4, 8, 9]);

    const ac = new AbortController();
    const before = tf.memory().numTensors;
    const run = routingAnalysis(m, items, {
      batchSize: 2,
      signal: ac.signal,
      onProgress: () => ac.abort(new Error('stop')),
    });
    await expect(run).rejects.toThrow('stop');
    expect(tf.memory().numTensors).toBe(before);

    const cut = await routingAnalysis(m, items, { batchSize: 4, maxSeqLen: 20 });
    for (const s of cut) expect(s.tokens).toBe(20 * items.filter((i) => i.domain === s.domain).length);
  });
});
