/**
 * Loading tfjs-core's ES-module files (gradients, chained ops) in plain Node.
 *
 * Upstream's `dist/*.js` modules import each other without file extensions, which Node's ESM resolver
 * rejects. Two ways around it, fastest first:
 *
 * 1. a per-user cache holding the reachable modules (about 600) with `.js` appended to their relative
 *    imports and their package imports (`long`, `seedrandom`) pinned to absolute URLs, built once per
 *    tfjs-core install (~0.2 s) and imported natively afterwards (~0.3 s);
 * 2. when the cache cannot be written, a resolve hook (`module.register`) that appends `.js` on the fly;
 *    every one of the ~2,800 imports then makes a round trip to the loader thread (~1.5 s in all).
 *
 * Both are imported through a `data:` module, which test runners that rewrite imports (vitest) hand to
 * Node's own loader instead of transforming each upstream module.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire, register } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);

const RESOLVE_HOOK = `
export async function resolve(specifier, context, next) {
  const parent = context.parentURL;
  if (parent && parent.includes('/@tensorflow/tfjs-core/dist/') &&
      (specifier.startsWith('./') || specifier.startsWith('../')) && !/\\.[cm]?js$/.test(specifier)) {
    return next(specifier + '.js', context);
  }
  return next(specifier, context);
}`;

const IMPORT_RE = /(\bfrom\s*|\bimport\s*)(['"])([^'"\n]+)\2/g;

function coreDist(): string {
  return path.dirname(require.resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js'));
}

/** The user's cache directory (`UPIT_CACHE_DIR` overrides). */
export function userCacheDir(): string {
  const env = process.env['UPIT_CACHE_DIR'];
  if (env !== undefined && env !== '') return env;
  const home = os.homedir();
  if (process.platform === 'win32') {
    return path.join(
      process.env['LOCALAPPDATA'] ?? path.join(home, 'AppData', 'Local'),
      'upit-workbench',
      'Cache',
    );
  }
  if (process.platform === 'darwin') return path.join(home, 'Library', 'Caches', 'upit-workbench');
  return path.join(process.env['XDG_CACHE_HOME'] ?? path.join(home, '.cache'), 'upit-workbench');
}

/** Copies the modules reachable from `entries` into `out`, with resolvable import specifiers. */
function rewriteInto(dist: string, entries: string[], out: string): number {
  const seen = new Set<string>();
  const queue = [...entries];
  while (queue.length > 0) {
    const rel = queue.pop()!;
    if (seen.has(rel)) continue;
    const file = path.join(dist, rel);
    if (!fs.existsSync(file)) continue; // a specifier quoted in a comment
    seen.add(rel);
    const from = createRequire(file);
    const src = fs.readFileSync(file, 'utf8').replace(/\n\/\/# sourceMappingURL=\S*\s*$/, '\n');
    const rewritten = src.replace(IMPORT_RE, (whole, kw: string, q: string, spec: string) => {
      if (spec.startsWith('./') || spec.startsWith('../')) {
        const target = /\.[cm]?js$/.test(spec) ? spec : `${spec}.js`;
        queue.push(path.normalize(path.join(path.dirname(rel), target)));
        return `${kw}${q}${target}${q}`;
      }
      let resolved: string;
      try {
        resolved = from.resolve(spec);
      } catch {
        return whole; // not a package (quoted text), or a package Node resolves by itself
      }
      return path.isAbsolute(resolved) ? `${kw}${q}${pathToFileURL(resolved).href}${q}` : whole;
    });
    const dest = path.join(out, rel);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.writeFileSync(dest, rewritten);
  }
  return seen.size;
}

/** The cache directory for this tfjs-core install, built if missing; throws when it cannot be. */
function ensureCache(dist: string, entries: string[]): string {
  const version = (require('@tensorflow/tfjs-core/package.json') as { version: string }).version;
  const key = createHash('sha256')
    .update(`${dist}\n${entries.join('\n')}`)
    .digest('hex')
    .slice(0, 16);
  const dir = path.join(userCacheDir(), `tfjs-core-${version}-esm-${key}`);
  const marker = path.join(dir, 'complete.json');
  if (fs.existsSync(marker)) return dir;
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const tmp = fs.mkdtempSync(`${dir}.tmp-`);
  try {
    fs.writeFileSync(path.join(tmp, 'package.json'), '{"type":"module"}\n');
    const count = rewriteInto(dist, entries, tmp);
    fs.writeFileSync(path.join(tmp, 'complete.json'), JSON.stringify({ version, dist, count }) + '\n');
    try {
      fs.renameSync(tmp, dir);
    } catch (e) {
      if (!fs.existsSync(marker)) throw e; // not a lost race with another process
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}

function dataModule(urls: string[]): string {
  return `data:text/javascript,${encodeURIComponent(urls.map((u) => `import ${JSON.stringify(u)};`).join(''))}`;
}

/**
 * Imports (for their side effects) tfjs-core ES modules given relative to its `dist/`. Returns which way
 * was used.
 */
export async function importTfjsCoreModules(entries: string[]): Promise<'cache' | 'hook'> {
  const dist = coreDist();
  let dir: string | undefined;
  try {
    dir = ensureCache(dist, entries);
  } catch {
    dir = undefined;
  }
  if (dir !== undefined) {
    const root = dir;
    try {
      await import(dataModule(entries.map((e) => pathToFileURL(path.join(root, e)).href)));
      return 'cache';
    } catch {
      // A damaged cache: load the originals below (registering twice is harmless).
    }
  }
  register(`data:text/javascript,${encodeURIComponent(RESOLVE_HOOK)}`);
  await import(dataModule(entries.map((e) => pathToFileURL(path.join(dist, e)).href)));
  return 'hook';
}
