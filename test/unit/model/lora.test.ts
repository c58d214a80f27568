import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../../src-main/common/rng.js';
import { UserError } from '../../../src-main/common/errors.js';
import type { HostTensor } from '../../../src-main/io/host-tensor.js';
import { makeLlamaConfig } from '../../../src-main/model/config.js';
import { llamaLogits } from '../../../src-main/model/llama.js';
import { weightsFromHost, disposeWeights } from '../../../src-main/model/load.js';
import {
  DEFAULT_LORA,
  disposeLora,
  initLora,
  loraDelta,
  loraDeltaHost,
  loraFromPeftTensors,
  loraState,
  loraToPeftTensors,
  parsePeftAdapterConfig,
  peftAdapterConfig,
  type LoraHost,
  type LoraSpec,
} from '../../../src-main/model/lora.js';
import { initLlamaWeights } from '../../../src-main/model/params.js';
import { tf } from '../../../src-main/tensor/tf.js';
import { maxAbsDiff, numTensors, setBackend } from './helpers.js';

const cfg = makeLlamaConfig({
  vocabSize: 24,
  hiddenSize: 16,
  intermediateSize: 20,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
});
const base = initLlamaWeights(cfg, new Rng(11), 0.4);
const ids = [[3, 7, 1, 0, 22, 9, 14, 5]];

function logitsOf(
  weights: Map<string, HostTensor>,
  host?: LoraHost,
  spec: LoraSpec = DEFAULT_LORA,
): Float32Array {
  const w = weightsFromHost(weights);
  const lora = host ? loraState(spec, host) : undefined;
  const x = tf.tensor2d(ids, undefined, 'int32');
  const out = llamaLogits(cfg, w, x, lora ? { lora } : {});
  const data = Float32Array.from(out.dataSync());
  tf.dispose([x, out]);
  disposeWeights(w);
  if (lora) disposeLora(lora);
  return data;
}

/** Random nonzero B so the adapter changes the model. */
function withRandomB(host: LoraHost, rng: Rng): LoraHost {
  const B = new Map<string, HostTensor>();
  for (const [m, t] of host.B) B.set(m, { shape: t.shape, data: t.data.map(() => 0.3 * rng.normal()) });
  return { A: host.A, B };
}

beforeAll(async () => {
  await setBackend('cpu');
});

describe.each(['cpu', 'wasm'] as const)('LoRA on %s', (backend) => {
  beforeAll(async () => {
    await setBackend(backend);
  });

  it('a fresh adapter (B = 0, PEFT init) leaves the logits unchanged', () => {
    const before = numTensors();
    const host = initLora(cfg, DEFAULT_LORA, new Rng(1));
    expect(host.A.size).toBe(cfg.numLayers * 3);
    const a = host.A.get('model.layers.1.mlp.down_proj')!;
    expect(a.shape).toEqual([8, 20]);
    expect(host.B.get('model.layers.1.mlp.down_proj')!.shape).toEqual([16, 8]);
    expect(a.data.every((v) => Math.abs(v) <= 1 / Math.sqrt(20))).toBe(true);
    expect(a.data.some((v) => v !== 0)).toBe(true);
    for (const b of host.B.values()) expect(b.data.every((v) => v === 0)).toBe(true);
    expect(maxAbsDiff(logitsOf(base, host), logitsOf(base))).toBe(0);
    expect(numTensors()).toBe(before);
  });

  for (const targets of [DEFAULT_LORA.targets, ['q_proj', 'k_proj', 'v_proj', 'o_proj']]) {
    it(`W0 x + (α/r)·B A x equals the merged weight W0 + (α/r)·B·A (${targets.join(',')})`, () => {
      const spec: LoraSpec = { r: 4, alpha: 12, targets };
      const host = withRandomB(initLora(cfg, spec, new Rng(2)), new Rng(3));
      const state = loraState(spec, host);
      const merged = new Map(base);
      for (const m of host.A.keys()) {
        const d = loraDelta(state, m);
        const dh = loraDeltaHost(spec, host.A.get(m)!, host.B.get(m)!);
        expect(d.shape).toEqual(dh.shape);
        expect(maxAbsDiff(d.dataSync(), dh.data)).toBeLessThan(1e-5);
        const w0 = base.get(`${m}.weight`)!;
        merged.set(`${m}.weight`, { shape: w0.shape, data: w0.data.map((v, i) => v + dh.data[i]!) });
        d.dispose();
      }
      disposeLora(state);
      const adapted = logitsOf(base, host, spec);
      expect(maxAbsDiff(adapted, logitsOf(merged))).toBeLessThan(1e-4);
      expect(maxAbsDiff(adapted, logitsOf(base))).toBeGreaterThan(1e-2);
    });
  }
});

