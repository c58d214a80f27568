/**
 * Stage 4 (upit/upcycle.ts): assembling the MoE from experts and routers (checks, identical
 * experts = the dense model), and post-training with the load-balancing loss reporting per-layer
 * expert load and router entropy.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../../src-main/common/rng.js';
import type { HostTensor } from '../../../src-main/io/host-tensor.js';
import { ByteTokenizer } from '../../../src-main/io/tokenizer.js';
import { makeLlamaConfig } from '../../../src-main/model/config.js';
import { llamaLogits } from '../../../src-main/model/llama.js';
import { disposeWeights, weightsFromHost } from '../../../src-main/model/load.js';
import { initLora } from '../../../src-main/model/lora.js';
import { disposeMoe, initRouters, moeFromHost, moeLogits } from '../../../src-main/model/moe.js';
import { initLlamaWeights, MLP_PROJ, projModule } from '../../../src-main/model/params.js';
import { useBackend } from '../../../src-main/tensor/backend.js';
import { tf } from '../../../src-main/tensor/tf.js';
import type { StepInfo } from '../../../src-main/train/trainer.js';
import type { ExpertWeights } from '../../../src-main/upit/route.js';
import { assembleMoe, upcycle, type MoeTrainable } from '../../../src-main/upit/upcycle.js';
import { anyModelLogits, loadAnyModel } from '../../../src-main/model/load-any.js';
import { saveLoraMoe } from '../../../src-main/model/lora-moe.js';
import { mixtralConfigFromLlama, saveMixtral } from '../../../src-main/model/mixtral.js';
import { tempDir } from './helpers.js';
import { join } from 'node:path';

const cfg = makeLlamaConfig({
  vocabSize: 256,
  hiddenSize: 32,
  intermediateSize: 48,
  numLayers: 2,
  numHeads: 2,
  numKvHeads: 1,
});
const spec = { r: 4, alpha: 8, targets: ['gate_proj', 'up_proj', 'down_proj'] };

function denseMlp(w: Map<string, HostTensor>): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (let l = 0; l < cfg.numLayers; l++)
    for (const p of MLP_PROJ) out.set(`${projModule(l, p)}.weight`, w.get(`${projModule(l, p)}.weight`)!);
  return out;
}

describe('assembling the MoE', () => {
  const w = initLlamaWeights(cfg, new Rng(1));
  const routers = initRouters(cfg, 3, new Rng(2));
  const ffn: ExpertWeights = { kind: 'ffn', mlp: denseMlp(w) };
  const lora: ExpertWeights = { kind: 'lora', spec, lora: initLora(cfg, spec, new Rng(3)) };

  it('rejects what cannot be an MoE, naming the problem', () => {
    expect(() => assembleMoe(cfg, [ffn, ffn, ffn], routers, 4)).toThrow(/topK must be in \[1, 3\]/);
    expect(() =>
      assembleMoe(
        cfg,
        [ffn],
        routers.map((r) => ({ ...r, shape: [1, 32] })),
        1,
      ),
    ).toThrow(/at least 2 experts/);
    expect(() => assembleMoe(cfg, [ffn, lora, ffn], routers, 2)).toThrow(/mix LoRA and FFN/);
    expect(() => assembleMoe(cfg, [ffn, ffn, ffn], routers.slice(1), 2)).toThrow(/1 routers for 2 layers/);
    const other = {
      kind: 'lora' as const,
      spec: { ...spec, r: 2 },
      lora: initLora(cfg, { ...spec, r: 2 }, new Rng(4)),
    };
    expect(() => assembleMoe(cfg, [lora, other, lora], routers, 2)).toThrow(/expert 1's LoRA spec/);
  });

  it('lays FFN experts out as Mixtral (w1 gate, w2 down, w3 up) and LoRA experts over the shared W0', () => {
    const f = assembleMoe(cfg, [ffn, ffn, ffn], routers, 2);
    expect(f.spec).toEqual({ numExperts: 3, topK: 2, kind: 'ffn' });
    expect(f.host.ffn![1]![2]!.w2).toBe(w.get(`${projModule(1, 'down_proj')}.weight`));
    const l = assembleMoe(cfg, [lora, lora, lora], routers, 1);
    expect(l.spec).toEqual({ numExperts: 3, topK: 1, kind: 'lora', lora: spec });
    expect(l.host.lora).toHaveLength(3);
  });
});

describe.each(['cpu', 'wasm'] as const)('upcycling on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });
  const w = initLlamaWeights(cfg, new Rng(5));
  const tokenizer = new ByteTokenizer();

  it('n copies of the dense MLP are exactly the dense model, whatever the router', () => {
    const moe = assembleMoe(
      cfg,
      Array.from({ length: 4 }, () => ({ kind: 'ffn' as const, mlp: denseMlp(w) })),
      initRouters(cfg, 4, new Rng(6), 1),
      2,
    );
    const dw = weightsFromHost(w);
    const m = moeFromHost(moe.spec, moe.host);
    const ids = tf.tensor2d([[1, 50, 60, 70, 80, 90]], [1, 6], 'int32');
    try {
      const a = llamaLogits(cfg, dw, ids);
      const b = moeLogits(cfg, dw, m, moe.spec, ids);
      const d = tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!;
      expect(d).toBeLessThan(1e-5);
      tf.dispose([a, b]);
    } finally {
      ids.dispose();
      disposeMoe(m);
      disposeWeights(dw);
    }
  });

  it('post-training lowers the loss and reports load (summing to 1 per layer), entropy and L_aux', async () => {
    const lora = (seed: number): ExpertWeights => {
      const h = initLora(cfg, spec, new Rng(seed));
      return { kind: 'lora', spec, lora: h };
    };
    const n = 4;
    const moe = assembleMoe(
      cfg,
      Array.from({ length: n }, (_, i) => lora(10 + i)),
      initRouters(cfg, n, new Rng(7)),
      2,
    );
    const examples = Array.from({ length: 16 }, (_, i) => ({ prompt: `x${i % 4}`, response: 'yes yes yes' }));
    const steps: StepInfo[] = [];
    const before = tf.memory().numTensors;
    const out = await upcycle(
      { cfg, weights: w, tokenizer },
      moe,
      examples,
      {
        auxCoef: 0.01,
        zCoef: 0.001,
        epochs: 3,
        lr: 1e-2,
        warmupRatio: 0,
        weightDecay: 0,
        clipNorm: 1,
        batchSize: 4,
        gradAccum: 1,
        maxSeqLen: 64,
        seed: 1,
      },
      { onStep: (s) => void steps.push(s) },
      async (model, result) => {
        const host = model.hostMoe();
        return {
          steps: result.steps,
          routerMoved: host.routers[0]!.data[0] !== moe.host.routers[0]!.data[0],
        };
      },
    );
    expect(tf.memory().numTensors).toBe(before);
    expect(out.steps).toBe(12);
    expect(out.routerMoved).toBe(true);
    expect(steps.at(-1)!.loss).toBeLessThan(steps[0]!.loss);
    for (const s of steps) {
      for (let l = 0; l < cfg.numLayers; l++) {
        const load = Array.from({ length: n }, (_, i) => s.metrics[`moe/load/l${l}/e${i}`]!);
        expect(load.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
        const h = s.metrics[`moe/entropy/l${l}`]!;
        expect(h).toBeGreaterThan(0);
        expect(h).toBeLessThanOrEqual(Math.log(n) + 1e-6);
      }
      expect(s.metrics['moe/aux']!).toBeGreaterThan(0.5); // n·Σ f·P: 1 when uniform, n when collapsed
      expect(s.metrics['moe/aux']!).toBeLessThanOrEqual(n);
      expect(s.metrics['moe/lm']!).toBeGreaterThan(0);
      expect(s.metrics['moe/z']!).toBeGreaterThan(0);
    }
  }, 60_000);

  it.each(['ffn', 'lora'] as const)(
    'the exported %s MoE (Mixtral / base + PEFT adapters) gives the in-app MoE’s logits',
    async (kind) => {
      const n = 3;
      const experts: ExpertWeights[] = Array.from({ length: n }, (_, e) => {
        if (kind === 'lora') {
          const h = initLora(cfg, spec, new Rng(20 + e));
          for (const b of h.B.values())
            for (let i = 0; i < b.data.length; i++) b.data[i] = 0.1 * Math.sin(i + e);
          return { kind: 'lora', spec, lora: h };
        }
        const mlp = new Map(
          [...denseMlp(w)].map(([k, t]) => [
            k,
            { shape: t.shape, data: t.data.map((x, i) => x * (1 + 0.1 * Math.sin(i + e))) },
          ]),
        );
        return { kind: 'ffn', mlp };
      });
      const moe = assembleMoe(cfg, experts, initRouters(cfg, n, new Rng(8), 0.5), 2);
      const dir = join(tempDir(), 'moe');
      const ids = tf.tensor2d([[2, 81, 58, 32, 49, 43, 49, 10]], [1, 8], 'int32');
      const diff = await upcycle(
        { cfg, weights: w, tokenizer },
        moe,
        [{ prompt: 'q', response: 'a' }],
        {
          auxCoef: 0.01,
          zCoef: 0,
          epochs: 1,
          lr: 1e-2,
          warmupRatio: 0,
          weightDecay: 0,
          clipNorm: 1,
          batchSize: 1,
          gradAccum: 1,
          maxSeqLen: 32,
          seed: 1,
        },
        {},
        async (model: MoeTrainable) => {
          const host = model.hostMoe();
          if (kind === 'ffn')
            saveMixtral(dir, mixtralConfigFromLlama(cfg, { numExperts: n, topK: 2 }), w, host, tokenizer);
          else saveLoraMoe(dir, cfg, w, tokenizer, model.spec, host);
          const loaded = await loadAnyModel(dir);
          try {
            expect(loaded.kind).toBe(kind === 'ffn' ? 'mixtral' : 'lora-moe');
            return tf.tidy(() => {
              const a = moeLogits(cfg, model.weights, model.moe, model.spec, ids);
              const b = anyModelLogits(loaded, ids);
              return tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!;
            });
          } finally {
            loaded.dispose();
          }
        },
      );
      ids.dispose();
      expect(diff).toBeLessThan(1e-5);
    },
    60_000,
  );
});
