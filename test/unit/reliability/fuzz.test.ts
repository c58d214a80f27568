/**
 * Seeded fuzzing of the two parsers that read untrusted files: the safetensors header (and the
 * lazy tensor reads after it) and the plan parser (+ the job graph `upit plan validate` builds).
 * Random mutations of valid inputs must parse or throw a UserError — never another exception,
 * never a hang. A failure prints the seed and iteration; rerun with UPIT_FUZZ_SEED=<seed> (and
 * UPIT_FUZZ_ITERS to run longer).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../../src-main/common/errors.js';
import { Rng } from '../../../src-main/common/rng.js';
import { SafetensorsFile } from '../../../src-main/io/safetensors.js';
import { buildPlanGraph } from '../../../src-main/jobs/plan/graph.js';
import { parsePlan } from '../../../src-main/jobs/plan/schema.js';
import { buildSafetensors, goodTensors } from '../../hostile/make-corpus.js';
import { ROOT } from '../../integration/cli-helpers.js';

const SEED = Number(process.env.UPIT_FUZZ_SEED ?? 20241001);
const ITERS = Number(process.env.UPIT_FUZZ_ITERS ?? 3000);
/** No single input may take this long (a hang or an exponential blow-up). */
const SLOW_MS = 1000;

// a memory-backed folder where there is one: each iteration rewrites the input file
const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'upit-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const INTERESTING: unknown[] = [
  -1,
  0,
  1,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  2 ** 64,
  1.5,
  -0.5,
  1e308,
  '',
  '0',
  'F32',
  'BF16',
  'I8',
  null,
  true,
  [],
  [0],
  [0, 0],
  [1, 0],
  [0, 2 ** 53],
  {},
  { __proto__: 1 },
  'x'.repeat(300),
];

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)]!;
}

function randomBytes(rng: Rng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(256);
  return b;
}

function splice(b: Uint8Array, at: number, del: number, ins: Uint8Array): Uint8Array {
  return new Uint8Array(Buffer.concat([b.subarray(0, at), ins, b.subarray(Math.min(b.length, at + del))]));
}

/** One random mutation of a safetensors file (byte-level, length-field, or header-JSON-aware). */
function mutateSafetensors(rng: Rng, input: Uint8Array): Uint8Array {
  const b = Uint8Array.from(input);
  if (b.length < 16) return splice(b, rng.int(b.length + 1), 0, randomBytes(rng, 1 + rng.int(8)));
  const headerEnd = 8 + Number(Buffer.from(b.buffer, b.byteOffset, 8).readBigUInt64LE(0) & 0xffffffn);
  const inHeader = () => 8 + rng.int(Math.max(1, Math.min(headerEnd, b.length) - 8));
  switch (rng.int(9)) {
    case 0: {
      const i = rng.next() < 0.7 ? inHeader() : rng.int(b.length);
      b[i] = b[i]! ^ (1 << rng.int(8));
      return b;
    }
    case 1: {
      const i = rng.next() < 0.7 ? inHeader() : rng.int(b.length);
      return splice(b, i, 1 + rng.int(8), randomBytes(rng, 1 + rng.int(8)));
    }
    case 2:
      return b.subarray(0, rng.int(b.length));
    case 3:
      return splice(b, rng.int(b.length), 0, randomBytes(rng, 1 + rng.int(16)));
    case 4: {
      const i = rng.int(b.length);
      return splice(b, i, 1 + rng.int(64), new Uint8Array(0));
    }
    case 5: {
      const len = Buffer.from(b.buffer, b.byteOffset, 8);
      const n = len.readBigUInt64LE(0);
      const choices = [n + 1n, n - 1n, n * 2n, 0n, 2n ** 64n - 1n, BigInt(rng.nextU32()), 100_000_001n];
      len.writeBigUInt64LE(BigInt.asUintN(64, pick(rng, choices)));
      return b;
    }
    case 6: {
      // a syntactically fine header with one field of one tensor replaced
      const n = Number(Buffer.from(b.buffer, b.byteOffset, 8).readBigUInt64LE(0));
      let h: Record<string, Record<string, unknown>>;
      try {
        h = JSON.parse(Buffer.from(b.subarray(8, 8 + n)).toString('utf8')) as typeof h;
      } catch {
        return b;
      }
      const names = Object.keys(h);
      const name = pick(rng, names);
      const field = pick(rng, ['dtype', 'shape', 'data_offsets', 'extra']);
      const entry = h[name];
      if (entry && typeof entry === 'object') {
        if (rng.next() < 0.2) delete entry[field];
        else entry[field] = pick(rng, INTERESTING);
      } else h[name] = pick(rng, INTERESTING) as Record<string, unknown>;
      const header = Buffer.from(JSON.stringify(h));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(header.length));
      return new Uint8Array(Buffer.concat([len, header, b.subarray(8 + n)]));
    }
    case 7: {
      // a header chunk repeated (duplicate keys, broken structure)
      const i = inHeader();
      const len = 1 + rng.int(40);
      return splice(b, i, 0, b.slice(i, i + len));
    }
    default: {
      // JSON-significant characters
      const i = inHeader();
      b[i] = pick(
        rng,
        [...'{}[]",:0-9eE.\\ '].map((c) => c.charCodeAt(0)),
      );
      return b;
    }
  }
}

