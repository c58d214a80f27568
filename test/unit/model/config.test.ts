import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src-main/common/errors.js';
import { llamaConfigJson, makeLlamaConfig, parseLlamaConfig } from '../../../src-main/model/config.js';
import { llamaParamShapes } from '../../../src-main/model/params.js';
import { FIXTURES, fixtureDir } from './fixtures.js';

const base = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: 64,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: false,
};

function errorOf(json: unknown): UserError {
  try {
    parseLlamaConfig(json, '/m/config.json');
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return e as UserError;
  }
  throw new Error('expected an error');
}

describe('parseLlamaConfig', () => {
  it('reads every fixture config', () => {
    for (const name of FIXTURES) {
      const file = path.join(fixtureDir(name), 'config.json');
      const cfg = parseLlamaConfig(JSON.parse(fs.readFileSync(file, 'utf8')), file);
      expect(cfg.architecture).toBe('LlamaForCausalLM');
      expect(cfg.numHeads % cfg.numKvHeads).toBe(0);
    }
  });

  it('reads fields, defaults and head_dim', () => {
    const cfg = parseLlamaConfig(base, 'c.json');
    expect(cfg).toMatchObject({
      vocabSize: 64,
      hiddenSize: 32,
      numKvHeads: 2,
      headDim: 8,
      ropeScaling: null,
    });
    expect(cfg.eosTokenId).toBeNull();
    const noKv = parseLlamaConfig({ ...base, num_key_value_heads: undefined, head_dim: 16 }, 'c.json');
    expect(noKv.numKvHeads).toBe(4);
    expect(noKv.headDim).toBe(16);
    const eos = parseLlamaConfig({ ...base, eos_token_id: [2, 3], pad_token_id: -1 }, 'c.json');
    expect(eos.eosTokenId).toBe(2);
    expect(eos.eosTokenIds).toEqual([2, 3]);
    expect(eos.padTokenId).toBeNull();
    const l3 = parseLlamaConfig(
      {
        ...base,
        rope_scaling: {
          rope_type: 'llama3',
          factor: 8,
          low_freq_factor: 1,
          high_freq_factor: 4,
          original_max_position_embeddings: 8192,
        },
      },
      'c.json',
    );
    expect(l3.ropeScaling).toEqual({
      type: 'llama3',
      factor: 8,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    });
    expect(
      parseLlamaConfig({ ...base, rope_scaling: { type: 'linear', factor: 2 } }, 'c').ropeScaling,
    ).toEqual({
      type: 'linear',
      factor: 2,
    });
  });

  it('names the file and field in errors', () => {
    const cases: [unknown, RegExp][] = [
      [{ ...base, vocab_size: 'x' }, /\/m\/config\.json: vocab_size: must be an integer/],
      [{ ...base, hidden_size: undefined }, /hidden_size: is required/],
      [{ ...base, num_hidden_layers: 0 }, /num_hidden_layers: must be at least 1/],
      [{ ...base, num_key_value_heads: 3 }, /num_key_value_heads: 3 must divide/],
      [
        { ...base, num_attention_heads: 6, num_key_value_heads: 6 },
        /num_attention_heads: 6 must divide hidden_size/,
      ],
      [{ ...base, head_dim: 7 }, /head_dim: must be even/],
      [{ ...base, rms_norm_eps: -1 }, /rms_norm_eps: must be a positive number/],
      [{ ...base, rope_theta: 'big' }, /rope_theta: must be a positive number/],
      [{ ...base, tie_word_embeddings: 'yes' }, /tie_word_embeddings: must be true or false/],
      [{ ...base, architectures: ['MistralForCausalLM'] }, /architectures: unsupported architecture/],
      [{ ...base, model_type: 'qwen2' }, /model_type: unsupported model type/],
      [{ ...base, hidden_act: 'gelu' }, /hidden_act: unsupported activation/],
      [{ ...base, attention_bias: true }, /attention_bias: biases .* not supported/],
      [{ ...base, mlp_bias: true }, /mlp_bias: biases .* not supported/],
      [
        { ...base, rope_scaling: { rope_type: 'dynamic', factor: 2 } },
        /rope_scaling: unsupported rope scaling type "dynamic"/,
      ],
      [{ ...base, rope_scaling: { rope_type: 'yarn', factor: 2 } }, /rope_scaling: unsupported/],
      [{ ...base, rope_scaling: { rope_type: 'llama3', factor: 8 } }, /rope_scaling\.low_freq_factor/],
      [{ ...base, bos_token_id: 64 }, /bos_token_id: must be a token id in \[0, 64\)/],
      [{ ...base, eos_token_id: [2, 'x'] }, /eos_token_id\[1\]/],
      [[1, 2], /must be a JSON object/],
    ];
    for (const [json, re] of cases) expect(errorOf(json).message).toMatch(re);
  });

  it('round-trips through llamaConfigJson, keeping unknown keys', () => {
    const raw = {
      ...base,
      torch_dtype: 'bfloat16',
      eos_token_id: [2, 3],
      rope_scaling: { type: 'linear', factor: 2 },
    };
    const cfg = parseLlamaConfig(raw, 'c.json');
    const json = llamaConfigJson(cfg);
    expect(json['torch_dtype']).toBe('bfloat16');
    expect(json['eos_token_id']).toEqual([2, 3]);
    const again = parseLlamaConfig(json, 'c.json');
    expect({ ...again, raw: null }).toEqual({ ...cfg, raw: null });
  });

  it('makeLlamaConfig validates and gives HF shapes', () => {
    const cfg = makeLlamaConfig({
      vocabSize: 10,
      hiddenSize: 8,
      intermediateSize: 12,
      numLayers: 1,
      numHeads: 2,
      numKvHeads: 1,
    });
    const shapes = llamaParamShapes(cfg);
    expect(shapes.get('model.layers.0.self_attn.k_proj.weight')).toEqual([4, 8]);
    expect(shapes.get('model.layers.0.mlp.down_proj.weight')).toEqual([8, 12]);
    expect(shapes.get('lm_head.weight')).toEqual([10, 8]);
    expect(() =>
      makeLlamaConfig({ vocabSize: 10, hiddenSize: 8, intermediateSize: 12, numLayers: 1, numHeads: 3 }),
    ).toThrow(/num_attention_heads/);
  });
});
