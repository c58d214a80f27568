/**
 * `upit run` on the shipped smoke plan: killed with SIGKILL in the middle of a job, then rerun —
 * the finished jobs are not redone, the interrupted one resumes in its own run, the plan
 * completes, the database is intact and every recorded file matches its checksum.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, upit, upitAsync } from './cli-helpers.js';

const SMOKE = join(ROOT, 'resources', 'plans', 'smoke.yaml');
const BIN = fileURLToPath(new URL('../../bin/upit.js', import.meta.url));

interface JobLine {
  event: string;
  index: number;
  kind: string;
  action?: string;
  run?: number | null;
  status?: string;
}

function lines(stdout: string): JobLine[] {
  return stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as JobLine);
}

/** Starts `upit run` and SIGKILLs it once job `index` has made progress. */
function runAndKill(ws: string, index: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'run', SMOKE, '--workspace', ws, '--json'], { cwd: ROOT });
    let out = '';
    let started = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      for (const l of d.split('\n')) {
        if (!l.startsWith('{')) continue;
        const ev = JSON.parse(l) as JobLine & { step?: number };
        if (ev.event === 'job' && ev.index === index) started = true;
        // a progress line of that job with a step > 0: it is training (or evaluating)
        if (started && ev.event === 'progress' && (ev.step ?? 0) > 0) child.kill('SIGKILL');
      }
    });
    child.stderr.resume();
    child.on('error', reject);
    child.on('close', () => resolve(out));
  });
}

describe('upit run (batch runner) on the smoke plan', () => {
  const dir = mkdtempSync(join(tmpdir(), 'upit-plan-'));
  const ws = join(dir, 'ws');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('validates the plan and prints the job graph', () => {
    const v = upit(['plan', 'validate', SMOKE]);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/ok — plan 'smoke', 5 variants × 1 seed\(s\) → 7 jobs/);
    const dry = upit(['run', SMOKE, '--workspace', ws, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/7 jobs, 0 done, 7 to run/);
  });

  it('survives SIGKILL mid-plan: the rerun skips finished jobs and resumes the killed one', async () => {
    const killedOut = await runAndKill(ws, 3); // the first upcycle job
    const before = lines(killedOut).filter((l) => l.event === 'job');
    expect(before.map((l) => l.index)).toEqual([0, 1, 2, 3]);
    const db = new Database(join(ws, 'upit.db'), { readonly: true });
    const runsBefore = db.prepare('SELECT id, kind, status FROM runs ORDER BY id').all() as {
      id: number;
      kind: string;
      status: string;
    }[];
    db.close();
    expect(runsBefore.map((r) => r.status)).toEqual(['done', 'done', 'done', 'running']);

    const r = await upitAsync(['run', SMOKE, '--workspace', ws, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
      status: string;
      jobs: { kind: string; run: number; status: string }[];
    };
    expect(result.status).toBe('done');
    expect(result.jobs.map((j) => j.status)).toEqual([
      'skipped',
      'skipped',
      'skipped',
      'done',
      'done',
      'done',
      'done',
    ]);
    // finished jobs kept their runs; the killed job resumed in its own run
    expect(result.jobs.slice(0, 4).map((j) => j.run)).toEqual(runsBefore.map((x) => x.id));
    const resumed = lines(r.stdout).find((l) => l.event === 'job' && l.index === 3)!;
    expect(resumed).toMatchObject({ action: 'resume', run: runsBefore[3]!.id });

    const db2 = new Database(join(ws, 'upit.db'), { readonly: true });
    try {
      expect(db2.pragma('integrity_check', { simple: true })).toBe('ok');
      const kinds = db2.prepare('SELECT kind, COUNT(*) AS n FROM runs GROUP BY kind ORDER BY kind').all();
      expect(kinds).toEqual([
        { kind: 'expand', n: 1 },
        { kind: 'prepare', n: 1 },
        { kind: 'route', n: 1 },
        { kind: 'upcycle', n: 4 },
      ]);
      const variants = db2
        .prepare('SELECT variant FROM runs WHERE variant IS NOT NULL ORDER BY variant')
        .all();
      expect(variants.map((v) => (v as { variant: string }).variant)).toEqual([
        'dense',
        'loramoe',
        'no-router-init',
        'upit',
        'vanilla',
      ]);
      // every recorded file is there and whole
      for (const c of db2.prepare('SELECT path, sha256 FROM checkpoints').all() as {
        path: string;
        sha256: string;
      }[]) {
        const file = join(ws, c.path);
        expect(existsSync(file), c.path).toBe(true);
        expect(createHash('sha256').update(readFileSync(file)).digest('hex'), c.path).toBe(c.sha256);
      }
      // each MoE variant has scores on every domain
      const scored = db2
        .prepare(
          `SELECT r.variant AS variant, COUNT(DISTINCT e.domain) AS domains FROM runs r JOIN evaluations e ON e.run_id = r.id
           WHERE r.kind = 'upcycle' GROUP BY r.variant ORDER BY r.variant`,
        )
        .all();
      expect(scored).toEqual([
        { variant: 'loramoe', domains: 4 },
        { variant: 'no-router-init', domains: 4 },
        { variant: 'upit', domains: 4 },
        { variant: 'vanilla', domains: 4 },
      ]);
    } finally {
      db2.close();
    }
    const dry = upit(['run', SMOKE, '--workspace', ws, '--dry-run']);
    expect(dry.stdout).toMatch(/7 jobs, 7 done, 0 to run/);
  }, 600_000);

  it('reports the plan in all four formats with every variant present', () => {
    const r = upit(['report', 'smoke', '--workspace', ws, '--format', 'all']);
    expect(r.code, r.stderr).toBe(0);
    for (const ext of ['md', 'html', 'csv', 'tex']) {
      const file = join(ws, 'reports', `smoke.${ext}`);
      expect(existsSync(file), file).toBe(true);
      const text = readFileSync(file, 'utf8');
      for (const v of ['dense', 'upit', 'no-router-init', 'vanilla', 'loramoe'])
        expect(text.includes(v), `${ext}: ${v}`).toBe(true);
    }
    expect(readFileSync(join(ws, 'reports', 'smoke.html'), 'utf8')).not.toMatch(
      /<script[^>]+src=|https?:\/\//,
    );
    // Stage 1 kept per-item outcomes, so the profile answers the specialisation question, paired
    expect(readFileSync(join(ws, 'reports', 'smoke.md'), 'utf8')).toMatch(
      /Does the best checkpoint differ by domain\? (yes|no|not shown)/,
    );
  }, 60_000);
});
