/**
 * The evaluator on a real (tiny, random) Llama: log-likelihoods and perplexities against an
 * independent computation (one unbatched llamaLogits call per sequence + a float64 log-softmax
 * in JS), batching invariance, LoRA / MLP-hook plumbing, generation, and tensor leaks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../../src-main/common/rng.js';
import { buildSuite, formatPrompt, type EvalItem } from '../../../src-main/data/index.js';
import { evaluate } from '../../../src-main/eval/evaluate.js';
import { perplexity } from '../../../src-main/eval/perplexity.js';
import { llamaScorable, type Scorable } from '../../../src-main/eval/scorable.js';
import { ByteTokenizer } from '../../../src-main/io/tokenizer.js';
import { makeLlamaConfig } from '../../../src-main/model/config.js';
import { greedyGenerate } from '../../../src-main/model/generate.js';
import { llamaLogits, mlp, type ForwardOptions, type MlpHook } from '../../../src-main/model/llama.js';
import { disposeWeights, weightsFromHost } from '../../../src-main/model/load.js';
import { disposeLora, initLora, loraState, type LoraState } from '../../../src-main/model/lora.js';
import { initLlamaWeights, type Weights } from '../../../src-main/model/params.js';
import { useBackend } from '../../../src-main/tensor/backend.js';
import { tf } from '../../../src-main/tensor/tf.js';

const tok = new ByteTokenizer();
const cfg = makeLlamaConfig({
  vocabSize: 256,
  hiddenSize: 16,
  intermediateSize: 32,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  eosTokenId: 3,
  padTokenId: 0,
});
// level 2 items: the tolerances below were set on their lengths and values
const suite = buildSuite({
  seed: 3,
  trainPerDomain: 2,
  evalPerDomain: 3,
  worldSize: 40,
  difficulty: { arith: 2, code: 2, qa: 2, mc: 2 },
});
const mcItems = suite.eval.filter((i) => i.metric === 'choice');
const examples = suite.train.slice(0, 6);

/** Σ log p(ids[t+1] | ids[..t]) for t ≥ from−1, from one unbatched forward, log-softmax in float64. */
function refLogLik(w: Weights, ids: number[], from: number, fwd: ForwardOptions = {}): number {
  const logits = tf.tidy(() => llamaLogits(cfg, w, tf.tensor2d([ids.slice(0, -1)], undefined, 'int32'), fwd));
  const d = logits.dataSync();
  logits.dispose();
  const V = cfg.vocabSize;
  let s = 0;
  for (let t = from - 1; t < ids.length - 1; t++) {
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, d[t * V + v]!);
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(d[t * V + v]! - m);
    s += d[t * V + ids[t + 1]!]! - m - Math.log(z);
  }
  return s;
}

const bytes = (s: string) => [...Buffer.from(s, 'utf8')];

