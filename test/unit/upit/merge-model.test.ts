import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../../src-main/common/errors.js';
import { Rng } from '../../../src-main/common/rng.js';
import { writeHfDir } from '../../../src-main/io/hf-dir.js';
import type { HostTensor } from '../../../src-main/io/host-tensor.js';
import { openWeights } from '../../../src-main/io/weights.js';
import { parseLlamaConfig } from '../../../src-main/model/config.js';
import { llamaParamShapes } from '../../../src-main/model/params.js';
import { mergeTensor, type MergeMethodName } from '../../../src-main/upit/merge/methods.js';
import { mergeModels, type MergeProgress, type MergeRecipe } from '../../../src-main/upit/merge/model.js';
import { MergeWorkers } from '../../../src-main/upit/merge/parallel.js';
import { expectBitwiseEqual, tempDir } from './helpers.js';

const FIXTURE_CONFIG = path.resolve(import.meta.dirname, '../../fixtures/llama-gqa/config.json');
const config = JSON.parse(fs.readFileSync(FIXTURE_CONFIG, 'utf8')) as Record<string, unknown>;
const shapes = llamaParamShapes(parseLlamaConfig(config, FIXTURE_CONFIG));

function randomModel(seed: number, around?: Map<string, HostTensor>): Map<string, HostTensor> {
  const rng = new Rng(seed);
  const out = new Map<string, HostTensor>();
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const b = around?.get(name)?.data;
    for (let i = 0; i < n; i++) data[i] = (b ? b[i]! : 0) + rng.normal() * (b ? 0.01 : 0.1);
    out.set(name, { shape: [...shape], data });
  }
  return out;
}

function writeModel(dir: string, tensors: Map<string, HostTensor>, cfg = config): void {
  writeHfDir(dir, { config: cfg, tensors });
}

/** Whether two lists of file contents are byte for byte the same (toEqual on megabytes is slow). */
function sameBytes(a: Buffer[], b: Buffer[]): boolean {
  return a.length === b.length && a.every((x, i) => x.equals(b[i]!));
}

function readAll(dir: string): Map<string, HostTensor> {
  const w = openWeights(dir);
  try {
    return new Map(w.names().map((n) => [n, w.read(n)]));
  } finally {
    w.close();
  }
}

// the input models are written once for the file; each test writes its outputs into its own root
let inputs: {
  base: Map<string, HostTensor>;
  m1: Map<string, HostTensor>;
  m2: Map<string, HostTensor>;
  dirs: { base: string; m1: string; m2: string };
};
let inputRoot = '';

beforeAll(() => {
  inputRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'upit-merge-in-'));
  const base = randomModel(1);
  const m1 = randomModel(2, base);
  const m2 = randomModel(3, base);
  const dirs = {
    base: path.join(inputRoot, 'base'),
    m1: path.join(inputRoot, 'm1'),
    m2: path.join(inputRoot, 'm2'),
  };
  writeModel(dirs.base, base);
  writeModel(dirs.m1, m1);
  writeModel(dirs.m2, m2);
  fs.writeFileSync(path.join(dirs.base, 'generation_config.json'), '{"max_new_tokens": 3}\n');
  fs.writeFileSync(path.join(dirs.base, 'tokenizer_config.json'), '{"model_max_length": 64}\n');
  inputs = { base, m1, m2, dirs };
});

afterAll(() => {
  fs.rmSync(inputRoot, { recursive: true, force: true });
});

function setup() {
  return { root: tempDir(), ...inputs };
}

