import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../../src-main/common/rng.js';
import { makeLlamaConfig } from '../../../src-main/model/config.js';
import { llamaHidden, llamaLogits, mlp, ropeInvFreq } from '../../../src-main/model/llama.js';
import { disposeLora, initLora, loraState } from '../../../src-main/model/lora.js';
import { disposeWeights, weightsFromHost } from '../../../src-main/model/load.js';
import { initLlamaWeights, type Weights } from '../../../src-main/model/params.js';
import { tf } from '../../../src-main/tensor/tf.js';
import { maxAbsDiff, numTensors, setBackend } from './helpers.js';

const cfg = makeLlamaConfig({
  vocabSize: 20,
  hiddenSize: 12,
  intermediateSize: 16,
  numLayers: 2,
  numHeads: 3,
  numKvHeads: 1,
});
const ids = [
  [1, 5, 9, 3, 17, 2],
  [4, 4, 0, 19, 8, 11],
];

describe.each(['cpu', 'wasm'] as const)('forward pass on %s', (backend) => {
  let w: Weights;
  let x: tf.Tensor;
  beforeAll(async () => {
    await setBackend(backend);
    w = weightsFromHost(initLlamaWeights(cfg, new Rng(3), 0.5));
    x = tf.tensor2d(ids, undefined, 'int32');
    return () => {
      disposeWeights(w);
      x.dispose();
    };
  });

  it('the MLP hook sees [B,T,D] per layer; null keeps the dense MLP; a replacement is used', () => {
    const before = numTensors();
    const base = llamaLogits(cfg, w, x);
    const seen: [number, number[]][] = [];
    const viaNull = llamaLogits(cfg, w, x, {
      mlp: (layer, u) => {
        seen.push([layer, u.shape]);
        return null;
      },
    });
    expect(seen).toEqual([
      [0, [2, 6, 12]],
      [1, [2, 6, 12]],
    ]);
    const viaDense = llamaLogits(cfg, w, x, { mlp: (layer, u) => mlp(w, layer, u) });
    const viaZero = llamaLogits(cfg, w, x, { mlp: (_l, u) => tf.zerosLike(u) });
    expect(maxAbsDiff(viaNull.dataSync(), base.dataSync())).toBe(0);
    expect(maxAbsDiff(viaDense.dataSync(), base.dataSync())).toBe(0);
    expect(maxAbsDiff(viaZero.dataSync(), base.dataSync())).toBeGreaterThan(1e-2);
    tf.dispose([base, viaNull, viaDense, viaZero]);
    expect(numTensors()).toBe(before);
  });

  it('llamaHidden is the final-norm hidden state and leaks nothing', () => {
    const before = numTensors();
    const h = llamaHidden(cfg, w, x);
    expect(h.shape).toEqual([2, 6, 12]);
    const logits = llamaLogits(cfg, w, x);
    const viaHidden = tf.tidy(() =>
      tf.matMul(tf.reshape(h, [12, 12]), w.get('lm_head.weight')!, false, true),
    );
    expect(maxAbsDiff(viaHidden.dataSync(), logits.dataSync())).toBeLessThan(1e-5);
    tf.dispose([h, logits, viaHidden]);
    expect(numTensors()).toBe(before);
  });

  it('explicit position ids equal the default 0..T-1; stretched ones change the result', () => {
    const pos = tf.tensor2d([[0, 1, 2, 3, 4, 5]], undefined, 'int32');
    const shifted = tf.tensor2d([[0, 2, 4, 6, 8, 10]], undefined, 'int32');
    const a = llamaLogits(cfg, w, x);
    const b = llamaLogits(cfg, w, x, { positionIds: pos });
    const c = llamaLogits(cfg, w, x, { positionIds: shifted });
    expect(maxAbsDiff(a.dataSync(), b.dataSync())).toBe(0);
    expect(maxAbsDiff(a.dataSync(), c.dataSync())).toBeGreaterThan(1e-3);
    tf.dispose([pos, shifted, a, b, c]);
  });

  it('inv_freq follows HF (default, linear, llama3)', () => {
    const c = makeLlamaConfig({
      vocabSize: 4,
      hiddenSize: 16,
      intermediateSize: 4,
      numLayers: 1,
      numHeads: 1,
      ropeTheta: 10000,
    });
    const inv = ropeInvFreq(c);
    for (let i = 0; i < 8; i++) expect(inv[i]).toBeCloseTo(1 / Math.pow(10000, (2 * i) / 16), 6);
    const lin = ropeInvFreq({ ...c, ropeScaling: { type: 'linear', factor: 4 } });
    for (let i = 0; i < 8; i++) expect(lin[i]).toBeCloseTo(inv[i]! / 4, 7);
    const l3 = ropeInvFreq({
      ...c,
      ropeScaling: {
        type: 'llama3',
        factor: 4,
        lowFreqFactor: 1,
        highFreqFactor: 4,
        originalMaxPositionEmbeddings: 32,
      },
    });
    expect(l3[0]).toBe(inv[0]); // wavelength 2π < 8: unchanged
    expect(l3[7]).toBeCloseTo(inv[7]! / 4, 9); // long wavelength: divided by the factor
    expect(l3[1]! < inv[1]! && l3[1]! > inv[1]! / 4).toBe(true); // medium band: smoothed
  });

  it('gradients flow to LoRA factors and match finite differences', () => {
    const spec = {
      r: 2,
      alpha: 4,
      targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    };
    const host = initLora(cfg, spec, new Rng(8));
    const rng = new Rng(9);
    for (const b of host.B.values()) b.data.forEach((_, i) => (b.data[i] = 0.3 * rng.normal()));
    const lora = loraState(spec, host, true);
    // weights of the logits in the loss; zero at the padded positions (as a masked LM loss is):
    // a fully masked query row has constant (uniform) attention whose autodiff gradient is not 0
    const r = Float32Array.from({ length: 2 * 6 * 20 }, () => rng.normal()).fill(0, 0, 2 * 20);
    const R = tf.tensor(r, [2, 6, 20]);
    const mask = tf.tensor2d([
      [0, 0, 1, 1, 1, 1],
      [1, 1, 1, 1, 1, 1],
    ]);
    const loss = () => tf.sum(tf.mul(llamaLogits(cfg, w, x, { lora, attentionMask: mask }), R)) as tf.Scalar;
    const before = numTensors();
    const { value, grads } = tf.variableGrads(loss, [
      ...lora.A.values(),
      ...lora.B.values(),
    ] as tf.Variable[]);
    const names = Object.keys(grads);
    expect(names.length).toBe(4 * 7);
    // check a few coordinates of a few modules against central differences
    for (const m of [
      'model.layers.0.self_attn.q_proj',
      'model.layers.1.self_attn.k_proj',
      'model.layers.0.mlp.down_proj',
    ]) {
      for (const which of ['A', 'B'] as const) {
        const v = (which === 'A' ? lora.A : lora.B).get(m) as tf.Variable;
        const g = grads[v.name]!.dataSync();
        const base = Float32Array.from(v.dataSync());
        for (const j of [0, 3]) {
          const eps = 1e-2;
          const at = (delta: number): number => {
            const d = Float32Array.from(base);
            d[j] = d[j]! + delta;
            tf.tidy(() => v.assign(tf.tensor(d, v.shape)));
            return tf.tidy(() => loss().dataSync()[0]!);
          };
          const fd = (at(eps) - at(-eps)) / (2 * eps);
          tf.tidy(() => v.assign(tf.tensor(base, v.shape)));
          expect(Math.abs(fd - g[j]!)).toBeLessThan(2e-2 * Math.max(1, Math.abs(fd)));
        }
      }
    }
    tf.dispose([value, ...Object.values(grads)]);
    expect(numTensors()).toBe(before);
    tf.dispose([R, mask]);
    disposeLora(lora);
  });
});
