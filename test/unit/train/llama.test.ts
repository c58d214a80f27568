import { beforeAll, describe, expect, it } from 'vitest';

import { Rng } from '../../../src-main/common/rng.js';
import { makeLlamaConfig } from '../../../src-main/model/config.js';
import type { HostTensor } from '../../../src-main/io/host-tensor.js';
import { initLora } from '../../../src-main/model/lora.js';
import { initLlamaWeights } from '../../../src-main/model/params.js';
import { tf } from '../../../src-main/tensor/tf.js';
import { packDocuments } from '../../../src-main/train/batches.js';
import { llamaTrainable } from '../../../src-main/train/llama-trainable.js';
import { train } from '../../../src-main/train/trainer.js';
import { setupCpu } from './toy.js';

beforeAll(setupCpu);

// Tiny Llama: vocab 256 (bytes), d 32, 2 layers.
const cfg = makeLlamaConfig({
  vocabSize: 256,
  hiddenSize: 32,
  intermediateSize: 64,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  maxPositionEmbeddings: 64,
});
const text = 'the cat sat on the mat. the dog sat on the log. ';
const docs = Array.from({ length: 8 }, () => [...Buffer.from(text)]); // ~400 bytes
const examples = packDocuments(docs, { seqLen: 24, eos: 10 });
/** Trained by the first test; the LoRA test adapts it to a different text. */
let pretrained: Map<string, HostTensor> | null = null;

describe('trainer on a tiny Llama', () => {
  it('full fine-tuning drives the loss well below half its initial value', async () => {
    const model = llamaTrainable(cfg, initLlamaWeights(cfg, new Rng(1)), { mode: 'full' });
    const losses: number[] = [];
    const counts: number[] = [];
    await train(
      model,
      { examples, padId: 0 },
      { lr: 2e-2, batchSize: 4, maxSteps: 24, seed: 1, weightDecay: 0.01 },
      {
        onStep: (s) => {
          losses.push(s.loss);
          counts.push(tf.memory().numTensors);
        },
      },
    );
    pretrained = new Map(
      [...model.weights].map(([k, t]) => [k, { shape: [...t.shape], data: Float32Array.from(t.dataSync()) }]),
    );
    model.dispose();
    expect(losses[0]).toBeGreaterThan(5); // ≈ ln 256 = 5.55
    expect(Math.max(...losses.slice(-3))).toBeLessThan(0.5 * losses[0]!);
    expect(new Set(counts).size).toBe(1);
  });

  it('LoRA mode trains only A/B and still reduces the loss', async () => {
    const spec = { r: 8, alpha: 16, targets: ['q_proj', 'v_proj', 'gate_proj', 'up_proj', 'down_proj'] };
    expect(pretrained).not.toBeNull();
    const base = pretrained!;
    const other = 'a red fox ran by the old barn. ';
    const adapt = packDocuments(
      Array.from({ length: 12 }, () => [...Buffer.from(other)]),
      { seqLen: 24, eos: 10 },
    );
    const model = llamaTrainable(cfg, base, {
      mode: 'lora',
      lora: { spec, init: initLora(cfg, spec, new Rng(3)) },
    });
    expect([...model.params.keys()].every((k) => /\.lora_[AB]\.weight$/.test(k))).toBe(true);
    expect(model.params.size).toBe(2 * 5 * 2);
    const before = new Map([...model.weights].map(([k, t]) => [k, Float32Array.from(t.dataSync())]));
    const losses: number[] = [];
    await train(
      model,
      { examples: adapt, padId: 0 },
      { lr: 2e-2, batchSize: 4, maxSteps: 20, seed: 1 },
      { onStep: (s) => void losses.push(s.loss) },
    );
    expect(Math.max(...losses.slice(-3))).toBeLessThan(0.75 * losses[0]!);
    for (const [k, t] of model.weights) expect(Float32Array.from(t.dataSync())).toEqual(before.get(k));
    model.dispose();
  });
});
