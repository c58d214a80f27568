import type Database from 'better-sqlite3';

/**
 * One schema step. `version` is its number (1, 2, …, matching `PRAGMA user_version` after it
 * ran); `up` is SQL text or a function for steps that need code (data rewrites).
 *
 * A step that rebuilds a table (SQLite's only way to change a column or CHECK) must set
 * `disableForeignKeys`: the runner turns foreign keys off around the transaction (the pragma
 * is a no-op inside one) and runs `PRAGMA foreign_key_check` before committing.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly up: string | ((db: Database.Database) => void);
  readonly disableForeignKeys?: boolean;
}
