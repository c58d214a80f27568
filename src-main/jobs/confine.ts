/**
 * File paths in API requests (a job's model, base model, data files, corpus, plan) must lie
 * inside the workspace or the app's shipped resources: a page cannot make the host read an
 * arbitrary file. Symlinks are resolved before the check. The CLI is not confined (its user
 * names files on their own machine).
 */
import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';

/** Config fields that name files or directories, as paths into the config object. */
export const PATH_FIELDS: readonly (readonly string[])[] = [
  ['base'],
  ['model'],
  ['init'],
  ['file'],
  ['data', 'train'],
  ['data', 'eval'],
  ['corpus', 'path'],
];

function real(p: string): string {
  // the longest existing prefix, resolved, plus the rest (a file that does not exist yet)
  let head = path.resolve(p);
  const tail: string[] = [];
  while (!existsSync(head) && path.dirname(head) !== head) {
    tail.unshift(path.basename(head));
    head = path.dirname(head);
  }
  return path.join(realpathSync(head), ...tail);
}

function inside(p: string, root: string): boolean {
  const r = real(root);
  return p === r || p.startsWith(r + path.sep);
}

/** The first path field outside every root: `{ field, value }`, or null when all are inside. */
export function pathOutside(
  config: Record<string, unknown>,
  roots: readonly string[],
): { field: string; value: string } | null {
  for (const f of PATH_FIELDS) {
    let v: unknown = config;
    for (const k of f) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
    if (typeof v !== 'string') continue;
    const p = real(v);
    if (!roots.some((r) => existsSync(r) && inside(p, r))) return { field: f.join('.'), value: v };
  }
  return null;
}
