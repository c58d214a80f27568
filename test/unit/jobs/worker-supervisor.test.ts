import { afterEach, describe, expect, it } from 'vitest';
import type { JobEvent } from '../../../src-main/contract/index.js';
import { forkWorkerSpawner } from '../../../src-main/jobs/fork-worker.js';
import { WorkerSupervisor } from '../../../src-main/jobs/worker-supervisor.js';

let supervisor: WorkerSupervisor | undefined;
afterEach(async () => {
  await supervisor?.stop();
  supervisor = undefined;
});

function collect(s: WorkerSupervisor) {
  const events: JobEvent[] = [];
  s.onEvent((e) => events.push(e));
  const waitFor = (pred: (e: JobEvent) => boolean, timeoutMs = 15_000): Promise<JobEvent> =>
    new Promise((resolve, reject) => {
      const hit = events.find(pred);
      if (hit) return resolve(hit);
      const timer = setTimeout(() => reject(new Error('timed out waiting for an event')), timeoutMs);
      const off = s.onEvent((e) => {
        if (pred(e)) {
          clearTimeout(timer);
          off();
          resolve(e);
        }
      });
    });
  return { events, waitFor };
}

describe('WorkerSupervisor with a forked worker', () => {
  it('runs a job in the worker process and streams its progress', async () => {
    supervisor = new WorkerSupervisor({
      spawn: forkWorkerSpawner({ workspace: null, inheritStderr: false }),
    });
    const { events, waitFor } = collect(supervisor);
    await supervisor.start();
    expect(supervisor.pid).toBeGreaterThan(0);
    expect(supervisor.pid).not.toBe(process.pid);
    const jobId = supervisor.startJob('demo', { steps: 4, intervalMs: 1, seed: 0, tokensPerStep: 8 });
    await waitFor((e) => e.type === 'job.finished' && e.jobId === jobId);
    const mine = events.filter((e) => e.jobId === jobId);
    expect(mine[0]?.type).toBe('job.queued');
    expect(mine.filter((e) => e.type === 'job.progress').map((e) => (e as { step: number }).step)).toEqual([
      1, 2, 3, 4,
    ]);
    expect(mine.filter((e) => e.type === 'job.metric')).toHaveLength(4);
    expect(supervisor.cancelJob(jobId)).toBe(false);
  });

  it('cancels a running job', async () => {
    supervisor = new WorkerSupervisor({
      spawn: forkWorkerSpawner({ workspace: null, inheritStderr: false }),
    });
    const { waitFor } = collect(supervisor);
    await supervisor.start();
    const jobId = supervisor.startJob('demo', { steps: 10_000, intervalMs: 10 });
    await waitFor((e) => e.type === 'job.progress' && e.jobId === jobId);
    expect(supervisor.cancelJob(jobId)).toBe(true);
    await waitFor((e) => e.type === 'job.cancelled' && e.jobId === jobId);
  });

  it('a killed worker fails its job and a new worker serves the next job', async () => {
    supervisor = new WorkerSupervisor({
      spawn: forkWorkerSpawner({ workspace: null, inheritStderr: false }),
    });
    const { waitFor } = collect(supervisor);
    await supervisor.start();
    const firstPid = supervisor.pid!;
    const doomed = supervisor.startJob('demo', { steps: 10_000, intervalMs: 10 });
    await waitFor((e) => e.type === 'job.progress' && e.jobId === doomed);
    process.kill(firstPid, 'SIGKILL');
    const failed = await waitFor((e) => e.jobId === doomed && e.type === 'job.failed');
    expect(failed).toMatchObject({ error: expect.stringContaining('SIGKILL') });
    expect(supervisor.generation).toBe(2);

    const next = supervisor.startJob('demo', { steps: 2, intervalMs: 1 });
    await waitFor((e) => e.type === 'job.finished' && e.jobId === next);
    expect(supervisor.pid).toBeGreaterThan(0);
    expect(supervisor.pid).not.toBe(firstPid);
  });

  it('gives up after too many crashes in a row', async () => {
    supervisor = new WorkerSupervisor({
      spawn: forkWorkerSpawner({ workspace: null, inheritStderr: false }),
      maxRestarts: 1,
    });
    await supervisor.start();
    for (let i = 0; i < 2; i++) {
      const pid = supervisor.pid!;
      const exited = new Promise<void>((resolve) => {
        const t = setInterval(() => {
          if (supervisor!.pid !== pid) {
            clearInterval(t);
            resolve();
          }
        }, 10);
      });
      process.kill(pid, 'SIGKILL');
      await exited;
      if (i === 0) await supervisor.whenReady();
    }
    expect(() => supervisor!.startJob('demo', {})).toThrow(/crashed 2 times/);
  });
});
