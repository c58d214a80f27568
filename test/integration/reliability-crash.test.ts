/**
 * Crash-resume under fault injection: `upit run` on the shipped smoke plan is SIGKILLed at K
 * seeded-random moments in ONE workspace (kill, rerun and kill again later, …, then a final rerun
 * to completion). Some kills are plain timed ones (training steps, evaluation, merges, database
 * writes — wherever the plan is); others wait for a temporary file to appear in the workspace and
 * kill while it is being written (a checkpoint, a merged expert, an exported model).
 *
 * After every kill and at the end: `PRAGMA integrity_check` is ok; every file the database points
 * at (checkpoints, experts) exists, is not a temporary, and matches its recorded sha256 and size;
 * no finished checkpoint is ever lost or changed. The final rerun completes the plan with exactly
 * one run per job (the killed jobs resumed in their own runs).
 *
 * Reproduce a failure with the printed seed: UPIT_CRASH_SEED=<seed> npx vitest run <this file>.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src-main/common/rng.js';
import { ROOT, upit } from './cli-helpers.js';

const SMOKE = join(ROOT, 'resources', 'plans', 'smoke.yaml');
const BIN = fileURLToPath(new URL('../../bin/upit.js', import.meta.url));
const SEED = Number(process.env.UPIT_CRASH_SEED ?? 7);
const KILLS = Number(process.env.UPIT_CRASH_KILLS ?? 4);

interface Kill {
  /** The plan job (0–6) to kill in: the timer starts when the attempt starts (or resumes) it. */
  job: number;
  /** ms after that job starts. */
  delayMs: number;
  /** 'tmp': after the delay, wait (≤ 4 s) for a temporary file in the workspace and kill then. */
  mode: 'time' | 'tmp';
}

/**
 * The kill schedule, a function of the seed only: n distinct jobs of the plan in order — always
 * the expand job (merges), the others drawn from prepare, route and the four upcycles — each at a
 * random moment of its run. Tied to jobs rather than to wall time, so every rerun gets further
 * whatever the machine's speed.
 */
export function killSchedule(seed: number, n: number): Kill[] {
  const rng = Rng.derive(seed, 'crash-schedule');
  const others = rng.shuffle([0, 2, 3, 4, 5, 6]).slice(0, Math.max(0, Math.min(6, n - 1)));
  return [1, ...others]
    .sort((a, b) => a - b)
    .map((job, i) => ({
      job,
      delayMs: rng.int(job === 1 ? 1500 : 6000),
      mode: i % 2 === 1 || rng.next() < 0.3 ? 'tmp' : 'time',
    }));
}

interface Attempt {
  killed: boolean;
  /** What was running when the kill came (the last job line, the last progress/log line). */
  job: string;
  jobIndex: number;
  last: string;
  stdout: string;
  atMs: number;
  tmpSeen: string | null;
}

/** Workspace entries whose names mark them temporary (`x.tmp-PID…`). */
function findTemps(dir: string, out: string[] = [], depth = 0): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names) {
    if (n.includes('.tmp')) out.push(join(dir, n));
    else if (depth < 5 && !n.includes('.')) findTemps(join(dir, n), out, depth + 1);
  }
  return out;
}

function runUntilKilled(ws: string, kill: Kill): Promise<Attempt> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'run', SMOKE, '--workspace', ws, '--json'], { cwd: ROOT });
    let stdout = '';
    let partial = '';
    let job = '(startup)';
    let jobIndex = -1;
    let last = '';
    let armedAt: number | null = null;
    let killed = false;
    let tmpSeen: string | null = null;
    let atMs = 0;
    const timers: NodeJS.Timeout[] = [];
    const doKill = () => {
      if (killed || child.exitCode !== null) return;
      killed = true;
      atMs = armedAt === null ? 0 : performance.now() - armedAt;
      child.kill('SIGKILL');
    };
    const arm = () => {
      armedAt = performance.now();
      if (kill.mode === 'time') {
        timers.push(setTimeout(doKill, kill.delayMs));
        return;
      }
      timers.push(
        setTimeout(() => {
          const deadline = performance.now() + 4000;
          const before = new Set(findTemps(join(ws, 'runs'))); // left by earlier kills: not a write now
          const poll = setInterval(() => {
            const t = findTemps(join(ws, 'runs')).find((f) => !before.has(f)) ?? null;
            if (t || performance.now() > deadline) {
              clearInterval(poll);
              tmpSeen = t;
              doKill();
            }
          }, 2);
          timers.push(poll);
        }, kill.delayMs),
      );
    };
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      const parts = (partial + d).split('\n');
      partial = parts.pop()!;
      for (const l of parts) {
        if (!l.startsWith('{')) continue;
        const ev = JSON.parse(l) as { event: string; index?: number; kind?: string; action?: string };
        if (ev.event === 'job') {
          job = `job ${ev.index! + 1}/7 ${ev.kind} (${ev.action})`;
          jobIndex = ev.index!;
          if (ev.index === kill.job) arm();
        } else last = l.slice(0, 160);
      }
    });
    child.stderr.resume();
    child.on('error', reject);
    child.on('close', (code, signal) => {
      for (const t of timers) clearTimeout(t);
      if (!killed && code !== 0)
        reject(new Error(`upit run exited ${code} (${signal}) without being killed`));
      else resolve({ killed: killed && signal === 'SIGKILL', job, jobIndex, last, stdout, atMs, tmpSeen });
    });
  });
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** The database's invariants; returns the recorded files (workspace-relative path → sha256). */
function checkWorkspace(ws: string, label: string): Map<string, string> {
  const db = new Database(join(ws, 'upit.db'), { readonly: true });
  try {
    expect(db.pragma('integrity_check', { simple: true }), label).toBe('ok');
    expect(db.pragma('foreign_key_check'), label).toEqual([]);
    const files = [
      ...(db.prepare('SELECT path, sha256, bytes FROM checkpoints').all() as {
        path: string;
        sha256: string;
        bytes: number | null;
      }[]),
      ...(db.prepare('SELECT path, sha256, NULL AS bytes FROM experts WHERE path IS NOT NULL').all() as {
        path: string;
        sha256: string | null;
        bytes: null;
      }[]),
    ];
    const out = new Map<string, string>();
    for (const f of files) {
      expect(f.path, `${label}: a temporary file is referenced`).not.toMatch(/\.tmp|\.old-/);
      const abs = join(ws, f.path);
      expect(existsSync(abs), `${label}: ${f.path} is missing`).toBe(true);
      if (!statSync(abs).isFile()) continue; // an expert recorded as its directory
      if (f.sha256 === null) continue;
      expect(sha256(abs), `${label}: ${f.path} does not match its sha256`).toBe(f.sha256);
      if (f.bytes !== null) expect(statSync(abs).size, `${label}: ${f.path} size`).toBe(f.bytes);
      out.set(f.path, f.sha256);
    }
    return out;
  } finally {
    db.close();
  }
}

