import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Store } from '../../src-main/store/store.js';

export interface IngestTiming {
  rows: number;
  seconds: number;
  rowsPerSec: number;
}

export interface IngestBenchResult {
  /** Batched rows/s (the MetricWriter path), the headline number. */
  rowsPerSec: number;
  batched: IngestTiming;
  /** Reference: one INSERT per transaction, same database settings. */
  unbatched: IngestTiming;
  /** batched.rowsPerSec / unbatched.rowsPerSec. */
  speedup: number;
  batchSize: number;
  keysPerStep: number;
  /** `PRAGMA integrity_check` after both phases, and every batched row read back. */
  ok: boolean;
}

export interface IngestBenchOptions {
  batchSize?: number;
  /** Rows for the unbatched reference (default min(rows, 20 000): it is ~10× slower). */
  unbatchedRows?: number;
  keysPerStep?: number;
}

/**
 * Measures metric ingest into a scratch database `dir/upit-bench-<pid>-<t>.db` (removed
 * afterwards; `dir` is created if missing): `rows` rows through `MetricWriter` (batched, one
 * transaction per `batchSize` rows) vs one-row transactions, as a training loop logs them
 * (`keysPerStep` keys per step).
 */
export function benchMetricIngest(
  dir: string,
  rows: number,
  opts: IngestBenchOptions = {},
): IngestBenchResult {
  if (!Number.isSafeInteger(rows) || rows < 1) throw new RangeError('rows must be a positive integer');
  const batchSize = opts.batchSize ?? 2048;
  const keysPerStep = opts.keysPerStep ?? 8;
  const unbatchedRows = Math.max(1, Math.min(rows, opts.unbatchedRows ?? 20_000));
  const keys = Array.from({ length: keysPerStep }, (_, k) => `bench/key_${k}`);

  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `upit-bench-${process.pid}-${Date.now()}.db`);
  const store = Store.open(file);
  try {
    const a = store.createRun({ kind: 'eval', variant: 'bench-batched' });
    const b = store.createRun({ kind: 'eval', variant: 'bench-unbatched' });

    let t0 = performance.now();
    const w = store.metricWriter(a.id, { batchSize, flushIntervalMs: 0, heartbeat: false });
    for (let i = 0; i < rows; i++) {
      w.log(Math.floor(i / keysPerStep), keys[i % keysPerStep] ?? 'bench/key', Math.sin(i) + i * 1e-6, {
        tokens: i * 64,
        wallTime: i * 1e-3,
      });
    }
    w.close();
    const batched = timing(rows, (performance.now() - t0) / 1000);

    t0 = performance.now();
    for (let i = 0; i < unbatchedRows; i++) {
      const key = keys[i % keysPerStep] ?? 'bench/key';
      store.insertMetrics(b.id, [
        { key, step: Math.floor(i / keysPerStep), value: Math.sin(i), tokens: i * 64, wallTime: i * 1e-3 },
      ]);
    }
    const unbatched = timing(unbatchedRows, (performance.now() - t0) / 1000);

    const stored = store.getMetricSummary(a.id).reduce((n, s) => n + s.count, 0);
    return {
      rowsPerSec: batched.rowsPerSec,
      batched,
      unbatched,
      speedup: batched.rowsPerSec / unbatched.rowsPerSec,
      batchSize,
      keysPerStep,
      ok: stored === rows && store.integrityOk(),
    };
  } finally {
    store.close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
  }
}

function timing(rows: number, seconds: number): IngestTiming {
  return { rows, seconds, rowsPerSec: rows / Math.max(seconds, 1e-9) };
}

/** `npm run bench -- ingest`. */
export async function benchIngest(): Promise<void> {
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(path.join(tmpdir(), 'upit-bench-ingest-'));
  try {
    const r = benchMetricIngest(dir, 200_000, { unbatchedRows: 10_000 });
    console.log(
      `batched writer: ${Math.round(r.batched.rowsPerSec).toLocaleString('en')} rows/s; ` +
        `one row per transaction (reference): ${Math.round(r.unbatched.rowsPerSec).toLocaleString('en')} rows/s; ` +
        `×${r.speedup.toFixed(1)}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
