import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isSqliteError } from '../../../src-main/store/db.js';
import { Store } from '../../../src-main/store/store.js';
import { runChild, sleep, tempDir } from './helpers.js';

describe('two connections on one workspace', () => {
  it('readers see committed snapshots while a writer holds its transaction; a second writer waits, then gets SQLITE_BUSY', () => {
    const file = path.join(tempDir(), 'upit.db');
    const a = Store.open(file);
    const b = Store.open(file, { busyTimeoutMs: 50 });
    const run = a.createRun({ kind: 'prepare' });
    a.insertMetrics(run.id, [{ key: 'loss', step: 0, value: 1, tokens: null, wallTime: null }]);

    a.db.exec('BEGIN IMMEDIATE');
    a.insertMetrics(run.id, [{ key: 'loss', step: 1, value: 2, tokens: null, wallTime: null }]);
    // b reads the last committed state without waiting
    expect(b.getMetricSummary(run.id)[0]?.count).toBe(1);
    const t0 = performance.now();
    let err: unknown;
    try {
      b.createRun({ kind: 'eval' });
    } catch (e) {
      err = e;
    }
    expect(isSqliteError(err) && err.code).toBe('SQLITE_BUSY');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(40); // it waited busy_timeout
    a.db.exec('COMMIT');
    expect(b.getMetricSummary(run.id)[0]?.count).toBe(2);
    expect(b.createRun({ kind: 'eval' }).id).toBe(run.id + 1);
    // interleaved writers from both connections
    const wa = a.metricWriter(run.id, { batchSize: 10, flushIntervalMs: 0 });
    const wb = b.metricWriter(run.id, { batchSize: 7, flushIntervalMs: 0 });
    for (let i = 0; i < 1000; i++) {
      wa.log(i, 'a', i);
      wb.log(i, 'b', -i);
    }
    wa.close();
    wb.close();
    expect(a.getMetricSummary(run.id).map((s) => [s.key, s.count])).toEqual([
      ['a', 1000],
      ['b', 1000],
      ['loss', 2],
    ]);
    expect(a.integrityOk()).toBe(true);
    a.close();
    b.close();
  });
});

describe('separate processes on one workspace', () => {
  it('a child writes metrics while the parent reads; two children write at once; integrity_check ok', async () => {
    const file = path.join(tempDir(), 'upit.db');
    const parent = Store.open(file);
    const r1 = parent.createRun({ kind: 'prepare' });
    const r2 = parent.createRun({ kind: 'prepare' });
    parent.startRun(r1.id, { backend: 'wasm' });
    const rows = 20_000;
    const c1 = runChild('metric-child.ts', [file, String(r1.id), String(rows), 'close', 'c1']);
    const c2 = runChild('metric-child.ts', [file, String(r2.id), String(rows / 4), 'batch1', 'c2']);
    let finished = false;
    void Promise.all([c1.done, c2.done]).finally(() => (finished = true));

    // the parent keeps reading (and writing its own rows) while the children write
    const seen: number[] = [];
    const w = parent.metricWriter(r1.id, { batchSize: 5, flushIntervalMs: 0 });
    let i = 0;
    while (!finished) {
      const n = parent
        .getMetricSummary(r1.id)
        .reduce((acc, s) => (s.key.startsWith('c1/') ? acc + s.count : acc), 0);
      seen.push(n);
      parent.getMetricSeries(r1.id, 'c1/k0', { maxPoints: 100 });
      w.log(i++, 'parent/poll', n);
      await sleep(5);
    }
    w.close();
    const [res1, res2] = await Promise.all([c1.done, c2.done]);
    expect(res1.stderr).toBe('');
    expect(res1.code).toBe(0);
    expect(res2.code).toBe(0);
    expect(res1.stdout).toContain(`done ${rows}`);

    expect(seen.length).toBeGreaterThan(1);
    expect(seen).toEqual([...seen].sort((x, y) => x - y)); // counts only grow: readers never see torn batches
    expect(seen.some((n) => n > 0 && n < rows)).toBe(true); // read while it was writing
    const s1 = parent.getMetricSummary(r1.id);
    expect(s1.filter((s) => s.key.startsWith('c1/')).reduce((acc, s) => acc + s.count, 0)).toBe(rows);
    expect(s1.find((s) => s.key === 'parent/poll')?.count).toBe(i);
    expect(parent.getMetricSummary(r2.id).reduce((acc, s) => acc + s.count, 0)).toBe(rows / 4);
    // the child's flushes heartbeat the running run
    expect(parent.getRun(r1.id)?.heartbeatAt).toBeGreaterThan(parent.getRun(r1.id)?.startedAt ?? Infinity);
    expect(parent.integrityOk()).toBe(true);
    parent.close();
  });

  it('a child that exits without closing its writer still flushes buffered rows', async () => {
    const file = path.join(tempDir(), 'upit.db');
    const s = Store.open(file);
    const run = s.createRun({ kind: 'prepare' });
    const res = await runChild('metric-child.ts', [file, String(run.id), '1234', 'exit', 'x']).done;
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('pending 34');
    expect(s.getMetricSummary(run.id).reduce((acc, m) => acc + m.count, 0)).toBe(1234);
    expect(s.integrityOk()).toBe(true);
    s.close();
  });
});
