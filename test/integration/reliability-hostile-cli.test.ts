/**
 * Hostile inputs through the built CLI, one command per kind of input (the loaders themselves
 * are covered case by case in test/unit/reliability/hostile-inputs.test.ts): a non-zero exit, the
 * error as one `upit: <file>…: <problem>` line (no stack trace, no "internal error"), and nothing
 * written — no output directory, no workspace for commands that refuse before opening one, and
 * no file in the workspace for the stage commands.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { hostileCases, namedFile, writeCorpus } from '../hostile/make-corpus.js';
import { upitAsync, type CliResult } from './cli-helpers.js';

const root = mkdtempSync(join(tmpdir(), 'upit-hostile-cli-'));
writeCorpus(root);
afterAll(() => rmSync(root, { recursive: true, force: true }));

const byName = new Map(hostileCases().map((c) => [c.name, c]));

/** The refusal: exit 1, the last stderr line `upit: <file>: …` matching the case, nothing on stdout. */
function expectRefusal(r: CliResult, caseName: string): void {
  const c = byName.get(caseName)!;
  const named = namedFile(c);
  const file = named === '' ? join(root, caseName) : join(root, caseName, named);
  const lines = r.stderr.trimEnd().split('\n');
  const last = lines.at(-1)!;
  expect(r.code, r.stderr).toBe(1);
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  expect(last.startsWith(`upit: ${file}`), last).toBe(true);
  expect(last).toMatch(c.expect);
  expect(r.stdout).toBe('');
}

/** Runs commands two at a time (two cores). */
async function inPairs(cmds: string[][]): Promise<CliResult[]> {
  const out: CliResult[] = [];
  for (let i = 0; i < cmds.length; i += 2)
    out.push(...(await Promise.all(cmds.slice(i, i + 2).map((a) => upitAsync(a)))));
  return out;
}

describe('hostile inputs through the CLI', () => {
  it('upit inspect logits / inspect tokens refuse hostile model directories', async () => {
    const models = [
      'st-offsets-past-end',
      'weights-nan',
      'config-unsupported-architecture',
      'index-shard-escapes',
    ];
    const results = await inPairs([
      ...models.map((m) => [
        'inspect',
        'logits',
        '--model',
        join(root, m),
        '--ids',
        '1,2',
        '--backend',
        'cpu',
      ]),
      ['inspect', 'tokens', '--model', join(root, 'tokenizer-byte-marker-bad-vocab'), '--text', 'hi'],
    ]);
    [...models, 'tokenizer-byte-marker-bad-vocab'].forEach((m, i) => expectRefusal(results[i]!, m));
  }, 120_000);

  it('upit plan validate and upit run refuse hostile plans before touching the workspace', async () => {
    const ws = join(root, 'plan-ws');
    const plans = ['plan-alias-bomb', 'plan-sweep-explosion'];
    const [a, b, run] = await inPairs([
      ...plans.map((p) => ['plan', 'validate', join(root, p, 'plan.yaml')]),
      ['run', join(root, 'plan-yaml-syntax', 'plan.yaml'), '--workspace', ws],
    ]);
    [a, b].forEach((r, i) => expectRefusal(r!, plans[i]!));
    expectRefusal(run!, 'plan-yaml-syntax');
    expect(existsSync(ws)).toBe(false);
  }, 120_000);

  it('upit prepare / upit eval refuse bad data and bad models; the workspace gets no file', async () => {
    const wsPrepare = join(root, 'ws-prepare');
    const wsEval = join(root, 'ws-eval');
    const [prepare, evaluate] = await inPairs([
      [
        'prepare',
        '--train',
        join(root, 'jsonl-bad-json', 'data.jsonl'),
        '--eval',
        join(root, 'jsonl-bad-json', 'good-eval.jsonl'),
        '--workspace',
        wsPrepare,
        '--backend',
        'cpu',
      ],
      ['eval', '--model', join(root, 'weights-nan'), '--workspace', wsEval, '--backend', 'cpu'],
    ]);
    expect(prepare!.stdout).toBe('');
    expectRefusal(prepare!, 'jsonl-bad-json');
    expectRefusal(evaluate!, 'weights-nan');
    for (const ws of [wsPrepare, wsEval]) {
      // only the database (and an empty runs/ folder): no checkpoint, no model, no report
      expect(readdirSync(ws).filter((f) => !/^upit\.db(-wal|-shm)?$/.test(f))).toEqual(['runs']);
      const db = new Database(join(ws, 'upit.db'), { readonly: true });
      try {
        // the refused attempt leaves no run row (the error went to stderr)
        expect(db.prepare('SELECT COUNT(*) AS n FROM runs').get()).toEqual({ n: 0 });
        for (const t of ['checkpoints', 'evaluations', 'experts', 'metrics'])
          expect(db.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get(), t).toEqual({ n: 0 });
        expect(readdirSync(join(ws, 'runs'))).toEqual([]);
      } finally {
        db.close();
      }
    }
  }, 120_000);

  it('upit merge refuses a malformed input model and writes no output directory', async () => {
    const out = join(root, 'merged-bad-header');
    const r = await upitAsync([
      'merge',
      '--method',
      'linear',
      '--base',
      join(root, 'good-model'),
      '--models',
      `${join(root, 'good-model')},${join(root, 'st-overlapping')}`,
      '--out',
      out,
    ]);
    expectRefusal(r, 'st-overlapping');
    expect(readdirSync(root).filter((f) => f.startsWith('merged-bad-header'))).toEqual([]);
  }, 60_000);

  it('upit merge refuses a model with NaN weights, naming the tensor', async () => {
    const out = join(root, 'merged-nan');
    const r = await upitAsync([
      'merge',
      '--method',
      'linear',
      '--base',
      join(root, 'good-model'),
      '--models',
      `${join(root, 'good-model')},${join(root, 'weights-nan')}`,
      '--out',
      out,
    ]);
    expectRefusal(r, 'weights-nan');
    expect(existsSync(out)).toBe(false);
  }, 60_000);
});
