/**
 * safetensors read/write. Format: 8-byte little-endian header length N, N bytes of JSON
 * header `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {..}}`, then
 * the data buffer (offsets are relative to its start). The header is untrusted input and
 * is validated completely at open; tensors are then read lazily, one at a time, so memory
 * stays bounded by the largest tensor. Reads F32/F16/BF16 into Float32Array; writes F32 or
 * BF16 (round-to-nearest-even), atomically (temp file + fsync + rename).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileError } from '../common/errors.js';
import { fsyncDir, ioError, removeDeadTemps, tempPathFor, unlinkQuiet, writeFully } from './atomic.js';
import { shapeSize, type HostTensor } from './host-tensor.js';
import { isPlainObject, JsonError, parseJsonStrict } from './json-strict.js';

export type { HostTensor } from './host-tensor.js';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

export interface TensorEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute position of the tensor's first byte in the file. */
  byteOffset: number;
  byteLength: number;
}

export interface SafetensorsWriteOptions {
  dtype?: 'F32' | 'BF16';
  metadata?: Record<string, string>;
}

/** Largest header accepted (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

const DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = { F32: 4, F16: 2, BF16: 2 };
const METADATA_KEY = '__metadata__';
/** Elements converted per step for F16/BF16 (bounds the scratch memory). */
const CHUNK_ELEMS = 1 << 20;
const IO_CHUNK = 1 << 30;

if (os.endianness() !== 'LE') throw new Error('src-main/io/safetensors requires a little-endian host');

function isSupportedDtype(d: unknown): d is SafetensorsDtype {
  return d === 'F32' || d === 'F16' || d === 'BF16';
}

function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

// ---------------------------------------------------------------------------------------------
// Conversions (tight typed-array loops)

let f16Table: Uint32Array | null = null;

/** float32 bit patterns for all 65536 IEEE half values (exact, NaN payloads kept). */
function getF16Table(): Uint32Array {
  if (f16Table) return f16Table;
  const t = new Uint32Array(65536);
  const tf = new Float32Array(t.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) {
      // zero or subnormal: frac * 2^-24, exactly representable in float32
      tf[h] = (h & 0x8000 ? -1 : 1) * frac * 2 ** -24;
    } else if (exp === 31) {
      t[h] = (sign | 0x7f800000 | (frac << 13)) >>> 0;
    } else {
      t[h] = (sign | ((exp + 112) << 23) | (frac << 13)) >>> 0;
    }
  }
  f16Table = t;
  return t;
}

function f16ToF32Bits(src: Uint16Array, dst: Uint32Array, dstOff: number, n: number): void {
  const t = getF16Table();
  for (let i = 0; i < n; i++) dst[dstOff + i] = t[src[i]!]!;
}

function bf16ToF32Bits(src: Uint16Array, dst: Uint32Array, dstOff: number, n: number): void {
  for (let i = 0; i < n; i++) dst[dstOff + i] = src[i]! << 16;
}

