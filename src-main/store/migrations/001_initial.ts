import type { Migration } from './migration.js';

/**
 * The initial schema. Conventions:
 * - times are INTEGER milliseconds since the Unix epoch (UTC); `wall_seconds`/`wall_time` are seconds;
 * - JSON columns are TEXT checked with json_valid;
 * - paths are relative to the workspace directory, POSIX separators;
 * - open vocabularies (run kind, expert source, metric names) have no CHECK so that new values
 *   need no table rebuild; closed ones (run status) do;
 * - surrogate ids use AUTOINCREMENT so a deleted run's id (and its `runs/<id>/` folder) is never reused;
 * - every foreign-key child column is the leading column of an index (cascades stay cheap);
 * - metric values are REAL and nullable: SQLite stores NaN as NULL, read back as NaN.
 */
export const migration001: Migration = {
  version: 1,
  name: '001_initial',
  up: /* sql */ `
CREATE TABLE experiments (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  name        TEXT    NOT NULL CHECK (name <> ''),
  created_at  INTEGER NOT NULL,
  plan        TEXT    CHECK (plan IS NULL OR json_valid(plan)),
  notes       TEXT
);
CREATE INDEX experiments_name ON experiments (name);

CREATE TABLE runs (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  experiment_id  INTEGER REFERENCES experiments (id) ON DELETE CASCADE,
  parent_run_id  INTEGER REFERENCES runs (id) ON DELETE SET NULL,
  kind           TEXT    NOT NULL CHECK (kind <> ''),
  variant        TEXT,
  seed           INTEGER,
  status         TEXT    NOT NULL DEFAULT 'queued'
                 CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
  config         TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(config)),
  backend        TEXT,
  created_at     INTEGER NOT NULL,
  started_at     INTEGER,
  finished_at    INTEGER,
  wall_seconds   REAL,
  error          TEXT,
  pid            INTEGER,
  hostname       TEXT,
  heartbeat_at   INTEGER
);
CREATE INDEX runs_experiment ON runs (experiment_id, kind);
CREATE INDEX runs_parent ON runs (parent_run_id);
CREATE INDEX runs_status ON runs (status);

-- Hot path. Clustered on (run, key, step): a series is one range scan, no second index to
-- maintain, and re-logging a step (resume after a crash) replaces the old value.
CREATE TABLE metrics (
  run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  key        TEXT    NOT NULL,
  step       INTEGER NOT NULL,
  value      REAL,
  tokens     INTEGER,
  wall_time  REAL,
  PRIMARY KEY (run_id, key, step)
) WITHOUT ROWID;

CREATE TABLE checkpoints (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  step        INTEGER NOT NULL,
  epoch       REAL,
  path        TEXT    NOT NULL CHECK (path <> '' AND substr(path, 1, 1) <> '/'),
  sha256      TEXT    NOT NULL CHECK (length(sha256) = 64),
  bytes       INTEGER NOT NULL CHECK (bytes >= 0),
  tag         TEXT,
  meta        TEXT    CHECK (meta IS NULL OR json_valid(meta)),
  created_at  INTEGER NOT NULL
);
CREATE INDEX checkpoints_run ON checkpoints (run_id, step);

CREATE TABLE evaluations (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id         INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  checkpoint_id  INTEGER REFERENCES checkpoints (id) ON DELETE SET NULL,
  model_ref      TEXT,
  domain         TEXT    NOT NULL,
  metric         TEXT    NOT NULL,
  score          REAL    NOT NULL,
  n              INTEGER,
  ci_low         REAL,
  ci_high        REAL,
  created_at     INTEGER NOT NULL
);
CREATE INDEX evaluations_run ON evaluations (run_id, domain);
CREATE INDEX evaluations_checkpoint ON evaluations (checkpoint_id);

CREATE TABLE experts (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id         INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  idx            INTEGER NOT NULL CHECK (idx >= 0),
  name           TEXT,
  source         TEXT    NOT NULL,
  checkpoint_id  INTEGER REFERENCES checkpoints (id) ON DELETE SET NULL,
  path           TEXT    CHECK (path IS NULL OR (path <> '' AND substr(path, 1, 1) <> '/')),
  sha256         TEXT    CHECK (sha256 IS NULL OR length(sha256) = 64),
  bytes          INTEGER,
  lineage        TEXT    CHECK (lineage IS NULL OR json_valid(lineage)),
  created_at     INTEGER NOT NULL,
  UNIQUE (run_id, idx)
);
CREATE INDEX experts_checkpoint ON experts (checkpoint_id);

-- Pairwise distances between pool members (expert idx of the run), upserted as the GA pool grows.
CREATE TABLE distances (
  run_id  INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  metric  TEXT    NOT NULL,
  i       INTEGER NOT NULL,
  j       INTEGER NOT NULL,
  value   REAL,
  PRIMARY KEY (run_id, metric, i, j)
) WITHOUT ROWID;

CREATE TABLE routing_stats (
  run_id    INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  layer     INTEGER NOT NULL,
  domain    TEXT    NOT NULL,
  expert    INTEGER NOT NULL,
  fraction  REAL    NOT NULL,
  tokens    INTEGER,
  PRIMARY KEY (run_id, layer, domain, expert)
) WITHOUT ROWID;

CREATE TABLE seed_buckets (
  run_id  INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  expert  INTEGER NOT NULL,
  size    INTEGER NOT NULL CHECK (size >= 0),
  PRIMARY KEY (run_id, expert)
) WITHOUT ROWID;

CREATE TABLE reports (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  experiment_id  INTEGER REFERENCES experiments (id) ON DELETE CASCADE,
  run_id         INTEGER REFERENCES runs (id) ON DELETE CASCADE,
  format         TEXT    NOT NULL,
  path           TEXT    NOT NULL CHECK (path <> '' AND substr(path, 1, 1) <> '/'),
  title          TEXT,
  created_at     INTEGER NOT NULL
);
CREATE INDEX reports_experiment ON reports (experiment_id);
CREATE INDEX reports_run ON reports (run_id);
`,
};
