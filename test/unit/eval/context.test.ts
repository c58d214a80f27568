import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../../src-main/common/rng.js';
import { contextSensitivity } from '../../../src-main/eval/context.js';
import { makeLlamaConfig } from '../../../src-main/model/config.js';
import { llamaLogits } from '../../../src-main/model/llama.js';
import { disposeWeights, weightsFromHost } from '../../../src-main/model/load.js';
import { initLlamaWeights, type Weights } from '../../../src-main/model/params.js';
import { useBackend } from '../../../src-main/tensor/backend.js';
import { tf } from '../../../src-main/tensor/tf.js';

const cfg = makeLlamaConfig({
  vocabSize: 24,
  hiddenSize: 16,
  intermediateSize: 24,
  numLayers: 2,
  numHeads: 2,
});
const ids = [3, 7, 1, 9, 12, 5, 0, 22, 4, 17, 8, 2];

describe('contextSensitivity', () => {
  let w: Weights;
  beforeAll(async () => {
    await useBackend('cpu');
    w = weightsFromHost(initLlamaWeights(cfg, new Rng(5), 0.5));
  });
  afterAll(() => disposeWeights(w));

  it('measures each position: non-negative, zero where the token already is the substitute', () => {
    const before = tf.memory().numTensors;
    const r = contextSensitivity((x) => llamaLogits(cfg, w, x), ids, { substitute: 0, batchSize: 5 });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.sensitivity).toHaveLength(ids.length);
    for (const v of r.sensitivity) expect(v).toBeGreaterThanOrEqual(0);
    expect(r.sensitivity[6]).toBe(0); // ids[6] is the substitute
    expect(r.sensitivity[ids.length - 1]).toBeGreaterThan(0.01); // the last token always matters
    expect(Math.max(...r.sensitivity.slice(0, 4))).toBeGreaterThan(0); // attention reaches back
    expect(r.reach).toBeGreaterThanOrEqual(0);
    expect(r.top).toHaveLength(5);
    expect(r.top.reduce((s, t) => s + t.p, 0)).toBeLessThanOrEqual(1 + 1e-6);
    // the same figures in one batch
    const one = contextSensitivity((x) => llamaLogits(cfg, w, x), ids, { substitute: 0, batchSize: 64 });
    for (let j = 0; j < ids.length; j++) expect(one.sensitivity[j]).toBeCloseTo(r.sensitivity[j]!, 5);
  });

  it('finds no reach in a model whose attention adds nothing (an n-gram of one token)', () => {
    const blind: Weights = new Map(w);
    for (let l = 0; l < cfg.numLayers; l++) {
      const name = `model.layers.${l}.self_attn.o_proj.weight`;
      blind.set(name, tf.zerosLike(w.get(name)!));
    }
    const r = contextSensitivity((x) => llamaLogits(cfg, blind, x), ids, { substitute: 0, near: 0 });
    expect(r.sensitivity.slice(0, -1).every((v) => v < 1e-9)).toBe(true);
    expect(r.sensitivity[ids.length - 1]).toBeGreaterThan(0.01);
    expect(r.reach).toBe(0);
    expect(r.beyond).toBeLessThan(1e-8);
    for (let l = 0; l < cfg.numLayers; l++) blind.get(`model.layers.${l}.self_attn.o_proj.weight`)!.dispose();
  });
});
