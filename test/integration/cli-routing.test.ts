/**
 * `upit eval` on a Mixtral directory records the routing statistics; `upit routing RUN` prints them
 * per layer as a domain × expert table (rows sum to 100 %), `--layer` and `--json` narrow and dump
 * them; a dense run and an unknown run fail with one line and exit code 1.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src-main/common/rng.js';
import { writeHfDir } from '../../src-main/io/hf-dir.js';
import { ByteTokenizer } from '../../src-main/io/tokenizer.js';
import { llamaConfigJson, makeLlamaConfig } from '../../src-main/model/config.js';
import { mixtralConfigFromLlama, saveMixtral } from '../../src-main/model/mixtral.js';
import { ffnExpertsFromDense, initRouters } from '../../src-main/model/moe.js';
import { initLlamaWeights } from '../../src-main/model/params.js';
import { upit } from './cli-helpers.js';

const cfg = makeLlamaConfig({
  vocabSize: 256,
  hiddenSize: 16,
  intermediateSize: 24,
  numLayers: 2,
  numHeads: 2,
  padTokenId: 0,
});
const DOMAINS = ['arith', 'code', 'qa', 'mc'];
const EXPERTS = 4;

interface Stat {
  layer: number;
  domain: string;
  expert: number;
  fraction: number;
  tokens: number;
}

function resultOf(stdout: string): Record<string, unknown> {
  return stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l['event'] === 'result')!;
}

const evalArgs = (ws: string, model: string): string[] => [
  'eval',
  '--workspace',
  ws,
  '--model',
  model,
  '--eval-per-domain',
  '2',
  '--max-new-tokens',
  '4',
  '--backend',
  'wasm',
  '--json',
];

describe('upit routing after upit eval of a Mixtral directory', () => {
  let dir: string;
  let ws: string;
  let moeRun: number;
  let denseRun: number;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'upit-routing-'));
    ws = join(dir, 'ws');
    const host = initLlamaWeights(cfg, new Rng(1), 0.3);
    const tok = new ByteTokenizer();
    writeHfDir(join(dir, 'dense'), { config: llamaConfigJson(cfg), tensors: host, tokenizer: tok });
    saveMixtral(
      join(dir, 'mix'),
      mixtralConfigFromLlama(cfg, { numExperts: EXPERTS, topK: 2 }),
      host,
      { routers: initRouters(cfg, EXPERTS, new Rng(2), 1), ffn: ffnExpertsFromDense(cfg, host, EXPERTS) },
      tok,
    );

    const moe = upit(evalArgs(ws, join(dir, 'mix')));
    expect(moe.stderr).toBe('');
    expect(moe.code).toBe(0);
    const r = resultOf(moe.stdout) as {
      run: number;
      modelKind: string;
      perDomain: unknown[];
      routing: { layers: number; experts: number; topK: number; domains: string[] };
    };
    expect(r.modelKind).toBe('mixtral');
    expect(r.perDomain.length).toBeGreaterThanOrEqual(DOMAINS.length);
    expect(r.routing).toMatchObject({ layers: 2, experts: EXPERTS, topK: 2 });
    expect([...r.routing.domains].sort()).toEqual([...DOMAINS].sort());
    moeRun = r.run;

    const dense = upit(evalArgs(ws, join(dir, 'dense')));
    expect(dense.code).toBe(0);
    const d = resultOf(dense.stdout) as { run: number; modelKind: string; routing?: unknown };
    expect(d.modelKind).toBe('llama');
    expect(d.routing).toBeUndefined();
    denseRun = d.run;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints one domain × expert table per layer whose rows sum to 100 %', () => {
    const r = upit(['routing', String(moeRun), '--workspace', ws]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(new RegExp(`^run ${moeRun} · eval · routing over 4 experts, 2 layers`));
    for (const layer of [0, 1]) {
      const at = lines.indexOf(`layer ${layer}`);
      expect(at).toBeGreaterThan(0);
      expect(lines[at + 1]!.trim().split(/\s+/)).toEqual(['domain', 'tokens', 'e0', 'e1', 'e2', 'e3']);
      const rows = lines.slice(at + 2, at + 2 + DOMAINS.length).map((l) => l.trim().split(/\s+/));
      expect(rows.map((c) => c[0]).sort()).toEqual([...DOMAINS].sort());
      for (const c of rows) {
        expect(Number(c[1])).toBeGreaterThan(0);
        const pct = c.slice(2).map(Number);
        expect(pct).toHaveLength(EXPERTS);
        expect(Math.abs(pct.reduce((a, b) => a + b, 0) - 100)).toBeLessThan(0.3);
      }
    }
  });

  it('--json dumps the raw statistics, --layer keeps one layer', () => {
    const all = JSON.parse(upit(['routing', String(moeRun), '--workspace', ws, '--json']).stdout) as Stat[];
    expect(all).toHaveLength(2 * DOMAINS.length * EXPERTS);
    for (const layer of [0, 1]) {
      for (const d of DOMAINS) {
        const rows = all.filter((s) => s.layer === layer && s.domain === d);
        expect(rows.map((s) => s.expert)).toEqual([0, 1, 2, 3]);
        expect(rows.reduce((a, s) => a + s.fraction, 0)).toBeCloseTo(1, 9);
        expect(new Set(rows.map((s) => s.tokens)).size).toBe(1);
      }
    }
    const one = upit(['routing', String(moeRun), '--workspace', ws, '--layer', '1']);
    expect(one.code).toBe(0);
    expect(one.stdout).toMatch(/^layer 1$/m);
    expect(one.stdout).not.toMatch(/^layer 0$/m);
    const bad = upit(['routing', String(moeRun), '--workspace', ws, '--layer', '7']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/no layer 7/);
  });

  it('a run without routing statistics and an unknown run fail with one line and exit code 1', () => {
    const dense = upit(['routing', String(denseRun), '--workspace', ws]);
    expect(dense.code).toBe(1);
    expect(dense.stdout).toBe('');
    expect(dense.stderr).toBe(
      `upit: run ${denseRun} has no routing statistics; they are recorded when an MoE is evaluated ` +
        '(upit eval --model MOE_DIR)\n',
    );
    const missing = upit(['routing', '999', '--workspace', ws]);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(/run 999 is not in /);
  });
});
