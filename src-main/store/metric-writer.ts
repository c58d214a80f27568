import type Database from 'better-sqlite3';
import type { Db } from './db.js';

export interface MetricWriterOptions {
  /** Flush when this many rows are buffered (default 2048). */
  batchSize?: number;
  /**
   * Flush rows older than this (default 1000 ms), checked on every `log` and by an unref'd timer
   * (so a curve keeps updating while the loop is idle). 0 or Infinity: no time-based flush.
   */
  flushIntervalMs?: number;
  /** Each flush also sets the run's `heartbeat_at` (only while it is 'running'). Default true. */
  heartbeat?: boolean;
  /** Epoch ms that default `wallTime`s count from (the store passes the run's `startedAt`). */
  startTime?: number;
}

export interface MetricExtra {
  tokens?: number | null;
  /** Seconds since the run started; default: measured by the writer. */
  wallTime?: number | null;
}

export interface MetricWriterDeps {
  db: Db;
  runId: number;
  now: () => number;
  onClose?: (w: MetricWriter) => void;
}

const COLS = 6; // run_id, key, step, value, tokens, wall_time
const CHUNK = 64; // rows per multi-row INSERT (384 parameters, far below SQLite's limit)
const INSERT = 'INSERT OR REPLACE INTO metrics (run_id, key, step, value, tokens, wall_time) VALUES ';
type Param = number | string | null;

/**
 * Buffers metric rows of one run and writes them in one IMMEDIATE transaction per flush,
 * 64 rows per INSERT statement. Re-logging a (key, step) replaces the stored value.
 *
 * Flushes every `batchSize` rows, every `flushIntervalMs`, on `flush()`, on `close()`, and on
 * process 'exit' (a crash or SIGKILL loses at most the unflushed rows). A flush that fails in
 * the timer keeps its rows and the error is thrown by the next `log`/`flush`/`close`.
 * Create through `Store.metricWriter(runId)`.
 */
export class MetricWriter {
  readonly runId: number;
  private readonly db: Db;
  private readonly now: () => number;
  private readonly onClose: ((w: MetricWriter) => void) | undefined;
  private readonly batchSize: number;
  private readonly intervalMs: number;
  private readonly t0: number;
  private readonly tx: (rows: Param[], now: number) => void;
  private readonly timer: NodeJS.Timeout | undefined;
  private buf: Param[] = [];
  private lastFlush: number;
  private failure: unknown = undefined;
  private _written = 0;
  private _closed = false;

  constructor(deps: MetricWriterDeps, opts: MetricWriterOptions = {}) {
    this.db = deps.db;
    this.runId = deps.runId;
    this.now = deps.now;
    this.onClose = deps.onClose;
    this.batchSize = opts.batchSize ?? 2048;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1)
      throw new RangeError('batchSize must be ≥ 1');
    const interval = opts.flushIntervalMs ?? 1000;
    if (!(interval >= 0)) throw new RangeError('flushIntervalMs must be ≥ 0');
    this.intervalMs = Number.isFinite(interval) ? interval : 0;
    this.t0 = opts.startTime ?? this.now();
    this.lastFlush = this.now();

    const one = this.db.prepare<[Param[]]>(INSERT + '(?, ?, ?, ?, ?, ?)');
    const many = this.db.prepare<[Param[]]>(INSERT + Array(CHUNK).fill('(?, ?, ?, ?, ?, ?)').join(', '));
    const beat: Database.Statement<[number, number]> | undefined =
      opts.heartbeat === false
        ? undefined
        : this.db.prepare<[number, number]>(
            "UPDATE runs SET heartbeat_at = ? WHERE id = ? AND status = 'running'",
          );
    const run = (rows: Param[], now: number) => {
      const whole = rows.length - (rows.length % (CHUNK * COLS));
      let off = 0;
      for (; off < whole; off += CHUNK * COLS) many.run(rows.slice(off, off + CHUNK * COLS));
      for (; off < rows.length; off += COLS) one.run(rows.slice(off, off + COLS));
      beat?.run(now, this.runId);
    };
    const txn = this.db.transaction(run);
    this.tx = (rows, now) => txn.immediate(rows, now);

    if (this.intervalMs > 0) {
      this.timer = setInterval(() => this.tick(), this.intervalMs);
      this.timer.unref();
    }
    liveWriters.add(this);
    installExitHook();
  }

  /** Rows buffered, not yet written. */
  get pending(): number {
    return this.buf.length / COLS;
  }

  /** Rows written so far. */
  get written(): number {
    return this._written;
  }

  get closed(): boolean {
    return this._closed;
  }

  log(step: number, key: string, value: number, extra?: MetricExtra): void {
    this.rethrow();
    if (this._closed) throw new Error(`metric writer of run ${this.runId} is closed`);
    if (!Number.isSafeInteger(step)) throw new RangeError(`metric '${key}': step ${step} is not an integer`);
    if (typeof key !== 'string' || key === '') throw new TypeError('metric key must be a non-empty string');
    if (typeof value !== 'number') throw new TypeError(`metric '${key}': value must be a number`);
    const now = this.now();
    this.buf.push(
      this.runId,
      key,
      step,
      Number.isNaN(value) ? null : value,
      extra?.tokens ?? null,
      extra?.wallTime ?? (now - this.t0) / 1000,
    );
    if (
      this.buf.length >= this.batchSize * COLS ||
      (this.intervalMs > 0 && now - this.lastFlush >= this.intervalMs)
    ) {
      this.flush();
    }
  }

  /** Several keys at one step, e.g. `{ 'train/loss': 2.1, 'train/lr': 2e-4 }`. */
  logMany(step: number, values: Readonly<Record<string, number>>, extra?: MetricExtra): void {
    for (const [key, value] of Object.entries(values)) this.log(step, key, value, extra);
  }

  /** Writes the buffer now; returns the number of rows written. */
  flush(): number {
    this.rethrow();
    return this.flushNow();
  }

  /** Flushes and stops the timer. Idempotent. */
  close(): void {
    if (this._closed) return;
    try {
      this.flush();
    } finally {
      this._closed = true;
      if (this.timer) clearInterval(this.timer);
      liveWriters.delete(this);
      this.onClose?.(this);
    }
  }

  private flushNow(): number {
    const n = this.buf.length / COLS;
    if (n === 0) return 0;
    const now = this.now();
    this.tx(this.buf, now);
    this.buf = [];
    this._written += n;
    this.lastFlush = now;
    return n;
  }

  private tick(): void {
    if (this.failure !== undefined || this.buf.length === 0) return;
    try {
      this.flushNow();
    } catch (e) {
      this.failure = e;
    }
  }

  private rethrow(): void {
    if (this.failure === undefined) return;
    const e = this.failure;
    this.failure = undefined;
    throw e;
  }
}

const liveWriters = new Set<MetricWriter>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const w of [...liveWriters]) {
      try {
        w.close();
      } catch {
        // the process is ending; nothing better to do with the error
      }
    }
  });
}
