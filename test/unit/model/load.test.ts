import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../../src-main/common/rng.js';
import { UserError } from '../../../src-main/common/errors.js';
import type { HostTensor } from '../../../src-main/io/host-tensor.js';
import { writeHfDir } from '../../../src-main/io/hf-dir.js';
import { llamaConfigJson, makeLlamaConfig, type LlamaConfig } from '../../../src-main/model/config.js';
import { loadModel, saveModel } from '../../../src-main/model/load.js';
import { initLlamaWeights, llamaParamShapes } from '../../../src-main/model/params.js';
import { numTensors, setBackend } from './helpers.js';

let tmp: string;
const cfg: LlamaConfig = makeLlamaConfig({
  vocabSize: 16,
  hiddenSize: 8,
  intermediateSize: 12,
  numLayers: 2,
  numHeads: 2,
  numKvHeads: 1,
  padTokenId: 0,
});
const host = initLlamaWeights(cfg, new Rng(7), 0.5);

beforeAll(async () => {
  await setBackend('cpu');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'upit-model-load-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function writeDir(
  name: string,
  tensors: Map<string, HostTensor>,
  config: Record<string, unknown> = llamaConfigJson(cfg),
): string {
  const dir = path.join(tmp, name);
  writeHfDir(dir, { config, tensors });
  return dir;
}

async function loadError(dir: string): Promise<UserError> {
  try {
    const m = await loadModel(dir);
    m.dispose();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return e as UserError;
  }
  throw new Error('expected loadModel to fail');
}

describe('initLlamaWeights', () => {
  it('gives every HF tensor its shape, norms 1, pad row 0, N(0, std²) elsewhere', () => {
    expect([...host.keys()]).toEqual([...llamaParamShapes(cfg).keys()]);
    expect(host.get('model.norm.weight')!.data.every((x) => x === 1)).toBe(true);
    expect(
      host
        .get('model.embed_tokens.weight')!
        .data.subarray(0, 8)
        .every((x) => x === 0),
    ).toBe(true);
    const q = host.get('model.layers.0.mlp.gate_proj.weight')!.data;
    const mean = q.reduce((a, b) => a + b, 0) / q.length;
    const sd = Math.sqrt(q.reduce((a, b) => a + (b - mean) ** 2, 0) / q.length);
    expect(Math.abs(mean)).toBeLessThan(0.15);
    expect(sd).toBeGreaterThan(0.4);
    expect(sd).toBeLessThan(0.6);
  });
});

describe('loadModel / saveModel', () => {
  it('round-trips F32 exactly and BF16 to bf16 precision, without leaking', async () => {
    const before = numTensors();
    const dir = path.join(tmp, 'rt');
    saveModel(dir, cfg, host, null);
    const m = await loadModel(dir);
    expect(m.cfg).toEqual({ ...cfg, raw: m.cfg.raw });
    expect(m.tokenizer).toBeNull();
    for (const [name, t] of host)
      expect(Array.from(m.weights.get(name)!.dataSync())).toEqual(Array.from(t.data));
    const dir16 = path.join(tmp, 'rt16');
    saveModel(dir16, m.cfg, m.weights, null, { dtype: 'BF16' });
    m.dispose();
    const m16 = await loadModel(dir16);
    for (const [name, t] of host) {
      const got = m16.weights.get(name)!.dataSync();
      for (let i = 0; i < got.length; i++)
        expect(Math.abs(got[i]! - t.data[i]!)).toBeLessThanOrEqual(Math.abs(t.data[i]!) / 128);
    }
    m16.dispose();
    expect(numTensors()).toBe(before);
  });

  it('names a missing tensor and the file', async () => {
    const t = new Map(host);
    t.delete('model.layers.1.mlp.up_proj.weight');
    const dir = writeDir('missing', t);
    const e = await loadError(dir);
    expect(e.message).toContain(dir);
    expect(e.message).toMatch(/missing tensor model\.layers\.1\.mlp\.up_proj\.weight \(shape \[12, 8\]\)/);
  });

  it('names a misshaped tensor, its shape and the file', async () => {
    const t = new Map(host);
    t.set('model.layers.0.self_attn.k_proj.weight', { shape: [8, 8], data: new Float32Array(64) });
    const dir = writeDir('misshaped', t);
    const e = await loadError(dir);
    expect(e.message).toContain(path.join(dir, 'model.safetensors'));
    expect(e.message).toMatch(
      /model\.layers\.0\.self_attn\.k_proj\.weight has shape \[8, 8\], expected \[4, 8\]/,
    );
  });

  it('rejects unexpected tensors (e.g. a config with too few layers)', async () => {
    const small = llamaConfigJson({ ...cfg, numLayers: 1 });
    const e = await loadError(writeDir('unexpected', host, small));
    expect(e.message).toMatch(/unexpected tensor model\.layers\.1\./);
  });

  it('rejects NaN and Inf naming the tensor', async () => {
    for (const bad of [NaN, Infinity]) {
      const t = new Map(host);
      const w = host.get('model.layers.1.self_attn.o_proj.weight')!;
      const data = Float32Array.from(w.data);
      data[5] = bad;
      t.set('model.layers.1.self_attn.o_proj.weight', { shape: w.shape, data });
      const e = await loadError(writeDir(`nan${bad}`, t));
      expect(e.message).toMatch(/tensor model\.layers\.1\.self_attn\.o_proj\.weight contains (NaN|Inf)/);
    }
  });

  it('reports config errors with the config path and field', async () => {
    const e = await loadError(writeDir('badcfg', host, { ...llamaConfigJson(cfg), num_key_value_heads: 3 }));
    expect(e.message).toContain(path.join(tmp, 'badcfg', 'config.json'));
    expect(e.message).toContain('num_key_value_heads');
  });

  it('ignores lm_head.weight and rotary inv_freq buffers in a tied checkpoint', async () => {
    const tied = { ...cfg, tieWordEmbeddings: true };
    const t = new Map(host);
    t.set('model.layers.0.self_attn.rotary_emb.inv_freq', { shape: [2], data: new Float32Array(2) });
    const m = await loadModel(writeDir('tied', t, llamaConfigJson(tied)));
    expect(m.cfg.tieWordEmbeddings).toBe(true);
    expect(m.weights.has('lm_head.weight')).toBe(false);
    m.dispose();
  });
});
