import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src-main/common/errors.js';
import { Store, isPidAlive } from '../../../src-main/store/store.js';
import { tempDir } from './helpers.js';

function clockStore(start = 1_700_000_000_000, hostname = 'host-a') {
  const clock = { t: start };
  const store = Store.open(path.join(tempDir(), 'upit.db'), { now: () => clock.t, hostname });
  return { store, clock };
}

describe('experiments', () => {
  it('creates and lists experiments with their plan', () => {
    const { store } = clockStore();
    const e = store.createExperiment({
      name: 'paper-lora-8e',
      plan: { variants: ['upit', 'dense'], seeds: [1, 2] },
    });
    store.createExperiment({ name: 'smoke', notes: 'quick' });
    expect(e).toMatchObject({ name: 'paper-lora-8e', notes: null, createdAt: 1_700_000_000_000 });
    expect(store.listExperiments().map((x) => [x.name, x.plan, x.notes])).toEqual([
      ['paper-lora-8e', { variants: ['upit', 'dense'], seeds: [1, 2] }, null],
      ['smoke', null, 'quick'],
    ]);
    store.setExperimentNotes(e.id, 'n');
    expect(store.getExperiment(e.id)?.notes).toBe('n');
    expect(() => store.createExperiment({ name: ' ' })).toThrow(UserError);
    store.close();
  });
});

describe('run lifecycle', () => {
  it('queued → running → done with times, backend, pid, config', () => {
    const { store, clock } = clockStore();
    const exp = store.createExperiment({ name: 'x' });
    const run = store.createRun({
      kind: 'prepare',
      experimentId: exp.id,
      variant: 'upit',
      seed: 3,
      config: { lr: 2e-4, lora: { r: 8, alpha: 16 } },
    });
    expect(run).toMatchObject({
      status: 'queued',
      kind: 'prepare',
      variant: 'upit',
      seed: 3,
      experimentId: exp.id,
      config: { lr: 2e-4, lora: { r: 8, alpha: 16 } },
      startedAt: null,
      pid: null,
    });
    clock.t += 1000;
    const started = store.startRun(run.id, { backend: 'wasm', pid: 4242 });
    expect(started).toMatchObject({ status: 'running', backend: 'wasm', pid: 4242, hostname: 'host-a' });
    expect(started.startedAt).toBe(clock.t);
    expect(started.heartbeatAt).toBe(clock.t);
    expect(() => store.startRun(run.id, { backend: 'wasm' })).toThrow(
      /is running, only a queued run can start/,
    );

    clock.t += 500;
    expect(store.heartbeat(run.id)).toBe(true);
    expect(store.getRun(run.id)?.heartbeatAt).toBe(clock.t);

    clock.t += 2500;
    const done = store.finishRun(run.id, 'done');
    expect(done).toMatchObject({ status: 'done', error: null, finishedAt: clock.t, wallSeconds: 3 });
    expect(store.heartbeat(run.id)).toBe(false);
    expect(() => store.finishRun(run.id, 'failed', 'x')).toThrow(/already done/);
    store.close();
  });

  it('records failure text, cancels queued runs, requeues failed ones', () => {
    const { store } = clockStore();
    const a = store.createRun({ kind: 'expand' });
    store.startRun(a.id, { backend: 'cpu' });
    expect(store.finishRun(a.id, 'failed', 'out of memory')).toMatchObject({
      status: 'failed',
      error: 'out of memory',
    });
    const b = store.createRun({ kind: 'route' });
    expect(store.finishRun(b.id, 'cancelled')).toMatchObject({ status: 'cancelled', wallSeconds: null });
    expect(store.requeueRun(a.id)).toMatchObject({ status: 'queued', error: null, finishedAt: null });
    expect(() => store.requeueRun(a.id)).toThrow(UserError);
    expect(() => store.startRun(999, { backend: 'cpu' })).toThrow(/run 999 does not exist/);
    store.close();
  });

  it('validates kind and seed', () => {
    const { store } = clockStore();
    // @ts-expect-error: not a run kind
    expect(() => store.createRun({ kind: 'bogus' })).toThrow(/unknown run kind 'bogus'/);
    expect(() => store.createRun({ kind: 'eval', seed: 1.5 })).toThrow(UserError);
    expect(() => store.createRun({ kind: 'eval', parentRunId: 5 })).toThrow(/parent run 5 does not exist/);
    store.close();
  });

  it('lists runs by experiment, kind, status, parent', () => {
    const { store } = clockStore();
    const e1 = store.createExperiment({ name: 'e1' });
    const e2 = store.createExperiment({ name: 'e2' });
    const p = store.createRun({ kind: 'prepare', experimentId: e1.id, variant: 'upit', seed: 1 });
    const x = store.createRun({
      kind: 'expand',
      experimentId: e1.id,
      parentRunId: p.id,
      variant: 'upit',
      seed: 1,
    });
    const d = store.createRun({ kind: 'prepare', experimentId: e2.id, variant: 'dense', seed: 1 });
    store.startRun(x.id, { backend: 'wasm' });
    const ids = (runs: { id: number }[]) => runs.map((r) => r.id);
    expect(ids(store.listRuns())).toEqual([p.id, x.id, d.id]);
    expect(ids(store.listRuns({ order: 'desc', limit: 2 }))).toEqual([d.id, x.id]);
    expect(ids(store.listRuns({ experimentId: e1.id }))).toEqual([p.id, x.id]);
    expect(ids(store.listRuns({ kind: 'prepare' }))).toEqual([p.id, d.id]);
    expect(ids(store.listRuns({ status: 'running' }))).toEqual([x.id]);
    expect(ids(store.listRuns({ status: ['queued', 'running'], experimentId: e1.id }))).toEqual([p.id, x.id]);
    expect(ids(store.listRuns({ parentRunId: p.id }))).toEqual([x.id]);
    expect(ids(store.listRuns({ variant: 'dense' }))).toEqual([d.id]);
    expect(store.listRuns({ status: [] })).toEqual([]);
    store.close();
  });

  it('never reuses a deleted run id (its runs/<id>/ folder may still exist)', () => {
    const { store } = clockStore();
    const a = store.createRun({ kind: 'eval' });
    const b = store.createRun({ kind: 'eval' });
    store.deleteRun(b.id);
    expect(store.createRun({ kind: 'eval' }).id).toBe(b.id + 1);
    expect(a.id).toBe(b.id - 1);
    store.close();
  });
});

