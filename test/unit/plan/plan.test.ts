/**
 * Plan files (jobs/plan/schema.ts) and their job graphs (jobs/plan/graph.ts): validation errors
 * name the file, line and field; variants expand into shared job chains.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildPlanGraph, canonicalJson } from '../../../src-main/jobs/plan/graph.js';
import { parsePlan, readPlanFile } from '../../../src-main/jobs/plan/schema.js';
import { packageRoot } from '../../../src-main/common/paths.js';

const BASE = `name: t
data: { source: embedded, trainPerDomain: 8, evalPerDomain: 2 }
prepare: { epochs: 2, checkpointEvery: 0.5 }
expand: { n: 4 }
`;

const plan = (extra: string, file = 'plan.yaml') => parsePlan(BASE + extra, file);
const fails = (extra: string): string => {
  try {
    buildPlanGraph(plan(extra));
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected the plan to be rejected');
};

describe('plan validation', () => {
  it('accepts the shipped plans', () => {
    for (const f of ['smoke.yaml', 'paper-lora-8e.yaml', 'paper-ffn-4e.yaml']) {
      const p = readPlanFile(join(packageRoot(), 'resources', 'plans', f));
      expect(p.variants.length).toBeGreaterThanOrEqual(3);
      expect(buildPlanGraph(p).nodes.length).toBeGreaterThan(3);
    }
  });

  it('rejects unknown keys and impossible values with file:line:col and the field path', () => {
    expect(fails('route: { epochz: 3 }\nvariants: [upit]\n')).toMatch(
      /^plan\.yaml:5:8: route: Unrecognized key: "epochz"/,
    );
    expect(fails('upcycle: { topK: 0 }\nvariants: [upit]\n')).toMatch(/^plan\.yaml:5:\d+: upcycle\.topK: /);
    expect(fails('variants: [upit, warp-drive]\n')).toMatch(/^plan\.yaml:5:\d+: variants\.1: /);
    // p ≥ 1, from the stage section and from a variant override
    expect(parsePlanError(BASE.replace('n: 4', 'n: 4, p: 1') + 'variants: [upit]\n')).toMatch(
      /plan\.yaml:4:\d+: expand\.p: must be in \[0, 1\)/,
    );
    expect(fails('variants:\n  - kind: upit\n    expand: { p: 1.5 }\n')).toMatch(
      /plan\.yaml:7:\d+: variants\.0\.expand\.p: must be in \[0, 1\)/,
    );
  });

  it('rejects top-k above the number of experts, naming the field that set it', () => {
    expect(fails('upcycle: { topK: 5 }\nvariants: [upit]\n')).toMatch(
      /upcycle\.topK: top-5 of 4 experts \(expand\.n\)/,
    );
    expect(fails('variants:\n  - kind: vanilla\n    upcycle: { topK: 6 }\n')).toMatch(
      /plan\.yaml:7:\d+: variants\.0\.upcycle\.topK: top-6 of 4 experts/,
    );
  });

  it('rejects a missing model, missing data files, YAML errors and duplicate keys', () => {
    const dir = mkdtempSync(join(tmpdir(), 'upit-plan-'));
    const f = join(dir, 'p.yaml');
    writeFileSync(f, `base: ./no-model\n${BASE}variants: [upit]\n`);
    expect(() => readPlanFile(f)).toThrow(
      /p\.yaml:1:\d+: base: no model at .*no-model \(config\.json missing\)/,
    );
    mkdirSync(join(dir, 'm'));
    writeFileSync(join(dir, 'm', 'config.json'), '{}');
    writeFileSync(
      f,
      `base: m\nname: t\ndata: { source: files, train: a.jsonl, eval: b.jsonl }\nvariants: [upit]\n`,
    );
    expect(() => readPlanFile(f)).toThrow(/p\.yaml:3:\d+: data\.train: file not found/);
    expect(() => parsePlan('name: t\nvariants: [upit\n', 'x.yaml')).toThrow(/^x\.yaml:\d+:\d+: /);
    expect(() => parsePlan('name: t\nname: u\nvariants: [upit]\n', 'x.yaml')).toThrow(
      /x\.yaml:2:1: Map keys must be unique/,
    );
    expect(() => parsePlan('- 1\n- 2\n', 'x.yaml')).toThrow(/x\.yaml: a plan is a mapping/);
    expect(() => readPlanFile(join(dir, 'absent.yaml'))).toThrow(/absent\.yaml: cannot read the plan file/);
  });

  it('rejects variants that cannot run and names that collide', () => {
    expect(fails('variants: [upit, upit]\n')).toMatch(/variants\.1: variant name 'upit' is used twice/);
    expect(
      parsePlanError(BASE.replace('epochs: 2,', 'epochs: 2, mode: ffn,') + 'variants: [loramoe]\n'),
    ).toMatch(/variants\.0: 'loramoe' makes LoRA experts; prepare\.mode is ffn/);
    expect(
      parsePlanError(BASE.replace('epochs: 2,', 'epochs: 2, mode: full,') + 'variants: [dense, upit]\n'),
    ).toMatch(/variants\.1: variant 'upit' needs experts; prepare\.mode full is for dense only/);
    // the same job twice under two names
    expect(fails('variants: [upit, { name: again, kind: upit }]\n')).toMatch(
      /variants\.1: variants 'upit' and 'again' are the same job \(upcycle\)/,
    );
  });
});

function parsePlanError(text: string): string {
  try {
    buildPlanGraph(parsePlan(text, 'plan.yaml'));
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

describe('job graph', () => {
  it('shares the Stage 1 and Stage 2 runs between the variants that train the same way', () => {
    const g = buildPlanGraph(
      plan('variants: [dense, upit, no-router-init, router-random-data, vanilla, loramoe]\n'),
    );
    const kinds = g.nodes.map((n) => n.kind);
    expect(kinds.filter((k) => k === 'prepare')).toHaveLength(1);
    expect(kinds.filter((k) => k === 'expand')).toHaveLength(1);
    expect(kinds.filter((k) => k === 'route')).toHaveLength(2); // PPL and random buckets
    expect(kinds.filter((k) => k === 'upcycle')).toHaveLength(5);
    const P = g.nodes[0]!;
    expect(P.terminalOf).toBe('dense');
    expect(P.usedBy).toHaveLength(6);
    // dependency order: every dep appears before its dependent
    const seen = new Set<string>();
    for (const n of g.nodes) {
      for (const d of n.deps) expect(seen.has(d)).toBe(true);
      seen.add(n.key);
    }
    const byVariant = (v: string) => g.nodes.find((n) => n.terminalOf === v)!;
    expect(byVariant('no-router-init').config).toMatchObject({ init: 'pool', router: 'random' });
    expect(byVariant('vanilla').config).toMatchObject({ init: 'copies', numExperts: 4, router: 'random' });
    expect(byVariant('loramoe').config).toMatchObject({ init: 'random', numExperts: 4 });
    const randomRoute = g.nodes.find((n) => n.kind === 'route' && n.config['assignment'] === 'random')!;
    expect(randomRoute.usedBy).toEqual(['router-random-data']);
  });

  it('gives the ablations their own Stage 1 or Stage 2 where they differ', () => {
    const text = BASE.replace('checkpointEvery: 0.5', 'checkpointEvery: 1');
    const g = buildPlanGraph(
      parsePlan(text + 'variants: [upit, no-expansion, random-parents, first-half, second-half]\n', 'p.yaml'),
    );
    const prepares = g.nodes.filter((n) => n.kind === 'prepare');
    // upit/random-parents: every epoch (2 checkpoints → 4 experts); no-expansion: epochs / n = 0.5
    // (4 checkpoints, used as they are); first/second half: twice upit's checkpoints (0.5) → shared
    expect(prepares.map((n) => n.config['checkpointEvery']).sort()).toEqual([0.5, 1]);
    expect(prepares.find((n) => n.config['checkpointEvery'] === 0.5)!.usedBy.sort()).toEqual([
      'first-half',
      'no-expansion',
      'second-half',
    ]);
    // with UpIT's own cadence already n checkpoints, "no expansion" is UpIT itself: refused
    expect(() => buildPlanGraph(plan('variants: [upit, no-expansion]\n'))).toThrow(/are the same job/);
    const expands = g.nodes.filter((n) => n.kind === 'expand');
    // two '-/all': upit's (2 checkpoints → 4) and no-expansion's (4 checkpoints, n = m)
    expect(
      expands.map((n) => `${n.config['selection'] ?? '-'}/${n.config['subset'] ?? 'all'}`).sort(),
    ).toEqual(['-/all', '-/all', '-/first-half', '-/second-half', 'random/all']);
  });

  it('repeats the chains per seed, and sweeps make one variant per value', () => {
    const g = buildPlanGraph(
      plan('seeds: [1, 2]\nvariants:\n  - dense\n  - kind: upit\n    sweep: { expand.n: [2, 4] }\n'),
    );
    expect(g.nodes.filter((n) => n.kind === 'prepare')).toHaveLength(2);
    const terminals = g.nodes.filter((n) => n.terminalOf).map((n) => `${n.terminalOf}/${n.seed}`);
    expect(terminals.sort()).toEqual([
      'dense/1',
      'dense/2',
      'upit@expand.n=2/1',
      'upit@expand.n=2/2',
      'upit@expand.n=4/1',
      'upit@expand.n=4/2',
    ]);
    expect(() => plan('variants:\n  - kind: upit\n    sweep: { warp.n: [2] }\n')).toThrow(
      /variants\.0\.sweep\.warp\.n/,
    );
  });

  it('keys jobs by kind and config, independent of key order', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[1,{"x":1,"y":2}]},"b":1}',
    );
    const a = buildPlanGraph(plan('variants: [upit]\n'));
    const b = buildPlanGraph(
      parsePlan(
        `expand: { n: 4 }\nname: t\nprepare: { checkpointEvery: 0.5, epochs: 2 }\ndata: { evalPerDomain: 2, trainPerDomain: 8, source: embedded }\nvariants: [upit]\n`,
        'b.yaml',
      ),
    );
    expect(b.nodes.map((n) => n.key)).toEqual(a.nodes.map((n) => n.key));
  });
});
