/** `app://workbench/…`: the renderer's build directory, with the CSP, nothing else. */
import { readFile } from 'node:fs/promises';
import { contentType, resolveStaticPath } from '../web/static-files.js';
import { APP_HOST, ELECTRON_CSP } from './security.js';

export function createAppProtocolHandler(rendererDir: string): (request: Request) => Promise<Response> {
  const headers = (type?: string): Record<string, string> => ({
    'Content-Security-Policy': ELECTRON_CSP,
    'X-Content-Type-Options': 'nosniff',
    ...(type ? { 'Content-Type': type } : {}),
  });
  return async (request) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return new Response('method not allowed', { status: 405, headers: headers() });
    }
    const url = new URL(request.url);
    if (url.host !== APP_HOST) return new Response('not found', { status: 404, headers: headers() });
    // the raw path (URL parsing already resolved plain `..`; encoded forms are refused here)
    const r = resolveStaticPath(rendererDir, url.pathname);
    if (!r.ok)
      return new Response(r.status === 404 ? 'not found' : 'bad path', {
        status: r.status,
        headers: headers(),
      });
    const body = request.method === 'HEAD' ? null : await readFile(r.file);
    return new Response(body, { status: 200, headers: headers(contentType(r.file)) });
  };
}
