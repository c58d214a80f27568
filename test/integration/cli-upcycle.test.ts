/**
 * Stages 3 and 4 through the CLI on a micro model: prepare → expand → route → upcycle, in LoRA
 * mode (pre-trained router, exported as base + PEFT adapters) and FFN mode (random router,
 * exported as Mixtral), with the database rows each stage promises and the requests they refuse.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { microPretrainArgs, upit, upitAsync } from './cli-helpers.js';

interface Shown {
  run: { kind: string; status: string; config: Record<string, unknown> };
  metrics: { key: string; count: number }[];
  checkpoints: { id: number; step: number; tag: string; path: string; sha256: string }[];
  evaluations: { checkpointId: number | null; domain: string; score: number }[];
  experts?: { idx: number; source: string; path: string | null; sha256: string | null }[];
  seedBuckets?: { expert: number; size: number }[];
}

function resultOf(stdout: string): Record<string, unknown> {
  const r = stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l['event'] === 'result');
  if (!r) throw new Error(`no result event in: ${stdout}`);
  return r;
}

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('upit route and upit upcycle (Stages 3 and 4) on micro runs', () => {
  let dir: string;
  let ws: string;
  let loraExpand: number;
  let ffnExpand: number;
  let routeRun: number;

  const run = async (args: string[]): Promise<Record<string, unknown>> => {
    const r = await upitAsync([...args, '--workspace', ws, '--json']);
    expect(r.code, r.stderr).toBe(0);
    return resultOf(r.stdout);
  };
  const show = (id: number): Shown => {
    const r = upit(['show', String(id), '--workspace', ws, '--json']);
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout) as Shown;
  };
  const runCount = (): number =>
    (JSON.parse(upit(['runs', '--workspace', ws, '--json']).stdout) as unknown[]).length;
  const small = ['--backend', 'wasm', '--max-seq-len', '160'];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'upit-upcycle-'));
    ws = join(dir, 'ws');
    const pre = await upitAsync([
      'pretrain',
      '--workspace',
      ws,
      '--out',
      join(dir, 'model'),
      ...microPretrainArgs(4),
    ]);
    expect(pre.code, pre.stderr).toBe(0);
    const prepare = async (mode: string) =>
      (
        await run([
          'prepare',
          '--base',
          join(dir, 'model'),
          '--mode',
          mode,
          '--train-per-domain',
          '4',
          '--eval-per-domain',
          '1',
          '--epochs',
          '1',
          '--checkpoint-every',
          '0.25',
          '--batch',
          '4',
          '--lr',
          '1e-3',
          '--no-eval-base',
          ...small,
        ])
      )['run'] as number;
    const [lora, ffn] = [await prepare('lora'), await prepare('ffn')];
    loraExpand = (await run(['expand', '--prepare-run', String(lora), '--n', '5']))['run'] as number;
    ffnExpand = (await run(['expand', '--prepare-run', String(ffn), '--n', '4']))['run'] as number; // no expansion
  }, 180_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses bad requests before creating a run', () => {
    const before = runCount();
    const notPool = upit(['route', '--workspace', ws, '--pool-run', '1']);
    expect(notPool.code).toBe(1);
    expect(notPool.stderr).toMatch(/route: poolRun: run 1 is a pretrain run/);
    const lm = upit(['route', '--workspace', ws, '--pool-run', String(loraExpand), '--lm-weight', '2']);
    expect(lm.code).toBe(1);
    expect(lm.stderr).toMatch(/route: lmWeight: /);
    const topK = upit(['upcycle', '--workspace', ws, '--pool-run', String(loraExpand), '--top-k', '6']);
    expect(topK.code).toBe(1);
    expect(topK.stderr).toMatch(/upcycle: topK: must be ≤ the 5 experts/);
    const pre = upit([
      'upcycle',
      '--workspace',
      ws,
      '--pool-run',
      String(loraExpand),
      '--router',
      'pretrained',
    ]);
    expect(pre.code).toBe(1);
    expect(pre.stderr).toMatch(/'pretrained' needs a route run/);
    expect(runCount()).toBe(before);
  });

  it('route: buckets by perplexity, a router per layer and the trained experts, all recorded', async () => {
    const r = await run([
      'route',
      '--pool-run',
      String(loraExpand),
      '--epochs',
      '1',
      '--batch-size',
      '2',
      ...small,
    ]);
    routeRun = r['run'] as number;
    const sizes = r['bucketSizes'] as number[];
    expect(sizes).toHaveLength(5);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(r['seedSamples']);
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(3); // the floor: min(8, ⌊16 / 5⌋)
    const shown = show(routeRun);
    expect(shown.run).toMatchObject({ kind: 'route', status: 'done' });
    expect(shown.seedBuckets!.map((b) => b.size)).toEqual(sizes);
    const router = shown.checkpoints.find((c) => c.tag === 'router')!;
    expect(sha(join(ws, router.path))).toBe(router.sha256);
    expect(shown.experts!.map((e) => e.idx)).toEqual([0, 1, 2, 3, 4]);
    const source = show(loraExpand).experts!;
    for (const e of shown.experts!) {
      expect(e.path).toMatch(new RegExp(`^runs/${routeRun}/experts/expert-0${e.idx}/params.safetensors$`));
      expect(sha(join(ws, e.path!))).toBe(e.sha256);
      expect(e.source).toBe(source[e.idx]!.source);
      expect(existsSync(join(ws, e.path!, '..', 'adapter_config.json'))).toBe(true);
    }
    expect(shown.metrics.map((m) => m.key)).toEqual(
      expect.arrayContaining(['loss', 'route/aux', 'route/lm']),
    );
    const text = upit(['show', String(routeRun), '--workspace', ws]);
    expect(text.stdout).toMatch(/seed buckets/);
  }, 120_000);

  it('upcycle (LoRA, pre-trained router): trains, exports base + PEFT adapters, scores and routes', async () => {
    const r = await run([
      'upcycle',
      '--pool-run',
      String(routeRun),
      '--epochs',
      '0.5',
      '--batch-size',
      '4',
      ...small,
    ]);
    const id = r['run'] as number;
    expect(r).toMatchObject({ n: 5, topK: 2, mode: 'lora', router: 'pretrained' });
    const model = join(ws, r['model'] as string);
    expect(existsSync(join(model, 'moe.json'))).toBe(true);
    for (let e = 0; e < 5; e++) {
      const ad = readdirLike(model, e);
      expect(existsSync(join(ad, 'adapter_config.json')), ad).toBe(true);
      expect(existsSync(join(ad, 'adapter_model.safetensors'))).toBe(true);
    }
    const shown = show(id);
    const ck = shown.checkpoints.find((c) => c.tag === 'model')!;
    const evals = shown.evaluations.filter((e) => e.checkpointId === ck.id);
    expect(evals.map((e) => e.domain).sort()).toEqual(expect.arrayContaining(['arith', 'code', 'mc', 'qa']));
    const keys = shown.metrics.map((m) => m.key);
    expect(keys).toEqual(
      expect.arrayContaining([
        'moe/aux',
        'moe/lm',
        'moe/entropy/l0',
        'moe/load/l0/e0',
        'moe/load/l1/e4',
        'eval/average',
      ]),
    );
    const routing = upit(['routing', String(id), '--workspace', ws]);
    expect(routing.code, routing.stderr).toBe(0);
    expect(routing.stdout).toMatch(/layer 0/);
    expect(routing.stdout).toMatch(/arith/);
    const logits = upit(['inspect', 'logits', '--model', model, '--ids', '81,58,32,49']);
    expect(logits.code, logits.stderr).toBe(0);
  }, 120_000);

  it('upcycle (FFN, random router): exports a Mixtral directory transformers can read', async () => {
    const r = await run([
      'upcycle',
      '--pool-run',
      String(ffnExpand),
      '--epochs',
      '0.5',
      '--batch-size',
      '4',
      ...small,
    ]);
    expect(r).toMatchObject({ n: 4, topK: 2, mode: 'ffn', router: 'random' });
    const model = join(ws, r['model'] as string);
    const config = JSON.parse(readFileSync(join(model, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({
      architectures: ['MixtralForCausalLM'],
      model_type: 'mixtral',
      num_local_experts: 4,
      num_experts_per_tok: 2,
    });
    const logits = upit(['inspect', 'logits', '--model', model, '--ids', '81,58,32,49']);
    expect(logits.code, logits.stderr).toBe(0);
  }, 120_000);
});

/** The adapter directory of expert e in a LoRA-MoE export (named in moe.json). */
function readdirLike(model: string, e: number): string {
  const manifest = JSON.parse(readFileSync(join(model, 'moe.json'), 'utf8')) as { experts: string[] };
  return join(model, manifest.experts[e]!);
}
