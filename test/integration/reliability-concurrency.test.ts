/**
 * Several processes on one workspace. `upit serve` (the GUI's web host, its own worker) runs in
 * the background while:
 *   - two `upit run PLAN` start at the same moment: one runs the plan, the other refuses with a
 *     clear message (or, had it come later, would find the jobs done) — never two runs of a job;
 *   - a third `upit run` started while the plan runs refuses at once, naming the run and its pid;
 *   - the GUI starts a job of its own through the API during the CLI batch;
 * and each side sees the other's runs (runs.list over HTTP with the token; `upit runs` on the
 * CLI) live, with the database intact at the end (WAL, one writer at a time).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, upit, upitAsync, type CliResult } from './cli-helpers.js';

const BIN = fileURLToPath(new URL('../../bin/upit.js', import.meta.url));

/**
 * Two jobs (Stage 1, then vanilla upcycling) on a few examples: ~10 s of work, long enough for a
 * third process to start (~2 s) while it runs.
 */
const PLAN = `name: conc
backend: wasm
data: {source: embedded, suiteSeed: 1, trainPerDomain: 4, evalPerDomain: 1}
prepare: {mode: lora, epochs: 2, checkpointEvery: 1, batchSize: 8, maxSeqLen: 96, evalBase: false, evalMaxNewTokens: 4}
upcycle: {topK: 2, epochs: 2, batchSize: 8, maxSeqLen: 96, evalMaxNewTokens: 4}
variants: [dense, vanilla]
`;

interface RunRow {
  id: number;
  kind: string;
  status: string;
}

/** `upit serve` in the background; resolves with its URL once it listens. */
function serve(ws: string): Promise<{ child: ChildProcess; origin: string; token: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'serve', '--workspace', ws, '--port', '0'], { cwd: ROOT });
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /open (http:\/\/127\.0\.0\.1:\d+)\/\?token=([A-Za-z0-9_-]+)/.exec(out);
      if (m) resolve({ child, origin: m[1]!, token: m[2]! });
    });
    child.stderr!.resume();
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`upit serve exited (${code}) before listening: ${out}`)));
  });
}

describe('concurrent CLI runs and the GUI host on one workspace', () => {
  const dir = mkdtempSync(join(tmpdir(), 'upit-conc-'));
  const ws = join(dir, 'ws');
  const plan = join(dir, 'conc.yaml');
  writeFileSync(plan, PLAN);
  let host: ChildProcess | null = null;
  afterAll(() => {
    host?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the plan once, refuses the others clearly, and both hosts see every run', async () => {
    const srv = await serve(ws);
    host = srv.child;
    const api = async (method: string, body: unknown): Promise<Record<string, unknown>> => {
      const r = await fetch(`${srv.origin}/api/${method}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${srv.token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      const json = (await r.json()) as Record<string, unknown>;
      if (!r.ok) throw new Error(`${method}: ${r.status} ${JSON.stringify(json)}`);
      return json;
    };
    const guiRuns = async () => (await api('runs.list', {})).runs as RunRow[];

    // two batch runs at the same moment
    const first = upitAsync(['run', plan, '--workspace', ws, '--json']);
    const second = upitAsync(['run', plan, '--workspace', ws, '--json']);

    // the GUI sees the CLI's Stage 1 run while it runs, and starts a job of its own meanwhile
    let seenRunning: RunRow | undefined;
    const deadline = Date.now() + 60_000;
    while (!seenRunning && Date.now() < deadline) {
      seenRunning = (await guiRuns()).find((r) => r.kind === 'prepare' && r.status === 'running');
      if (!seenRunning) await new Promise((r) => setTimeout(r, 100));
    }
    expect(seenRunning, 'runs.list shows the CLI run while it runs').toBeDefined();
    const { jobId } = (await api('jobs.start', { kind: 'demo', config: { steps: 20, intervalMs: 50 } })) as {
      jobId: string;
    };
    expect(jobId).toEqual(expect.any(String));

    // a third run while the plan runs: refused at once, naming the run and its process
    const third = await upitAsync(['run', plan, '--workspace', ws]);
    expect(third.code).toBe(1);
    expect(third.stderr.trimEnd().split('\n').at(-1)).toMatch(
      /^upit: run \d+ \((prepare|upcycle) of plan conc\) is running in another process \(pid \d+\); wait for it or cancel it$/,
    );

    const results: CliResult[] = await Promise.all([first, second]);
    const ok = results.filter((r) => r.code === 0);
    const refused = results.filter((r) => r.code !== 0);
    // one runs the plan; the other either refused clearly or (had it started later) found it done
    expect(ok.length, results.map((r) => r.stderr).join('\n---\n')).toBeGreaterThanOrEqual(1);
    for (const r of refused)
      expect(r.stderr.trimEnd().split('\n').at(-1)).toMatch(
        /^upit: run \d+ \(\w+ of plan conc\) is running in another process/,
      );
    for (const r of ok) {
      const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { status: string };
      expect(res.status).toBe('done');
    }

    // the GUI's job finishes too; each side lists the other's runs
    const until = Date.now() + 30_000;
    let runs = await guiRuns();
    while (runs.some((r) => r.status === 'running' || r.status === 'queued') && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 200));
      runs = await guiRuns();
    }
    expect(runs.map((r) => `${r.kind}:${r.status}`).sort()).toEqual([
      'demo:done',
      'prepare:done',
      'upcycle:done',
    ]);
    const cli = upit(['runs', '--workspace', ws, '--json']);
    expect(cli.code, cli.stderr).toBe(0);
    expect((JSON.parse(cli.stdout) as RunRow[]).map((r) => `${r.kind}:${r.status}`).sort()).toEqual([
      'demo:done',
      'prepare:done',
      'upcycle:done',
    ]);

    host.kill('SIGTERM');
    await new Promise((r) => host!.once('exit', r));
    host = null;
    const db = new Database(join(ws, 'upit.db'), { readonly: true });
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      // the demo job's metrics went in alongside the CLI's
      const metrics = db
        .prepare(
          'SELECT r.kind AS kind, COUNT(*) > 0 AS any FROM metrics m JOIN runs r ON r.id = m.run_id GROUP BY r.kind ORDER BY r.kind',
        )
        .all();
      expect(metrics).toEqual([
        { kind: 'demo', any: 1 },
        { kind: 'prepare', any: 1 },
        { kind: 'upcycle', any: 1 },
      ]);
    } finally {
      db.close();
    }
  }, 240_000);
});
