/**
 * Mixtral directories against an independent float64 PyTorch re-implementation of HF's
 * MixtralForCausalLM (test/fixtures/make_mixtral_reference.py), on cpu and wasm; config parsing;
 * export of an in-app FFN-MoE as a Mixtral directory and of a LoRA-MoE as base + PEFT adapters +
 * router, both re-loaded through loadAnyModel with the in-app logits.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '../../../src-main/common/rng.js';
import { isUserError } from '../../../src-main/common/errors.js';
import { llamaLogits } from '../../../src-main/model/llama.js';
import { loadModel } from '../../../src-main/model/load.js';
import { anyModelLogits, loadAnyModel } from '../../../src-main/model/load-any.js';
import { loadLoraMoe, saveLoraMoe } from '../../../src-main/model/lora-moe.js';
import { initLora, parsePeftAdapterConfig, type LoraSpec } from '../../../src-main/model/lora.js';
import {
  mixtralConfigFromLlama,
  mixtralConfigJson,
  parseMixtralConfig,
  saveMixtral,
} from '../../../src-main/model/mixtral.js';
import {
  disposeMoe,
  ffnExpertsFromDense,
  initRouters,
  moeFromHost,
  moeLogits,
  type MoeSpec,
} from '../../../src-main/model/moe.js';
import { tf } from '../../../src-main/tensor/tf.js';
import { maxAbsDiff, setBackend } from './reference.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixtures = path.resolve(here, '../../fixtures');
const FIXTURES = ['4e-gqa', '8e-tied-bf16'] as const;
const TOL = 1e-4;
const measured: string[] = [];

interface Expected {
  inputs: number[][];
  logits: number[][][];
}

function readExpected(name: string): Expected {
  return JSON.parse(
    fs.readFileSync(path.join(fixtures, `mixtral-${name}`, 'expected.json'), 'utf8'),
  ) as Expected;
}

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'upit-moe-'));
}

function configOf(name: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(fixtures, `mixtral-${name}`, 'config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
}

describe('Mixtral config', () => {
  it('parses the HF keys, with MixtralConfig defaults for absent ones', () => {
    const c = parseMixtralConfig(configOf('4e-gqa'), 'config.json');
    expect(c.numExperts).toBe(4);
    expect(c.topK).toBe(2);
    expect(c.routerAuxLossCoef).toBe(0.02);
    expect(c.llama.numKvHeads).toBe(2);
    expect(c.llama.ropeTheta).toBe(1e6);
    const bare = { ...configOf('4e-gqa') };
    for (const k of [
      'rms_norm_eps',
      'rope_theta',
      'num_local_experts',
      'num_experts_per_tok',
      'router_aux_loss_coef',
    ])
      delete bare[k];
    const d = parseMixtralConfig(bare, 'config.json');
    expect([d.llama.rmsNormEps, d.llama.ropeTheta, d.numExperts, d.topK, d.routerAuxLossCoef]).toEqual([
      1e-5, 1e6, 8, 2, 0.001,
    ]);
  });

  it('rejects what it cannot run, naming the field', () => {
    const bad = (patch: Record<string, unknown>, re: RegExp) => {
      let err: unknown;
      try {
        parseMixtralConfig({ ...configOf('4e-gqa'), ...patch }, 'dir/config.json');
      } catch (e) {
        err = e;
      }
      expect(isUserError(err), String(err)).toBe(true);
      expect((err as Error).message).toMatch(/^dir\/config\.json: /);
      expect((err as Error).message).toMatch(re);
    };
    bad({ sliding_window: 4096 }, /sliding_window: .*must be null/);
    bad({ num_experts_per_tok: 5 }, /num_experts_per_tok: 5 is more than num_local_experts 4/);
    bad({ num_local_experts: 0 }, /num_local_experts: must be a positive integer/);
    bad({ architectures: ['LlamaForCausalLM'] }, /architectures: expected \["MixtralForCausalLM"\]/);
    bad({ model_type: 'llama' }, /model_type/);
    bad({ hidden_act: 'gelu' }, /hidden_act/);
  });

  it('writes back the keys transformers needs', () => {
    const c = parseMixtralConfig(configOf('8e-tied-bf16'), 'config.json');
    const j = mixtralConfigJson(c);
    expect(j).toMatchObject({
      architectures: ['MixtralForCausalLM'],
      model_type: 'mixtral',
      num_local_experts: 8,
      num_experts_per_tok: 2,
      router_aux_loss_coef: 0.02,
      output_router_logits: false,
      sliding_window: null,
      tie_word_embeddings: true,
      hidden_act: 'silu',
      transformers_version: '4.46.0',
    });
    expect(j).not.toHaveProperty('mlp_bias');
    expect(parseMixtralConfig(j, 'x')).toEqual(c);
  });
});

describe.each(['cpu', 'wasm'] as const)('Mixtral logits match the PyTorch reference on %s', (backend) => {
  it.each(FIXTURES)('mixtral-%s (each sequence, and a left-padded batch)', async (name) => {
    await setBackend(backend);
    const before = tf.memory().numTensors;
    const m = await loadAnyModel(path.join(fixtures, `mixtral-${name}`));
    expect(m.kind).toBe('mixtral');
    const expected = readExpected(name);
    let worst = 0;
    for (const [s, ids] of expected.inputs.entries()) {
      const input = tf.tensor2d([ids], [1, ids.length], 'int32');
      const logits = anyModelLogits(m, input);
      expect(logits.shape).toEqual([1, ids.length, m.cfg.vocabSize]);
      worst = Math.max(worst, maxAbsDiff(logits.dataSync(), expected.logits[s]!.flat()));
      tf.dispose([input, logits]);
    }
    measured.push(`${backend} mixtral-${name}: max|dlogit| = ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(TOL);

    const L = Math.max(...expected.inputs.map((x) => x.length));
    const ids = tf.tensor2d(
      expected.inputs.map((x) => [...new Array<number>(L - x.length).fill(0), ...x]),
      undefined,
      'int32',
    );
    const mask = tf.tensor2d(
      expected.inputs.map((x) => [
        ...new Array<number>(L - x.length).fill(0),
        ...new Array<number>(x.length).fill(1),
      ]),
      undefined,
      'int32',
    );
    const logits = anyModelLogits(m, ids, { attentionMask: mask });
    const all = logits.dataSync();
    const V = m.cfg.vocabSize;
    let padded = 0;
    for (const [b, x] of expected.inputs.entries()) {
      const row = all.subarray((b * L + (L - x.length)) * V, (b + 1) * L * V);
      padded = Math.max(padded, maxAbsDiff(row, expected.logits[b]!.flat()));
    }
    expect(padded).toBeLessThanOrEqual(TOL);
    tf.dispose([ids, mask, logits]);
    m.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('export and re-load', () => {
  it('a dense Llama through loadAnyModel is the dense model', async () => {
    await setBackend('cpu');
    const dir = path.join(fixtures, 'llama-gqa');
    const a = await loadAnyModel(dir);
    const b = await loadModel(dir);
    expect(a.kind).toBe('llama');
    expect(a.mlp).toBeUndefined();
    const ids = tf.tensor2d([[1, 2, 3, 4]], undefined, 'int32');
    const la = anyModelLogits(a, ids);
    const lb = llamaLogits(b.cfg, b.weights, ids);
    expect(maxAbsDiff(la.dataSync(), lb.dataSync())).toBe(0);
    tf.dispose([ids, la, lb]);
    a.dispose();
    b.dispose();
  });

  it.each(['cpu', 'wasm'] as const)(
    'an upcycled FFN-MoE saved as Mixtral re-loads with the same logits (%s)',
    async (backend) => {
      await setBackend(backend);
      const base = await loadModel(path.join(fixtures, 'llama-gqa'));
      const cfg = base.cfg;
      const rng = new Rng(31);
      const hostBase = new Map(
        [...base.weights].map(([k, t]) => [
          k,
          { shape: [...t.shape], data: Float32Array.from(t.dataSync()) },
        ]),
      );
      const ffn = ffnExpertsFromDense(cfg, hostBase, 4);
      for (const layer of ffn)
        for (const e of layer)
          for (const w of [e.w1, e.w2, e.w3])
            for (let i = 0; i < w.data.length; i++) w.data[i]! *= 1 + 0.3 * rng.normal();
      const spec: MoeSpec = { numExperts: 4, topK: 2, kind: 'ffn' };
      const moe = moeFromHost(spec, { routers: initRouters(cfg, 4, rng, 1), ffn });
      const ids = tf.tensor2d([[5, 17, 3, 60, 2, 9, 41]], undefined, 'int32');
      const inApp = moeLogits(cfg, base.weights, moe, spec, ids);
      const dense = llamaLogits(cfg, base.weights, ids);
      expect(maxAbsDiff(inApp.dataSync(), dense.dataSync())).toBeGreaterThan(1e-2); // the experts differ

      const dir = path.join(tmpDir(), 'mixtral');
      saveMixtral(dir, mixtralConfigFromLlama(cfg, { numExperts: 4, topK: 2 }), base.weights, moe, null);
      const json = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      expect(json).toMatchObject({
        architectures: ['MixtralForCausalLM'],
        model_type: 'mixtral',
        num_local_experts: 4,
        num_experts_per_tok: 2,
        router_aux_loss_coef: 0.01,
        output_router_logits: false,
        sliding_window: null,
        num_key_value_heads: 2,
      });
      const m = await loadAnyModel(dir);
      expect(m.kind).toBe('mixtral');
      const re = anyModelLogits(m, ids);
      expect(maxAbsDiff(re.dataSync(), inApp.dataSync())).toBe(0);
      tf.dispose([ids, inApp, dense, re]);
      m.dispose();
      disposeMoe(moe);
      base.dispose();
      fs.rmSync(path.dirname(dir), { recursive: true, force: true });
    },
  );

  it('a Mixtral fixture re-saved (BF16 → F32) re-loads with the same logits', async () => {
    await setBackend('cpu');
    const src = await loadAnyModel(path.join(fixtures, 'mixtral-8e-tied-bf16'));
    const dir = path.join(tmpDir(), 'resaved');
    saveMixtral(dir, src.mixtral!, src.weights, src.moe!.weights, null);
    const again = await loadAnyModel(dir);
    const ids = tf.tensor2d([[1, 2, 3, 39, 0, 7]], undefined, 'int32');
    const a = anyModelLogits(src, ids);
    const b = anyModelLogits(again, ids);
    expect(maxAbsDiff(a.dataSync(), b.dataSync())).toBe(0);
    tf.dispose([ids, a, b]);
    src.dispose();
    again.dispose();
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  });

  it.each(['cpu', 'wasm'] as const)(
    'a LoRA-MoE saved as base + PEFT adapters + router re-loads with the same logits (%s)',
    async (backend) => {
      await setBackend(backend);
      const base = await loadModel(path.join(fixtures, 'llama-gqa'));
      const cfg = base.cfg;
      const rng = new Rng(32);
      const lora: LoraSpec = { r: 4, alpha: 8, targets: ['gate_proj', 'up_proj', 'down_proj'] };
      const experts = Array.from({ length: 8 }, () => {
        const h = initLora(cfg, lora, rng);
        for (const b of h.B.values()) for (let i = 0; i < b.data.length; i++) b.data[i] = 0.3 * rng.normal();
        return h;
      });
      const spec: MoeSpec = { numExperts: 8, topK: 2, kind: 'lora', lora };
      const moe = moeFromHost(spec, { routers: initRouters(cfg, 8, rng, 1), lora: experts });
      const ids = tf.tensor2d([[5, 17, 3, 60, 2, 9, 41, 8]], undefined, 'int32');
      const inApp = moeLogits(cfg, base.weights, moe, spec, ids);

      const dir = path.join(tmpDir(), 'lora-moe');
      saveLoraMoe(dir, cfg, base.weights, null, spec, moe, { routerAuxLossCoef: 0.01 });
      expect(fs.existsSync(path.join(dir, 'base', 'config.json'))).toBe(true);
      expect(fs.existsSync(path.join(dir, 'router.safetensors'))).toBe(true);
      const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'moe.json'), 'utf8')) as {
        experts: string[];
      };
      expect(manifest.experts).toHaveLength(8);
      for (const rel of manifest.experts) {
        const ac = path.join(dir, rel, 'adapter_config.json');
        expect(parsePeftAdapterConfig(JSON.parse(fs.readFileSync(ac, 'utf8')), ac)).toEqual(lora);
        expect(fs.existsSync(path.join(dir, rel, 'adapter_model.safetensors'))).toBe(true);
      }
      const m = await loadAnyModel(dir);
      expect(m.kind).toBe('lora-moe');
      const re = anyModelLogits(m, ids);
      expect(maxAbsDiff(re.dataSync(), inApp.dataSync())).toBe(0);
      tf.dispose([ids, inApp, re]);
      m.dispose();

      // an adapter that disagrees with moe.json is an error naming its file
      const ac = path.join(dir, manifest.experts[3]!, 'adapter_config.json');
      const j = JSON.parse(fs.readFileSync(ac, 'utf8')) as Record<string, unknown>;
      fs.writeFileSync(ac, JSON.stringify({ ...j, r: 2 }));
      await expect(loadLoraMoe(dir)).rejects.toThrow(
        new RegExp(`${ac.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: r/lora_alpha`),
      );
      disposeMoe(moe);
      base.dispose();
      fs.rmSync(path.dirname(dir), { recursive: true, force: true });
    },
  );
});

afterAll(() => {
  console.log(measured.join('\n'));
});