describe('stale run detection', () => {
  it('finds running runs whose pid is dead on this host', () => {
    const { store } = clockStore();
    const dead = store.createRun({ kind: 'prepare' });
    const alive = store.createRun({ kind: 'prepare' });
    const queued = store.createRun({ kind: 'prepare' });
    store.startRun(dead.id, { backend: 'wasm', pid: 111 });
    store.startRun(alive.id, { backend: 'wasm', pid: 222 });
    const isAlive = (pid: number) => pid === 222;
    const stale = store.findStaleRuns({ isPidAlive: isAlive });
    expect(stale.map((s) => [s.run.id, s.reason])).toEqual([[dead.id, 'pid-dead']]);
    const marked = store.markStale({ isPidAlive: isAlive });
    expect(marked.map((r) => [r.id, r.status, r.error])).toEqual([[dead.id, 'failed', 'interrupted']]);
    expect(store.getRun(alive.id)?.status).toBe('running');
    expect(store.getRun(queued.id)?.status).toBe('queued');
    expect(store.findStaleRuns({ isPidAlive: isAlive })).toEqual([]);
    store.close();
  });

  it('uses a real dead process id by default', () => {
    const { store } = clockStore(Date.now(), 'host-a');
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const deadPid = Number(child.stdout.toString());
    expect(isPidAlive(deadPid)).toBe(false);
    expect(isPidAlive(process.pid)).toBe(true);
    const r1 = store.createRun({ kind: 'upcycle' });
    const r2 = store.createRun({ kind: 'upcycle' });
    store.startRun(r1.id, { backend: 'cpu', pid: deadPid });
    store.startRun(r2.id, { backend: 'cpu' }); // this process
    expect(store.markStale().map((r) => r.id)).toEqual([r1.id]);
    store.close();
  });

  it('finds runs whose heartbeat is stale, and ignores pids of other hosts', () => {
    const { store, clock } = clockStore();
    const remote = store.createRun({ kind: 'route' });
    const fresh = store.createRun({ kind: 'route' });
    store.startRun(remote.id, { backend: 'tensorflow', pid: 1, hostname: 'gpu-box' });
    store.startRun(fresh.id, { backend: 'wasm', pid: 2 });
    const never = () => false;
    // remote pid is not probed: only the local one is dead
    expect(store.findStaleRuns({ isPidAlive: never }).map((s) => s.run.id)).toEqual([fresh.id]);
    clock.t += 60_000;
    store.heartbeat(fresh.id);
    const always = () => true;
    expect(store.findStaleRuns({ isPidAlive: always, staleAfterMs: 30_000 })).toEqual([
      expect.objectContaining({
        reason: 'heartbeat-timeout',
        run: expect.objectContaining({ id: remote.id }),
      }),
    ]);
    expect(store.findStaleRuns({ isPidAlive: always, staleAfterMs: 120_000 })).toEqual([]);
    const marked = store.markStale({ isPidAlive: always, staleAfterMs: 30_000 });
    expect(marked).toHaveLength(1);
    expect(marked[0]).toMatchObject({
      id: remote.id,
      status: 'failed',
      error: 'interrupted',
      wallSeconds: 60,
    });
    store.close();
  });
});
