import Database from 'better-sqlite3';
import { UserError } from '../common/errors.js';
import { MIGRATIONS, type Migration } from './migrations/index.js';

export type Db = Database.Database;

export interface OpenDatabaseOptions {
  /** How long a writer waits for another connection's lock before SQLITE_BUSY (default 5000 ms). */
  busyTimeoutMs?: number;
  /** Schema steps to apply (default: this build's `MIGRATIONS`). Tests pass their own. */
  migrations?: readonly Migration[];
}

export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

/**
 * Opens (creating if absent) an SQLite file with the workbench's settings and brings its
 * schema up to date:
 * - WAL journal: readers never block the writer and vice versa; one writer at a time across
 *   processes, others wait up to `busy_timeout`;
 * - `synchronous = NORMAL`: commits survive a process crash, the last ones may be lost on power loss;
 * - `foreign_keys = ON` (per connection: SQLite's default is off).
 */
export function openDatabase(file: string, opts: OpenDatabaseOptions = {}): Db {
  const busy = opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  if (!Number.isInteger(busy) || busy < 0)
    throw new RangeError(`busyTimeoutMs must be a non-negative integer`);
  const db = new Database(file, { timeout: busy });
  try {
    db.pragma(`busy_timeout = ${busy}`);
    let mode: unknown;
    try {
      mode = db.pragma('journal_mode = WAL', { simple: true });
    } catch (e) {
      if (isSqliteError(e) && (e.code === 'SQLITE_NOTADB' || e.code === 'SQLITE_CORRUPT')) {
        throw new UserError(`${file}: not an SQLite database (${e.message})`);
      }
      throw e;
    }
    if (mode !== 'wal' && !db.memory) {
      throw new UserError(`${file}: cannot switch the database to WAL mode (got '${String(mode)}')`);
    }
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db, opts.migrations ?? MIGRATIONS, file);
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

export function schemaVersion(db: Db): number {
  const v = db.pragma('user_version', { simple: true });
  if (typeof v !== 'number') throw new Error(`PRAGMA user_version returned ${String(v)}`);
  return v;
}

/**
 * Applies the pending steps of `migrations`, each in its own IMMEDIATE transaction that also
 * bumps `PRAGMA user_version`, so a failing step leaves the database at the previous version and
 * two processes opening a fresh workspace at once apply each step exactly once (the version is
 * re-read under the write lock). A database whose version is above the newest step was written
 * by a newer build: refused with a UserError rather than risk misreading it.
 * Returns the version after migrating.
 */
export function migrate(
  db: Db,
  migrations: readonly Migration[] = MIGRATIONS,
  label: string = db.name,
): number {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(
        `migration ${m.name} has version ${m.version}, expected ${i + 1} (versions are 1, 2, 3, …)`,
      );
    }
  });
  const latest = migrations.length;
  const tooNew = (v: number) =>
    new UserError(
      `${label}: database schema version ${v} is newer than this build supports (${latest}); ` +
        `upgrade UpIT Workbench to open this workspace`,
    );
  const current = schemaVersion(db);
  if (current > latest) throw tooNew(current);
  for (const m of migrations.slice(current)) {
    const step = db.transaction(() => {
      const v = schemaVersion(db);
      if (v > latest) throw tooNew(v);
      if (v >= m.version) return; // another connection applied it meanwhile
      if (typeof m.up === 'string') db.exec(m.up);
      else m.up(db);
      if (m.disableForeignKeys) {
        const bad = db.pragma('foreign_key_check') as unknown[];
        if (bad.length > 0)
          throw new Error(`migration ${m.name} leaves ${bad.length} foreign-key violations`);
      }
      db.pragma(`user_version = ${m.version}`);
    });
    if (m.disableForeignKeys) db.pragma('foreign_keys = OFF');
    try {
      step.immediate();
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new Error(`${label}: migration ${m.name} failed: ${e instanceof Error ? e.message : String(e)}`, {
        cause: e,
      });
    } finally {
      if (m.disableForeignKeys) db.pragma('foreign_keys = ON');
    }
  }
  return schemaVersion(db);
}

export function isSqliteError(e: unknown): e is InstanceType<typeof Database.SqliteError> {
  return e instanceof Database.SqliteError;
}

/** `PRAGMA integrity_check` → true when the database reports 'ok'. */
export function integrityOk(db: Db): boolean {
  const rows = db.pragma('integrity_check') as { integrity_check: string }[];
  return rows.length === 1 && rows[0]?.integrity_check === 'ok';
}
