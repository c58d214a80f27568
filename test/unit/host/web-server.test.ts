import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { AppEvent } from '../../../src-main/contract/index.js';
import { ApiError } from '../../../src-main/contract/index.js';
import { startWebServer, type WebHostService, type WebServer } from '../../../src-main/host/web/server.js';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A raw request: the path is sent exactly as given (fetch would normalise `..`). */
function request(
  server: WebServer,
  rawPath: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: server.port,
        path: rawPath,
        method: opts.method ?? 'GET',
        headers: { Host: `127.0.0.1:${server.port}`, ...opts.headers },
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

class FakeService implements WebHostService {
  readonly calls: { method: string; request: unknown }[] = [];
  private listeners = new Set<(e: AppEvent) => void>();
  async call(method: string, request: unknown): Promise<unknown> {
    this.calls.push({ method, request });
    if (method === 'runs.list') return { runs: [], total: 0 };
    if (method === 'runs.get') throw new ApiError('not_found', 'run 3 does not exist');
    throw new ApiError('unknown_method', `unknown method '${method}'`);
  }
  subscribe(l: (e: AppEvent) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  emit(e: AppEvent): void {
    for (const l of this.listeners) l(e);
  }
}

let root: string;
let server: WebServer;
let service: FakeService;
let bearer: Record<string, string>;

beforeEach(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'upit-web-'));
  const staticDir = path.join(root, 'renderer');
  mkdirSync(path.join(staticDir, 'assets'), { recursive: true });
  writeFileSync(path.join(staticDir, 'index.html'), '<!doctype html><title>UpIT</title>');
  writeFileSync(path.join(staticDir, 'assets', 'app.js'), 'console.log(1)');
  writeFileSync(path.join(root, 'package.json'), '{"secret": "outside the static root"}');
  writeFileSync(path.join(staticDir, '.env'), 'SECRET=1');
  service = new FakeService();
  server = await startWebServer({ service, staticDir });
  bearer = { Authorization: `Bearer ${server.token}` };
});

afterEach(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
});

describe('web host: binding and token', () => {
  it('listens on 127.0.0.1 only and prints a URL with a random token', async () => {
    expect(server.url).toMatch(
      new RegExp(`^http://127\\.0\\.0\\.1:${server.port}/\\?token=[A-Za-z0-9_-]{40,}$`),
    );
    const other = await startWebServer({ service, staticDir: root });
    expect(other.token).not.toBe(server.token);
    await other.close();
    const external = Object.values(os.networkInterfaces())
      .flat()
      .find((i) => i && i.family === 'IPv4' && !i.internal);
    if (external) {
      const connected = await new Promise<boolean>((resolve) => {
        const s = net.connect({ host: external.address, port: server.port }, () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      });
      expect(connected).toBe(false);
    }
  });

  it('answers 401 without the token, on the API and on pages', async () => {
    const api = await request(server, '/api/runs.list', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{}',
    });
    expect(api.status).toBe(401);
    expect(JSON.parse(api.body)).toMatchObject({ error: { code: 'unauthorized' } });
    expect((await request(server, '/')).status).toBe(401);
    expect((await request(server, '/assets/app.js')).status).toBe(401);
    expect((await request(server, '/', { headers: { Authorization: 'Bearer nope' } })).status).toBe(401);
    expect((await request(server, '/?token=nope')).status).toBe(401);
    expect(service.calls).toEqual([]);
  });

  it('exchanges ?token= for an HttpOnly SameSite=Strict cookie and redirects it out of the URL', async () => {
    const r = await request(server, `/?token=${server.token}`);
    expect(r.status).toBe(303);
    expect(r.headers.location).toBe('/');
    const cookie = r.headers['set-cookie']?.[0] ?? '';
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const page = await request(server, '/', { headers: { Cookie: cookie.split(';')[0]! } });
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
  });

  it('refuses foreign Host and Origin headers (DNS rebinding, cross-site requests)', async () => {
    expect(
      (await request(server, '/', { headers: { ...bearer, Host: `evil.example:${server.port}` } })).status,
    ).toBe(421);
    const cross = await request(server, '/api/runs.list', {
      method: 'POST',
      headers: { ...bearer, 'Content-Type': 'application/json', Origin: 'http://evil.example' },
      body: '{}',
    });
    expect(cross.status).toBe(403);
    expect(service.calls).toEqual([]);
  });
});