describe(`upit run survives SIGKILL at ${KILLS} random moments (seed ${SEED})`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'upit-crash-'));
  const ws = join(dir, 'ws');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('resumes after every kill, never loses or corrupts a finished checkpoint, and completes', async () => {
    const schedule = killSchedule(SEED, KILLS);
    console.log(
      `crash schedule (UPIT_CRASH_SEED=${SEED}): ` +
        schedule
          .map(
            (k) =>
              `job ${k.job + 1} +${(k.delayMs / 1000).toFixed(1)}s${k.mode === 'tmp' ? ' then a temp file' : ''}`,
          )
          .join(', '),
    );
    const finished = new Map<string, string>();
    let lastJob = -1;
    for (const [i, kill] of schedule.entries()) {
      const a = await runUntilKilled(ws, kill);
      if (!a.killed) {
        console.log(`attempt ${i + 1}: the plan completed before the kill`);
        lastJob = 7;
        break;
      }
      console.log(
        `kill ${i + 1}: ${(a.atMs / 1000).toFixed(1)}s after job ${kill.job + 1} started, during ${a.job}` +
          (a.tmpSeen ? `, writing ${a.tmpSeen.slice(ws.length + 1)}` : '') +
          ` — last: ${a.last}`,
      );
      expect(a.jobIndex, 'each rerun gets at least as far as the one before').toBeGreaterThanOrEqual(lastJob);
      lastJob = a.jobIndex;
      const label = `after kill ${i + 1} (seed ${SEED})`;
      const files = checkWorkspace(ws, label);
      for (const [p, h] of finished) expect(files.get(p), `${label}: finished ${p} lost or changed`).toBe(h);
      for (const [p, h] of files) finished.set(p, h);
    }

    const t0 = performance.now();
    const final = await runUntilKilled(ws, { job: -1, delayMs: 0, mode: 'time' });
    console.log(`final rerun: ${((performance.now() - t0) / 1000).toFixed(1)}s`);
    const lines = final.stdout
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { event: string });
    const result = lines.at(-1) as unknown as {
      event: string;
      status: string;
      jobs: { kind: string; status: string; run: number }[];
    };
    expect(result.event).toBe('result');
    expect(result.status).toBe('done');
    // the jobs finished before the last kill are skipped, the rest run (the killed one in its own run:
    // one run per job, checked below)
    result.jobs.forEach((j, i) => {
      if (i < lastJob) expect(j.status, `job ${i + 1}`).toBe('skipped');
      else if (i > lastJob) expect(j.status, `job ${i + 1}`).toBe('done');
      else expect(['skipped', 'done']).toContain(j.status);
    });

    const files = checkWorkspace(ws, 'after the final rerun');
    for (const [p, h] of finished) expect(files.get(p), `finished ${p} lost or changed`).toBe(h);
    const db = new Database(join(ws, 'upit.db'), { readonly: true });
    try {
      // one run per job: every killed job resumed in its own run, none started twice
      expect(db.prepare('SELECT kind, COUNT(*) AS n FROM runs GROUP BY kind ORDER BY kind').all()).toEqual([
        { kind: 'expand', n: 1 },
        { kind: 'prepare', n: 1 },
        { kind: 'route', n: 1 },
        { kind: 'upcycle', n: 4 },
      ]);
      expect(db.prepare("SELECT COUNT(*) AS n FROM runs WHERE status <> 'done'").get()).toEqual({ n: 0 });
      expect(result.jobs.map((j) => j.run).sort()).toEqual(
        (db.prepare('SELECT id FROM runs ORDER BY id').all() as { id: number }[]).map((r) => r.id).sort(),
      );
      // every MoE variant was scored on every domain
      expect(
        db
          .prepare(
            `SELECT COUNT(DISTINCT r.variant || '/' || e.domain) AS n FROM runs r JOIN evaluations e ON e.run_id = r.id
             WHERE r.kind = 'upcycle'`,
          )
          .get(),
      ).toEqual({ n: 16 });
    } finally {
      db.close();
    }
    // a killed writer's temporary is removed when its target is written again (io/atomic.ts); writers
    // outside io/ (expert pool, LoRA-MoE export) do not do that yet — reported, never referenced
    for (const left of findTemps(join(ws, 'runs')))
      console.log(`temporary left by a killed writer: ${left.slice(ws.length + 1)}`);
    expect(upit(['run', SMOKE, '--workspace', ws, '--dry-run']).stdout).toMatch(/7 jobs, 7 done, 0 to run/);
  }, 480_000);
});