/** float32 → bfloat16 with round-to-nearest-even; NaN stays a (quiet) NaN with its sign. */
function f32ToBf16Bits(src: Uint32Array, srcOff: number, dst: Uint16Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const x = src[srcOff + i]!;
    if ((x & 0x7fffffff) > 0x7f800000) dst[i] = (x >>> 16) | 0x40;
    else dst[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
}

/** Round every value of `data` to the nearest bfloat16 (as written with dtype BF16). */
export function roundToBf16(data: Float32Array): Float32Array {
  const out = new Float32Array(data.length);
  const src = new Uint32Array(data.buffer, data.byteOffset, data.length);
  const dst = new Uint32Array(out.buffer);
  const tmp = new Uint16Array(Math.min(CHUNK_ELEMS, data.length));
  for (let off = 0; off < data.length; off += tmp.length) {
    const n = Math.min(tmp.length, data.length - off);
    f32ToBf16Bits(src, off, tmp, n);
    bf16ToF32Bits(tmp, dst, off, n);
  }
  return out;
}

let scratch16: Uint16Array | null = null;
function getScratch16(): Uint16Array {
  scratch16 ??= new Uint16Array(CHUNK_ELEMS);
  return scratch16;
}

// ---------------------------------------------------------------------------------------------
// Reading

function readFully(fd: number, buf: Uint8Array, position: number, onShort: () => Error): void {
  let off = 0;
  while (off < buf.byteLength) {
    const n = fs.readSync(fd, buf, off, Math.min(IO_CHUNK, buf.byteLength - off), position + off);
    if (n <= 0) throw onShort();
    off += n;
  }
}

interface ParsedHeader {
  entries: Map<string, TensorEntry>;
  metadata: Record<string, string>;
}

function parseHeader(file: string, fd: number, fileSize: number): ParsedHeader {
  const err = (msg: string) => fileError(file, msg);
  if (fileSize < 8) throw err(`too short to be a safetensors file (${fileSize} bytes; truncated?)`);
  const lenBuf = Buffer.alloc(8);
  readFully(fd, lenBuf, 0, () => err('truncated while reading the header length'));
  const n = lenBuf.readBigUInt64LE(0);
  if (n > BigInt(MAX_HEADER_BYTES))
    throw err(`header length ${n} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
  const headerLen = Number(n);
  if (headerLen > fileSize - 8) {
    throw err(
      `header length ${headerLen} exceeds the ${fileSize - 8} bytes after the length (truncated file?)`,
    );
  }
  if (headerLen === 0) throw err('header is empty');
  const hbuf = Buffer.alloc(headerLen);
  readFully(fd, hbuf, 8, () => err('truncated while reading the header'));

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(hbuf);
  } catch {
    throw err('header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = parseJsonStrict(text, 8);
  } catch (e) {
    if (e instanceof JsonError) throw err(`header is not valid JSON: ${e.message}`);
    throw e;
  }
  if (!isPlainObject(json)) throw err(`header is ${describe(json)}, not a JSON object`);

  const dataStart = 8 + headerLen;
  const dataSize = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const list: { entry: TensorEntry; begin: number; end: number }[] = [];

  for (const [name, raw] of Object.entries(json)) {
    if (name === METADATA_KEY) {
      if (!isPlainObject(raw))
        throw err(`__metadata__ must be an object mapping strings to strings, not ${describe(raw)}`);
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== 'string') {
          throw err(`__metadata__ must map strings to strings (key ${JSON.stringify(k)} is ${describe(v)})`);
        }
        setOwn(metadata, k, v);
      }
      continue;
    }
    const terr = (msg: string) => err(`tensor ${JSON.stringify(name)}: ${msg}`);
    if (!isPlainObject(raw)) throw terr(`entry is ${describe(raw)}, not an object`);
    const { dtype, shape, data_offsets: offsets } = raw;
    if (typeof dtype !== 'string')
      throw terr(`dtype is ${dtype === undefined ? 'missing' : describe(dtype)}`);
    if (!isSupportedDtype(dtype))
      throw terr(`unsupported dtype ${JSON.stringify(dtype)} (supported: F32, F16, BF16)`);
    if (!Array.isArray(shape))
      throw terr(`shape is ${shape === undefined ? 'missing' : describe(shape)}, not an array`);
    let numel = 1;
    for (const d of shape) {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
        throw terr(
          `shape [${shape.map((x) => JSON.stringify(x)).join(', ')}] has an invalid dimension ${describe(d)}`,
        );
      }
      numel *= d;
      if (!Number.isSafeInteger(numel)) throw terr(`shape [${shape.join(', ')}] is too large`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2) {
      throw terr(
        `data_offsets must be [begin, end], not ${offsets === undefined ? 'missing' : JSON.stringify(offsets)}`,
      );
    }
    const [begin, end] = offsets as unknown[];
    if (typeof begin !== 'number' || !Number.isSafeInteger(begin) || begin < 0) {
      throw terr(`data_offsets begin ${JSON.stringify(begin)} is not a non-negative integer`);
    }
    if (typeof end !== 'number' || !Number.isSafeInteger(end) || end < 0) {
      throw terr(`data_offsets end ${JSON.stringify(end)} is not a non-negative integer`);
    }
    if (begin > end) throw terr(`data_offsets [${begin}, ${end}] has begin > end`);
    if (end > dataSize) {
      throw terr(`data_offsets end ${end} is beyond the ${dataSize}-byte data section (truncated file?)`);
    }
    const expected = numel * DTYPE_BYTES[dtype];
    if (end - begin !== expected) {
      throw terr(
        `data_offsets [${begin}, ${end}] span ${end - begin} bytes but shape [${shape.join(', ')}] × ${dtype} needs ${expected}`,
      );
    }
    list.push({
      entry: {
        name,
        dtype,
        shape: shape as number[],
        byteOffset: dataStart + begin,
        byteLength: end - begin,
      },
      begin,
      end,
    });
  }

  // The data section must be tiled exactly: sorted by offset, each tensor starts where
  // the previous one ended, and the last one ends at the end of the file.
  list.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: string | null = null;
  for (const { entry, begin, end } of list) {
    if (begin < pos) {
      throw err(
        `tensor ${JSON.stringify(entry.name)}: data_offsets [${begin}, ${end}] overlap tensor ${JSON.stringify(prev)}`,
      );
    }
    if (begin > pos) {
      throw err(
        `tensor ${JSON.stringify(entry.name)}: data_offsets begin ${begin} leaves a gap of ${begin - pos} unindexed bytes after ${
          prev === null ? 'the header' : `tensor ${JSON.stringify(prev)}`
        }`,
      );
    }
    pos = end;
    prev = entry.name;
  }
  if (pos !== dataSize) {
    throw err(`${dataSize - pos} trailing bytes after the last tensor are not indexed by the header`);
  }

  const entries = new Map<string, TensorEntry>();
  for (const { entry } of list) entries.set(entry.name, entry);
  return { entries, metadata };
}

export class SafetensorsFile {
  private fd: number | null;

  private constructor(
    readonly path: string,
    fd: number,
    readonly entries: ReadonlyMap<string, TensorEntry>,
    readonly metadata: Record<string, string>,
  ) {
    this.fd = fd;
  }

  /** Open and validate the header; tensors are read on demand. Throws UserError `path: problem`. */
  static open(file: string): SafetensorsFile {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (e) {
      throw ioError(file, 'cannot open', e);
    }
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw fileError(file, 'not a regular file');
      const { entries, metadata } = parseHeader(file, fd, st.size);
      return new SafetensorsFile(file, fd, entries, metadata);
    } catch (e) {
      fs.closeSync(fd);
      throw ioError(file, 'cannot read', e);
    }
  }

  /** Decode one tensor to float32. NaN/Inf are returned as they are. */
  read(name: string): HostTensor {
    const e = this.entries.get(name);
    if (!e) throw fileError(this.path, `no tensor named ${JSON.stringify(name)}`);
    if (this.fd === null) throw new Error(`${this.path}: read after close`);
    const fd = this.fd;
    const numel = e.byteLength / DTYPE_BYTES[e.dtype];
    const out = new Float32Array(numel);
    const short = () =>
      fileError(
        this.path,
        `tensor ${JSON.stringify(name)}: unexpected end of file (file changed or truncated?)`,
      );
    try {
      if (e.dtype === 'F32') {
        readFully(fd, new Uint8Array(out.buffer), e.byteOffset, short);
      } else {
        const conv = e.dtype === 'F16' ? f16ToF32Bits : bf16ToF32Bits;
        const dst = new Uint32Array(out.buffer);
        const buf = getScratch16();
        for (let off = 0; off < numel; off += buf.length) {
          const n = Math.min(buf.length, numel - off);
          readFully(fd, new Uint8Array(buf.buffer, 0, n * 2), e.byteOffset + off * 2, short);
          conv(buf, dst, off, n);
        }
      }
    } catch (err) {
      throw ioError(this.path, `cannot read tensor ${JSON.stringify(name)}`, err);
    }
    return { shape: [...e.shape], data: out };
  }

  close(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }
}

/** Read every tensor of a file into memory. */
export function readSafetensors(file: string): {
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
} {
  const f = SafetensorsFile.open(file);
  try {
    const tensors = new Map<string, HostTensor>();
    for (const name of f.entries.keys()) tensors.set(name, f.read(name));
    return { tensors, metadata: { ...f.metadata } };
  } finally {
    f.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

interface PlannedTensor {
  name: string;
  shape: number[];
  numel: number;
  begin: number;
}

function buildHeader(
  file: string,
  plan: readonly { name: string; shape: readonly number[] }[],
  dtype: 'F32' | 'BF16',
  metadata: Record<string, string> | undefined,
): { header: Buffer; planned: Map<string, PlannedTensor>; dataBytes: number } {
  const elemBytes = DTYPE_BYTES[dtype];
  const md: Record<string, string> = {};
  setOwn(md, 'format', 'pt'); // transformers refuses safetensors metadata without a format
  for (const [k, v] of Object.entries(metadata ?? {})) {
    if (typeof v !== 'string') throw fileError(file, `metadata ${JSON.stringify(k)} must be a string`);
    setOwn(md, k, v);
  }
  const header: Record<string, unknown> = {};
  setOwn(header, METADATA_KEY, md);
  const planned = new Map<string, PlannedTensor>();
  let pos = 0;
  for (const { name, shape } of plan) {
    if (typeof name !== 'string' || name === METADATA_KEY) {
      throw fileError(file, `invalid tensor name ${JSON.stringify(name)}`);
    }
    if (planned.has(name)) throw fileError(file, `tensor ${JSON.stringify(name)} appears twice`);
    let numel: number;
    try {
      numel = shapeSize(shape);
    } catch (e) {
      throw fileError(file, `tensor ${JSON.stringify(name)}: ${(e as Error).message}`);
    }
    const bytes = numel * elemBytes;
    planned.set(name, { name, shape: [...shape], numel, begin: pos });
    setOwn(header, name, { dtype, shape: [...shape], data_offsets: [pos, pos + bytes] });
    pos += bytes;
  }
  let json = JSON.stringify(header);
  // pad with spaces so the data section starts 8-byte aligned (as the reference writer does)
  const len = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - ((len + 8) % 8)) % 8);
  const body = Buffer.from(json, 'utf8');
  if (body.length > MAX_HEADER_BYTES) throw fileError(file, `header would exceed ${MAX_HEADER_BYTES} bytes`);
  const out = Buffer.alloc(8 + body.length);
  out.writeBigUInt64LE(BigInt(body.length), 0);
  body.copy(out, 8);
  return { header: out, planned, dataBytes: pos };
}

/**
 * Streaming writer: the header is laid out from a plan (names and shapes), then tensors are
 * written one at a time in any order. Nothing appears under `path` until `finish()`. Any
 * error thrown by `write`/`finish` aborts the writer (its temp file is removed).
 */
export class SafetensorsWriter {
  readonly path: string;
  private readonly tmp: string;
  private fd: number | null;
  private readonly planned: Map<string, PlannedTensor>;
  private readonly written = new Set<string>();
  /** Tensors written in part: the next element expected. */
  private readonly parts = new Map<string, number>();
  /** Asynchronous part writes under way (writePartAsync). */
  private inflight = 0;
  private readonly dtype: 'F32' | 'BF16';
  private readonly dataStart: number;
  private state: 'open' | 'finished' | 'aborted' = 'open';

  constructor(file: string, plan: { name: string; shape: number[] }[], opts: SafetensorsWriteOptions = {}) {
    this.path = file;
    this.dtype = opts.dtype ?? 'F32';
    if (this.dtype !== 'F32' && this.dtype !== 'BF16') {
      throw fileError(file, `cannot write dtype ${JSON.stringify(this.dtype)} (F32 or BF16)`);
    }
    const { header, planned } = buildHeader(file, plan, this.dtype, opts.metadata);
    this.planned = planned;
    this.dataStart = header.length;
    removeDeadTemps(file);
    this.tmp = tempPathFor(file);
    try {
      this.fd = fs.openSync(this.tmp, 'wx');
    } catch (e) {
      throw ioError(file, 'cannot create', e);
    }
    this.guard(() => writeFully(this.fd!, header, 0));
  }

  write(name: string, data: Float32Array): void {
    this.put(name, 0, data, true);
  }

  /**
   * Write elements offset..offset + data.length of tensor `name`: its parts in order, from 0
   * (a tensor streamed in blocks); the tensor counts as written once its last part is.
   */
  writePart(name: string, offset: number, data: Float32Array): void {
    this.put(name, offset, data, false);
  }

  /**
   * writePart without waiting for the bytes: an F32 writer hands them to libuv's thread pool
   * (`data` must stay unchanged until the promise settles); a BF16 one converts and writes them
   * now. The part is checked and counted at once; a failed write aborts the writer and rejects.
   * Every promise must have settled before `finish()`.
   */
  writePartAsync(name: string, offset: number, data: Float32Array): Promise<void> {
    if (this.dtype !== 'F32') {
      this.writePart(name, offset, data);
      return Promise.resolve();
    }
    const pos = this.put(name, offset, data, false, false);
    const fd = this.fd!;
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.inflight++;
    return new Promise<void>((resolve, reject) => {
      const end = (err: Error | null) => {
        if (--this.inflight === 0 && this.state === 'aborted') this.closeFd();
        if (err === null) resolve();
        else {
          this.abort();
          reject(ioError(this.path, 'cannot write', err));
        }
      };
      const step = (done: number) => {
        if (done >= bytes.byteLength || this.state === 'aborted') return end(null);
        fs.write(fd, bytes, done, bytes.byteLength - done, pos + done, (err, n) => {
          if (err || n <= 0) end(err ?? new Error('write returned no progress'));
          else step(done + n);
        });
      };
      step(0);
    });
  }

  /** Checks and counts a part, writes it unless `write` is false; returns its file position. */
  private put(name: string, offset: number, data: Float32Array, whole: boolean, write = true): number {
    if (this.state !== 'open') throw new Error(`${this.path}: write after ${this.state}`);
    let at = 0;
    this.guard(() => {
      const p = this.planned.get(name);
      if (!p) throw fileError(this.path, `tensor ${JSON.stringify(name)} is not in the plan`);
      if (this.written.has(name)) throw fileError(this.path, `tensor ${JSON.stringify(name)} written twice`);
      if (!(data instanceof Float32Array))
        throw fileError(this.path, `tensor ${JSON.stringify(name)}: data is not a Float32Array`);
      const expected = this.parts.get(name) ?? 0;
      const fits = whole ? data.length === p.numel : data.length > 0 || p.numel === 0;
      if (offset !== expected || offset + data.length > p.numel || !fits) {
        throw fileError(
          this.path,
          whole
            ? `tensor ${JSON.stringify(name)}: ${data.length} values for shape [${p.shape.join(', ')}] (${p.numel})`
            : `tensor ${JSON.stringify(name)}: part at ${offset} of ${data.length} values, expected one at ${expected} within ${p.numel}`,
        );
      }
      const elem = this.dtype === 'F32' ? 4 : 2;
      const pos = this.dataStart + p.begin + offset * elem;
      at = pos;
      const fd = this.fd!;
      if (!write) {
        // the caller writes the bytes
      } else if (this.dtype === 'F32') {
        writeFully(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength), pos);
      } else {
        const src = new Uint32Array(data.buffer, data.byteOffset, data.length);
        const buf = getScratch16();
        for (let off = 0; off < data.length; off += buf.length) {
          const n = Math.min(buf.length, data.length - off);
          f32ToBf16Bits(src, off, buf, n);
          writeFully(fd, new Uint8Array(buf.buffer, 0, n * 2), pos + off * 2);
        }
      }
      const end = offset + data.length;
      if (end === p.numel) {
        this.parts.delete(name);
        this.written.add(name);
      } else this.parts.set(name, end);
    });
    return at;
  }

  finish(): void {
    if (this.state !== 'open') throw new Error(`${this.path}: finish after ${this.state}`);
    if (this.inflight > 0) throw new Error(`${this.path}: finish with ${this.inflight} writes under way`);
    this.guard(() => {
      for (const name of this.planned.keys()) {
        if (!this.written.has(name))
          throw fileError(this.path, `tensor ${JSON.stringify(name)} was planned but never written`);
      }
      const fd = this.fd!;
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      this.fd = null;
      fs.renameSync(this.tmp, this.path);
      this.state = 'finished';
    });
    fsyncDir(path.dirname(this.path));
  }

  /** Discard the output (removes the temp file). Safe to call more than once. */
  abort(): void {
    if (this.state === 'finished') return;
    this.state = 'aborted';
    // an asynchronous write still under way closes the file when it ends (closing it now could
    // let the descriptor be reused by another file while the write is in flight)
    if (this.inflight === 0) this.closeFd();
    unlinkQuiet(this.tmp);
  }

  private closeFd(): void {
    if (this.fd === null) return;
    try {
      fs.closeSync(this.fd);
    } catch {
      // ignore
    }
    this.fd = null;
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.abort();
      throw ioError(this.path, 'cannot write', e);
    }
  }
}

/** Write tensors to one safetensors file, atomically. Holds references to all tensors until done. */
export function writeSafetensors(
  file: string,
  tensors: Iterable<[string, HostTensor]>,
  opts: SafetensorsWriteOptions = {},
): void {
  const list = [...tensors];
  const w = new SafetensorsWriter(
    file,
    list.map(([name, t]) => ({ name, shape: t.shape })),
    opts,
  );
  try {
    for (const [name, t] of list) w.write(name, t.data);
    w.finish();
  } catch (e) {
    w.abort();
    throw e;
  }
}
