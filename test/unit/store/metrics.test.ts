import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { downsampleMinMax } from '../../../src-main/store/downsample.js';
import { Store } from '../../../src-main/store/store.js';
import type { MetricPoint } from '../../../src-main/store/types.js';
import { sleep, tempDir } from './helpers.js';

function setup() {
  const clock = { t: 1_000_000 };
  const store = Store.open(path.join(tempDir(), 'upit.db'), { now: () => clock.t });
  const run = store.createRun({ kind: 'prepare' });
  store.startRun(run.id, { backend: 'wasm' });
  return { store, run, clock };
}

function countRows(store: Store, runId: number): number {
  return (
    store.db.prepare<[number], { n: number }>('SELECT count(*) AS n FROM metrics WHERE run_id = ?').get(runId)
      ?.n ?? -1
  );
}

describe('MetricWriter', () => {
  it('buffers, flushes every batchSize rows, and flushes everything on close', () => {
    const { store, run } = setup();
    const w = store.metricWriter(run.id, { batchSize: 100, flushIntervalMs: 0 });
    for (let i = 0; i < 250; i++) w.log(i, 'train/loss', 10 - i * 0.01);
    expect(w.written).toBe(200);
    expect(w.pending).toBe(50);
    expect(countRows(store, run.id)).toBe(200);
    w.close();
    expect(w.pending).toBe(0);
    expect(countRows(store, run.id)).toBe(250);
    expect(() => w.log(1, 'x', 1)).toThrow(/closed/);
    w.close(); // idempotent
    store.close();
  });

  it('gives a correct per-key summary (count, first, last, min, max, last step)', () => {
    const { store, run } = setup();
    const w = store.metricWriter(run.id, { batchSize: 7, flushIntervalMs: 0 });
    const loss: number[] = [];
    for (let step = 0; step < 1000; step++) {
      const v = 5 * Math.exp(-step / 300) + 0.3 * Math.sin(step);
      loss.push(v);
      w.logMany(step, { 'train/loss': v, 'train/lr': 2e-4 * (1 - step / 1000) }, { tokens: step * 512 });
      if (step % 100 === 0) w.log(step, 'eval/em', step / 1000);
    }
    w.close();
    const summary = store.getMetricSummary(run.id);
    expect(summary.map((s) => s.key)).toEqual(['eval/em', 'train/loss', 'train/lr']);
    const l = summary.find((s) => s.key === 'train/loss');
    expect(l).toEqual({
      key: 'train/loss',
      count: 1000,
      firstStep: 0,
      lastStep: 999,
      first: loss[0],
      last: loss[999],
      min: Math.min(...loss),
      max: Math.max(...loss),
    });
    expect(summary[0]).toMatchObject({
      count: 10,
      firstStep: 0,
      lastStep: 900,
      first: 0,
      last: 0.9,
      min: 0,
      max: 0.9,
    });
    store.close();
  });

  it('flushes on a timer while the loop is idle, and the flush heartbeats the run', async () => {
    const { store, run, clock } = setup();
    const w = store.metricWriter(run.id, { batchSize: 10_000, flushIntervalMs: 20 });
    w.log(0, 'loss', 1);
    expect(countRows(store, run.id)).toBe(0);
    clock.t += 5000;
    await sleep(120);
    expect(countRows(store, run.id)).toBe(1);
    expect(store.getRun(run.id)?.heartbeatAt).toBe(clock.t);
    w.close();
    store.close();
  });

  it('stores NaN and ±Infinity, replaces a re-logged step, and records wall time since start', () => {
    const { store, run, clock } = setup();
    const w = store.metricWriter(run.id, { flushIntervalMs: 0 });
    clock.t += 2500;
    w.log(0, 'loss', 3);
    w.log(1, 'loss', Number.NaN);
    w.log(2, 'loss', Number.POSITIVE_INFINITY);
    w.log(3, 'loss', 1, { tokens: 99, wallTime: 7 });
    w.flush();
    w.log(3, 'loss', 0.5); // resumed run logs step 3 again
    w.close();
    const s = store.getMetricSeries(run.id, 'loss');
    expect(s.points.map((p) => p.value)).toEqual([3, Number.NaN, Number.POSITIVE_INFINITY, 0.5]);
    expect(s.points[0]?.wallTime).toBe(2.5);
    expect(s.points[3]).toMatchObject({ tokens: null, wallTime: 2.5 });
    const sum = store.getMetricSummary(run.id)[0];
    expect(sum).toMatchObject({ count: 4, min: 0.5, max: Number.POSITIVE_INFINITY, last: 0.5, lastStep: 3 });
    expect(store.deleteMetricsAfter(run.id, 1)).toBe(2);
    expect(store.getMetricSeries(run.id, 'loss').total).toBe(2);
    store.close();
  });

  it('rejects non-integer steps and keeps a failed flush for the next call', () => {
    const { store, run } = setup();
    const w = store.metricWriter(run.id, { batchSize: 2, flushIntervalMs: 0 });
    expect(() => w.log(1.5, 'loss', 1)).toThrow(RangeError);
    w.log(0, 'loss', 1);
    store.deleteRun(run.id); // rows now point at a missing run
    expect(() => w.log(1, 'loss', 1)).toThrow(/FOREIGN KEY/);
    expect(w.pending).toBe(2);
    expect(() => store.metricWriter(12345)).toThrow(/run 12345 does not exist/);
    // closing the store still closes the connection, then reports the writer's failure
    expect(() => store.close()).toThrow(/FOREIGN KEY/);
    expect(store.db.open).toBe(false);
  });
});

