import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src-main/common/rng.js';
import { writeHfDir, readHfDir } from '../../src-main/io/hf-dir.js';
import type { HostTensor } from '../../src-main/io/host-tensor.js';
import { ByteTokenizer } from '../../src-main/io/tokenizer.js';
import { llamaConfigJson, makeLlamaConfig } from '../../src-main/model/config.js';
import { initLlamaWeights } from '../../src-main/model/params.js';
import { upit } from './cli-helpers.js';

const cfg = makeLlamaConfig({
  vocabSize: 256,
  hiddenSize: 16,
  intermediateSize: 24,
  numLayers: 1,
  numHeads: 2,
});

function randomModel(dir: string, seed: number): Map<string, HostTensor> {
  const w = initLlamaWeights(cfg, new Rng(seed), 0.5);
  writeHfDir(dir, { config: llamaConfigJson(cfg), tensors: w, tokenizer: new ByteTokenizer() });
  return w;
}

function readAll(dir: string): Map<string, Float32Array> {
  const m = readHfDir(dir);
  const out = new Map(m.weights.names().map((n) => [n, m.weights.read(n).data]));
  m.weights.close();
  return out;
}

describe('upit merge on models it has never seen', () => {
  let dir: string;
  let base: Map<string, HostTensor>;
  let a: Map<string, HostTensor>;
  let b: Map<string, HostTensor>;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'upit-merge-'));
    base = randomModel(join(dir, 'base'), 1);
    a = randomModel(join(dir, 'a'), 2);
    b = randomModel(join(dir, 'b'), 3);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const models = () => `${join(dir, 'a')},${join(dir, 'b')}`;

  it('task arithmetic gives θ0 + Σ w_i (θ_i − θ0), and DARE with p = 0 gives exactly the same tensors', () => {
    const ta = upit([
      'merge',
      '--method',
      'task_arithmetic',
      '--base',
      join(dir, 'base'),
      '--models',
      models(),
      '--weights',
      '0.3,0.7',
      '--out',
      join(dir, 'ta'),
    ]);
    expect(ta.stderr).not.toMatch(/upit:/);
    expect(ta.code).toBe(0);
    const dare = upit([
      'merge',
      '--method',
      'dare_linear',
      '--base',
      join(dir, 'base'),
      '--models',
      models(),
      '--weights',
      '0.3,0.7',
      '--drop',
      '0',
      '--seed',
      '5',
      '--out',
      join(dir, 'dare0'),
    ]);
    expect(dare.code).toBe(0);
    const got = readAll(join(dir, 'ta'));
    const got0 = readAll(join(dir, 'dare0'));
    for (const [name, t0] of base) {
      const x = got.get(name)!;
      for (let i = 0; i < x.length; i++) {
        const want =
          t0.data[i]! +
          0.3 * (a.get(name)!.data[i]! - t0.data[i]!) +
          0.7 * (b.get(name)!.data[i]! - t0.data[i]!);
        expect(Math.abs(x[i]! - want)).toBeLessThan(1e-5);
      }
      expect(got0.get(name)).toEqual(x);
    }
    expect(JSON.parse(readFileSync(join(dir, 'ta', 'config.json'), 'utf8'))).toMatchObject({
      hidden_size: 16,
    });
    expect(existsSync(join(dir, 'ta', 'tokenizer.json'))).toBe(true);
    expect(JSON.parse(readFileSync(join(dir, 'ta', 'merge.json'), 'utf8'))).toMatchObject({
      method: 'task_arithmetic',
    });
  });

  it('DARE with p > 0 keeps about 1 − p of each task vector, rescaled by 1/(1 − p)', () => {
    const r = upit([
      'merge',
      '--method',
      'dare_linear',
      '--base',
      join(dir, 'base'),
      '--models',
      join(dir, 'a'),
      '--drop',
      '0.5',
      '--seed',
      '7',
      '--out',
      join(dir, 'dare5'),
    ]);
    expect(r.code).toBe(0);
    const got = readAll(join(dir, 'dare5'));
    let kept = 0;
    let total = 0;
    for (const [name, t0] of base) {
      const x = got.get(name)!;
      for (let i = 0; i < x.length; i++) {
        const delta = a.get(name)!.data[i]! - t0.data[i]!;
        const merged = x[i]! - t0.data[i]!;
        if (delta === 0) continue;
        total++;
        if (Math.abs(merged) > 1e-7) {
          kept++;
          expect(Math.abs(merged - 2 * delta)).toBeLessThan(1e-5);
        }
      }
    }
    const frac = kept / total;
    expect(Math.abs(frac - 0.5)).toBeLessThan(4 * Math.sqrt(0.25 / total));
  });

  it('rejects p ≥ 1, mismatched models and an existing output, writing nothing', () => {
    const p1 = upit([
      'merge',
      '--method',
      'dare_linear',
      '--base',
      join(dir, 'base'),
      '--models',
      join(dir, 'a'),
      '--drop',
      '1',
      '--out',
      join(dir, 'bad1'),
    ]);
    expect(p1.code).toBe(1);
    expect(p1.stderr).toMatch(/drop/);
    expect(existsSync(join(dir, 'bad1'))).toBe(false);
    const other = makeLlamaConfig({
      vocabSize: 256,
      hiddenSize: 16,
      intermediateSize: 32,
      numLayers: 1,
      numHeads: 2,
    });
    writeHfDir(join(dir, 'wide'), {
      config: llamaConfigJson(other),
      tensors: initLlamaWeights(other, new Rng(4)),
    });
    const mm = upit([
      'merge',
      '--method',
      'linear',
      '--base',
      join(dir, 'base'),
      '--models',
      join(dir, 'wide'),
      '--out',
      join(dir, 'bad2'),
    ]);
    expect(mm.code).toBe(1);
    expect(mm.stderr).toMatch(/intermediate_size|mlp/);
    expect(existsSync(join(dir, 'bad2'))).toBe(false);
    const exists = upit([
      'merge',
      '--method',
      'linear',
      '--base',
      join(dir, 'base'),
      '--models',
      join(dir, 'a'),
      '--out',
      join(dir, 'ta'),
    ]);
    expect(exists.code).toBe(1);
    expect(exists.stderr).toMatch(/already exists/);
  });
});
