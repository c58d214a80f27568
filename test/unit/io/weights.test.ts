import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src-main/common/errors.js';
import type { HostTensor } from '../../../src-main/io/host-tensor.js';
import { writeSafetensors } from '../../../src-main/io/safetensors.js';
import { openWeights, writeWeights } from '../../../src-main/io/weights.js';
import { bits, ls, tempDir } from './helpers.js';

function model(): Map<string, HostTensor> {
  const m = new Map<string, HostTensor>();
  m.set('model.embed_tokens.weight', {
    shape: [4, 8],
    data: Float32Array.from({ length: 32 }, (_, i) => i * 0.5),
  });
  m.set('model.layers.0.mlp.up_proj.weight', {
    shape: [8, 8],
    data: Float32Array.from({ length: 64 }, (_, i) => -i),
  });
  m.set('model.norm.weight', { shape: [8], data: new Float32Array(8).fill(1) });
  m.set('lm_head.weight', { shape: [4, 8], data: Float32Array.from({ length: 32 }, (_, i) => i / 3) });
  return m;
}

function expectSame(dir: string, m: Map<string, HostTensor>): void {
  const w = openWeights(dir);
  try {
    expect(w.names().sort()).toEqual([...m.keys()].sort());
    for (const [name, t] of m) {
      expect(w.has(name)).toBe(true);
      const got = w.read(name);
      expect(got.shape).toEqual(t.shape);
      expect(bits(got.data)).toEqual(bits(t.data));
    }
    expect(w.has('nope')).toBe(false);
    expect(() => w.read('nope')).toThrow(/no tensor named "nope"/);
  } finally {
    w.close();
  }
}

