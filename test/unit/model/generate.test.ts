import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../../src-main/common/rng.js';
import { makeLlamaConfig } from '../../../src-main/model/config.js';
import { greedyGenerate } from '../../../src-main/model/generate.js';
import { llamaLogits } from '../../../src-main/model/llama.js';
import { disposeLora, initLora, loraState } from '../../../src-main/model/lora.js';
import { disposeWeights, weightsFromHost } from '../../../src-main/model/load.js';
import { initLlamaWeights, type Weights } from '../../../src-main/model/params.js';
import { tf } from '../../../src-main/tensor/tf.js';
import type { LlamaConfig } from '../../../src-main/model/config.js';
import { numTensors, setBackend } from './helpers.js';

const cfg: LlamaConfig = makeLlamaConfig({
  vocabSize: 32,
  hiddenSize: 16,
  intermediateSize: 24,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  eosTokenId: 2,
  padTokenId: 0,
});
const prompts = [[5, 9, 13], [7], [1, 20, 3, 3, 8, 30, 11], [4, 4]];

/** Greedy decoding the slow way: full forward over the whole sequence for every new token. */
function naiveGreedy(w: Weights, prompt: number[], n: number, eos: number | null): number[] {
  const seq = [...prompt];
  const out: number[] = [];
  for (let s = 0; s < n; s++) {
    const next = tf.tidy(() => {
      const logits = llamaLogits(cfg, w, tf.tensor2d([seq], undefined, 'int32'));
      return tf
        .argMax(tf.reshape(tf.slice(logits, [0, seq.length - 1, 0], [1, 1, cfg.vocabSize]), [-1]))
        .dataSync()[0]!;
    });
    out.push(next);
    seq.push(next);
    if (next === eos) break;
  }
  return out;
}

describe.each(['cpu', 'wasm'] as const)('greedyGenerate on %s', (backend) => {
  let w: Weights;
  beforeAll(async () => {
    await setBackend(backend);
    w = weightsFromHost(initLlamaWeights(cfg, new Rng(21), 0.5));
  });
  afterAll(() => disposeWeights(w));

  it('with the KV cache equals the full-recompute greedy decode', () => {
    for (const p of [prompts[0]!, prompts[2]!]) {
      expect(greedyGenerate({ cfg, weights: w }, [p], { maxNewTokens: 6, eosId: null })).toEqual([
        naiveGreedy(w, p, 6, null),
      ]);
    }
  });

  it('batched with left padding equals each prompt alone, without leaking tensors', () => {
    const before = numTensors();
    const alone = prompts.map(
      (p) => greedyGenerate({ cfg, weights: w }, [p], { maxNewTokens: 10, eosId: null })[0]!,
    );
    const batched = greedyGenerate({ cfg, weights: w }, prompts, { maxNewTokens: 10, eosId: null });
    expect(batched).toEqual(alone);
    expect(new Set(alone.map((x) => x.join(','))).size).toBeGreaterThan(1); // not a degenerate model
    expect(numTensors()).toBe(before);
  });

  it('stops each sequence at its EOS (included) and keeps the others going', () => {
    const free = greedyGenerate({ cfg, weights: w }, prompts, { maxNewTokens: 6, eosId: null });
    const eos = free[2]![1]!; // the second token generated for prompt 2
    const stopped = greedyGenerate({ cfg, weights: w }, prompts, { maxNewTokens: 6, eosId: eos });
    for (const [b, f] of free.entries()) {
      const k = f.indexOf(eos);
      expect(stopped[b]).toEqual(k < 0 ? f : f.slice(0, k + 1));
    }
    expect(stopped[2]!.length).toBeLessThanOrEqual(2);
    // default: the config's EOS ids
    const dflt = greedyGenerate({ cfg, weights: w }, prompts, { maxNewTokens: 6 });
    for (const [b, f] of free.entries()) {
      const k = f.indexOf(2);
      expect(dflt[b]).toEqual(k < 0 ? f : f.slice(0, k + 1));
    }
  });

  it('batched equals unbatched with a LoRA adapter too', () => {
    const spec = { r: 2, alpha: 4, targets: ['q_proj', 'up_proj'] };
    const host = initLora(cfg, spec, new Rng(4));
    const rng = new Rng(5);
    for (const b of host.B.values()) b.data.forEach((_, i) => (b.data[i] = 0.5 * rng.normal()));
    const lora = loraState(spec, host);
    const alone = prompts.map(
      (p) => greedyGenerate({ cfg, weights: w, lora }, [p], { maxNewTokens: 5, eosId: null })[0]!,
    );
    expect(greedyGenerate({ cfg, weights: w, lora }, prompts, { maxNewTokens: 5, eosId: null })).toEqual(
      alone,
    );
    disposeLora(lora);
  });
});
