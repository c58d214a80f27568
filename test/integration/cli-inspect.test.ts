import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, upit } from './cli-helpers.js';

const FIXTURES = join(ROOT, 'test/fixtures');
const models = readdirSync(FIXTURES).filter((d) => d.startsWith('llama-') || d.startsWith('mixtral-'));

interface Expected {
  inputs: number[][];
  logits: number[][][];
}

describe('upit inspect logits matches the independent PyTorch reference', () => {
  it('has fixtures to check', () => expect(models.length).toBeGreaterThanOrEqual(6));
  for (const name of models) {
    it(`${name} (wasm)`, () => {
      const expected = JSON.parse(readFileSync(join(FIXTURES, name, 'expected.json'), 'utf8')) as Expected;
      const ids = expected.inputs[0]!;
      const r = upit([
        'inspect',
        'logits',
        '--model',
        join(FIXTURES, name),
        '--ids',
        ids.join(','),
        '--backend',
        'wasm',
      ]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout) as { ids: number[]; logits: number[][] };
      expect(out.ids).toEqual(ids);
      const want = expected.logits[0]!;
      expect(out.logits.length).toBe(want.length);
      let maxDiff = 0;
      for (let t = 0; t < want.length; t++) {
        expect(out.logits[t]!.length).toBe(want[t]!.length);
        for (let v = 0; v < want[t]!.length; v++)
          maxDiff = Math.max(maxDiff, Math.abs(out.logits[t]![v]! - want[t]![v]!));
      }
      expect(maxDiff).toBeLessThanOrEqual(1e-3);
    });
  }
});

describe('upit inspect context', () => {
  const base = join(ROOT, 'resources/models/tiny-base');
  const text = 'Q: Zopo has 4 marbles. Zopo loses 3. How many marbles does Zopo have now?\nA: ';
  it('gives the sensitivity of the next-token prediction to every token of the text', () => {
    const r = upit(['inspect', 'context', '--model', base, '--text', text, '--json', '--backend', 'wasm']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      ids: number[];
      tokens: string[];
      sensitivity: number[];
      reach: number;
    };
    const ids = upit(['inspect', 'tokens', '--model', base, '--text', text]).stdout.trim().split(',');
    expect(out.ids).toEqual(ids.map(Number)); // the model's own tokenizer
    expect(out.tokens.join('')).toBe(text);
    expect(out.sensitivity).toHaveLength(out.ids.length);
    expect(out.sensitivity.at(-2)).toBeGreaterThan(0); // the ':' before the final space matters
    expect(out.reach).toBeGreaterThanOrEqual(1);
    const plain = upit(['inspect', 'context', '--model', base, '--text', text, '--backend', 'wasm']);
    expect(plain.stdout).toMatch(/reach: \d+ tokens back .* beyond the last 8 tokens: \d/);
  });
  it('refuses a substitute that is not one token', () => {
    const r = upit([
      'inspect',
      'context',
      '--model',
      base,
      '--text',
      'ab',
      '--substitute',
      'xy',
      '--backend',
      'cpu',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--substitute: 'xy' is 2 tokens, not one/);
  });
});

describe('upit CLI errors', () => {
  it('a missing model directory is a one-line error with exit 1', () => {
    const r = upit([
      'inspect',
      'logits',
      '--model',
      '/nonexistent/model',
      '--ids',
      '1,2',
      '--backend',
      'cpu',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('/nonexistent/model');
  });
  it('bad --ids is rejected naming the option', () => {
    const r = upit([
      'inspect',
      'logits',
      '--model',
      join(FIXTURES, 'llama-gqa'),
      '--ids',
      '1,x',
      '--backend',
      'cpu',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--ids: 'x'/);
  });
  it('an id outside the vocabulary is rejected', () => {
    const r = upit([
      'inspect',
      'logits',
      '--model',
      join(FIXTURES, 'llama-gqa'),
      '--ids',
      '1,999',
      '--backend',
      'cpu',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/999 is outside the vocabulary/);
  });
  it('an unknown backend is a usage error', () => {
    const r = upit(['inspect', 'logits', '--model', 'x', '--ids', '1', '--backend', 'gpu9000']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/gpu9000/);
  });
  it('every command has --help', () => {
    for (const cmd of [
      [],
      ['inspect', 'logits'],
      ['inspect', 'tokens'],
      ['inspect', 'context'],
      ['generate'],
      ['backends'],
      ['pretrain'],
      ['runs'],
      ['show'],
      ['serve'],
    ]) {
      const r = upit([...cmd, '--help']);
      expect(r.code, cmd.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/Usage: upit/);
    }
  });
});

describe('upit backends', () => {
  it('lists every backend with a status, wasm and cpu usable here', () => {
    const r = upit(['backends', '--json']);
    expect(r.code).toBe(0);
    const list = JSON.parse(r.stdout) as { name: string; status: string; detail: string }[];
    expect(list.map((b) => b.name)).toEqual(['tensorflow', 'webgpu', 'wasm', 'cpu']);
    expect(list.find((b) => b.name === 'wasm')?.status).toBe('ok');
    expect(list.find((b) => b.name === 'cpu')?.status).toBe('ok');
    for (const b of list) expect(b.detail.length).toBeGreaterThan(0);
  });
});
