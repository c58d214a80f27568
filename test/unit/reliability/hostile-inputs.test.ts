/**
 * Every input of the hostile corpus (test/hostile/make-corpus.ts) is refused by the loader that
 * reads it — model directories by loadAnyModel (and malformed safetensors already by
 * SafetensorsFile.open), JSONL by the data readers, plans by readPlanFile — with a UserError whose
 * one-line message names the file and says what is wrong, and nothing is written.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../../src-main/common/errors.js';
import { readEvalJsonl, readInstructionJsonl } from '../../../src-main/data/jsonl.js';
import { SafetensorsFile } from '../../../src-main/io/safetensors.js';
import { readPlanFile } from '../../../src-main/jobs/plan/schema.js';
import { loadAnyModel } from '../../../src-main/model/load-any.js';
import { useBackend } from '../../../src-main/tensor/backend.js';
import { tf } from '../../../src-main/tensor/tf.js';
import { hostileCases, namedFile, writeCorpus, type HostileCase } from '../../hostile/make-corpus.js';

const root = mkdtempSync(join(tmpdir(), 'upit-hostile-'));
writeCorpus(root);
beforeAll(() => useBackend('cpu'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** name → sha256 of every file under `dir` (what "nothing written" compares). */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string, rel: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p, `${rel}${n}/`);
      else out.set(`${rel}${n}`, createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(dir, '');
  return out;
}

async function refusal(fn: () => unknown): Promise<UserError> {
  let err: unknown = null;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  expect(err, 'the input was accepted').not.toBeNull();
  if (!(err instanceof UserError))
    throw new Error(`expected a UserError, got ${String((err as Error).stack)}`);
  return err;
}

function checkMessage(c: HostileCase, dir: string, e: UserError): void {
  const named = namedFile(c);
  const file = named === '' ? dir : join(dir, named);
  expect(e.message).not.toMatch(/\n/);
  expect(e.message.startsWith(file), `${e.message} should name ${file}`).toBe(true);
  expect(e.message).toMatch(c.expect);
}

describe('the hostile corpus', () => {
  it('is deterministic and has a case of every kind', () => {
    const digest = (cs: HostileCase[]) => {
      const h = createHash('sha256');
      for (const c of cs)
        for (const [n, v] of Object.entries(c.files)) h.update(`${c.name}/${n}\0`).update(v);
      return h.digest('hex');
    };
    const cases = hostileCases();
    expect(digest(hostileCases())).toBe(digest(cases));
    const count = (t: string) => cases.filter((c) => c.target === t).length;
    expect(cases.filter((c) => c.safetensors).length).toBeGreaterThanOrEqual(20);
    expect(count('model')).toBeGreaterThanOrEqual(45);
    expect(count('instruction')).toBeGreaterThanOrEqual(8);
    expect(count('eval')).toBeGreaterThanOrEqual(4);
    expect(count('plan')).toBeGreaterThanOrEqual(15);
  });

  it('loads the good model next to them (the cases differ from it in one thing each)', async () => {
    const m = await loadAnyModel(join(root, 'good-model'));
    expect(m.kind).toBe('llama');
    expect(m.cfg.vocabSize).toBe(16);
    m.dispose();
  });
});

describe('hostile model directories and safetensors files are refused, naming the problem', () => {
  const cases = hostileCases().filter((c) => c.target === 'model');
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const dir = join(root, c.name);
    const before = snapshot(dir);
    const tensors = tf.memory().numTensors;
    if (c.safetensors) {
      const e = await refusal(() => SafetensorsFile.open(join(dir, 'model.safetensors')));
      checkMessage(c, dir, e);
    }
    const e = await refusal(() => loadAnyModel(dir));
    checkMessage(c, dir, e);
    expect(tf.memory().numTensors, 'tensors of a refused model are disposed').toBe(tensors);
    expect(snapshot(dir)).toEqual(before);
  });
});

describe('hostile JSONL lines are refused with file and line', () => {
  const cases = hostileCases().filter((c) => c.target === 'instruction' || c.target === 'eval');
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const dir = join(root, c.name);
    const file = join(dir, 'data.jsonl');
    const e = await refusal(() => (c.target === 'eval' ? readEvalJsonl(file) : readInstructionJsonl(file)));
    checkMessage(c, dir, e);
  });
});

describe('hostile plan files are refused with file:line:col and the field', () => {
  const cases = hostileCases().filter((c) => c.target === 'plan');
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const dir = join(root, c.name);
    const t0 = performance.now();
    const e = await refusal(() => readPlanFile(join(dir, namedFile(c))));
    checkMessage(c, dir, e);
    expect(performance.now() - t0, 'refused quickly (no expansion of hostile input)').toBeLessThan(2000);
  });
});
