/**
 * Maps a request path to a file inside the renderer's build directory, refusing anything
 * that could leave it: `..` segments (raw or percent-encoded), backslashes, NUL bytes,
 * absolute paths, dot-files, and symlinks pointing outside. Shared with the Electron host's
 * `app://` protocol handler.
 */
import { realpathSync, statSync } from 'node:fs';
import path from 'node:path';

export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

export function contentType(file: string): string | undefined {
  return CONTENT_TYPES[path.extname(file).toLowerCase()];
}

export type StaticResolution = { ok: true; file: string } | { ok: false; status: 400 | 404; reason: string };

/**
 * `urlPath` is the raw path of the request URL (no query), e.g. `/assets/app.js`.
 * `/` maps to `index.html`.
 */
export function resolveStaticPath(root: string, urlPath: string): StaticResolution {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return { ok: false, status: 400, reason: 'malformed percent-encoding' };
  }
  if (!decoded.startsWith('/')) return { ok: false, status: 400, reason: 'path must start with /' };
  if (decoded.includes('\0') || decoded.includes('\\'))
    return { ok: false, status: 400, reason: 'bad character' };
  const segments = decoded.split('/').slice(1);
  for (const s of segments) {
    if (s === '..' || s === '.') return { ok: false, status: 400, reason: 'dot segment' };
    if (s.startsWith('.')) return { ok: false, status: 404, reason: 'hidden file' };
  }
  const rel = decoded === '/' ? 'index.html' : segments.join('/');
  if (rel === '' || rel.endsWith('/')) return { ok: false, status: 404, reason: 'directory' };
  if (!contentType(rel)) return { ok: false, status: 404, reason: 'unknown file type' };

  const base = path.resolve(root);
  const file = path.resolve(base, rel);
  if (!isInside(base, file)) return { ok: false, status: 400, reason: 'outside the root' };
  try {
    const real = realpathSync(file);
    if (!isInside(realpathSync(base), real))
      return { ok: false, status: 404, reason: 'link outside the root' };
    if (!statSync(real).isFile()) return { ok: false, status: 404, reason: 'not a file' };
    return { ok: true, file: real };
  } catch {
    return { ok: false, status: 404, reason: 'not found' };
  }
}

function isInside(base: string, p: string): boolean {
  const rel = path.relative(base, p);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}
