/**
 * A new run refused for bad input (a UserError before anything was recorded) leaves no trace in
 * the workspace; a run that recorded something, failed for another reason, or was resumed, stays.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UserError } from '../../../src-main/common/errors.js';
import type { JobEvent } from '../../../src-main/contract/index.js';
import { JobRunner, type JobFn } from '../../../src-main/jobs/job-runner.js';
import { openWorkspaceHandle } from '../../../src-main/jobs/store-adapter.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function runDemo(fn: JobFn, placement = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'upit-discard-'));
  dirs.push(dir);
  const ws = openWorkspaceHandle(dir, { create: true });
  const events: JobEvent[] = [];
  const runner = new JobRunner({
    registry: { demo: async () => fn },
    workspace: ws,
    emit: (e) => events.push(e),
  });
  runner.start('j1', 'demo', {}, placement);
  await runner.idle();
  const end = events.at(-1)!;
  const runs = ws.store!.listRuns();
  ws.close();
  return { dir, end, runs };
}

describe('refused runs leave no trace', () => {
  it('drops the run of a job refused for bad input before it recorded anything', async () => {
    const { end, runs } = await runDemo(async () => {
      throw new UserError('data.train: /x.jsonl:3: not JSON');
    });
    expect(end).toMatchObject({ type: 'job.failed', runId: null, error: 'data.train: /x.jsonl:3: not JSON' });
    expect(runs).toEqual([]);
  });

  it('keeps the run when the job recorded something, wrote a file, or failed for another reason', async () => {
    const metric = await runDemo(async (_c, ctx) => {
      ctx.metric('loss', 1, 2.5);
      throw new UserError('non-finite loss at step 2');
    });
    expect(metric.runs.map((r) => r.status)).toEqual(['failed']);

    const file = await runDemo(async (_c, ctx) => {
      const d = join(ctx.workspace!.dir, 'runs', String(ctx.runId));
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, 'partial.bin'), 'x');
      throw new UserError('bad input found late');
    });
    expect(file.runs.map((r) => r.status)).toEqual(['failed']);
    expect(existsSync(join(file.dir, 'runs', String(file.runs[0]!.id), 'partial.bin'))).toBe(true);

    const internal = await runDemo(async () => {
      throw new Error('bug');
    });
    expect(internal.runs.map((r) => r.status)).toEqual(['failed']);
  });
});
