/**
 * The desktop app's `--batch PLAN` mode (host/electron/batch.ts, no Electron API): runs the plan on
 * the workspace and returns the exit status, one line per job.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runBatch } from '../../../src-main/host/electron/batch.js';
import type { JobFn, JobRegistry } from '../../../src-main/jobs/job-runner.js';

const PLAN = `name: batch
data: { source: embedded, trainPerDomain: 4, evalPerDomain: 1 }
prepare: { epochs: 1, checkpointEvery: 0.5 }
expand: { n: 4 }
variants: [dense, upit]
`;

function registry(fail: string | null = null): JobRegistry {
  const fn =
    (kind: string): JobFn =>
    async () => {
      if (kind === fail) throw new Error(`${kind} broke`);
      return {};
    };
  return Object.fromEntries(['prepare', 'expand', 'route', 'upcycle'].map((k) => [k, async () => fn(k)]));
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function setup(text = PLAN) {
  const dir = mkdtempSync(join(tmpdir(), 'upit-batch-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'plan.yaml'), text);
  return { plan: join(dir, 'plan.yaml'), workspace: join(dir, 'ws') };
}

describe('--batch PLAN', () => {
  it('runs the plan and exits 0, then 0 again with every job already done', async () => {
    const o = setup();
    const lines: string[] = [];
    expect(await runBatch({ ...o, registry: registry(), write: (l) => lines.push(l) })).toBe(0);
    expect(lines.filter((l) => l.startsWith('['))).toHaveLength(4);
    expect(lines.at(-1)).toMatch(/plan 'batch' \(experiment 1\): done/);
    const again: string[] = [];
    expect(await runBatch({ ...o, registry: registry(), write: (l) => again.push(l) })).toBe(0);
    expect(again.filter((l) => l.includes('done already'))).toHaveLength(4);
  });

  it('exits 1 with the failing job named, or with a one-line error for a bad plan', async () => {
    const o = setup();
    const lines: string[] = [];
    expect(await runBatch({ ...o, registry: registry('route'), write: (l) => lines.push(l) })).toBe(1);
    expect(lines.at(-1)).toMatch(/failed — route job for upit \(seed 1, run \d+\) failed: route broke/);
    const bad = setup('name: x\nvariants: [upit]\nwat: 1\n');
    const out: string[] = [];
    expect(await runBatch({ ...bad, registry: registry(), write: (l) => out.push(l) })).toBe(1);
    expect(out).toEqual([expect.stringMatching(/^upit: .*plan\.yaml:1:1: Unrecognized key: "wat"$/)]);
  });
});
