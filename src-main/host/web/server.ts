/**
 * The web host: the renderer and the contract's API over HTTP + WebSocket, for a browser on
 * the same machine. A transport adapter only; every method is implemented by the API
 * service.
 *
 * Security: binds 127.0.0.1 only; a random token per launch, presented once in the URL
 * (`/?token=…`, exchanged for an HttpOnly SameSite=Strict cookie and redirected away) or as
 * `Authorization: Bearer …`; everything else, WebSocket upgrade included, answers 401
 * without it. Host and Origin headers must name this server (DNS rebinding, cross-site
 * requests); API calls must be JSON POSTs. Strict CSP and nosniff on every response;
 * static files only from the renderer's build directory.
 */
import { REPORT_STYLE_SOURCE } from '../csp.js';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { AppEvent } from '../../contract/index.js';
import { ApiError, toApiError } from '../../contract/index.js';
import { contentType, resolveStaticPath } from './static-files.js';

export interface WebHostService {
  call(method: string, request: unknown): Promise<unknown>;
  subscribe(listener: (event: AppEvent) => void): () => void;
}

export interface WebServerOptions {
  service: WebHostService;
  /** The renderer's build directory (dist/renderer). */
  staticDir: string;
  /** 0 (default): any free port. */
  port?: number;
  /** Default: 32 random bytes, base64url. */
  token?: string;
  /** Largest accepted API request body (default 1 MiB). */
  maxBodyBytes?: number;
  /** Drop a WebSocket client whose unsent events exceed this (default 16 MiB). */
  maxWsBufferedBytes?: number;
}

export interface WebServer {
  /** The URL to open: `http://127.0.0.1:PORT/?token=…`. */
  readonly url: string;
  readonly origin: string;
  readonly port: number;
  readonly token: string;
  close(): Promise<void>;
}

export const BIND_ADDRESS = '127.0.0.1';

export function contentSecurityPolicy(port: number): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    // inline style attributes too: Svelte sets styles through the CSSOM, which CSP allows
    `style-src 'self' ${REPORT_STYLE_SOURCE}`,
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src 'self' ws://127.0.0.1:${port} ws://localhost:${port}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