describe.each(['cpu', 'wasm'] as const)('evaluator on a tiny Llama (%s)', (backend) => {
  let w: Weights;
  let lora: LoraState;
  let model: Scorable;
  beforeAll(async () => {
    await useBackend(backend);
    expect(tf.getBackend()).toBe(backend);
    w = weightsFromHost(initLlamaWeights(cfg, new Rng(7), 0.5));
    const spec = { r: 2, alpha: 4, targets: ['q_proj', 'up_proj'] };
    const host = initLora(cfg, spec, new Rng(8));
    const rng = new Rng(9);
    for (const b of host.B.values()) b.data.forEach((_, i) => (b.data[i] = 0.5 * rng.normal()));
    lora = loraState(spec, host);
    model = llamaScorable({ cfg, weights: w, tokenizer: tok });
  });
  afterAll(() => {
    disposeWeights(w);
    disposeLora(lora);
  });

  it('scores each choice by the summed log-likelihood of its continuation, batch-invariant', async () => {
    expect(mcItems.length).toBeGreaterThanOrEqual(3);
    const before = tf.memory().numTensors;
    const r1 = await evaluate(model, mcItems, { batchSize: 1 });
    const r5 = await evaluate(model, mcItems, { batchSize: 5 });
    expect(tf.memory().numTensors).toBe(before);
    for (const [k, item] of mcItems.entries()) {
      const ctx = formatPrompt(item.prompt);
      const ref = item.choices!.map((c) => refLogLik(w, bytes(ctx + c + '\n'), bytes(ctx).length));
      const got = r5.items[k]!.choice!;
      got.logLik.forEach((l, i) => expect(l).toBeCloseTo(ref[i]!, 3));
      got.logLikNorm.forEach((l, i) =>
        expect(l).toBeCloseTo(ref[i]! / (bytes(item.choices![i]!).length + 1), 4),
      );
      const best = ref.indexOf(Math.max(...ref));
      expect(got.predAcc).toBe(best);
      r1.items[k]!.choice!.logLik.forEach((l, i) => expect(l).toBeCloseTo(got.logLik[i]!, 4));
      expect(r1.items[k]!.choice!.predNorm).toBe(got.predNorm);
    }
    // make the model "know" the answer: relabel each item with the option it prefers
    const relabeled: EvalItem[] = r5.items.map((res, k) => ({
      ...mcItems[k]!,
      answer: mcItems[k]!.choices![res.choice!.predNorm]!,
    }));
    const again = await evaluate(model, relabeled, { batchSize: 3 });
    expect(again.perDomain.find((d) => d.metric === 'acc_norm')!.score).toBe(1);
  });

  it('perplexity is exp of the masked mean response NLL, per example and overall, batch-invariant', async () => {
    const before = tf.memory().numTensors;
    const p1 = await perplexity(model, examples, { batchSize: 1 });
    const p4 = await perplexity(model, examples, { batchSize: 4 });
    expect(tf.memory().numTensors).toBe(before);
    let sum = 0;
    let count = 0;
    examples.forEach((ex, k) => {
      const ctx = bytes(formatPrompt(ex.prompt));
      const resp = bytes(ex.response + '\n');
      const ll = refLogLik(w, [...ctx, ...resp], ctx.length);
      sum -= ll;
      count += resp.length;
      expect(p4.perExampleTokens[k]).toBe(resp.length);
      expect(p4.perExample[k]).toBeCloseTo(Math.exp(-ll / resp.length), 3);
      expect(Math.abs(p4.perExampleNll[k]! - -ll / resp.length)).toBeLessThan(1e-4);
      expect(Math.abs(p1.perExampleNll[k]! - p4.perExampleNll[k]!)).toBeLessThan(1e-5);
    });
    expect(p4.tokens).toBe(count);
    expect(Math.abs(p4.meanNll - sum / count)).toBeLessThan(1e-4);
    expect(p4.ppl).toBeCloseTo(Math.exp(sum / count), 3);
    // raw template: the response bytes given the prompt verbatim
    const raw = await perplexity(model, [{ prompt: 'ab', response: 'cd' }], {
      batchSize: 1,
      template: 'raw',
    });
    expect(raw.perExampleNll[0]).toBeCloseTo(-refLogLik(w, bytes('abcd'), 2) / 2, 4);
  });

  it('uses the LoRA adapter and the MLP hook of the handle', async () => {
    const ex = examples.slice(0, 3);
    const withLora = await perplexity(llamaScorable({ cfg, weights: w, lora, tokenizer: tok }), ex, {
      batchSize: 2,
    });
    const zeroMlp: MlpHook = (layer, u) => (layer === 1 ? tf.zerosLike(u) : null);
    const withHook = await perplexity(llamaScorable({ cfg, weights: w, mlp: zeroMlp, tokenizer: tok }), ex, {
      batchSize: 2,
    });
    const denseHook: MlpHook = (layer, u) => mlp(w, layer, u);
    const viaDenseHook = await perplexity(
      llamaScorable({ cfg, weights: w, mlp: denseHook, tokenizer: tok }),
      ex,
      {
        batchSize: 2,
      },
    );
    const dense = await perplexity(model, ex, { batchSize: 2 });
    ex.forEach((e, k) => {
      const ctx = bytes(formatPrompt(e.prompt));
      const ids = [...ctx, ...bytes(e.response + '\n')];
      const n = ids.length - ctx.length;
      expect(withLora.perExampleNll[k]).toBeCloseTo(-refLogLik(w, ids, ctx.length, { lora }) / n, 4);
      expect(withHook.perExampleNll[k]).toBeCloseTo(-refLogLik(w, ids, ctx.length, { mlp: zeroMlp }) / n, 4);
      expect(viaDenseHook.perExampleNll[k]).toBeCloseTo(dense.perExampleNll[k]!, 5);
    });
    expect(Math.abs(withLora.meanNll - dense.meanNll)).toBeGreaterThan(1e-3);
    expect(Math.abs(withHook.meanNll - dense.meanNll)).toBeGreaterThan(1e-3);
  });

  it('exact match: batched generation equals each prompt decoded alone, cut at the newline', async () => {
    const prompts = [
      'Which city is big?',
      'x=1\nprint(x)',
      'What is 12+30?',
      'Hi',
      'Tell me about Mopononia.',
    ];
    const maxNew = 8;
    const alone = prompts.map((p) => {
      const g = greedyGenerate({ cfg, weights: w }, [bytes(formatPrompt(p))], {
        maxNewTokens: maxNew,
        eosId: null,
      })[0]!;
      const cut = g.findIndex((t) => t === 10 || t === 3);
      return tok.decode(cut < 0 ? g : g.slice(0, cut));
    });
    // answers: what the model says for even items, something else for odd ones
    const items: EvalItem[] = prompts.map((p, i) => ({
      domain: i < 2 ? 'code' : 'qa',
      id: `e${i}`,
      prompt: p,
      answer: i % 2 === 0 ? alone[i]! : `not ${alone[i]}`,
      metric: 'exact',
    }));
    const before = tf.memory().numTensors;
    const progress: number[] = [];
    const r = await evaluate(model, items, {
      batchSize: 2,
      maxNewTokens: maxNew,
      onProgress: (p) => progress.push(p.done),
    });
    const r1 = await evaluate(model, items, { batchSize: 1, maxNewTokens: maxNew });
    expect(tf.memory().numTensors).toBe(before);
    expect(progress).toEqual([2, 4, 5]);
    expect(r.items.map((x) => x.prediction)).toEqual(alone);
    expect(r1.items).toEqual(r.items);
    expect(r.items.map((x) => x.correct)).toEqual([true, false, true, false, true]);
    expect(r.perDomain.map((d) => [d.domain, d.correct, d.n])).toEqual([
      ['code', 1, 2],
      ['qa', 2, 3],
    ]);
  });
});