describe('PEFT format', () => {
  const spec: LoraSpec = { r: 2, alpha: 4, targets: ['up_proj', 'q_proj'] };
  const host = withRandomB(initLora(cfg, spec, new Rng(5)), new Rng(6));

  it('names tensors base_model.model.<module>.lora_{A,B}.weight and round-trips', () => {
    const state = loraState(spec, host);
    const peft = loraToPeftTensors(state);
    disposeLora(state);
    expect([...peft.keys()]).toContain('base_model.model.model.layers.1.mlp.up_proj.lora_A.weight');
    expect([...peft.keys()]).toContain('base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight');
    expect(peft.size).toBe(2 * 2 * cfg.numLayers);
    const source = { names: () => [...peft.keys()], read: (n: string) => peft.get(n)! };
    const back = loraFromPeftTensors(cfg, spec, source, 'adapter_model.safetensors');
    for (const [m, t] of host.A) expect(back.A.get(m)!.data).toEqual(t.data);
    for (const [m, t] of host.B) expect(back.B.get(m)!.data).toEqual(t.data);

    const json = peftAdapterConfig(spec, 'base');
    expect(json).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 2, lora_alpha: 4 });
    expect(parsePeftAdapterConfig(JSON.parse(JSON.stringify(json)), 'adapter_config.json')).toEqual(spec);
  });

  it('names missing, misshaped and unexpected adapter tensors', () => {
    const peft = loraToPeftTensors(host);
    const err = (m: Map<string, HostTensor>): string => {
      try {
        loraFromPeftTensors(
          cfg,
          spec,
          { names: () => [...m.keys()], read: (n) => m.get(n)! },
          'ad.safetensors',
        );
      } catch (e) {
        expect(e).toBeInstanceOf(UserError);
        return (e as Error).message;
      }
      throw new Error('expected an error');
    };
    const missing = new Map(peft);
    missing.delete('base_model.model.model.layers.1.mlp.up_proj.lora_B.weight');
    expect(err(missing)).toMatch(
      /ad\.safetensors: missing LoRA tensor base_model\.model\.model\.layers\.1\.mlp\.up_proj\.lora_B\.weight/,
    );
    const bad = new Map(peft);
    bad.set('base_model.model.model.layers.0.mlp.up_proj.lora_A.weight', {
      shape: [3, 16],
      data: new Float32Array(48),
    });
    expect(err(bad)).toMatch(
      /layers\.0\.mlp\.up_proj\.lora_A\.weight has shape \[3, 16\], expected \[2, 16\]/,
    );
    const extra = new Map(peft);
    extra.set('base_model.model.model.layers.0.mlp.down_proj.lora_A.weight', {
      shape: [2, 20],
      data: new Float32Array(40),
    });
    expect(err(extra)).toMatch(/unexpected tensor .*down_proj\.lora_A/);
  });

  it('rejects adapter configs it cannot apply, naming the field', () => {
    const ok = peftAdapterConfig(spec);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...ok, r: 0 }, /adapter_config\.json: r: /],
      [{ ...ok, use_rslora: true }, /use_rslora/],
      [{ ...ok, use_dora: true }, /use_dora/],
      [{ ...ok, target_modules: ['lm_head'] }, /target_modules: unsupported module "lm_head"/],
      [{ ...ok, peft_type: 'IA3' }, /peft_type/],
      [{ ...ok, rank_pattern: { q_proj: 4 } }, /rank_pattern/],
    ];
    for (const [json, re] of cases)
      expect(() => parsePeftAdapterConfig(json, 'adapter_config.json')).toThrow(re);
  });
});
