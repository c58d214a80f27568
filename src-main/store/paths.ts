import path from 'node:path';
import { UserError } from '../common/errors.js';

/**
 * Normalizes a path meant to stay inside the workspace: relative, `/`-separated (a `\` counts
 * as a separator too, for paths written on Windows), no `.`/empty segments, no escape through
 * `..`. Absolute paths (POSIX, drive letters, UNC) and escapes are UserErrors naming the path.
 * Lexical only: a symlink inside the workspace may still point elsewhere (deliberately allowed,
 * e.g. `runs/` on a bigger disk).
 */
export function normalizeRelativePath(rel: string, what = 'path'): string {
  if (typeof rel !== 'string' || rel === '') throw new UserError(`${what}: empty path`);
  if (rel.includes('\0')) throw new UserError(`${what}: path contains a NUL byte`);
  if (path.posix.isAbsolute(rel) || path.win32.isAbsolute(rel) || /^[A-Za-z]:/.test(rel)) {
    throw new UserError(`${rel}: absolute path not allowed, give a path relative to the workspace`);
  }
  const out: string[] = [];
  for (const seg of rel.split(/[\\/]/)) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length === 0) throw new UserError(`${rel}: path escapes the workspace`);
      out.pop();
    } else {
      out.push(seg);
    }
  }
  if (out.length === 0) throw new UserError(`${rel}: path names the workspace itself, not a file in it`);
  return out.join('/');
}
