/**
 * Atomic file writes: write to a temporary name in the target's directory, fsync, rename
 * into place, fsync the directory. A reader never sees a partial file under the target name.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileError, isUserError } from '../common/errors.js';

let seq = 0;

/** A fresh temporary name next to `target` (same directory, so rename is atomic). */
export function tempPathFor(target: string): string {
  seq += 1;
  return `${target}.tmp-${process.pid}-${seq}`;
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
