import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';

const made: string[] = [];

/** A fresh temp directory, removed after the test. */
export function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'upit-io-'));
  made.push(d);
  return d;
}

afterEach(() => {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** Raw safetensors bytes: 8-byte LE length, header text as given, then `data`. */
export function rawSafetensors(
  header: unknown,
  data: Uint8Array = new Uint8Array(0),
  headerLen?: bigint,
): Buffer {
  const h = Buffer.isBuffer(header)
    ? header
    : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLen ?? BigInt(h.length));
  return Buffer.concat([len, h, data]);
}

/** Names left in a directory (to check that no temp file survived). */
export function ls(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}

export function bits(a: Float32Array): number[] {
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
}

export const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/io');