describe('weights', () => {
  it('writes and reads a single model.safetensors', () => {
    const dir = tempDir();
    const m = model();
    writeWeights(dir, m);
    expect(ls(dir)).toEqual(['model.safetensors']);
    expectSame(dir, m);
    const w = openWeights(dir);
    expect(w.entry('model.norm.weight')).toMatchObject({
      dtype: 'F32',
      shape: [8],
      byteLength: 32,
      file: path.join(dir, 'model.safetensors'),
    });
    w.close();
  });

  it('shards with HF naming and an index, and reads them back', () => {
    const dir = tempDir();
    const m = model();
    // sizes 128, 256, 32, 128 bytes: greedy fill with a 300-byte limit → [128], [256, 32], [128]
    writeWeights(dir, m, { maxShardBytes: 300 });
    expect(ls(dir)).toEqual([
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
      'model.safetensors.index.json',
    ]);
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8')) as {
      metadata: { total_size: number };
      weight_map: Record<string, string>;
    };
    expect(index.metadata.total_size).toBe(544);
    expect(index.weight_map).toEqual({
      'lm_head.weight': 'model-00003-of-00003.safetensors',
      'model.embed_tokens.weight': 'model-00001-of-00003.safetensors',
      'model.layers.0.mlp.up_proj.weight': 'model-00002-of-00003.safetensors',
      'model.norm.weight': 'model-00002-of-00003.safetensors',
    });
    expectSame(dir, m);
    const w = openWeights(dir);
    expect(w.entry('lm_head.weight').file).toBe(path.join(dir, 'model-00003-of-00003.safetensors'));
    w.close();

    // rewriting as one file removes the stale shards and index
    writeWeights(dir, m);
    expect(ls(dir)).toEqual(['model.safetensors']);
    expectSame(dir, m);
  });

  it('writes BF16 shards', () => {
    const dir = tempDir();
    const m = model();
    writeWeights(dir, m, { dtype: 'BF16', maxShardBytes: 150 });
    expect(ls(dir).filter((f) => f.endsWith('.safetensors')).length).toBe(3);
    const w = openWeights(dir);
    expect(w.entry('model.layers.0.mlp.up_proj.weight').dtype).toBe('BF16');
    expect(Array.from(w.read('model.norm.weight').data)).toEqual(new Array(8).fill(1));
    w.close();
  });

  describe('errors', () => {
    function sharded(): string {
      const dir = tempDir();
      writeWeights(dir, model(), { maxShardBytes: 300 });
      return dir;
    }
    const indexPath = (dir: string) => path.join(dir, 'model.safetensors.index.json');
    const editIndex = (dir: string, f: (m: Record<string, string>) => void) => {
      const idx = JSON.parse(fs.readFileSync(indexPath(dir), 'utf8')) as {
        weight_map: Record<string, string>;
      };
      f(idx.weight_map);
      fs.writeFileSync(indexPath(dir), JSON.stringify(idx));
    };
    const fails = (dir: string, re: RegExp) => {
      expect(() => openWeights(dir)).toThrow(UserError);
      expect(() => openWeights(dir)).toThrow(re);
    };

    it('no weights at all', () => {
      const dir = tempDir();
      fails(dir, /no model\.safetensors or model\.safetensors\.index\.json/);
      fails(path.join(dir, 'nope'), /nope: model directory not found/);
    });

    it('index naming a missing shard', () => {
      const dir = sharded();
      fs.unlinkSync(path.join(dir, 'model-00002-of-00003.safetensors'));
      fails(dir, /model\.safetensors\.index\.json: shard "model-00002-of-00003\.safetensors" .* not found/);
    });

    it('a tensor in two shards', () => {
      const dir = sharded();
      writeSafetensors(path.join(dir, 'model-00003-of-00003.safetensors'), [
        ['lm_head.weight', { shape: [1], data: new Float32Array(1) }],
        ['model.norm.weight', { shape: [1], data: new Float32Array(1) }],
      ]);
      fails(
        dir,
        /index\.json: tensor "model\.norm\.weight" is in two shards: model-00002-of-00003\.safetensors and model-00003/,
      );
    });

    it('index and shard headers disagreeing', () => {
      const dir = sharded();
      editIndex(dir, (m) => {
        m['lm_head.weight'] = 'model-00001-of-00003.safetensors';
      });
      fails(
        dir,
        /index puts tensor "lm_head\.weight" in model-00001-of-00003\.safetensors, whose header lacks it/,
      );

      const dir2 = sharded();
      editIndex(dir2, (m) => {
        delete m['model.norm.weight'];
      });
      fails(
        dir2,
        /shard model-00002-of-00003\.safetensors holds tensor "model\.norm\.weight", which the index does not list/,
      );

      const dir3 = sharded();
      editIndex(dir3, (m) => {
        m['extra.weight'] = 'model-00001-of-00003.safetensors';
      });
      fails(dir3, /"extra\.weight" in model-00001-of-00003\.safetensors, whose header lacks it/);
    });

    it('a shard name that escapes the directory', () => {
      const dir = sharded();
      editIndex(dir, (m) => {
        m['lm_head.weight'] = '../evil.safetensors';
      });
      fails(dir, /shard "\.\.\/evil\.safetensors" is not a plain file name/);
    });

    it('a malformed index', () => {
      const dir = sharded();
      fs.writeFileSync(indexPath(dir), '{"weight_map": {"a": "x", "a": "y"}}');
      fails(dir, /index\.json: invalid JSON: duplicate key "a"/);
      fs.writeFileSync(indexPath(dir), '{"weight_map": [');
      fails(dir, /index\.json: invalid JSON/);
      fs.writeFileSync(indexPath(dir), '{"metadata": {}}');
      fails(dir, /index\.json: "weight_map" must be an object/);
    });

    it('a malformed shard is reported under its own name', () => {
      const dir = sharded();
      fs.writeFileSync(path.join(dir, 'model-00001-of-00003.safetensors'), 'garbage!!');
      fails(dir, /model-00001-of-00003\.safetensors: header length .* exceeds the limit/);
    });
  });
});
