import { migration001 } from './001_initial.js';
import { migration002 } from './002_evaluation_outcomes.js';
import type { Migration } from './migration.js';

export type { Migration } from './migration.js';

/**
 * Every schema step, in order. Append only: never edit or reorder a released step, add
 * `002_…` instead. Versions must be 1, 2, 3, … (checked when the database opens).
 */
export const MIGRATIONS: readonly Migration[] = [migration001, migration002];

/** The schema version this build writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;
