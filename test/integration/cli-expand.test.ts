import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { microPretrainArgs, upit } from './cli-helpers.js';

interface Shown {
  run: { kind: string; status: string };
  checkpoints: { id: number; step: number; tag: string; path: string; sha256: string }[];
  experts?: {
    idx: number;
    source: string;
    checkpointId: number | null;
    path: string | null;
    sha256: string | null;
    lineage: { parents: number[]; alpha: number; p: number; seed: number } | null;
  }[];
  distances?: { metric: string; matrix: number[][] };
}

function resultOf(stdout: string): Record<string, unknown> {
  const lines = stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const r = lines.find((l) => l['event'] === 'result');
  if (!r) throw new Error(`no result event in: ${stdout}`);
  return r;
}

function tensorNames(file: string): string[] {
  const b = readFileSync(file);
  const n = Number(b.readBigUInt64LE(0));
  return Object.keys(JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as object).filter(
    (k) => k !== '__metadata__',
  );
}

describe('upit expand (Stage 2) on a micro prepare run', () => {
  let dir: string;
  let ws: string;
  let loraRun: number;
  let ffnRun: number;

  const show = (run: number): Shown => {
    const r = upit(['show', String(run), '--workspace', ws, '--json']);
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout) as Shown;
  };
  const runCount = (): number => {
    const r = upit(['runs', '--workspace', ws, '--json']);
    return (JSON.parse(r.stdout) as unknown[]).length;
  };
  const prepare = (mode: string): number => {
    const r = upit([
      'prepare',
      '--workspace',
      ws,
      '--base',
      join(dir, 'model'),
      '--backend',
      'wasm',
      '--json',
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
      '--max-seq-len',
      '160',
      '--no-eval-base',
    ]);
    expect(r.code, r.stderr).toBe(0);
    return resultOf(r.stdout)['run'] as number;
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'upit-expand-'));
    ws = join(dir, 'ws');
    const pre = upit(['pretrain', '--workspace', ws, '--out', join(dir, 'model'), ...microPretrainArgs(4)]);
    expect(pre.code, pre.stderr).toBe(0);
    loraRun = prepare('lora');
    ffnRun = prepare('ffn');
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('rejects p = 1 and n < m before creating a run', () => {
    const before = runCount();
    const p1 = upit(['expand', '--workspace', ws, '--prepare-run', String(loraRun), '--n', '6', '--p', '1']);
    expect(p1.code).toBe(1);
    expect(p1.stderr).toMatch(/expand: p: must be in \[0, 1\)/);
    const n2 = upit(['expand', '--workspace', ws, '--prepare-run', String(loraRun), '--n', '2']);
    expect(n2.code).toBe(1);
    expect(n2.stderr).toMatch(/expand: n: must be ≥ the 4 checkpoints/);
    const notPrepare = upit(['expand', '--workspace', ws, '--prepare-run', '1', '--n', '6']);
    expect(notPrepare.code).toBe(1);
    expect(notPrepare.stderr).toMatch(/prepareRun: run 1 is a pretrain run/);
    expect(runCount()).toBe(before);
  });

  it('grows a LoRA pool of 4 checkpoints to 6 experts with lineage, distances and checksummed files', () => {
    const r = upit(['expand', '--workspace', ws, '--prepare-run', String(loraRun), '--n', '6', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const run = resultOf(r.stdout)['run'] as number;
    const shown = show(run);
    expect(shown.run).toMatchObject({ kind: 'expand', status: 'done' });

    const sources = show(loraRun).checkpoints;
    expect(sources).toHaveLength(4);
    const experts = shown.experts!;
    expect(experts.map((e) => e.idx)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(experts.slice(0, 4).map((e) => [e.source, e.checkpointId])).toEqual(
      sources.map((c) => ['checkpoint', c.id]),
    );
    const children = experts.slice(4);
    expect(children.every((e) => e.source === 'merge' && e.lineage !== null)).toBe(true);

    // n × n, symmetric, zero diagonal
    const d = shown.distances!.matrix;
    expect(shown.distances!.metric).toBe('cosine');
    expect(d).toHaveLength(6);
    for (let i = 0; i < 6; i++) {
      expect(d[i]).toHaveLength(6);
      expect(d[i]![i]).toBe(0);
      for (let j = 0; j < 6; j++) {
        expect(Number.isFinite(d[i]![j])).toBe(true);
        expect(d[i]![j]).toBeCloseTo(d[j]![i]!, 12);
      }
    }

    // each child's parents: the most distant unused pair of the pool before it
    const used = new Set<string>();
    for (const child of children) {
      let best: [number, number] = [-1, -1];
      let bestD = -Infinity;
      for (let i = 0; i < child.idx; i++)
        for (let j = i + 1; j < child.idx; j++)
          if (!used.has(`${i},${j}`) && d[i]![j]! > bestD) {
            bestD = d[i]![j]!;
            best = [i, j];
          }
      expect(child.lineage!.parents).toEqual(best);
      expect(child.lineage!.p).toBe(0.5);
      expect(child.lineage!.alpha).toBeGreaterThanOrEqual(0);
      expect(child.lineage!.alpha).toBeLessThanOrEqual(1);
      const key = child.lineage!.parents.join(',');
      expect(used.has(key)).toBe(false);
      used.add(key);
    }

    // children on disk, laid out like a Stage 1 checkpoint, hash as recorded
    for (const child of children) {
      const file = join(ws, child.path!);
      const sha = createHash('sha256').update(readFileSync(file)).digest('hex');
      expect(sha).toBe(child.sha256);
      const ck = shown.checkpoints.find((c) => c.step === child.idx)!;
      expect(ck).toMatchObject({ tag: 'expert', sha256: sha, path: child.path });
      const expertDir = join(file, '..');
      expect(existsSync(join(expertDir, 'config.json'))).toBe(true);
      expect(existsSync(join(expertDir, 'adapter_config.json'))).toBe(true);
      expect(tensorNames(file).sort()).toEqual(tensorNames(join(ws, sources[0]!.path)).sort());
    }

    const text = upit(['show', String(run), '--workspace', ws]);
    expect(text.stdout).toMatch(/lineage/);
    expect(text.stdout).toMatch(/distances \(cosine\)/);
  });

  it('expands an FFN pool (l2, α clamp)', () => {
    const r = upit([
      'expand',
      '--workspace',
      ws,
      '--prepare-run',
      String(ffnRun),
      '--n',
      '5',
      '--metric',
      'l2',
      '--alpha-clamp',
      '0.3,0.7',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/distances \(l2\)/);
    const run = Number(/run (\d+):/.exec(r.stdout)![1]);
    const shown = show(run);
    expect(shown.experts).toHaveLength(5);
    const child = shown.experts![4]!;
    expect(child.lineage!.alpha).toBeGreaterThanOrEqual(0.3);
    expect(child.lineage!.alpha).toBeLessThanOrEqual(0.7);
    expect(shown.distances!.metric).toBe('l2');
    const names = tensorNames(join(ws, child.path!));
    expect(names.length).toBe(6);
    expect(names.every((n) => /^model\.layers\.\d+\.mlp\.(gate|up|down)_proj\.weight$/.test(n))).toBe(true);
  });
});
