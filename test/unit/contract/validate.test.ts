import { describe, expect, it } from 'vitest';
import {
  API_METHODS,
  ApiError,
  AppEvent,
  JobEvent,
  api,
  formatPath,
  isApiMethod,
  parseEvent,
  parseRequest,
  parseResponse,
} from '../../../src-main/contract/index.js';
import { HostToWorker, WorkerToHost } from '../../../src-main/contract/worker.js';

function rejection(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ApiError);
    return e as ApiError;
  }
  throw new Error('expected a rejection');
}

describe('contract: requests', () => {
  it('fills defaults of a valid request', () => {
    expect(parseRequest('runs.list', {})).toEqual({ limit: 200, offset: 0 });
    expect(parseRequest('runs.metricSeries', { runId: 3, key: 'loss' })).toEqual({
      runId: 3,
      key: 'loss',
      maxPoints: 5000,
    });
    expect(parseRequest('jobs.start', { kind: 'demo' })).toEqual({ kind: 'demo', config: {} });
    expect(parseRequest('workspace.info', undefined)).toEqual({});
  });

  it('rejects a bad field with its path', () => {
    const e = rejection(() => parseRequest('runs.list', { statuses: ['running', 'exploded'], limit: 0 }));
    expect(e.code).toBe('bad_request');
    expect(e.issues?.map((i) => i.path).sort()).toEqual(['limit', 'statuses[1]']);
    expect(e.message).toContain('statuses[1]');
  });

  it('rejects unknown fields (strict requests) and names them', () => {
    const e = rejection(() => parseRequest('runs.get', { runId: 1, runid: 2 }));
    expect(e.issues).toEqual([{ path: '(root)', message: 'unknown field(s): runid' }]);
  });

  it('rejects wrong types and missing fields', () => {
    expect(rejection(() => parseRequest('runs.get', { runId: '1' })).issues?.[0]?.path).toBe('runId');
    expect(rejection(() => parseRequest('runs.get', { runId: 1.5 })).issues?.[0]?.path).toBe('runId');
    expect(rejection(() => parseRequest('runs.get', {})).issues?.[0]?.path).toBe('runId');
    expect(
      rejection(() => parseRequest('runs.metricSeries', { runId: 1, key: 'a b' })).issues?.[0]?.path,
    ).toBe('key');
    expect(rejection(() => parseRequest('jobs.cancel', { jobId: '../x' })).issues?.[0]?.path).toBe('jobId');
    expect(rejection(() => parseRequest('jobs.start', { kind: 'Demo!' })).issues?.[0]?.path).toBe('kind');
  });

  it('knows its methods', () => {
    expect(isApiMethod('runs.list')).toBe(true);
    expect(isApiMethod('toString')).toBe(false);
    expect(isApiMethod('__proto__')).toBe(false);
    expect(API_METHODS).toEqual(Object.keys(api));
    for (const m of API_METHODS) expect(m).toMatch(/^[a-z]+\.[a-zA-Z]+$/);
  });
});

describe('contract: responses and events', () => {
  it('checks metric series columns have equal lengths', () => {
    const ok = { runId: 1, key: 'loss', steps: [1, 2], values: [0.5, null], tokens: [null, 10], total: 2 };
    expect(parseResponse('runs.metricSeries', ok)).toEqual(ok);
    const e = rejection(() => parseResponse('runs.metricSeries', { ...ok, values: [0.5] }));
    expect(e.code).toBe('internal');
    expect(e.issues?.[0]?.path).toBe('values');
  });

  it('validates job events by type', () => {
    const metric = { type: 'job.metric', jobId: 'j1', at: 1, runId: 4, step: 2, key: 'loss', value: 1.5 };
    expect(JobEvent.parse(metric)).toEqual(metric);
    expect(parseEvent(metric)).toEqual(metric);
    const e = rejection(() => parseEvent({ ...metric, step: 'two' }));
    expect(e.issues?.some((i) => i.path === 'step')).toBe(true);
    expect(AppEvent.safeParse({ type: 'job.exploded', jobId: 'j', at: 1 }).success).toBe(false);
  });

  it('validates worker protocol messages', () => {
    expect(HostToWorker.safeParse({ type: 'start', jobId: 'a', kind: 'demo', config: {} }).success).toBe(
      true,
    );
    expect(HostToWorker.safeParse({ type: 'start', jobId: 'a', kind: 'demo' }).success).toBe(false);
    expect(HostToWorker.safeParse({ type: 'eval', code: '1' }).success).toBe(false);
    expect(WorkerToHost.safeParse({ type: 'ready', pid: 1, kinds: ['demo'] }).success).toBe(true);
  });

  it('formats paths', () => {
    expect(formatPath([])).toBe('(root)');
    expect(formatPath(['config', 'steps'])).toBe('config.steps');
    expect(formatPath(['runs', 0, 'id'])).toBe('runs[0].id');
  });

  it('serialises errors to the body shape and back', () => {
    const e = new ApiError('not_found', 'run 9 does not exist');
    expect(ApiError.fromBody(e.toBody())).toMatchObject({
      code: 'not_found',
      message: 'run 9 does not exist',
    });
  });
});
