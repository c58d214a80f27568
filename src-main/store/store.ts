import os from 'node:os';
import type Database from 'better-sqlite3';
import { UserError } from '../common/errors.js';
import { integrityOk, isSqliteError, openDatabase, type Db, type OpenDatabaseOptions } from './db.js';
import { MinMaxDownsampler } from './downsample.js';
import { MetricWriter, type MetricWriterOptions } from './metric-writer.js';
import { normalizeRelativePath } from './paths.js';
import {
  isExpertSource,
  isRunKind,
  isRunStatus,
  type Checkpoint,
  type Distance,
  type DistanceEntry,
  type Evaluation,
  type EvaluationOutcomes,
  type Experiment,
  type Expert,
  type ExpertLineage,
  type ExpertSource,
  type FinalRunStatus,
  type JsonObject,
  type JsonValue,
  type ListRunsFilter,
  type MetricPoint,
  type MetricRow,
  type MetricSeries,
  type MetricSeriesOptions,
  type MetricSummary,
  type NewCheckpoint,
  type NewEvaluation,
  type NewExperiment,
  type NewExpert,
  type NewReport,
  type NewRun,
  type Report,
  type RoutingStat,
  type Run,
  type RunStatus,
  type SeedBucket,
  type StaleRun,
  type StaleRunOptions,
  type StartRunOptions,
} from './types.js';

export interface StoreOptions {
  /** Clock in epoch ms (tests inject one). */
  now?: () => number;
  /** This machine's name, recorded with a started run's pid. Default `os.hostname()`. */
  hostname?: string;
}

export const DEFAULT_STALE_AFTER_MS = 10 * 60_000;

/** True when a process with this pid exists (EPERM: exists, owned by someone else). */
export function isPidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// ---- column lists (snake_case → camelCase) and raw row shapes ------------------------------

const EXPERIMENT_COLS = 'id, name, created_at AS createdAt, plan, notes';
type ExperimentRaw = Omit<Experiment, 'plan'> & { plan: string | null };

const RUN_COLS =
  'id, experiment_id AS experimentId, parent_run_id AS parentRunId, kind, variant, seed, status, config, ' +
  'backend, created_at AS createdAt, started_at AS startedAt, finished_at AS finishedAt, ' +
  'wall_seconds AS wallSeconds, error, pid, hostname, heartbeat_at AS heartbeatAt';
type RunRaw = Omit<Run, 'config' | 'kind' | 'status'> & { config: string; kind: string; status: string };

const CHECKPOINT_COLS =
  'id, run_id AS runId, step, epoch, path, sha256, bytes, tag, meta, created_at AS createdAt';
type CheckpointRaw = Omit<Checkpoint, 'meta'> & { meta: string | null };

const EVALUATION_COLS =
  'id, run_id AS runId, checkpoint_id AS checkpointId, model_ref AS modelRef, domain, metric, score, n, ' +
  'ci_low AS ciLow, ci_high AS ciHigh, created_at AS createdAt';

/** The same columns qualified with table alias `e`, for joins. */
const EVALUATION_COLS_E = EVALUATION_COLS.split(', ')
  .map((c) => `e.${c}`)
  .join(', ');

const EXPERT_COLS =
  'id, run_id AS runId, idx, name, source, checkpoint_id AS checkpointId, path, sha256, bytes, lineage, ' +
  'created_at AS createdAt';
type ExpertRaw = Omit<Expert, 'lineage' | 'source'> & { lineage: string | null; source: string };

const REPORT_COLS =
  'id, experiment_id AS experimentId, run_id AS runId, format, path, title, created_at AS createdAt';

type SummaryRaw = Omit<MetricSummary, 'first' | 'last' | 'min' | 'max'> & {
  first: number | null;
  last: number | null;
  min: number | null;
  max: number | null;
};

const nanIfNull = (v: number | null): number => (v === null ? Number.NaN : v);

function toRun(r: RunRaw): Run {
  if (!isRunKind(r.kind)) throw new Error(`run ${r.id}: unknown kind '${r.kind}' in database`);
  if (!isRunStatus(r.status)) throw new Error(`run ${r.id}: unknown status '${r.status}' in database`);
  return { ...r, kind: r.kind, status: r.status, config: parseJsonObject(r.config, `run ${r.id} config`) };
}

function toExperiment(r: ExperimentRaw): Experiment {
  return { ...r, plan: r.plan === null ? null : (JSON.parse(r.plan) as JsonValue) };
}

function toCheckpoint(r: CheckpointRaw): Checkpoint {
  return { ...r, meta: r.meta === null ? null : parseJsonObject(r.meta, `checkpoint ${r.id} meta`) };
}

