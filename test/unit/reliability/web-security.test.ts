/**
 * The web host against hostile requests, on top of test/unit/host/web-server.test.ts: the real API
 * service behind the real server (wrong types, prototype keys and unknown methods answer 4xx with
 * the contract's error body, and start nothing), static files that try to leave the root (symlinked
 * files and folders, absolute and absolute-form targets), the token's redirect staying on this
 * server, the CSP on error answers too, and plan files named in job requests confined to the
 * shipped and workspace plan folders (an error event, nothing recorded).
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackendInfo, JobEvent } from '../../../src-main/contract/index.js';
import { createApiService } from '../../../src-main/jobs/api-service.js';
import { JobRunner } from '../../../src-main/jobs/job-runner.js';
import { JOB_REGISTRY } from '../../../src-main/jobs/kinds/registry.js';
import type { JobsPort } from '../../../src-main/jobs/ports.js';
import { openWorkspaceHandle } from '../../../src-main/jobs/store-adapter.js';
import { startWebServer, type WebServer } from '../../../src-main/host/web/server.js';
import { MemoryWorkspace } from '../jobs/memory-workspace.js';

class FakeJobs implements JobsPort {
  readonly started: { kind: string; config: Record<string, unknown> }[] = [];
  startJob(kind: string, config: Record<string, unknown>): string {
    this.started.push({ kind, config });
    return `job${this.started.length}`;
  }
  cancelJob(): boolean {
    return false;
  }
  onEvent(): () => void {
    return () => undefined;
  }
  async queryBackends(): Promise<BackendInfo[]> {
    return [];
  }
}

const base = mkdtempSync(path.join(os.tmpdir(), 'upit-websec-'));
const staticDir = path.join(base, 'renderer');
const outside = path.join(base, 'outside');
let server: WebServer;
let jobs: FakeJobs;
let bearer: Record<string, string>;

beforeAll(async () => {
  mkdirSync(path.join(staticDir, 'assets'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(path.join(staticDir, 'index.html'), '<!doctype html>');
  writeFileSync(path.join(outside, 'secret.json'), '{"secret": "SECRET-OUTSIDE"}');
  symlinkSync(path.join(outside, 'secret.json'), path.join(staticDir, 'assets', 'file-link.json'));
  symlinkSync(outside, path.join(staticDir, 'dir-link'));
  symlinkSync('/etc/passwd', path.join(staticDir, 'assets', 'passwd.txt'));
  jobs = new FakeJobs();
  const ws = new MemoryWorkspace(path.join(base, 'ws'));
  const service = createApiService({ workspace: ws, jobs, host: 'web', appVersion: '0.0.0' });
  server = await startWebServer({ service, staticDir });
  bearer = { Authorization: `Bearer ${server.token}` };
});
afterAll(async () => {
  await server.close();
  rmSync(base, { recursive: true, force: true });
});

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A raw HTTP/1.1 request over a socket: the request target is sent exactly as given. */
function raw(
  target: string,
  headers: Record<string, string> = {},
  method = 'GET',
  body = '',
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: server.port }, () => {
      const h: Record<string, string> = { Host: `127.0.0.1:${server.port}`, Connection: 'close', ...headers };
      if (body) h['Content-Length'] = String(Buffer.byteLength(body));
      const lines = Object.entries(h).map(([k, v]) => `${k}: ${v}`);
      s.end(`${method} ${target} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n${body}`);
    });
    let data = '';
    s.setEncoding('latin1').on('data', (d: string) => (data += d));
    s.on('error', reject);
    s.on('close', () => {
      const [head = '', ...rest] = data.split('\r\n\r\n');
      const [status = '', ...hs] = head.split('\r\n');
      const headersOut: http.IncomingHttpHeaders = {};
      for (const l of hs) {
        const i = l.indexOf(':');
        headersOut[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({
        status: Number(status.split(' ')[1] ?? 0),
        headers: headersOut,
        body: rest.join('\r\n\r\n'),
      });
    });
  });
}

const post = (method: string, body: string) =>
  raw(`/api/${method}`, { ...bearer, 'Content-Type': 'application/json' }, 'POST', body);

describe('static files: nothing outside the root', () => {
  it.each([
    '/assets/file-link.json', // a symlinked file pointing outside
    '/dir-link/secret.json', // a symlinked folder pointing outside
    '/assets/passwd.txt', // a link to an absolute system file
    '//etc/passwd', // absolute path
    '/%2fetc%2fpasswd', // encoded absolute path
    '/%2Fetc/passwd',
    '/assets/%2e%2e/%2e%2e/outside/secret.json',
    '/assets/%252e%252e/%252e%252e/outside/secret.json', // double-encoded
    '/.%2e/outside/secret.json',
    `http://127.0.0.1:PORT/../outside/secret.json`, // absolute-form target
    'http://evil.example/../outside/secret.json',
    '*',
  ])('%s', async (target) => {
    const r = await raw(target.replace('PORT', String(server.port)), bearer);
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.body).not.toMatch(/SECRET-OUTSIDE|root:/);
  });
});

