import { existsSync, mkdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../common/errors.js';
import type { OpenDatabaseOptions } from './db.js';
import { normalizeRelativePath } from './paths.js';
import { Store, type StoreOptions } from './store.js';

export const DB_FILE = 'upit.db';
export const RUNS_DIR = 'runs';

/**
 * A workspace: a directory with `upit.db` (every experiment, run, metric, checkpoint record)
 * and `runs/<runId>/…` (the tensors those records point at).
 */
export interface Workspace {
  /** Absolute, resolved. */
  readonly dir: string;
  readonly dbPath: string;
  readonly db: Store;
  /** `<dir>/runs/<runId>` (not created). */
  runDir(runId: number): string;
  /** `runDir`, created if missing. */
  ensureRunDir(runId: number): string;
  /** `resolveInWorkspace(this, relPath)`. */
  resolve(relPath: string): string;
  /** `toWorkspacePath(this, absPath)`. */
  relative(absPath: string): string;
  close(): void;
}

export interface OpenWorkspaceOptions extends OpenDatabaseOptions, StoreOptions {
  /** Create the directory and database if missing (default false: a missing workspace is a UserError). */
  create?: boolean;
}

/** `$UPIT_WORKSPACE` if set, else `~/.upit/workspace`. (`--workspace DIR` is the caller's to prefer.) */
export function defaultWorkspaceDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.UPIT_WORKSPACE?.trim();
  return fromEnv ? expandHome(fromEnv) : path.join(os.homedir(), '.upit', 'workspace');
}

function expandHome(p: string): string {
  if (p === '~') return os.homedir();
  if (p.startsWith('~/') || p.startsWith('~\\')) return path.join(os.homedir(), p.slice(2));
  return p;
}

export function openWorkspace(dir: string, opts: OpenWorkspaceOptions = {}): Workspace {
  if (typeof dir !== 'string' || dir.trim() === '') throw new UserError('workspace: empty directory name');
  const abs = path.resolve(expandHome(dir));
  const dbPath = path.join(abs, DB_FILE);
  if (existsSync(abs)) {
    if (!statSync(abs).isDirectory())
      throw new UserError(`${abs}: workspace must be a directory, this is a file`);
  } else if (!opts.create) {
    throw new UserError(`${abs}: workspace does not exist (create it first)`);
  }
  if (!existsSync(dbPath)) {
    if (!opts.create) throw new UserError(`${abs}: not an UpIT workspace (no ${DB_FILE})`);
    mkdirSync(abs, { recursive: true });
  }
  mkdirSync(path.join(abs, RUNS_DIR), { recursive: true });
  const db = Store.open(dbPath, opts);

  const ws: Workspace = {
    dir: abs,
    dbPath,
    db,
    runDir: (runId) => path.join(abs, RUNS_DIR, String(checkRunId(runId))),
    ensureRunDir: (runId) => {
      const d = ws.runDir(runId);
      mkdirSync(d, { recursive: true });
      return d;
    },
    resolve: (rel) => resolveInWorkspace(ws, rel),
    relative: (p) => toWorkspacePath(ws, p),
    close: () => db.close(),
  };
  return ws;
}

function checkRunId(runId: number): number {
  if (!Number.isSafeInteger(runId) || runId < 1)
    throw new UserError(`run id ${String(runId)}: not a positive integer`);
  return runId;
}

/**
 * The absolute path of `relPath` inside the workspace. Absolute paths and `..` escapes are
 * UserErrors. Use it for every path read from the database or given by a user/plan.
 */
export function resolveInWorkspace(ws: Pick<Workspace, 'dir'> | string, relPath: string): string {
  const dir = typeof ws === 'string' ? path.resolve(ws) : ws.dir;
  const rel = normalizeRelativePath(relPath);
  const abs = path.resolve(dir, ...rel.split('/'));
  const back = path.relative(dir, abs);
  if (back === '' || back === '..' || back.startsWith(`..${path.sep}`) || path.isAbsolute(back)) {
    throw new UserError(`${relPath}: path escapes the workspace`);
  }
  return abs;
}

/** The workspace-relative POSIX form of a path inside the workspace (what the database stores). */
export function toWorkspacePath(ws: Pick<Workspace, 'dir'> | string, absPath: string): string {
  const dir = typeof ws === 'string' ? path.resolve(ws) : ws.dir;
  const rel = path.relative(dir, path.resolve(dir, absPath));
  if (rel === '' || rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) {
    throw new UserError(`${absPath}: not inside the workspace ${dir}`);
  }
  return normalizeRelativePath(rel.split(path.sep).join('/'));
}
