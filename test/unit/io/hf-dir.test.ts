import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src-main/common/errors.js';
import { readHfDir, writeHfDir } from '../../../src-main/io/hf-dir.js';
import type { HostTensor } from '../../../src-main/io/host-tensor.js';
import { ByteTokenizer, loadTokenizer } from '../../../src-main/io/tokenizer.js';
import { bits, FIXTURES, ls, tempDir } from './helpers.js';

const config = { architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 8, vocab_size: 256 };

function tensors(): Map<string, HostTensor> {
  return new Map([
    ['model.embed_tokens.weight', { shape: [4, 2], data: Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]) }],
    ['model.norm.weight', { shape: [2], data: Float32Array.from([0.5, -0.25]) }],
  ]);
}

describe('HF model directory', () => {
  it('round-trips config, weights and tokenizer, leaving no temp directories', () => {
    const parent = tempDir();
    const dir = path.join(parent, 'model');
    writeHfDir(dir, { config, tensors: tensors(), tokenizer: new ByteTokenizer() });
    expect(ls(parent)).toEqual(['model']);
    expect(ls(dir)).toEqual(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    const m = readHfDir(dir);
    try {
      expect(m.configPath).toBe(path.join(dir, 'config.json'));
      expect(m.config).toEqual(config);
      expect(m.tokenizer?.kind).toBe('byte');
      for (const [name, t] of tensors()) expect(bits(m.weights.read(name).data)).toEqual(bits(t.data));
    } finally {
      m.weights.close();
    }
  });

  it('copies side files, shards, and replaces an existing directory', () => {
    const parent = tempDir();
    const src = path.join(parent, 'src');
    writeHfDir(src, { config, tensors: tensors() });
    fs.writeFileSync(path.join(src, 'generation_config.json'), '{"max_new_tokens": 5}');
    fs.writeFileSync(path.join(src, 'pytorch_model.bin'), 'x');
    fs.copyFileSync(path.join(FIXTURES, 'tiny-bpe', 'tokenizer.json'), path.join(src, 'tokenizer.json'));
    fs.copyFileSync(
      path.join(FIXTURES, 'tiny-bpe', 'tokenizer_config.json'),
      path.join(src, 'tokenizer_config.json'),
    );

    const out = path.join(parent, 'out');
    // no tokenizer given: the source's tokenizer files travel with the side files
    writeHfDir(out, {
      config: { ...config, x: 1 },
      tensors: tensors(),
      copyFilesFrom: src,
      dtype: 'BF16',
      maxShardBytes: 16,
    });
    expect(ls(out)).toEqual([
      'config.json',
      'generation_config.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    const m = readHfDir(out);
    expect(m.config.x).toBe(1);
    expect(m.tokenizer?.kind).toBe('hf');
    expect(m.weights.entry('model.norm.weight').dtype).toBe('BF16');
    m.weights.close();

    // a given tokenizer replaces the source's tokenizer files; the old directory is replaced
    writeHfDir(out, { config, tensors: tensors(), copyFilesFrom: src, tokenizer: new ByteTokenizer() });
    expect(ls(out)).toEqual([
      'config.json',
      'generation_config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    expect(loadTokenizer(out).kind).toBe('byte');
    expect(ls(parent)).toEqual(['out', 'src']);
  });

  it('leaves nothing (and the previous directory intact) when a write fails', () => {
    const parent = tempDir();
    const dir = path.join(parent, 'model');
    writeHfDir(dir, { config, tensors: tensors() });
    const bad = new Map([['w', { shape: [3], data: new Float32Array(2) }]]);
    expect(() => writeHfDir(dir, { config, tensors: bad })).toThrow(UserError);
    expect(ls(parent)).toEqual(['model']);
    expect(readHfDir(dir).config).toEqual(config);
    expect(() => writeHfDir(path.join(parent, 'new'), { config, tensors: bad })).toThrow(
      `${path.join(parent, 'new', 'model.safetensors')}: tensor "w": 2 values`,
    );
    expect(ls(parent)).toEqual(['model']);
  });

  it('names the file at fault when reading', () => {
    const parent = tempDir();
    expect(() => readHfDir(path.join(parent, 'none'))).toThrow(/none: model directory not found/);
    const dir = path.join(parent, 'm');
    fs.mkdirSync(dir);
    expect(() => readHfDir(dir)).toThrow(`${path.join(dir, 'config.json')}: cannot read: not found`);
    fs.writeFileSync(path.join(dir, 'config.json'), '{"a":');
    expect(() => readHfDir(dir)).toThrow(`${path.join(dir, 'config.json')}: invalid JSON`);
    fs.writeFileSync(path.join(dir, 'config.json'), '{}');
    expect(() => readHfDir(dir)).toThrow(/no model\.safetensors or model\.safetensors\.index\.json/);
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), 'nope');
    expect(() => readHfDir(dir)).toThrow(`${path.join(dir, 'tokenizer.json')}: invalid JSON`);
  });
});