describe('web host: headers and static files', () => {
  it('sends a strict CSP and nosniff on every response', async () => {
    for (const r of [await request(server, '/'), await request(server, '/', { headers: bearer })]) {
      const csp = String(r.headers['content-security-policy']);
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe'); // no inline scripts or styles, no eval
      expect(csp).toContain(`connect-src 'self' ws://127.0.0.1:${server.port}`);
      expect(csp).toContain("frame-ancestors 'none'");
      expect(r.headers['x-content-type-options']).toBe('nosniff');
    }
  });

  it('serves the build directory', async () => {
    const js = await request(server, '/assets/app.js', { headers: bearer });
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toMatch(/text\/javascript/);
    expect(js.body).toBe('console.log(1)');
    expect((await request(server, '/assets/missing.js', { headers: bearer })).status).toBe(404);
    expect((await request(server, '/assets/app.js', { method: 'POST', headers: bearer })).status).toBe(405);
  });

  it.each([
    '/../package.json',
    '/assets/../../package.json',
    '/%2e%2e/package.json',
    '/%2E%2E/package.json',
    '/..%2fpackage.json',
    '/%2e%2e%2fpackage.json',
    '/assets/..%2f..%2fpackage.json',
    '/assets/..%5c..%5cpackage.json',
    '/..%255cpackage.json',
    '/%2e%2e%5cpackage.json',
    '//package.json',
    '/index.html%00.js',
    '/.env',
    '/%2eenv',
    '/%',
  ])('does not leave the static root: %s', async (p) => {
    const r = await request(server, p, { headers: bearer });
    expect([400, 404]).toContain(r.status);
    expect(r.body).not.toContain('secret');
    expect(r.body).not.toContain('SECRET');
  });
});

describe('web host: API', () => {
  const post = (method: string, body: string, headers: Record<string, string> = {}) =>
    request(server, `/api/${method}`, {
      method: 'POST',
      headers: { ...bearer, 'Content-Type': 'application/json', ...headers },
      body,
    });

  it('round-trips a request to the service', async () => {
    const r = await post('runs.list', '{"limit": 5}');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/application\/json/);
    expect(JSON.parse(r.body)).toEqual({ runs: [], total: 0 });
    expect(service.calls).toEqual([{ method: 'runs.list', request: { limit: 5 } }]);
  });

  it('maps errors to statuses with the error body', async () => {
    const nf = await post('runs.get', '{"runId": 3}');
    expect(nf.status).toBe(404);
    expect(JSON.parse(nf.body)).toEqual({ error: { code: 'not_found', message: 'run 3 does not exist' } });
    expect((await post('runs.nope', '{}')).status).toBe(404);
    expect((await post('runs.list', '{not json')).status).toBe(400);
    expect((await post('runs.list', '{}', { 'Content-Type': 'text/plain' })).status).toBe(415);
    expect((await request(server, '/api/runs.list', { headers: bearer })).status).toBe(405);
    expect((await post('runs.list', JSON.stringify({ pad: 'x'.repeat(2 << 20) }))).status).toBe(413);
  });
});

describe('web host: events over WebSocket', () => {
  const connect = (headers: Record<string, string>, origin?: string) =>
    new WebSocket(`ws://127.0.0.1:${server.port}/ws`, { headers, ...(origin ? { origin } : {}) });
  const rejected = (ws: WebSocket) =>
    new Promise<number>((resolve) => {
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
    });
  const event: AppEvent = { type: 'job.queued', jobId: 'j1', kind: 'demo', at: 1 };

  it('refuses the upgrade without the token or from a foreign origin', async () => {
    expect(await rejected(connect({}))).toBe(401);
    expect(await rejected(connect({ Authorization: 'Bearer wrong' }))).toBe(401);
    expect(await rejected(connect(bearer, 'http://evil.example'))).toBe(403);
  });

  it('pushes events to authorised clients (bearer or cookie)', async () => {
    const cookie = `upit_token_${server.port}=${server.token}`;
    const clients = [connect(bearer), connect({ Cookie: cookie }, server.origin)];
    await Promise.all(clients.map((ws) => new Promise((r) => ws.on('open', r))));
    const got = clients.map(
      (ws) => new Promise<unknown>((r) => ws.on('message', (d) => r(JSON.parse(String(d))))),
    );
    service.emit(event);
    expect(await Promise.all(got)).toEqual([event, event]);
    for (const ws of clients) ws.close();
  });
});
