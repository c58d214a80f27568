import { writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src-main/common/errors.js';
import { migrate, openDatabase, schemaVersion } from '../../../src-main/store/db.js';
import { MIGRATIONS, SCHEMA_VERSION, type Migration } from '../../../src-main/store/migrations/index.js';
import { Store } from '../../../src-main/store/store.js';
import { tempDir } from './helpers.js';

const TABLES = [
  'checkpoints',
  'distances',
  'evaluations',
  'experiments',
  'experts',
  'metrics',
  'reports',
  'routing_stats',
  'runs',
  'seed_buckets',
];

function tables(db: Database.Database): string[] {
  return db
    .prepare<[], { name: string }>(
      "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .all()
    .map((r) => r.name);
}

describe('openDatabase and migrations', () => {
  it('creates the schema from an empty file and sets user_version', () => {
    const file = path.join(tempDir(), 'upit.db');
    const db = openDatabase(file);
    expect(schemaVersion(db)).toBe(SCHEMA_VERSION);
    expect(SCHEMA_VERSION).toBe(MIGRATIONS.length);
    expect(tables(db)).toEqual(TABLES);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
    expect(db.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
    db.close();
  });

  it('reopens idempotently: no re-run, data kept', () => {
    const file = path.join(tempDir(), 'upit.db');
    const s1 = Store.open(file);
    s1.createExperiment({ name: 'e1' });
    s1.close();
    const s2 = Store.open(file);
    expect(schemaVersion(s2.db)).toBe(SCHEMA_VERSION);
    expect(tables(s2.db)).toEqual(TABLES);
    expect(s2.listExperiments().map((e) => e.name)).toEqual(['e1']);
    expect(migrate(s2.db)).toBe(SCHEMA_VERSION);
    s2.close();
  });

  it('refuses a database newer than the code with a clear UserError', () => {
    const file = path.join(tempDir(), 'upit.db');
    openDatabase(file).close();
    const raw = new Database(file);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 5}`);
    raw.close();
    expect(() => openDatabase(file)).toThrow(UserError);
    expect(() => openDatabase(file)).toThrow(/schema version \d+ is newer than this build supports/);
  });

  it('applies a later numbered migration on reopen, and rolls back a failing one', () => {
    const file = path.join(tempDir(), 'upit.db');
    openDatabase(file).close();
    const next = MIGRATIONS.length + 1;
    const m2: Migration = {
      version: next,
      name: 'next_run_tags',
      up: 'CREATE TABLE run_tags (run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE, tag TEXT NOT NULL)',
    };
    const bad: Migration = {
      version: next + 1,
      name: 'next_broken',
      up: 'CREATE TABLE half_done (x INTEGER); INSERT INTO no_such_table VALUES (1);',
    };
    expect(() => openDatabase(file, { migrations: [...MIGRATIONS, m2, bad] })).toThrow(/next_broken failed/);
    const db = openDatabase(file, { migrations: [...MIGRATIONS, m2] });
    expect(schemaVersion(db)).toBe(next);
    expect(tables(db)).toContain('run_tags');
    expect(tables(db)).not.toContain('half_done');
    db.close();
  });

  it('upgrades a version-1 workspace: its evaluations stay, without per-item outcomes', () => {
    const file = path.join(tempDir(), 'upit.db');
    const v1 = openDatabase(file, { migrations: MIGRATIONS.slice(0, 1) });
    v1.prepare("INSERT INTO runs (kind, status, config, created_at) VALUES ('eval', 'done', '{}', 0)").run();
    v1.prepare(
      "INSERT INTO evaluations (run_id, domain, metric, score, n, created_at) VALUES (1, 'qa', 'exact_match', 0.5, 4, 0)",
    ).run();
    v1.close();
    const s = Store.open(file);
    expect(schemaVersion(s.db)).toBe(SCHEMA_VERSION);
    expect(s.listEvaluations(1).map((e) => e.score)).toEqual([0.5]);
    expect(s.listEvaluationOutcomes(1)).toEqual([]);
    s.close();
  });

  it('rejects gaps in migration numbering', () => {
    const db = new Database(':memory:');
    expect(() => migrate(db, [{ version: 2, name: 'x', up: 'SELECT 1' }])).toThrow(/expected 1/);
    db.close();
  });

  it('runs table-rebuild migrations with foreign keys off, then on again', () => {
    const file = path.join(tempDir(), 'upit.db');
    const m2: Migration = {
      version: MIGRATIONS.length + 1,
      name: 'next_rebuild',
      disableForeignKeys: true,
      up: (db) => {
        expect(db.pragma('foreign_keys', { simple: true })).toBe(0);
        db.exec('CREATE TABLE t2 (x INTEGER)');
      },
    };
    const db = openDatabase(file, { migrations: [...MIGRATIONS, m2] });
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    db.close();
  });

  it('reports a file that is not SQLite as a UserError', () => {
    const file = path.join(tempDir(), 'upit.db');
    writeFileSync(file, 'this is not a database, just text that is long enough to be a header '.repeat(20));
    expect(() => openDatabase(file)).toThrow(UserError);
  });
});

describe('foreign keys', () => {
  it('rejects rows that point at missing parents', () => {
    const s = Store.open(path.join(tempDir(), 'upit.db'));
    expect(() =>
      s.db.prepare('INSERT INTO metrics (run_id, key, step, value) VALUES (999, ?, 0, 1)').run('loss'),
    ).toThrow(/FOREIGN KEY constraint failed/);
    expect(() => s.createRun({ kind: 'prepare', experimentId: 42 })).toThrow(/experiment 42 does not exist/);
    expect(() =>
      s.addCheckpoint({
        runId: 77,
        step: 1,
        path: 'runs/77/a.safetensors',
        sha256: 'a'.repeat(64),
        bytes: 1,
      }),
    ).toThrow(UserError);
    s.close();
  });

  it('cascades run deletion to its rows and nulls child runs', () => {
    const s = Store.open(path.join(tempDir(), 'upit.db'));
    const exp = s.createExperiment({ name: 'x' });
    const run = s.createRun({ kind: 'prepare', experimentId: exp.id });
    const child = s.createRun({ kind: 'expand', parentRunId: run.id });
    s.insertMetrics(run.id, [{ key: 'loss', step: 0, value: 1, tokens: null, wallTime: null }]);
    const ck = s.addCheckpoint({
      runId: run.id,
      step: 1,
      path: 'runs/1/c.safetensors',
      sha256: 'b'.repeat(64),
      bytes: 5,
    });
    s.addEvaluation({ runId: child.id, checkpointId: ck.id, domain: 'math', metric: 'em', score: 0.5 });
    expect(s.deleteRun(run.id)).toBe(true);
    expect(s.getMetricSummary(run.id)).toEqual([]);
    expect(s.listCheckpoints(run.id)).toEqual([]);
    expect(s.getRun(child.id)?.parentRunId).toBeNull();
    expect(s.listEvaluations(child.id)[0]?.checkpointId).toBeNull();
    expect(s.deleteExperiment(exp.id)).toBe(true);
    s.close();
  });
});
