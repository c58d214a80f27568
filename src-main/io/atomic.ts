/**
 * Atomic file writes: write to a temporary name in the target's directory, fsync, rename
 * into place, fsync the directory. A reader never sees a partial file under the target name.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileError, isUserError } from '../common/errors.js';
import { isPlainObject } from './json-strict.js';

let seq = 0;

/** A fresh temporary name next to `target` (same directory, so rename is atomic). */
export function tempPathFor(target: string): string {
  seq += 1;
  return `${target}.tmp-${process.pid}-${seq}`;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temporaries of `target` (`<target>.tmp-<pid>…`, files or directories) whose writer
 * process is gone — what a killed writer leaves behind (a whole model's worth of bytes for a
 * weights file). Writers call it before writing `target` again; temporaries of live processes
 * (another writer, this one) are left alone.
 */
export function removeDeadTemps(target: string): void {
  const dir = path.dirname(target);
  const prefix = `${path.basename(target)}.tmp-`;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(/^(\d+)(?:-\d+)?$/.exec(name.slice(prefix.length))?.[1]);
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || pidAlive(pid)) continue;
    rmQuiet(path.join(dir, name));
  }
}

/** fsync a directory so a rename in it is durable; best-effort where unsupported. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some platforms/filesystems cannot fsync a directory; the rename is still atomic.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Remove a file if present, ignoring errors (cleanup paths). */
export function unlinkQuiet(p: string): void {
  try {
    fs.unlinkSync(p);
  } catch {
    // already gone
  }
}

/** Write all of `buf` at `position` (handles partial writes and the 2 GiB per-call limit). */
export function writeFully(fd: number, buf: Uint8Array, position: number): void {
  const CHUNK = 1 << 30;
  let off = 0;
  while (off < buf.byteLength) {
    const len = Math.min(CHUNK, buf.byteLength - off);
    const n = fs.writeSync(fd, buf, off, len, position + off);
    if (n <= 0) throw new Error('write returned no progress');
    off += n;
  }
}

/** `path: what: reason` as a UserError for an I/O failure, keeping UserErrors as they are. */
export function ioError(p: string, what: string, e: unknown): Error {
  if (isUserError(e)) return e;
  const code = (e as NodeJS.ErrnoException | null)?.code;
  const reason =
    code === 'ENOENT'
      ? 'not found'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : code === 'EISDIR'
          ? 'is a directory'
          : code === 'ENOSPC'
            ? 'no space left on device'
            : (code ?? (e instanceof Error ? e.message : String(e)));
  return fileError(p, `${what}: ${reason}`);
}

/** Atomically replace `target` with `data`. */
export function writeFileAtomic(target: string, data: string | Uint8Array): void {
  removeDeadTemps(target);
  const tmp = tempPathFor(target);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx');
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    writeFully(fd, bytes, 0);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, target);
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    unlinkQuiet(tmp);
    throw ioError(target, 'cannot write', e);
  }
  fsyncDir(path.dirname(target));
}

/** Removes a file or directory tree, ignoring errors (cleanup on a failure path). */
export function rmQuiet(p: string): void {
  try {
    fs.rmSync(p, { recursive: true, force: true });
  } catch {
    // best effort
  }
}

/** Moves the finished directory `tmp` to `target`, replacing an existing one (moved aside, then removed). */
export function replaceDir(tmp: string, target: string, what = 'cannot move the directory into place'): void {
  const old = `${target}.old-${process.pid}`;
  try {
    if (fs.existsSync(target)) {
      rmQuiet(old);
      fs.renameSync(target, old);
    }
    fs.renameSync(tmp, target);
  } catch (e) {
    if (!fs.existsSync(target) && fs.existsSync(old)) fs.renameSync(old, target);
    rmQuiet(tmp);
    throw ioError(target, what, e);
  }
  rmQuiet(old);
  fsyncDir(path.dirname(target));
}

/** A JSON file that must hold an object; errors name the file. */
export function readJsonObject(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw ioError(file, 'cannot read', e);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw fileError(file, `invalid JSON: ${(e as Error).message}`);
  }
  if (!isPlainObject(v)) throw fileError(file, 'not a JSON object');
  return v;
}