describe('mergeModels', () => {
  it('task arithmetic round trip gives θ0 + λ Σ w_i δ_i, with side files and a recipe', async () => {
    const { root, base, m1, m2, dirs } = setup();
    const out = path.join(root, 'out');
    const progress: MergeProgress[] = [];
    const recipe = await mergeModels({
      method: 'task_arithmetic',
      baseDir: dirs.base,
      modelDirs: [dirs.m1, dirs.m2],
      weights: [0.5, 0.25],
      lambda: 2,
      seed: 3,
      outDir: out,
      onProgress: (p) => progress.push(p),
    });
    expect(fs.readdirSync(root).sort()).toEqual(['out']); // no temp dirs left
    expect(fs.readdirSync(out).sort()).toEqual([
      'config.json',
      'generation_config.json',
      'merge.json',
      'model.safetensors',
      'tokenizer_config.json',
    ]);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'))).toEqual(config);
    const merged = readAll(out);
    expect([...merged.keys()].sort()).toEqual([...shapes.keys()].sort());
    for (const [name, t] of merged) {
      expect(t.shape).toEqual(shapes.get(name));
      const b = base.get(name)!.data;
      const x = m1.get(name)!.data;
      const y = m2.get(name)!.data;
      for (let i = 0; i < t.data.length; i += 7) {
        const want = b[i]! + 2 * (0.5 * (x[i]! - b[i]!) + 0.25 * (y[i]! - b[i]!));
        expect(Math.abs(t.data[i]! - want)).toBeLessThan(1e-6);
      }
    }
    const saved = JSON.parse(fs.readFileSync(path.join(out, 'merge.json'), 'utf8')) as MergeRecipe;
    expect(saved).toEqual(recipe);
    expect(saved.method).toBe('task_arithmetic');
    expect(saved.models).toEqual([
      { dir: path.resolve(dirs.m1), weight: 0.5 },
      { dir: path.resolve(dirs.m2), weight: 0.25 },
    ]);
    expect(saved.params.lambda).toBe(2);
    expect(saved.seed).toBe(3);
    expect(progress.length).toBe(shapes.size);
    expect(progress.at(-1)).toMatchObject({ done: shapes.size, total: shapes.size });
    expect(progress.at(-1)!.elementsDone).toBe(progress.at(-1)!.elementsTotal);
  });

  it('dare_ties output equals the per-tensor merge with the same seed (order-independent masks)', async () => {
    const { root, base, m1, m2, dirs } = setup();
    const out = path.join(root, 'dt');
    await mergeModels({
      method: 'dare_ties',
      baseDir: dirs.base,
      modelDirs: [dirs.m1, dirs.m2],
      drop: 0.4,
      seed: 11,
      outDir: out,
    });
    const merged = readAll(out);
    // merge the tensors in reverse order, one at a time
    for (const name of [...shapes.keys()].reverse()) {
      const want = mergeTensor(
        'dare_ties',
        base.get(name)!.data,
        [m1.get(name)!.data, m2.get(name)!.data],
        { drop: 0.4 },
        { name, seed: 11 },
      );
      expectBitwiseEqual(merged.get(name)!.data, want);
    }
    // a second run with the same seed is identical; another seed differs
    await mergeModels({
      method: 'dare_ties',
      baseDir: dirs.base,
      modelDirs: [dirs.m1, dirs.m2],
      drop: 0.4,
      seed: 11,
      outDir: path.join(root, 'dt2'),
    });
    expect(fs.readFileSync(path.join(root, 'dt2', 'model.safetensors'))).toEqual(
      fs.readFileSync(path.join(out, 'model.safetensors')),
    );
    await mergeModels({
      method: 'dare_ties',
      baseDir: dirs.base,
      modelDirs: [dirs.m1, dirs.m2],
      drop: 0.4,
      seed: 12,
      outDir: path.join(root, 'dt3'),
    });
    expect(fs.readFileSync(path.join(root, 'dt3', 'model.safetensors'))).not.toEqual(
      fs.readFileSync(path.join(out, 'model.safetensors')),
    );
  });

  it('shards, writes BF16, copies unselected tensors and replaces an existing output', async () => {
    const { root, base, m1, m2, dirs } = setup();
    const out = path.join(root, 'out');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'stale.txt'), 'x');
    const recipe = await mergeModels({
      method: 'linear',
      baseDir: dirs.base,
      modelDirs: [dirs.m1, dirs.m2],
      seed: 0,
      outDir: out,
      dtype: 'BF16',
      maxShardBytes: 8000,
      only: (n) => n.includes('.mlp.'),
    });
    const files = fs.readdirSync(out).sort();
    expect(files).toContain('model.safetensors.index.json');
    expect(files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length).toBeGreaterThan(1);
    expect(files).not.toContain('stale.txt');
    const merged = readAll(out);
    expect(merged.size).toBe(shapes.size);
    expect(recipe.dtype).toBe('BF16');
    expect(recipe.copiedFromBase).toBe([...shapes.keys()].filter((n) => !n.includes('.mlp.')).length);
    for (const [name, t] of merged) {
      const b = base.get(name)!.data;
      const x = m1.get(name)!.data;
      const y = m2.get(name)!.data;
      for (let i = 0; i < t.data.length; i += 5) {
        const want = name.includes('.mlp.') ? (x[i]! + y[i]!) / 2 : b[i]!;
        expect(Math.abs(t.data[i]! - want)).toBeLessThanOrEqual(Math.abs(want) * 2 ** -8 + 1e-30);
      }
    }
  });

  it('reads BF16 models and writes BF16 by default', async () => {
    const { root, base, m1 } = setup();
    const b16 = path.join(root, 'b16');
    const m16 = path.join(root, 'm16');
    writeHfDir(b16, { config, tensors: base, dtype: 'BF16' });
    writeHfDir(m16, { config, tensors: m1, dtype: 'BF16' });
    const out = path.join(root, 'out');
    const recipe = await mergeModels({
      method: 'task_arithmetic',
      baseDir: b16,
      modelDirs: [m16],
      seed: 0,
      outDir: out,
    });
    expect(recipe.dtype).toBe('BF16');
    const w = openWeights(out);
    try {
      expect(w.entry('model.norm.weight').dtype).toBe('BF16');
    } finally {
      w.close();
    }
    // θ0 + (θ1 − θ0) = θ1, as BF16 read it
    const want = readAll(m16);
    for (const [name, t] of readAll(out)) expectBitwiseEqual(t.data, want.get(name)!.data);
  });

  it('names the tensor and directory on mismatched shapes or missing tensors, and writes nothing', async () => {
    const { root, base, dirs } = setup();
    const bad = new Map(base);
    bad.set('model.layers.1.mlp.up_proj.weight', { shape: [32, 64], data: new Float32Array(2048) });
    const badDir = path.join(root, 'bad');
    writeModel(badDir, bad);
    const out = path.join(root, 'out');
    const run = (modelDirs: string[]) =>
      mergeModels({ method: 'task_arithmetic', baseDir: dirs.base, modelDirs, seed: 0, outDir: out });
    await expect(run([dirs.m1, badDir])).rejects.toThrow(UserError);
    await expect(run([dirs.m1, badDir])).rejects.toThrow(
      `${badDir}: tensor "model.layers.1.mlp.up_proj.weight" has shape [32, 64], the base ${dirs.base} has [64, 32]`,
    );
    const missing = new Map(base);
    missing.delete('model.layers.0.self_attn.k_proj.weight');
    const missingDir = path.join(root, 'missing');
    writeModel(missingDir, missing);
    await expect(run([missingDir])).rejects.toThrow(
      `${missingDir}: missing tensor "model.layers.0.self_attn.k_proj.weight"`,
    );
    const extra = new Map(base);
    extra.set('model.extra.weight', { shape: [2], data: new Float32Array(2) });
    const extraDir = path.join(root, 'extra');
    writeModel(extraDir, extra);
    await expect(run([extraDir])).rejects.toThrow(`tensor "model.extra.weight" is not in the base`);
    const otherDir = path.join(root, 'other');
    writeModel(otherDir, base, { ...config, hidden_size: 64 });
    await expect(run([otherDir])).rejects.toThrow(/hidden_size is 64 but the base .* has 32/);
    writeModel(otherDir, base, { ...config, architectures: ['MistralForCausalLM'] });
    await expect(run([otherDir])).rejects.toThrow(/architectures is \["MistralForCausalLM"\]/);
    await expect(
      mergeModels({
        method: 'dare_linear',
        baseDir: dirs.base,
        modelDirs: [dirs.m1],
        drop: 1,
        seed: 0,
        outDir: out,
      }),
    ).rejects.toThrow('dare_linear.drop: must be in [0, 1), got 1');
    await expect(
      mergeModels({
        method: 'ties',
        baseDir: dirs.base,
        modelDirs: [dirs.m1],
        weights: [1, 2],
        seed: 0,
        outDir: out,
      }),
    ).rejects.toThrow(/weights: has 2 entries for 1 models/);
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(root).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('worker threads write the same bytes as the calling thread, and pass the methods’ errors on', async () => {
    const { root, dirs } = setup();
    expect(await MergeWorkers.shared(2)).not.toBeNull(); // workers start here (else merges stay on this thread)
    const cases: [string, Record<string, unknown>][] = [
      ['linear', { weights: [0.3, 0.7] }],
      ['task_arithmetic', { lambda: 0.5 }],
      ['dare_linear', { drop: 0.3, rescale: 'l1' }],
      ['ties', { density: 0.4, weights: [0.5, 0.5] }],
      ['dare_ties', { drop: 0.5 }],
    ];
    for (const [method, p] of cases) {
      const file = async (threads: number) => {
        const out = path.join(root, `${method}-${threads}`);
        const o = {
          method,
          baseDir: dirs.base,
          modelDirs: [dirs.m1, dirs.m2],
          seed: 4,
          outDir: out,
          threads,
        };
        await mergeModels({ ...o, ...p });
        return fs.readFileSync(path.join(out, 'model.safetensors'));
      };
      expect(sameBytes([await file(2)], [await file(0)])).toBe(true);
    }
    const bad = mergeModels({
      method: 'linear',
      baseDir: dirs.base,
      modelDirs: [dirs.m1, dirs.m2],
      weights: [1, -1],
      seed: 0,
      outDir: path.join(root, 'bad'),
      threads: 2,
    });
    await expect(bad).rejects.toThrow(UserError);
    await expect(bad).rejects.toThrow(/sum to 0/);
    expect(fs.existsSync(path.join(root, 'bad'))).toBe(false);
  });

  it('streams large tensors block by block: the same bytes with SIMD, without it, and on workers', async () => {
    const root = tempDir();
    // one tensor of several stream blocks and an odd tail, so blocks, masks and tails all count
    const n = 600_001;
    const cfg = { ...config, vocab_size: 1, hidden_size: n, num_hidden_layers: 0 };
    const tensor = (seed: number, around?: Float32Array) => {
      const rng = new Rng(seed);
      return Float32Array.from({ length: n }, (_, i) => (around?.[i] ?? 0) + rng.normal() * 0.01);
    };
    const b = tensor(1);
    const dirs = ['base', 'm1', 'm2'].map((d) => path.join(root, d));
    [b, tensor(2, b), tensor(3, b)].forEach((data, i) =>
      writeModel(dirs[i]!, new Map([['w', { shape: [n], data }]]), cfg),
    );
    const cases: [string, Record<string, unknown>][] = [
      ['task_arithmetic', { weights: [0.5, 0.25], lambda: 0.9 }],
      ['dare_linear', { drop: 0.5, weights: [0.5, 0.5] }],
      ['dare_ties', { drop: 0.3, weights: [1, 0.5] }],
    ];
    const merged = async (method: string, p: Record<string, unknown>, run: string, threads: number) => {
      const out = path.join(root, `${method}-${run}`);
      await mergeModels({
        method,
        baseDir: dirs[0]!,
        modelDirs: dirs.slice(1),
        seed: 7,
        outDir: out,
        threads,
        ...p,
      });
      return fs.readFileSync(path.join(out, 'model.safetensors'));
    };
    for (const [method, p] of cases) {
      const simd = await merged(method, p, 'simd', 0);
      process.env.UPIT_MERGE_SIMD = '0';
      try {
        expect(sameBytes([await merged(method, p, 'js', 0)], [simd])).toBe(true);
      } finally {
        delete process.env.UPIT_MERGE_SIMD;
      }
      expect(sameBytes([await merged(method, p, 'workers', 1)], [simd])).toBe(true);
    }
    // and the values are the per-tensor merge's
    const back = readAll(path.join(root, 'dare_ties-simd')).get('w')!.data;
    const ms = [1, 2].map((i) => readAll(dirs[i]!).get('w')!.data);
    expectBitwiseEqual(
      back,
      mergeTensor('dare_ties', b, ms, { drop: 0.3, weights: [1, 0.5] }, { name: 'w', seed: 7 }),
    );
  });

  it('whole tensors and blocks across shards: the SIMD bytes are the JavaScript ones and the per-tensor merge', async () => {
    const root = tempDir();
    // tensors long enough for the SIMD trim planner and a range's DARE masks, odd lengths, in two shards
    const sizes: [string, number][] = [
      ['a', 600_011], // three slices of a tensor read as it is merged (MergeMethod.landing)
      ['b', 131_077],
      ['c', 70_001],
    ];
    const cfg = { ...config, num_hidden_layers: 0 };
    const models = [1, 2, 3].map((seed) => {
      const rng = new Rng(seed);
      return new Map(
        sizes.map(([name, n]) => [name, Float32Array.from({ length: n }, () => rng.normal() * 0.01)]),
      );
    });
    // the models are the base plus their draws
    for (const m of models.slice(1))
      for (const [name, x] of m) x.forEach((v, i) => (x[i] = v + models[0]!.get(name)![i]!));
    const dirs = ['base', 'm1', 'm2'].map((d) => path.join(root, d));
    models.forEach((m, i) =>
      writeModel(
        dirs[i]!,
        new Map([...m].map(([name, data]) => [name, { shape: [data.length], data }])),
        cfg,
      ),
    );
    const cases: [string, Record<string, unknown>][] = [
      ['ties', { density: 0.2, weights: [0.5, 0.5] }],
      ['ties', { density: 0.05, weights: [0.3, 0.7], lambda: -0.5 }],
      ['dare_linear', { drop: 0.5, rescale: 'l1', weights: [0.5, 0.5] }],
      ['dare_ties', { drop: 0.3, rescale: 'l1' }],
      ['dare_ties', { drop: 0.5, weights: [1, 0.5] }],
      ['task_arithmetic', { weights: [0.5, 0.25] }],
    ];
    for (const [ci, [method, p]] of cases.entries()) {
      const merged = async (run: string) => {
        const out = path.join(root, `${ci}-${run}`);
        await mergeModels({
          method,
          baseDir: dirs[0]!,
          modelDirs: dirs.slice(1),
          seed: 9,
          outDir: out,
          maxShardBytes: 1_000_000,
          threads: 0,
          ...p,
        });
        const files = fs.readdirSync(out).filter((f) => f.endsWith('.safetensors'));
        expect(files.length).toBe(2);
        return { out, bytes: files.sort().map((f) => fs.readFileSync(path.join(out, f))) };
      };
      const simd = await merged('simd');
      process.env.UPIT_MERGE_SIMD = '0';
      try {
        expect(sameBytes((await merged('js')).bytes, simd.bytes)).toBe(true);
      } finally {
        delete process.env.UPIT_MERGE_SIMD;
      }
      const back = readAll(simd.out);
      for (const [name] of sizes) {
        const want = mergeTensor(
          method as MergeMethodName,
          models[0]!.get(name)!,
          models.slice(1).map((m) => m.get(name)!),
          p,
          { name, seed: 9 },
        );
        expectBitwiseEqual(back.get(name)!.data, want);
      }
    }
  });

  it('refuses a NaN or ±Inf in any input a method reads, naming file, tensor and element, and writes nothing', async () => {
    const root = tempDir();
    const n = 300_007; // two stream blocks and a tail; long enough for the SIMD trim planner
    const cfg = { ...config, num_hidden_layers: 0 };
    const rng = new Rng(11);
    const good = [0, 1, 2].map(() => Float32Array.from({ length: n }, () => rng.normal() * 0.01));
    const cases: [string, Record<string, unknown>, number, number, string][] = [
      // method, parameters, input (0 = base), element, value
      ['linear', { weights: [0.5, 0.5] }, 2, 299_999, 'NaN'],
      ['task_arithmetic', {}, 0, 5, 'Inf'],
      ['dare_linear', { drop: 0.5 }, 1, 262_144, '-Inf'],
      ['dare_linear', { drop: 0.3, rescale: 'l1' }, 2, n - 1, 'NaN'],
      ['ties', { density: 0.2 }, 1, 123_457, 'NaN'],
      ['ties', { density: 0.2 }, 0, 7, 'Inf'],
      ['dare_ties', { drop: 0.5 }, 0, 200_001, 'NaN'],
    ];
    for (const [ci, [method, p, input, element, value]] of cases.entries()) {
      const dirs = ['base', 'm1', 'm2'].map((d) => path.join(root, `${ci}-${d}`));
      good.forEach((data, i) => {
        const t = Float32Array.from(data);
        if (i === input) t[element] = value === 'NaN' ? NaN : value === 'Inf' ? Infinity : -Infinity;
        writeModel(dirs[i]!, new Map([['w', { shape: [n], data: t }]]), cfg);
      });
      for (const simd of [true, false]) {
        if (!simd) process.env.UPIT_MERGE_SIMD = '0';
        const out = path.join(root, `${ci}-out`);
        try {
          const run = mergeModels({
            method,
            baseDir: dirs[0]!,
            modelDirs: dirs.slice(1),
            seed: 3,
            outDir: out,
            threads: 0,
            ...p,
          });
          const what = value.replace('-', '');
          await expect(run, `${method} ${simd}`).rejects.toThrow(
            `${path.join(dirs[input]!, 'model.safetensors')}: tensor w contains ${what} (element ${element})`,
          );
        } finally {
          delete process.env.UPIT_MERGE_SIMD;
        }
        expect(fs.existsSync(out)).toBe(false);
      }
    }
  });

  it('a cancelled merge leaves no output', async () => {
    const { root, dirs } = setup();
    const ctl = new AbortController();
    const out = path.join(root, 'out');
    await expect(
      mergeModels({
        method: 'task_arithmetic',
        baseDir: dirs.base,
        modelDirs: [dirs.m1],
        seed: 0,
        outDir: out,
        signal: ctl.signal,
        onProgress: (p) => {
          if (p.done === 3) ctl.abort();
        },
      }),
    ).rejects.toThrow('merge cancelled');
    expect(fs.readdirSync(root)).toEqual([]);
  });
});