const YAML_TOKENS = [
  ':',
  ': ',
  '- ',
  '[',
  ']',
  '{',
  '}',
  ',',
  '&a ',
  '*a',
  '<<: *a',
  '!!binary ',
  '!!str ',
  '!tag ',
  '? ',
  '|',
  '>',
  "'",
  '"',
  '#',
  '%YAML 1.1\n',
  '---\n',
  '...\n',
  '~',
  'null',
  '1e999',
  '-1',
  '0x10',
  '.nan',
  '__proto__',
  'constructor',
  '\t',
  '\n',
  '  ',
  '\u0000',
  '\ufeff',
];

const VALUES: unknown[] = [
  null,
  -1,
  0,
  0.5,
  1,
  7,
  1e9,
  -1e-9,
  Infinity,
  'upit',
  'dense',
  '',
  'files',
  '../../etc/passwd',
  true,
  false,
  [],
  [1, 1],
  {},
  { kind: 'upit' },
  { sweep: { 'expand.n': [2, 4] } },
];

/** Replace one random leaf (or add a key) somewhere in a parsed plan. */
function mutateTree(rng: Rng, v: unknown, depth = 0): unknown {
  if (Array.isArray(v)) {
    if (v.length === 0 || rng.next() < 0.2) return [...v, pick(rng, VALUES)];
    const i = rng.int(v.length);
    const out = [...v];
    out[i] = depth > 6 ? pick(rng, VALUES) : mutateTree(rng, v[i], depth + 1);
    return out;
  }
  if (v !== null && typeof v === 'object') {
    const keys = Object.keys(v);
    const out = { ...(v as Record<string, unknown>) };
    if (keys.length === 0 || rng.next() < 0.15) {
      out[pick(rng, ['epochs', 'n', 'p', 'topK', 'source', 'kind', 'sweep', 'base', 'x'])] = pick(
        rng,
        VALUES,
      );
      return out;
    }
    const k = pick(rng, keys);
    if (rng.next() < 0.1) delete out[k];
    else out[k] = depth > 6 ? pick(rng, VALUES) : mutateTree(rng, out[k], depth + 1);
    return out;
  }
  return pick(rng, VALUES);
}