export async function startWebServer(opts: WebServerOptions): Promise<WebServer> {
  const token = opts.token ?? randomBytes(32).toString('base64url');
  const maxBody = opts.maxBodyBytes ?? 1 << 20;
  const maxBuffered = opts.maxWsBufferedBytes ?? 16 << 20;
  let port = 0;
  const cookieName = (): string => `upit_token_${port}`; // cookies ignore ports: one name per server
  const allowedHosts = (): string[] => [`127.0.0.1:${port}`, `localhost:${port}`];
  const allowedOrigins = (): string[] => allowedHosts().map((h) => `http://${h}`);

  const authorized = (req: http.IncomingMessage): boolean => {
    const auth = req.headers.authorization;
    if (auth?.startsWith('Bearer ') && sameSecret(auth.slice(7).trim(), token)) return true;
    const c = parseCookies(req.headers.cookie).get(cookieName());
    return c !== undefined && sameSecret(c, token);
  };
  const hostOk = (req: http.IncomingMessage): boolean => allowedHosts().includes(req.headers.host ?? '');
  /** Browsers send Origin on cross-origin requests and on every POST and WebSocket. */
  const originOk = (req: http.IncomingMessage): boolean =>
    req.headers.origin === undefined || allowedOrigins().includes(req.headers.origin);

  const securityHeaders = (res: http.ServerResponse): void => {
    res.setHeader('Content-Security-Policy', contentSecurityPolicy(port));
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    res.setHeader('Cache-Control', 'no-store');
  };

  const sendJson = (res: http.ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(text),
    });
    res.end(text);
  };
  const sendError = (res: http.ServerResponse, status: number, e: ApiError): void =>
    sendJson(res, status, e.toBody());
  const sendText = (res: http.ServerResponse, status: number, text: string): void => {
    res.writeHead(status, {
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': Buffer.byteLength(text),
    });
    res.end(text);
  };

  const STATUS: Record<ApiError['code'], number> = {
    bad_request: 400,
    unknown_method: 404,
    not_found: 404,
    conflict: 409,
    unauthorized: 401,
    unavailable: 503,
    internal: 500,
  };

  const readBody = (req: http.IncomingMessage): Promise<string> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBody) {
          reject(new ApiError('bad_request', `request body over ${maxBody} bytes`));
          req.destroy();
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });

  async function handleApi(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    method: string,
  ): Promise<void> {
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      sendError(res, 405, new ApiError('bad_request', 'API methods are called with POST'));
      return;
    }
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') {
      sendError(res, 415, new ApiError('bad_request', 'API requests must be application/json'));
      return;
    }
    if (req.headers['content-length'] && Number(req.headers['content-length']) > maxBody) {
      sendError(res, 413, new ApiError('bad_request', `request body over ${maxBody} bytes`));
      return;
    }
    let request: unknown;
    try {
      const text = await readBody(req);
      request = text.trim() === '' ? {} : JSON.parse(text);
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError('bad_request', 'request body is not valid JSON');
      sendError(res, e instanceof ApiError ? 413 : 400, err);
      return;
    }
    try {
      sendJson(res, 200, await opts.service.call(method, request));
    } catch (e) {
      const err = toApiError(e);
      sendError(res, STATUS[err.code], err);
    }
  }

  function handleStatic(req: http.IncomingMessage, res: http.ServerResponse, pathname: string): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      sendText(res, 405, 'method not allowed');
      return;
    }
    const r = resolveStaticPath(opts.staticDir, pathname);
    if (!r.ok) {
      const missingIndex = pathname === '/' && r.status === 404;
      sendText(
        res,
        r.status,
        missingIndex
          ? 'The renderer is not built: run `npm run build:renderer`.'
          : r.status === 404
            ? 'not found'
            : 'bad path',
      );
      return;
    }
    res.writeHead(200, { 'Content-Type': contentType(r.file) ?? 'application/octet-stream' });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    createReadStream(r.file)
      .on('error', () => res.destroy())
      .pipe(res);
  }

  const server = http.createServer((req, res) => {
    securityHeaders(res);
    if (!hostOk(req)) {
      sendText(res, 421, 'unexpected Host header');
      return;
    }
    if (!originOk(req)) {
      sendText(res, 403, 'cross-origin requests are refused');
      return;
    }
    // the raw path: keep encoded dot segments for the static resolver to refuse
    const rawTarget = req.url ?? '/';
    const q = rawTarget.indexOf('?');
    const pathname = q >= 0 ? rawTarget.slice(0, q) : rawTarget;
    const query = new URLSearchParams(q >= 0 ? rawTarget.slice(q + 1) : '');

    const offered = query.get('token');
    if (offered !== null && (req.method === 'GET' || req.method === 'HEAD')) {
      if (!sameSecret(offered, token)) {
        sendText(res, 401, 'invalid token: open the URL printed by `upit serve`');
        return;
      }
      res.setHeader('Set-Cookie', `${cookieName()}=${token}; HttpOnly; SameSite=Strict; Path=/`);
      // back to the page without the token — a path on this server only (`//host/…` or `/\host`
      // would send the browser elsewhere)
      res.writeHead(303, { Location: /^\/(?![/\\])/.test(pathname) ? pathname : '/' });
      res.end();
      return;
    }
    if (!authorized(req)) {
      if (pathname.startsWith('/api/'))
        sendError(res, 401, new ApiError('unauthorized', 'missing or invalid token'));
      else
        sendText(
          res,
          401,
          'unauthorized: open the URL printed by `upit serve` (it carries the access token)',
        );
      return;
    }
    if (pathname.startsWith('/api/')) {
      // method names are plain ASCII (`runs.list`): no decoding needed or wanted
      void handleApi(req, res, pathname.slice(5)).catch(() => res.destroy());
      return;
    }
    handleStatic(req, res, pathname);
  });

  // ---- events over WebSocket ------------------------------------------------------------
  const wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  const clients = new Set<WebSocket>();
  const unsubscribe = opts.service.subscribe((event) => {
    if (clients.size === 0) return;
    const frame = JSON.stringify(event);
    for (const ws of clients) {
      if (ws.bufferedAmount > maxBuffered) ws.terminate();
      else ws.send(frame);
    }
  });

  const refuse = (socket: Socket, status: number, text: string): void => {
    socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  };
  server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
    const pathname = (req.url ?? '').split('?')[0];
    if (pathname !== '/ws') return refuse(socket, 404, 'Not Found');
    if (!hostOk(req)) return refuse(socket, 421, 'Misdirected Request');
    if (!originOk(req)) return refuse(socket, 403, 'Forbidden');
    if (!authorized(req)) return refuse(socket, 401, 'Unauthorized');
    wss.handleUpgrade(req, socket, head, (ws) => {
      clients.add(ws);
      let alive = true;
      ws.on('pong', () => (alive = true));
      const ping = setInterval(() => {
        if (!alive) return ws.terminate();
        alive = false;
        ws.ping();
      }, 30_000);
      ping.unref();
      // the channel is one-way: events flow to the renderer; calls go through POST /api
      ws.on('message', () => ws.close(1003, 'this socket only sends events'));
      ws.on('close', () => {
        clearInterval(ping);
        clients.delete(ws);
      });
      ws.on('error', () => ws.terminate());
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, BIND_ADDRESS, () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  const origin = `http://${BIND_ADDRESS}:${port}`;

  return {
    url: `${origin}/?token=${token}`,
    origin,
    port,
    token,
    async close() {
      unsubscribe();
      for (const ws of clients) ws.terminate();
      await new Promise<void>((resolve) => {
        wss.close(() => resolve());
      });
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