function toExpert(r: ExpertRaw): Expert {
  const source = r.source as ExpertSource; // open vocabulary in the database; see EXPERT_SOURCES
  return { ...r, source, lineage: r.lineage === null ? null : parseLineage(r.lineage, r.id) };
}

function parseJsonObject(text: string, what: string): JsonObject {
  const v = JSON.parse(text) as JsonValue;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${what}: not a JSON object`);
  return v;
}

function parseLineage(text: string, id: number): ExpertLineage {
  const o = parseJsonObject(text, `expert ${id} lineage`);
  const num = (k: string): number | null => (typeof o[k] === 'number' ? o[k] : null);
  const parents = Array.isArray(o.parents) ? o.parents.filter((x): x is number => typeof x === 'number') : [];
  const lineage: ExpertLineage = { parents, alpha: num('alpha'), p: num('p'), seed: num('seed') };
  if (typeof o.method === 'string') lineage.method = o.method;
  if (o.extra !== null && typeof o.extra === 'object' && !Array.isArray(o.extra)) lineage.extra = o.extra;
  return lineage;
}

function jsonText(v: JsonValue, what: string): string {
  const s = JSON.stringify(v);
  if (typeof s !== 'string') throw new UserError(`${what}: not serializable as JSON`);
  return s;
}

function objectText(v: JsonObject | undefined | null, what: string, fallback: string | null): string | null {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'object' || Array.isArray(v)) throw new UserError(`${what}: must be a JSON object`);
  return jsonText(v, what);
}

function checkInt(v: number, what: string, min = Number.MIN_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(v) || v < min)
    throw new UserError(`${what}: ${String(v)} is not an integer ≥ ${min}`);
  return v;
}

function optInt(v: number | null | undefined, what: string, min?: number): number | null {
  return v === undefined || v === null ? null : checkInt(v, what, min);
}

function checkSha256(v: string, what: string): string {
  if (typeof v !== 'string' || !/^[0-9a-fA-F]{64}$/.test(v))
    throw new UserError(`${what}: not a hex SHA-256`);
  return v.toLowerCase();
}

/** An evaluation's per-item outcomes: '0'/'1' per item, as many as its n (when n is given). */
function outcomesOf(e: NewEvaluation): string | null {
  const o = e.outcomes;
  if (o === undefined || o === null) return null;
  const what = `evaluation ${e.domain}/${e.metric}`;
  if (typeof o !== 'string' || !/^[01]+$/.test(o))
    throw new UserError(`${what}: outcomes must be a string of 0 and 1`);
  if (e.n !== undefined && e.n !== null && o.length !== e.n)
    throw new UserError(`${what}: ${o.length} outcomes for n = ${e.n}`);
  if (e.itemsKey === undefined || e.itemsKey === null)
    throw new UserError(`${what}: outcomes need an itemsKey`);
  checkSha256(e.itemsKey, `${what} itemsKey`);
  return o;
}

function nonEmpty(v: string, what: string): string {
  if (typeof v !== 'string' || v.trim() === '') throw new UserError(`${what}: must be a non-empty string`);
  return v;
}

/**
 * Typed repository over one workspace database. Synchronous (better-sqlite3): call it from the
 * worker process, not from a UI event loop that must stay responsive. Several Store instances
 * (processes) may share a file; each write is one short transaction.
 */
export class Store {
  readonly db: Db;
  readonly hostname: string;
  private readonly now: () => number;
  private readonly stmts = new Map<string, Database.Statement<unknown[], unknown>>();
  private readonly writers = new Set<MetricWriter>();

  constructor(db: Db, opts: StoreOptions = {}) {
    this.db = db;
    this.now = opts.now ?? Date.now;
    this.hostname = opts.hostname ?? os.hostname();
  }

  /** Opens (creating and migrating as needed) the database file. */
  static open(file: string, opts: OpenDatabaseOptions & StoreOptions = {}): Store {
    return new Store(openDatabase(file, opts), opts);
  }

  /**
   * Closes open metric writers (flushing them), then the connection. The connection is closed
   * even if a writer's last flush fails; that error is thrown afterwards.
   */
  close(): void {
    if (!this.db.open) return;
    const errors: unknown[] = [];
    for (const w of [...this.writers]) {
      try {
        w.close();
      } catch (e) {
        errors.push(e);
      }
    }
    this.db.close();
    if (errors.length > 0) throw errors[0];
  }

  /** Runs `fn` in one IMMEDIATE transaction (nested calls become savepoints). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** `PRAGMA integrity_check` is 'ok'. */
  integrityOk(): boolean {
    return integrityOk(this.db);
  }

  private q<R>(sql: string): Database.Statement<unknown[], R> {
    let s = this.stmts.get(sql);
    if (s === undefined) {
      s = this.db.prepare<unknown[], unknown>(sql);
      this.stmts.set(sql, s);
    }
    return s as Database.Statement<unknown[], R>;
  }

  /** Turns a foreign-key failure into a UserError naming what was referenced. */
  private fk<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (isSqliteError(e) && e.code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
        throw new UserError(`${what}: refers to a run, experiment or checkpoint that does not exist`);
      }
      throw e;
    }
  }

  // ---- experiments ---------------------------------------------------------------------------

  createExperiment(e: NewExperiment): Experiment {
    const row = this.q<ExperimentRaw>(
      `INSERT INTO experiments (name, created_at, plan, notes) VALUES (?, ?, ?, ?) RETURNING ${EXPERIMENT_COLS}`,
    ).get(
      nonEmpty(e.name, 'experiment name'),
      this.now(),
      e.plan === undefined || e.plan === null ? null : jsonText(e.plan, 'experiment plan'),
      e.notes ?? null,
    );
    if (!row) throw new Error('INSERT … RETURNING gave no row');
    return toExperiment(row);
  }

  getExperiment(id: number): Experiment | undefined {
    const row = this.q<ExperimentRaw>(`SELECT ${EXPERIMENT_COLS} FROM experiments WHERE id = ?`).get(id);
    return row && toExperiment(row);
  }

  listExperiments(): Experiment[] {
    return this.q<ExperimentRaw>(`SELECT ${EXPERIMENT_COLS} FROM experiments ORDER BY id`)
      .all()
      .map(toExperiment);
  }

  findExperiment(name: string): Experiment | undefined {
    const row = this.q<ExperimentRaw>(
      `SELECT ${EXPERIMENT_COLS} FROM experiments WHERE name = ? ORDER BY id LIMIT 1`,
    ).get(name);
    return row ? toExperiment(row) : undefined;
  }

  /** Replaces the experiment's plan (a rerun of an edited plan file). */
  setExperimentPlan(id: number, plan: JsonValue | null): void {
    const r = this.q('UPDATE experiments SET plan = ? WHERE id = ?').run(
      plan === null ? null : jsonText(plan, 'experiment plan'),
      id,
    );
    if (r.changes === 0) throw new UserError(`experiment ${id} does not exist`);
  }

  setExperimentNotes(id: number, notes: string | null): void {
    const r = this.q('UPDATE experiments SET notes = ? WHERE id = ?').run(notes, id);
    if (r.changes === 0) throw new UserError(`experiment ${id} does not exist`);
  }

  /** Deletes the experiment with its runs and all their rows (not their files). */
  deleteExperiment(id: number): boolean {
    return this.q('DELETE FROM experiments WHERE id = ?').run(id).changes > 0;
  }

  // ---- runs ----------------------------------------------------------------------------------

  createRun(r: NewRun): Run {
    if (typeof r.kind !== 'string' || !isRunKind(r.kind))
      throw new UserError(`unknown run kind '${String(r.kind)}'`);
    const experimentId = optInt(r.experimentId, 'run experimentId', 1);
    const parentRunId = optInt(r.parentRunId, 'run parentRunId', 1);
    if (experimentId !== null && !this.getExperiment(experimentId)) {
      throw new UserError(`experiment ${experimentId} does not exist`);
    }
    if (parentRunId !== null && !this.getRun(parentRunId))
      throw new UserError(`parent run ${parentRunId} does not exist`);
    const row = this.q<RunRaw>(
      `INSERT INTO runs (experiment_id, parent_run_id, kind, variant, seed, config, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING ${RUN_COLS}`,
    ).get(
      experimentId,
      parentRunId,
      r.kind,
      r.variant ?? null,
      optInt(r.seed, 'run seed'),
      objectText(r.config, 'run config', '{}'),
      this.now(),
    );
    if (!row) throw new Error('INSERT … RETURNING gave no row');
    return toRun(row);
  }

  getRun(id: number): Run | undefined {
    const row = this.q<RunRaw>(`SELECT ${RUN_COLS} FROM runs WHERE id = ?`).get(id);
    return row && toRun(row);
  }

  /** Like `getRun`, but a missing run is a UserError. */
  requireRun(id: number): Run {
    const run = this.getRun(id);
    if (!run) throw new UserError(`run ${id} does not exist`);
    return run;
  }

  listRuns(filter: ListRunsFilter = {}): Run[] {
    const where: string[] = [];
    const params: (number | string)[] = [];
    if (filter.experimentId !== undefined) {
      where.push('experiment_id = ?');
      params.push(filter.experimentId);
    }
    if (filter.kind !== undefined) {
      where.push('kind = ?');
      params.push(filter.kind);
    }
    if (filter.variant !== undefined) {
      where.push('variant = ?');
      params.push(filter.variant);
    }
    if (filter.parentRunId !== undefined) {
      where.push('parent_run_id = ?');
      params.push(filter.parentRunId);
    }
    if (filter.status !== undefined) {
      const statuses: readonly RunStatus[] =
        typeof filter.status === 'string' ? [filter.status] : filter.status;
      if (statuses.length === 0) return [];
      where.push(`status IN (${statuses.map(() => '?').join(', ')})`);
      params.push(...statuses);
    }
    let sql = `SELECT ${RUN_COLS} FROM runs`;
    if (where.length) sql += ` WHERE ${where.join(' AND ')}`;
    sql += ` ORDER BY id ${filter.order === 'desc' ? 'DESC' : 'ASC'}`;
    if (filter.limit !== undefined) {
      sql += ' LIMIT ?';
      params.push(checkInt(filter.limit, 'listRuns limit', 0));
    }
    return this.q<RunRaw>(sql)
      .all(...params)
      .map(toRun);
  }

  /**
   * queued → running, atomically: of two workers starting the same run, one wins and the other
   * gets a UserError. Records backend, pid, host; sets the first heartbeat.
   */
  startRun(id: number, opts: StartRunOptions): Run {
    const now = this.now();
    const row = this.q<RunRaw>(
      `UPDATE runs SET status = 'running', started_at = ?, heartbeat_at = ?, backend = ?, pid = ?, hostname = ?,
         error = NULL, finished_at = NULL, wall_seconds = NULL
       WHERE id = ? AND status = 'queued' RETURNING ${RUN_COLS}`,
    ).get(
      now,
      now,
      nonEmpty(opts.backend, 'backend'),
      opts.pid ?? process.pid,
      opts.hostname ?? this.hostname,
      id,
    );
    if (!row) throw new UserError(`run ${id} is ${this.requireRun(id).status}, only a queued run can start`);
    return toRun(row);
  }

  /** Marks the run as the result of a variant (or of none). */
  setRunVariant(id: number, variant: string | null): void {
    const r = this.q('UPDATE runs SET variant = ? WHERE id = ?').run(variant, id);
    if (r.changes === 0) throw new UserError(`run ${id} does not exist`);
  }

  /** Records the backend a running job actually resolved (e.g. `auto` → `wasm`). */
  setRunBackend(id: number, backend: string): void {
    this.q('UPDATE runs SET backend = ? WHERE id = ?').run(nonEmpty(backend, 'backend'), id);
  }

  /** Marks a running run alive. Returns false when it is no longer 'running' (cancelled, marked stale): stop working on it. */
  heartbeat(id: number): boolean {
    return (
      this.q("UPDATE runs SET heartbeat_at = ? WHERE id = ? AND status = 'running'").run(this.now(), id)
        .changes > 0
    );
  }

  /** running|queued → done|failed|cancelled, with finish time, wall seconds and error text. */
  finishRun(id: number, status: FinalRunStatus, error?: string | null): Run {
    if (status !== 'done' && status !== 'failed' && status !== 'cancelled') {
      throw new UserError(`finishRun: '${String(status)}' is not a final status`);
    }
    const now = this.now();
    const row = this.q<RunRaw>(
      `UPDATE runs SET status = ?, error = ?, finished_at = ?,
         wall_seconds = CASE WHEN started_at IS NULL THEN NULL ELSE (? - started_at) / 1000.0 END
       WHERE id = ? AND status IN ('queued', 'running') RETURNING ${RUN_COLS}`,
    ).get(status, error ?? null, now, now, id);
    if (!row) throw new UserError(`run ${id} is already ${this.requireRun(id).status}`);
    return toRun(row);
  }

  /** failed|cancelled → queued (to retry, e.g. after 'interrupted'). Its rows are kept; metrics re-logged at a step replace the old ones. */
  requeueRun(id: number): Run {
    const row = this.q<RunRaw>(
      `UPDATE runs SET status = 'queued', error = NULL, finished_at = NULL, wall_seconds = NULL, pid = NULL,
         heartbeat_at = NULL
       WHERE id = ? AND status IN ('failed', 'cancelled') RETURNING ${RUN_COLS}`,
    ).get(id);
    if (!row)
      throw new UserError(
        `run ${id} is ${this.requireRun(id).status}, only a failed or cancelled run can be requeued`,
      );
    return toRun(row);
  }

  /** True when the run has no metric, checkpoint, evaluation, expert, bucket or routing row. */
  runIsEmpty(id: number): boolean {
    return ['metrics', 'checkpoints', 'evaluations', 'experts', 'seed_buckets', 'routing_stats'].every(
      (t) => this.q(`SELECT 1 FROM ${t} WHERE run_id = ? LIMIT 1`).get(id) === undefined,
    );
  }

  /** Deletes the run and every row that belongs to it (children's parent becomes null). Files are the caller's. */
  deleteRun(id: number): boolean {
    return this.q('DELETE FROM runs WHERE id = ?').run(id).changes > 0;
  }

  /**
   * Runs marked 'running' that nobody is running any more: their pid is dead (checked only when
   * the run was started on this host) or their heartbeat (start time if none) is older than
   * `staleAfterMs`. Read-only; see `markStale`.
   */
  findStaleRuns(opts: StaleRunOptions = {}): StaleRun[] {
    const limit = this.now() - (opts.staleAfterMs ?? DEFAULT_STALE_AFTER_MS);
    const alive = opts.isPidAlive ?? isPidAlive;
    const stale: StaleRun[] = [];
    for (const run of this.listRuns({ status: 'running' })) {
      if (run.hostname === this.hostname && run.pid !== null && !alive(run.pid)) {
        stale.push({ run, reason: 'pid-dead' });
      } else if ((run.heartbeatAt ?? run.startedAt ?? run.createdAt) < limit) {
        stale.push({ run, reason: 'heartbeat-timeout' });
      }
    }
    return stale;
  }

  /**
   * Marks the stale runs 'failed' with error 'interrupted' and returns them as updated. A run
   * that heartbeats between detection and update is left alone.
   */
  markStale(opts: StaleRunOptions = {}): Run[] {
    return this.transaction(() => {
      const now = this.now();
      const marked: Run[] = [];
      for (const { run } of this.findStaleRuns(opts)) {
        const row = this.q<RunRaw>(
          `UPDATE runs SET status = 'failed', error = 'interrupted', finished_at = ?,
             wall_seconds = CASE WHEN started_at IS NULL THEN NULL ELSE (? - started_at) / 1000.0 END
           WHERE id = ? AND status = 'running' AND heartbeat_at IS ? RETURNING ${RUN_COLS}`,
        ).get(now, now, run.id, run.heartbeatAt);
        if (row) marked.push(toRun(row));
      }
      return marked;
    });
  }

  // ---- metrics -------------------------------------------------------------------------------

  /** A batched writer for one run's metrics (the training hot path). Closed by `close()` or `Store.close()`. */
  metricWriter(runId: number, opts: MetricWriterOptions = {}): MetricWriter {
    const run = this.requireRun(runId);
    const w = new MetricWriter(
      { db: this.db, runId, now: this.now, onClose: (x) => this.writers.delete(x) },
      { startTime: run.startedAt ?? undefined, ...opts },
    );
    this.writers.add(w);
    return w;
  }

  /** Inserts rows in one transaction (replacing any at the same key and step). */
  insertMetrics(runId: number, rows: readonly MetricRow[]): number {
    const stmt = this.q(
      'INSERT OR REPLACE INTO metrics (run_id, key, step, value, tokens, wall_time) VALUES (?, ?, ?, ?, ?, ?)',
    );
    return this.fk(`metrics of run ${runId}`, () =>
      this.transaction(() => {
        for (const r of rows) {
          stmt.run(
            runId,
            nonEmpty(r.key, 'metric key'),
            checkInt(r.step, `metric '${r.key}' step`),
            Number.isNaN(r.value) ? null : r.value,
            r.tokens,
            r.wallTime,
          );
        }
        return rows.length;
      }),
    );
  }

  /** Per key: count, first/last step and value, min/max. Ordered by key. */
  getMetricSummary(runId: number): MetricSummary[] {
    return this.q<SummaryRaw>(
      `SELECT key, count(*) AS count, min(step) AS firstStep, max(step) AS lastStep,
              min(value) AS min, max(value) AS max,
              (SELECT f.value FROM metrics f WHERE f.run_id = m.run_id AND f.key = m.key ORDER BY f.step ASC LIMIT 1) AS first,
              (SELECT l.value FROM metrics l WHERE l.run_id = m.run_id AND l.key = m.key ORDER BY l.step DESC LIMIT 1) AS last
       FROM metrics m WHERE m.run_id = ? GROUP BY m.key ORDER BY m.key`,
    )
      .all(runId)
      .map((r) => ({
        ...r,
        first: nanIfNull(r.first),
        last: nanIfNull(r.last),
        min: nanIfNull(r.min),
        max: nanIfNull(r.max),
      }));
  }

  /**
   * One key's points in step order, optionally limited to a step range and downsampled to
   * `maxPoints` (min/max per bucket: first, last and extremes kept). Streams rows, so a
   * million-point series costs memory only for the output.
   */
  getMetricSeries(runId: number, key: string, opts: MetricSeriesOptions = {}): MetricSeries {
    const range = [
      runId,
      key,
      opts.fromStep ?? Number.MIN_SAFE_INTEGER,
      opts.toStep ?? Number.MAX_SAFE_INTEGER,
    ];
    const where = 'run_id = ? AND key = ? AND step >= ? AND step <= ?';
    const agg = this.q<{ n: number; lo: number | null; hi: number | null }>(
      `SELECT count(*) AS n, min(step) AS lo, max(step) AS hi FROM metrics WHERE ${where}`,
    ).get(...range);
    const total = agg?.n ?? 0;
    const rows = this.q<{
      step: number;
      value: number | null;
      tokens: number | null;
      wallTime: number | null;
    }>(`SELECT step, value, tokens, wall_time AS wallTime FROM metrics WHERE ${where} ORDER BY step`).iterate(
      ...range,
    );
    const toPoint = (r: {
      step: number;
      value: number | null;
      tokens: number | null;
      wallTime: number | null;
    }) => ({
      step: r.step,
      value: nanIfNull(r.value),
      tokens: r.tokens,
      wallTime: r.wallTime,
    });
    const maxPoints = opts.maxPoints;
    if (maxPoints === undefined || total <= maxPoints || agg?.lo == null || agg.hi == null) {
      const points: MetricPoint[] = [];
      for (const r of rows) points.push(toPoint(r));
      return { key, total, downsampled: false, points };
    }
    const ds = new MinMaxDownsampler(agg.lo, agg.hi, maxPoints);
    for (const r of rows) ds.push(toPoint(r));
    return { key, total, downsampled: true, points: ds.finish() };
  }

  /** Removes a run's metrics after `step` (resuming from an earlier checkpoint). Returns rows removed. */
  deleteMetricsAfter(runId: number, step: number): number {
    return this.q('DELETE FROM metrics WHERE run_id = ? AND step > ?').run(runId, step).changes;
  }

  // ---- checkpoints ---------------------------------------------------------------------------

  /** Records a checkpoint file; the caller hashes it (`fileSha256`) and passes a workspace-relative path. */
  addCheckpoint(c: NewCheckpoint): Checkpoint {
    const row = this.fk(`checkpoint of run ${c.runId}`, () =>
      this.q<CheckpointRaw>(
        `INSERT INTO checkpoints (run_id, step, epoch, path, sha256, bytes, tag, meta, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING ${CHECKPOINT_COLS}`,
      ).get(
        c.runId,
        checkInt(c.step, 'checkpoint step'),
        c.epoch ?? null,
        normalizeRelativePath(c.path, 'checkpoint path'),
        checkSha256(c.sha256, 'checkpoint sha256'),
        checkInt(c.bytes, 'checkpoint bytes', 0),
        c.tag ?? null,
        objectText(c.meta, 'checkpoint meta', null),
        this.now(),
      ),
    );
    if (!row) throw new Error('INSERT … RETURNING gave no row');
    return toCheckpoint(row);
  }

  getCheckpoint(id: number): Checkpoint | undefined {
    const row = this.q<CheckpointRaw>(`SELECT ${CHECKPOINT_COLS} FROM checkpoints WHERE id = ?`).get(id);
    return row && toCheckpoint(row);
  }

  listCheckpoints(runId: number): Checkpoint[] {
    return this.q<CheckpointRaw>(
      `SELECT ${CHECKPOINT_COLS} FROM checkpoints WHERE run_id = ? ORDER BY step, id`,
    )
      .all(runId)
      .map(toCheckpoint);
  }

  // ---- evaluations ---------------------------------------------------------------------------

  addEvaluation(e: NewEvaluation): Evaluation {
    if (typeof e.score !== 'number' || !Number.isFinite(e.score)) {
      throw new UserError(
        `evaluation ${e.domain}/${e.metric}: score ${String(e.score)} is not a finite number`,
      );
    }
    const row = this.fk(`evaluation of run ${e.runId}`, () =>
      this.q<Evaluation>(
        `INSERT INTO evaluations (run_id, checkpoint_id, model_ref, domain, metric, score, n, ci_low, ci_high,
           outcomes, items_key, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING ${EVALUATION_COLS}`,
      ).get(
        e.runId,
        e.checkpointId ?? null,
        e.modelRef ?? null,
        nonEmpty(e.domain, 'evaluation domain'),
        nonEmpty(e.metric, 'evaluation metric'),
        e.score,
        optInt(e.n, 'evaluation n', 0),
        e.ciLow ?? null,
        e.ciHigh ?? null,
        outcomesOf(e),
        e.outcomes == null ? null : (e.itemsKey ?? null),
        this.now(),
      ),
    );
    if (!row) throw new Error('INSERT … RETURNING gave no row');
    return row;
  }

  /** All or none, in one transaction. */
  addEvaluations(es: readonly NewEvaluation[]): Evaluation[] {
    return this.transaction(() => es.map((e) => this.addEvaluation(e)));
  }

  listEvaluations(runId: number, opts: { checkpointId?: number } = {}): Evaluation[] {
    if (opts.checkpointId !== undefined) {
      return this.q<Evaluation>(
        `SELECT ${EVALUATION_COLS} FROM evaluations WHERE run_id = ? AND checkpoint_id = ? ORDER BY id`,
      ).all(runId, opts.checkpointId);
    }
    return this.q<Evaluation>(`SELECT ${EVALUATION_COLS} FROM evaluations WHERE run_id = ? ORDER BY id`).all(
      runId,
    );
  }

  /** Per-item outcomes of run `runId`'s evaluations that have them (see NewEvaluation.outcomes). */
  listEvaluationOutcomes(runId: number): EvaluationOutcomes[] {
    return this.q<EvaluationOutcomes>(
      `SELECT id AS evaluationId, outcomes, items_key AS itemsKey FROM evaluations
       WHERE run_id = ? AND outcomes IS NOT NULL AND items_key IS NOT NULL ORDER BY id`,
    ).all(runId);
  }

  /** Evaluations of the checkpoints of run `checkpointRunId`, whichever run made them (stage 1's checkpoint × domain table). */
  listCheckpointEvaluations(checkpointRunId: number): Evaluation[] {
    return this.q<Evaluation>(
      `SELECT ${EVALUATION_COLS_E} FROM evaluations e
       JOIN checkpoints c ON c.id = e.checkpoint_id WHERE c.run_id = ? ORDER BY c.step, e.domain, e.id`,
    ).all(checkpointRunId);
  }

  // ---- experts, distances, routing -----------------------------------------------------------

  addExpert(e: NewExpert): Expert {
    if (typeof e.source !== 'string' || !isExpertSource(e.source)) {
      throw new UserError(`expert ${e.idx}: unknown source '${String(e.source)}'`);
    }
    const row = this.fk(`expert ${e.idx} of run ${e.runId}`, () =>
      this.q<ExpertRaw>(
        `INSERT INTO experts (run_id, idx, name, source, checkpoint_id, path, sha256, bytes, lineage, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING ${EXPERT_COLS}`,
      ).get(
        e.runId,
        checkInt(e.idx, 'expert idx', 0),
        e.name ?? null,
        e.source,
        e.checkpointId ?? null,
        e.path === undefined || e.path === null ? null : normalizeRelativePath(e.path, 'expert path'),
        e.sha256 === undefined || e.sha256 === null ? null : checkSha256(e.sha256, 'expert sha256'),
        optInt(e.bytes, 'expert bytes', 0),
        e.lineage ? jsonText(lineageJson(e.lineage), `expert ${e.idx} lineage`) : null,
        this.now(),
      ),
    );
    if (!row) throw new Error('INSERT … RETURNING gave no row');
    return toExpert(row);
  }

  /** Replaces the run's expert pool, in one transaction. */
  setExperts(runId: number, experts: readonly Omit<NewExpert, 'runId'>[]): Expert[] {
    return this.transaction(() => {
      this.q('DELETE FROM experts WHERE run_id = ?').run(runId);
      return experts.map((e) => this.addExpert({ ...e, runId }));
    });
  }

  listExperts(runId: number): Expert[] {
    return this.q<ExpertRaw>(`SELECT ${EXPERT_COLS} FROM experts WHERE run_id = ? ORDER BY idx`)
      .all(runId)
      .map(toExpert);
  }

  getExpert(runId: number, idx: number): Expert | undefined {
    const row = this.q<ExpertRaw>(`SELECT ${EXPERT_COLS} FROM experts WHERE run_id = ? AND idx = ?`).get(
      runId,
      idx,
    );
    return row && toExpert(row);
  }

  /** Inserts or replaces pairwise distances (pool members by idx) for one metric ('cosine', 'l2', …). */
  upsertDistances(runId: number, metric: string, entries: readonly DistanceEntry[]): void {
    const stmt = this.q(
      'INSERT OR REPLACE INTO distances (run_id, metric, i, j, value) VALUES (?, ?, ?, ?, ?)',
    );
    nonEmpty(metric, 'distance metric');
    this.fk(`distances of run ${runId}`, () =>
      this.transaction(() => {
        for (const d of entries) {
          stmt.run(runId, metric, checkInt(d.i, 'distance i', 0), checkInt(d.j, 'distance j', 0), d.value);
        }
      }),
    );
  }

  getDistances(runId: number, metric?: string): Distance[] {
    const rows =
      metric === undefined
        ? this.q<Distance & { value: number | null }>(
            'SELECT metric, i, j, value FROM distances WHERE run_id = ? ORDER BY metric, i, j',
          ).all(runId)
        : this.q<Distance & { value: number | null }>(
            'SELECT metric, i, j, value FROM distances WHERE run_id = ? AND metric = ? ORDER BY i, j',
          ).all(runId, metric);
    return rows.map((r) => ({ ...r, value: nanIfNull(r.value) }));
  }

  /**
   * Symmetric `size × size` matrix of one metric (size: 1 + largest idx seen, unless given);
   * d(i,j) stored in either order fills both cells; diagonal 0 unless stored; missing pairs NaN.
   */
  getDistanceMatrix(runId: number, metric: string, size?: number): number[][] {
    const rows = this.getDistances(runId, metric);
    const n = size ?? rows.reduce((m, r) => Math.max(m, r.i + 1, r.j + 1), 0);
    const m = Array.from({ length: n }, (_, i) =>
      Array.from({ length: n }, (_, j) => (i === j ? 0 : Number.NaN)),
    );
    for (const r of rows) {
      if (r.i >= n || r.j >= n) continue;
      const ri = m[r.i];
      const rj = m[r.j];
      if (ri) ri[r.j] = r.value;
      if (rj) rj[r.i] = r.value;
    }
    return m;
  }

  /** Replaces the run's routing statistics (fraction of a domain's tokens per layer and expert). */
  setRoutingStats(runId: number, stats: readonly RoutingStat[]): void {
    const ins = this.q(
      'INSERT INTO routing_stats (run_id, layer, domain, expert, fraction, tokens) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.fk(`routing stats of run ${runId}`, () =>
      this.transaction(() => {
        this.q('DELETE FROM routing_stats WHERE run_id = ?').run(runId);
        for (const s of stats) {
          ins.run(
            runId,
            checkInt(s.layer, 'routing layer', 0),
            nonEmpty(s.domain, 'routing domain'),
            checkInt(s.expert, 'routing expert', 0),
            s.fraction,
            optInt(s.tokens, 'routing tokens', 0),
          );
        }
      }),
    );
  }

  getRoutingStats(runId: number, opts: { layer?: number } = {}): RoutingStat[] {
    const cols = 'layer, domain, expert, fraction, tokens';
    if (opts.layer !== undefined) {
      return this.q<RoutingStat>(
        `SELECT ${cols} FROM routing_stats WHERE run_id = ? AND layer = ? ORDER BY domain, expert`,
      ).all(runId, opts.layer);
    }
    return this.q<RoutingStat>(
      `SELECT ${cols} FROM routing_stats WHERE run_id = ? ORDER BY layer, domain, expert`,
    ).all(runId);
  }

  /** Replaces the run's seed-bucket sizes (stage 3: samples assigned to each expert). */
  setSeedBuckets(runId: number, buckets: readonly SeedBucket[]): void {
    const ins = this.q('INSERT INTO seed_buckets (run_id, expert, size) VALUES (?, ?, ?)');
    this.fk(`seed buckets of run ${runId}`, () =>
      this.transaction(() => {
        this.q('DELETE FROM seed_buckets WHERE run_id = ?').run(runId);
        for (const b of buckets)
          ins.run(runId, checkInt(b.expert, 'bucket expert', 0), checkInt(b.size, 'bucket size', 0));
      }),
    );
  }

  getSeedBuckets(runId: number): SeedBucket[] {
    return this.q<SeedBucket>('SELECT expert, size FROM seed_buckets WHERE run_id = ? ORDER BY expert').all(
      runId,
    );
  }

  // ---- reports -------------------------------------------------------------------------------

  addReport(r: NewReport): Report {
    const row = this.fk('report', () =>
      this.q<Report>(
        `INSERT INTO reports (experiment_id, run_id, format, path, title, created_at)
         VALUES (?, ?, ?, ?, ?, ?) RETURNING ${REPORT_COLS}`,
      ).get(
        r.experimentId ?? null,
        r.runId ?? null,
        nonEmpty(r.format, 'report format'),
        normalizeRelativePath(r.path, 'report path'),
        r.title ?? null,
        this.now(),
      ),
    );
    if (!row) throw new Error('INSERT … RETURNING gave no row');
    return row;
  }

  listReports(filter: { experimentId?: number; runId?: number } = {}): Report[] {
    if (filter.experimentId !== undefined) {
      return this.q<Report>(`SELECT ${REPORT_COLS} FROM reports WHERE experiment_id = ? ORDER BY id`).all(
        filter.experimentId,
      );
    }
    if (filter.runId !== undefined) {
      return this.q<Report>(`SELECT ${REPORT_COLS} FROM reports WHERE run_id = ? ORDER BY id`).all(
        filter.runId,
      );
    }
    return this.q<Report>(`SELECT ${REPORT_COLS} FROM reports ORDER BY id`).all();
  }
}

function lineageJson(l: ExpertLineage): JsonObject {
  const o: JsonObject = { parents: l.parents, alpha: l.alpha, p: l.p, seed: l.seed };
  if (l.method !== undefined) o.method = l.method;
  if (l.extra !== undefined) o.extra = l.extra;
  return o;
}