function mutatePlanText(rng: Rng, text: string, tree: unknown): { text: string; file: string } {
  const lines = text.split('\n');
  switch (rng.int(7)) {
    case 0: {
      const i = rng.int(text.length + 1);
      return { text: text.slice(0, i) + pick(rng, YAML_TOKENS) + text.slice(i), file: 'fuzz.yaml' };
    }
    case 1: {
      const i = rng.int(text.length);
      return { text: text.slice(0, i) + text.slice(i + 1 + rng.int(20)), file: 'fuzz.yaml' };
    }
    case 2:
      return { text: text.slice(0, rng.int(text.length)), file: 'fuzz.yaml' };
    case 3: {
      const i = rng.int(lines.length);
      const j = rng.int(lines.length);
      [lines[i], lines[j]] = [lines[j]!, lines[i]!];
      if (rng.next() < 0.5) lines.splice(i, 0, lines[j]!);
      return { text: lines.join('\n'), file: 'fuzz.yaml' };
    }
    case 4: {
      const i = rng.int(lines.length);
      lines[i] = ' '.repeat(rng.int(6)) + lines[i]!.trimStart();
      return { text: lines.join('\n'), file: 'fuzz.yaml' };
    }
    case 5:
      return { text: toYaml(mutateTree(rng, mutateTree(rng, tree))), file: 'fuzz.yaml' };
    default:
      return { text: JSON.stringify(mutateTree(rng, tree)), file: 'fuzz.json' };
  }
}

/** Runs `fn` on the input; returns 'ok' or 'refused', throws on anything else. */
function expectParseOrUserError(label: string, fn: () => void): 'ok' | 'refused' {
  const t0 = performance.now();
  let outcome: 'ok' | 'refused' = 'ok';
  try {
    fn();
  } catch (e) {
    if (!(e instanceof UserError)) {
      throw new Error(`${label}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
    expect(e.message, label).not.toMatch(/\n/);
    outcome = 'refused';
  }
  const ms = performance.now() - t0;
  if (ms > SLOW_MS) throw new Error(`${label}: took ${ms.toFixed(0)} ms`);
  return outcome;
}

describe(`fuzz (seed ${SEED}, ${ITERS} iterations; UPIT_FUZZ_SEED / UPIT_FUZZ_ITERS to change)`, () => {
  it('safetensors: a mutated file opens and reads, or is refused with a UserError', () => {
    const rng = Rng.derive(SEED, 'safetensors');
    const base = buildSafetensors(goodTensors()).bytes;
    const file = join(dir, 'fuzz.safetensors');
    const tally = { ok: 0, refused: 0 };
    for (let it = 0; it < ITERS; it++) {
      let input = mutateSafetensors(rng, base);
      const extra = rng.int(3);
      for (let k = 0; k < extra; k++) input = mutateSafetensors(rng, input);
      writeFileSync(file, input);
      const label = `safetensors seed ${SEED} iteration ${it} (input base64 ${Buffer.from(input).toString('base64').slice(0, 200)}…)`;
      tally[
        expectParseOrUserError(label, () => {
          const f = SafetensorsFile.open(file);
          try {
            for (const name of f.entries.keys()) {
              const t = f.read(name);
              expect(t.data.length, label).toBe(t.shape.reduce((a, b) => a * b, 1));
            }
          } finally {
            f.close();
          }
        })
      ]++;
    }
    // the mutations reach both outcomes (a fuzzer that only produces garbage tests little)
    expect(tally.refused).toBeGreaterThan(ITERS / 2);
    expect(tally.ok).toBeGreaterThan(ITERS / 100);
  });

  it('plans: a mutated plan parses (and builds its job graph), or is refused with a UserError', () => {
    const rng = Rng.derive(SEED, 'plans');
    const sources = ['smoke.yaml', 'paper-lora-8e.yaml', 'paper-ffn-4e.yaml'].map((f) => {
      const text = readFileSync(join(ROOT, 'resources', 'plans', f), 'utf8');
      return { text, tree: parsePlan(text, f).json };
    });
    const tally = { ok: 0, refused: 0 };
    const iters = Math.ceil(ITERS / 5); // a plan costs ~10 ms (YAML, zod, the job graph)
    for (let it = 0; it < iters; it++) {
      const src = pick(rng, sources);
      let m = mutatePlanText(rng, src.text, src.tree);
      if (rng.next() < 0.3) m = mutatePlanText(rng, m.text, src.tree);
      const label = `plan seed ${SEED} iteration ${it}: ${JSON.stringify(m.text.slice(0, 300))}`;
      tally[expectParseOrUserError(label, () => buildPlanGraph(parsePlan(m.text, join(dir, m.file))))]++;
    }
    expect(tally.refused).toBeGreaterThan(iters / 10);
    expect(tally.ok).toBeGreaterThan(iters / 10);
  });
});