describe('token handling', () => {
  it('redirects a token URL back to a path on this server only', async () => {
    for (const [target, location] of [
      ['/?token=T', '/'],
      ['/index.html?token=T', '/index.html'],
      ['//evil.example/?token=T', '/'],
      ['/\\evil.example/?token=T', '/'],
      ['/%2f%2fevil.example?token=T', '/%2f%2fevil.example'], // stays a local path once decoded by the browser's URL parser
    ] as const) {
      const r = await raw(target.replace('T', server.token));
      expect(r.status, target).toBe(303);
      expect(r.headers.location, target).toBe(location);
      expect(new URL(r.headers.location as string, server.origin).origin, target).toBe(server.origin);
    }
  });

  it('accepts the token only as a bearer header, the cookie, or once in a GET URL', async () => {
    const list = '{}';
    expect(
      (
        await raw(
          `/api/runs.list?token=${server.token}`,
          { 'Content-Type': 'application/json' },
          'POST',
          list,
        )
      ).status,
    ).toBe(401);
    expect((await raw('/', { Authorization: `Bearer ${server.token}x` })).status).toBe(401);
    expect((await raw('/', { Authorization: `Bearer ${server.token.slice(0, -1)}` })).status).toBe(401);
    expect((await raw('/', { Authorization: `Basic ${server.token}` })).status).toBe(401);
    expect((await raw('/', { Cookie: `upit_token_${server.port + 1}=${server.token}` })).status).toBe(401);
    expect((await raw('/?token=', {})).status).toBe(401);
    expect(jobs.started).toEqual([]);
  });

  it('refuses Host names that only look like ours', async () => {
    for (const host of [
      `127.0.0.1.evil.example:${server.port}`,
      `127.0.0.1:${server.port + 1}`,
      '127.0.0.1',
      '',
    ]) {
      const r = await raw('/', { ...bearer, Host: host });
      expect(r.status, host).toBeGreaterThanOrEqual(400);
    }
  });

  it('sends the CSP and nosniff on error answers too', async () => {
    for (const r of [
      await raw('/nope.js', bearer),
      await raw('/'),
      await raw('/', { ...bearer, Host: 'evil.example' }),
      await post('runs.get', '{"runId": "x"}'),
    ]) {
      expect(String(r.headers['content-security-policy'])).toMatch(/default-src 'none'.*script-src 'self'/);
      expect(r.headers['x-content-type-options']).toBe('nosniff');
    }
  });
});

describe('API requests with wrong types answer an error, start nothing', () => {
  it.each([
    ['runs.get', '{"runId": "1"}', 400, /runId/],
    ['runs.get', '{"runId": -1}', 400, /runId/],
    ['runs.get', '{"runId": 1.5}', 400, /runId/],
    ['runs.get', '[]', 400, /invalid runs\.get request/],
    ['runs.get', 'null', 400, /runId/],
    ['runs.get', '"runs"', 400, /invalid runs\.get request/],
    ['runs.list', '{"limit": "all"}', 400, /limit/],
    ['runs.list', '{"limit": 1e12}', 400, /limit/],
    ['runs.list', '{"__proto__": {"limit": 1}}', 400, /__proto__/],
    ['runs.list', '{"search": "' + 'x'.repeat(300) + '"}', 400, /search/],
    ['jobs.start', '{"kind": "__proto__", "config": {}}', 400, /kind/],
    ['jobs.start', '{"kind": "constructor", "config": {}}', 400, /unknown job kind 'constructor'/],
    ['jobs.start', '{"kind": "prepare", "config": {"epochs": "two"}}', 400, /config\.epochs/],
    ['jobs.start', '{"kind": "prepare", "config": {"rm": "-rf /"}}', 400, /config/],
    ['jobs.start', '{"kind": "demo", "config": {"steps": 1e300}}', 400, /config\.steps/],
    ['jobs.start', '{"kind": "plan", "config": {"file": 42}}', 400, /config\.file/],
    ['jobs.cancel', '{"jobId": {"$ne": ""}}', 400, /jobId/],
    ['toString', '{}', 404, /unknown method 'toString'/],
    ['__proto__', '{}', 404, /unknown method '__proto__'/],
    ['runs.list/../jobs.start', '{}', 404, /unknown method/],
  ] as const)('%s %s', async (method, body, status, message) => {
    const r = await post(method, body);
    expect(r.status).toBe(status);
    const err = (JSON.parse(r.body) as { error: { code: string; message: string } }).error;
    expect(err.message).toMatch(message);
    expect(err.message).not.toMatch(/\n|\s at /);
    expect(jobs.started).toEqual([]);
  });
});

describe('plan files named in job requests stay inside the plan folders', () => {
  const wsDir = path.join(base, 'plan-ws');
  const secret = path.join(outside, 'plan.yaml');
  beforeAll(() => writeFileSync(secret, 'name: outside\nvariants: [dense]\n'));

  it.each([
    secret,
    path.relative(process.cwd(), secret),
    path.join(wsDir, 'plans', '..', '..', 'outside', 'plan.yaml'),
    `${path.join(wsDir, 'plans')}-evil/plan.yaml`,
    '/etc/passwd',
  ])('%s: the job fails with a one-line error event, nothing recorded', async (file) => {
    const ws = openWorkspaceHandle(wsDir, { create: true });
    const events: JobEvent[] = [];
    const runner = new JobRunner({ registry: JOB_REGISTRY, workspace: ws, emit: (e) => events.push(e) });
    try {
      runner.start('p', 'plan', { file });
      await runner.idle();
      const end = events.at(-1)!;
      expect(end.type).toBe('job.failed');
      expect((end as Extract<JobEvent, { type: 'job.failed' }>).error).toMatch(
        /^plan: .* is outside the shipped plans and .*plans$/,
      );
      expect(ws.store!.listRuns({})).toEqual([]);
      expect(ws.store!.findExperiment('outside')).toBeFalsy();
    } finally {
      ws.close();
    }
  });
});