describe('metric series downsampling', () => {
  it('returns all points when short enough, and a step range', () => {
    const { store, run } = setup();
    store.insertMetrics(
      run.id,
      Array.from({ length: 50 }, (_, i) => ({
        key: 'k',
        step: i * 10,
        value: i,
        tokens: null,
        wallTime: null,
      })),
    );
    const all = store.getMetricSeries(run.id, 'k', { maxPoints: 100 });
    expect(all).toMatchObject({ total: 50, downsampled: false });
    expect(all.points).toHaveLength(50);
    const part = store.getMetricSeries(run.id, 'k', { fromStep: 100, toStep: 200 });
    expect(part.points.map((p) => p.step)).toEqual([100, 110, 120, 130, 140, 150, 160, 170, 180, 190, 200]);
    expect(store.getMetricSeries(run.id, 'missing', { maxPoints: 10 })).toEqual({
      key: 'missing',
      total: 0,
      downsampled: false,
      points: [],
    });
    store.close();
  });

  it('keeps first/last and the min/max shape of a long noisy curve', () => {
    const { store, run } = setup();
    const n = 20_000;
    const values = Array.from({ length: n }, (_, i) => Math.exp(-i / 4000) + 0.05 * Math.sin(i * 0.37));
    values[7777] = 5; // a spike
    values[12345] = -3; // a dip
    store.insertMetrics(
      run.id,
      values.map((value, step) => ({ key: 'loss', step, value, tokens: null, wallTime: null })),
    );
    const s = store.getMetricSeries(run.id, 'loss', { maxPoints: 400 });
    expect(s.total).toBe(n);
    expect(s.downsampled).toBe(true);
    expect(s.points.length).toBeLessThanOrEqual(400);
    expect(s.points.length).toBeGreaterThan(300);
    expect(s.points[0]).toMatchObject({ step: 0, value: values[0] });
    expect(s.points.at(-1)).toMatchObject({ step: n - 1, value: values[n - 1] });
    const steps = s.points.map((p) => p.step);
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    expect(new Set(steps).size).toBe(steps.length);
    expect(s.points).toContainEqual(expect.objectContaining({ step: 7777, value: 5 }));
    expect(s.points).toContainEqual(expect.objectContaining({ step: 12345, value: -3 }));
    // every bucket of 200 steps (= 20000 / 100 buckets) keeps its own extremes
    for (let b = 0; b < 100; b++) {
      const lo = b * 200;
      const slice = values.slice(lo, lo + 200);
      const kept = s.points.filter((p) => p.step >= lo && p.step < lo + 200).map((p) => p.value);
      expect(Math.max(...kept)).toBe(Math.max(...slice));
      expect(Math.min(...kept)).toBe(Math.min(...slice));
    }
    store.close();
  });

  it('downsampleMinMax on arrays: irregular steps, NaN never picked as an extreme', () => {
    const pts: MetricPoint[] = [0, 1, 2, 3, 50, 51, 52, 99].map((step, i) => ({
      step,
      value: [5, Number.NaN, 1, 9, 4, 4, 8, 2][i] ?? 0,
      tokens: null,
      wallTime: null,
    }));
    const out = downsampleMinMax(pts, 4); // one bucket: first, min, max, last
    expect(out.map((p) => p.step)).toEqual([0, 2, 3, 99]);
    expect(downsampleMinMax(pts, 8)).toHaveLength(8);
    expect(() => downsampleMinMax(pts, 3)).toThrow(RangeError);
  });
});
