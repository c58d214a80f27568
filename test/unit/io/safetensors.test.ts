import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src-main/common/errors.js';
import {
  readSafetensors,
  roundToBf16,
  SafetensorsFile,
  SafetensorsWriter,
  writeSafetensors,
} from '../../../src-main/io/safetensors.js';
import type { HostTensor } from '../../../src-main/io/host-tensor.js';
import { bits, FIXTURES, ls, rawSafetensors, tempDir } from './helpers.js';

const t = (shape: number[], values: number[]): HostTensor => ({ shape, data: Float32Array.from(values) });

function headerOf(file: string): { len: number; json: Record<string, unknown> } {
  const buf = fs.readFileSync(file);
  const len = Number(buf.readBigUInt64LE(0));
  return { len, json: JSON.parse(buf.subarray(8, 8 + len).toString('utf8')) as Record<string, unknown> };
}

describe('safetensors round trip', () => {
  it('F32 is bit-exact, including NaN, ±Inf, -0, scalars and empty tensors', () => {
    const dir = tempDir();
    const file = path.join(dir, 'a.safetensors');
    const odd = new Float32Array([NaN, Infinity, -Infinity, -0, 1e-45, 3.4028235e38, -1.5, 0.1]);
    const tensors: [string, HostTensor][] = [
      ['w', { shape: [2, 4], data: odd }],
      ['scalar', t([], [7])],
      ['empty', t([0, 3], [])],
      ['1', t([3], [1, 2, 3])],
    ];
    writeSafetensors(file, tensors, { metadata: { note: 'hi' } });
    const { tensors: back, metadata } = readSafetensors(file);
    expect(metadata).toEqual({ format: 'pt', note: 'hi' });
    expect([...back.keys()].sort()).toEqual(['1', 'empty', 'scalar', 'w']);
    for (const [name, orig] of tensors) {
      const got = back.get(name)!;
      expect(got.shape).toEqual(orig.shape);
      expect(bits(got.data)).toEqual(bits(orig.data));
    }
    // data starts 8-byte aligned; the header describes the F32 layout
    const { len, json } = headerOf(file);
    expect((8 + len) % 8).toBe(0);
    expect(json.w).toEqual({ dtype: 'F32', shape: [2, 4], data_offsets: [0, 32] });
    expect(fs.statSync(file).size).toBe(8 + len + (8 + 1 + 0 + 3) * 4);
  });

  it('reads from a Float32Array view with a byte offset (no copy assumptions)', () => {
    const dir = tempDir();
    const file = path.join(dir, 'v.safetensors');
    const big = Float32Array.from([9, 1, 2, 3, 9]);
    writeSafetensors(file, [['v', { shape: [3], data: big.subarray(1, 4) }]]);
    expect(Array.from(readSafetensors(file).tensors.get('v')!.data)).toEqual([1, 2, 3]);
  });

  it('BF16 write rounds to nearest even (hand-computed)', () => {
    const dir = tempDir();
    const file = path.join(dir, 'b.safetensors');
    // 1+2^-8 is a tie between 1 (0x3F80, even) and 1+2^-7 (0x3F81): goes to 0x3F80.
    // 1+3·2^-8 is a tie between 0x3F81 (odd) and 0x3F82 (even): goes up to 0x3F82.
    // 1+2^-8+2^-20 is just above the tie: 0x3F81. FLT_MAX rounds to +Inf. NaN stays NaN.
    const src = [
      1 + 2 ** -8,
      1 + 3 * 2 ** -8,
      1 + 2 ** -8 + 2 ** -20,
      -(1 + 2 ** -8),
      3.4028234663852886e38,
      NaN,
    ];
    writeSafetensors(file, [['x', t([6], src)]], { dtype: 'BF16' });
    const { len, json } = headerOf(file);
    expect(json.x).toEqual({ dtype: 'BF16', shape: [6], data_offsets: [0, 12] });
    const raw = fs.readFileSync(file).subarray(8 + len);
    const halves = Array.from({ length: 6 }, (_, i) => raw.readUInt16LE(2 * i));
    expect(halves.slice(0, 5)).toEqual([0x3f80, 0x3f82, 0x3f81, 0xbf80, 0x7f80]);
    expect(halves[5]! & 0x7f80).toBe(0x7f80);
    expect(halves[5]! & 0x7f).not.toBe(0);
    const back = readSafetensors(file).tensors.get('x')!.data;
    expect(Array.from(back.subarray(0, 5))).toEqual([1, 1.015625, 1.0078125, -1, Infinity]);
    expect(back[5]).toBeNaN();
    expect(bits(roundToBf16(Float32Array.from(src)))).toEqual(bits(back));
  });

  it('matches torch: F16 and BF16 decoding, and BF16 rounding of random values', () => {
    const f = SafetensorsFile.open(path.join(FIXTURES, 'torch-half.safetensors'));
    try {
      expect(f.entries.get('f16')!.dtype).toBe('F16');
      const f16 = f.read('f16');
      expect(f16.shape).toEqual([4, 8]);
      expect(bits(f16.data)).toEqual(bits(f.read('f16_as_f32').data));
      expect(f16.data[7]).toBe(-(2 ** -24)); // a subnormal half
      const bf16 = f.read('bf16');
      expect(bf16.shape).toEqual([2, 3, 4]);
      expect(bits(bf16.data)).toEqual(bits(f.read('bf16_as_f32').data));

      const dir = tempDir();
      const out = path.join(dir, 'rne.safetensors');
      writeSafetensors(out, [['rne_bf16', f.read('rne_src')]], { dtype: 'BF16' });
      const e = f.entries.get('rne_bf16')!;
      const torchBytes = fs.readFileSync(f.path).subarray(e.byteOffset, e.byteOffset + e.byteLength);
      const mine = SafetensorsFile.open(out);
      const m = mine.entries.get('rne_bf16')!;
      const myBytes = fs.readFileSync(out).subarray(m.byteOffset, m.byteOffset + m.byteLength);
      mine.close();
      expect(myBytes.equals(torchBytes)).toBe(true);
    } finally {
      f.close();
    }
  });

  it('reads lazily by entry, reports absolute offsets, and refuses reads after close', () => {
    const dir = tempDir();
    const file = path.join(dir, 'c.safetensors');
    writeSafetensors(file, [
      ['a', t([2], [1, 2])],
      ['b', t([1], [3])],
    ]);
    const f = SafetensorsFile.open(file);
    const { len } = headerOf(file);
    expect(f.entries.get('b')).toEqual({
      name: 'b',
      dtype: 'F32',
      shape: [1],
      byteOffset: 8 + len + 8,
      byteLength: 4,
    });
    expect(Array.from(f.read('b').data)).toEqual([3]);
    expect(() => f.read('nope')).toThrow(/no tensor named "nope"/);
    f.close();
    expect(() => f.read('a')).toThrow(/after close/);
  });
});

describe('atomic writes', () => {
  it('leaves no temp file on success and never a target on failure', () => {
    const dir = tempDir();
    const file = path.join(dir, 'x.safetensors');
    expect(() => writeSafetensors(file, [['a', t([3], [1, 2])]])).toThrow(UserError);
    expect(() => writeSafetensors(file, [['a', t([3], [1, 2])]])).toThrow(
      /x\.safetensors: tensor "a": 2 values for shape \[3\]/,
    );
    expect(ls(dir)).toEqual([]);
    writeSafetensors(file, [['a', t([2], [1, 2])]]);
    expect(ls(dir)).toEqual(['x.safetensors']);
    // a failing rewrite keeps the previous file intact
    const before = fs.readFileSync(file);
    expect(() =>
      writeSafetensors(file, [
        ['a', t([2], [5, 6])],
        ['a', t([2], [5, 6])],
      ]),
    ).toThrow(/tensor "a" appears twice/);
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    expect(ls(dir)).toEqual(['x.safetensors']);
  });

  it('SafetensorsWriter writes in any order and validates', () => {
    const dir = tempDir();
    const file = path.join(dir, 'w.safetensors');
    const plan = [
      { name: 'a', shape: [2, 2] },
      { name: 'b', shape: [3] },
    ];
    const w = new SafetensorsWriter(file, plan, { dtype: 'F32' });
    expect(fs.existsSync(file)).toBe(false);
    w.write('b', Float32Array.from([7, 8, 9]));
    w.write('a', Float32Array.from([1, 2, 3, 4]));
    w.finish();
    expect(ls(dir)).toEqual(['w.safetensors']);
    const back = readSafetensors(file).tensors;
    expect(Array.from(back.get('a')!.data)).toEqual([1, 2, 3, 4]);
    expect(Array.from(back.get('b')!.data)).toEqual([7, 8, 9]);
  });

  it('SafetensorsWriter writes a tensor in parts, in order, and refuses gaps and overruns', () => {
    const dir = tempDir();
    const file = path.join(dir, 'p.safetensors');
    const plan = [
      { name: 'a', shape: [5] },
      { name: 'b', shape: [2] },
    ];
    const gap = new SafetensorsWriter(file, plan);
    gap.writePart('a', 0, Float32Array.from([1, 2]));
    expect(() => gap.writePart('a', 3, Float32Array.from([4]))).toThrow(
      /part at 3 of 1 values, expected one at 2/,
    );
    const over = new SafetensorsWriter(file, plan);
    over.writePart('a', 0, Float32Array.from([1, 2]));
    expect(() => over.writePart('a', 2, Float32Array.from([3, 4, 5, 6]))).toThrow(
      /expected one at 2 within 5/,
    );
    expect(ls(dir)).toEqual([]); // both aborted
    const w = new SafetensorsWriter(file, plan, { dtype: 'BF16' });
    w.writePart('a', 0, Float32Array.from([1, 2]));
    w.writePart('a', 2, Float32Array.from([3, 4, 5]));
    w.write('b', Float32Array.from([8, 9]));
    w.finish();
    const back = readSafetensors(file).tensors;
    expect(Array.from(back.get('a')!.data)).toEqual([1, 2, 3, 4, 5]);
    expect(Array.from(back.get('b')!.data)).toEqual([8, 9]);
    expect(ls(dir)).toEqual(['p.safetensors']);
  });

  it('SafetensorsWriter writes parts asynchronously (F32) or at once (BF16), checked when called', async () => {
    const dir = tempDir();
    for (const dtype of ['F32', 'BF16'] as const) {
      const file = path.join(dir, `${dtype}.safetensors`);
      const w = new SafetensorsWriter(file, [{ name: 'a', shape: [4] }], { dtype });
      const first = w.writePartAsync('a', 0, Float32Array.from([1, 2]));
      expect(() => w.writePart('a', 3, Float32Array.from([4]))).toThrow(/expected one at 2/);
      // that refusal aborted the writer: the write already under way settles, nothing stays
      await first.catch(() => undefined);
      expect(ls(dir).filter((f) => f.startsWith(dtype))).toEqual([]);
      const w2 = new SafetensorsWriter(file, [{ name: 'a', shape: [4] }], { dtype });
      await Promise.all([
        w2.writePartAsync('a', 0, Float32Array.from([1, 2])),
        w2.writePartAsync('a', 2, Float32Array.from([3, 4])),
      ]);
      w2.finish();
      expect(Array.from(readSafetensors(file).tensors.get('a')!.data)).toEqual([1, 2, 3, 4]);
    }
  });

  it('SafetensorsWriter: missing tensor, wrong size, unknown name and abort leave nothing behind', () => {
    const dir = tempDir();
    const file = path.join(dir, 'w.safetensors');
    const plan = [
      { name: 'a', shape: [2] },
      { name: 'b', shape: [1] },
    ];
    const w1 = new SafetensorsWriter(file, plan);
    w1.write('a', Float32Array.from([1, 2]));
    expect(() => w1.finish()).toThrow(/w\.safetensors: tensor "b" was planned but never written/);
    expect(ls(dir)).toEqual([]);

    const w2 = new SafetensorsWriter(file, plan);
    expect(() => w2.write('a', Float32Array.from([1]))).toThrow(/tensor "a": 1 values for shape \[2\]/);
    expect(ls(dir)).toEqual([]);

    const w3 = new SafetensorsWriter(file, plan);
    expect(() => w3.write('zz', Float32Array.from([1]))).toThrow(/"zz" is not in the plan/);

    const w4 = new SafetensorsWriter(file, plan);
    w4.write('a', Float32Array.from([1, 2]));
    expect(ls(dir).length).toBe(1); // the temp file
    w4.abort();
    w4.abort();
    expect(ls(dir)).toEqual([]);
  });
});

describe('untrusted header validation', () => {
  const F32x2 = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
  const data8 = new Uint8Array(8);
  const cases: [string, Buffer, RegExp][] = [
    ['a file shorter than 8 bytes', Buffer.from([1, 2, 3]), /too short/],
    [
      'a header length over the limit',
      rawSafetensors('{}', new Uint8Array(0), 200_000_000n),
      /exceeds the limit/,
    ],
    [
      'a header length beyond the file',
      rawSafetensors('{}', new Uint8Array(0), 50n),
      /exceeds the 2 bytes.*truncated/,
    ],
    ['an empty header', rawSafetensors(''), /header is empty/],
    ['invalid UTF-8', rawSafetensors(Buffer.from([0x7b, 0xff, 0x7d])), /header is not valid UTF-8/],
    ['non-JSON', rawSafetensors('{"a": '), /not valid JSON/],
    ['a non-object header', rawSafetensors('[1,2]'), /header is an array, not a JSON object/],
    [
      'a non-string metadata value',
      rawSafetensors({ __metadata__: { n: 1 } }),
      /__metadata__ must map strings to strings \(key "n"/,
    ],
    ['non-object metadata', rawSafetensors({ __metadata__: 'x' }), /__metadata__ must be an object/],
    [
      'an unsupported dtype',
      rawSafetensors({ w: { ...F32x2, dtype: 'I64', data_offsets: [0, 16] } }, new Uint8Array(16)),
      /tensor "w": unsupported dtype "I64"/,
    ],
    [
      'a missing dtype',
      rawSafetensors({ w: { shape: [2], data_offsets: [0, 8] } }, data8),
      /tensor "w": dtype is missing/,
    ],
    [
      'a negative dimension',
      rawSafetensors({ w: { ...F32x2, shape: [-2] } }, data8),
      /tensor "w": shape \[-2\] has an invalid dimension/,
    ],
    [
      'a fractional dimension',
      rawSafetensors({ w: { ...F32x2, shape: [1.5] } }, data8),
      /tensor "w": shape .* invalid dimension/,
    ],
    [
      'a string dimension',
      rawSafetensors({ w: { ...F32x2, shape: ['2'] } }, data8),
      /tensor "w": shape .* invalid dimension string "2"/,
    ],
    [
      'an unsafe dimension',
      rawSafetensors('{"w":{"dtype":"F32","shape":[9007199254740993],"data_offsets":[0,8]}}', data8),
      /tensor "w": shape .* invalid dimension/,
    ],
    [
      'an overflowing shape',
      rawSafetensors({ w: { ...F32x2, shape: [2 ** 30, 2 ** 30, 2 ** 30] } }, data8),
      /tensor "w": shape .* too large/,
    ],
    [
      'missing data_offsets',
      rawSafetensors({ w: { dtype: 'F32', shape: [2] } }, data8),
      /tensor "w": data_offsets must be \[begin, end\]/,
    ],
    [
      'three data_offsets',
      rawSafetensors({ w: { ...F32x2, data_offsets: [0, 4, 8] } }, data8),
      /tensor "w": data_offsets must be/,
    ],
    [
      'a negative offset',
      rawSafetensors({ w: { ...F32x2, data_offsets: [-8, 0] } }, data8),
      /tensor "w": data_offsets begin -8/,
    ],
    [
      'begin > end',
      rawSafetensors({ w: { ...F32x2, shape: [0], data_offsets: [8, 0] } }, data8),
      /tensor "w": data_offsets \[8, 0\] has begin > end/,
    ],
    [
      'an end beyond the data',
      rawSafetensors({ w: { ...F32x2, data_offsets: [0, 16] } }, data8),
      /tensor "w": data_offsets end 16 is beyond the 8-byte data section/,
    ],
    [
      'a size not equal to shape × dtype',
      rawSafetensors({ w: { ...F32x2, shape: [3] } }, data8),
      /tensor "w": data_offsets \[0, 8\] span 8 bytes but shape \[3\] × F32 needs 12/,
    ],
    [
      'overlapping tensors',
      rawSafetensors({ a: F32x2, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, data8),
      /overlap/,
    ],
    [
      'a gap',
      rawSafetensors({ w: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, data8),
      /tensor "w": data_offsets begin 4 leaves a gap of 4 unindexed bytes/,
    ],
    [
      'trailing bytes',
      rawSafetensors({ w: F32x2 }, new Uint8Array(12)),
      /4 trailing bytes after the last tensor/,
    ],
    [
      'duplicate keys',
      rawSafetensors(`{"w":${JSON.stringify(F32x2)},"w":${JSON.stringify(F32x2)}}`, data8),
      /duplicate key "w"/,
    ],
    ['deep nesting', rawSafetensors('{"w":' + '['.repeat(5000) + ']'.repeat(5000) + '}'), /nesting too deep/],
  ];

  it.each(cases)('rejects %s with a UserError naming the file and problem', (_label, bytes, re) => {
    const dir = tempDir();
    const file = path.join(dir, 'bad.safetensors');
    fs.writeFileSync(file, bytes);
    let err: unknown;
    try {
      SafetensorsFile.open(file).close();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    const msg = (err as Error).message;
    expect(msg.startsWith(`${file}: `)).toBe(true);
    expect(msg).toMatch(re);
    expect(msg).not.toContain('\n');
  });

  it('names both tensors when they overlap', () => {
    const dir = tempDir();
    const file = path.join(dir, 'o.safetensors');
    fs.writeFileSync(
      file,
      rawSafetensors(
        {
          a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
          b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
        },
        new Uint8Array(8),
      ),
    );
    expect(() => SafetensorsFile.open(file)).toThrow(/tensor "b": data_offsets \[4, 8\] overlap tensor "a"/);
  });

  it('detects a truncated file', () => {
    const dir = tempDir();
    const file = path.join(dir, 'full.safetensors');
    writeSafetensors(file, [
      ['a', t([4], [1, 2, 3, 4])],
      ['b', t([4], [5, 6, 7, 8])],
    ]);
    const full = fs.readFileSync(file);
    fs.writeFileSync(file, full.subarray(0, full.length - 3));
    expect(() => SafetensorsFile.open(file)).toThrow(
      /full\.safetensors: tensor "b": data_offsets end 32 is beyond the 29-byte data section \(truncated file\?\)/,
    );
    fs.writeFileSync(file, full.subarray(0, 20));
    expect(() => SafetensorsFile.open(file)).toThrow(/truncated/);
  });

  it('accepts zero-size tensors sharing an offset, and a header padded with spaces', () => {
    const dir = tempDir();
    const file = path.join(dir, 'z.safetensors');
    const header = JSON.stringify({
      e1: { dtype: 'F16', shape: [0], data_offsets: [0, 0] },
      w: { dtype: 'BF16', shape: [1], data_offsets: [0, 2] },
      e2: { dtype: 'F32', shape: [2, 0], data_offsets: [2, 2] },
    });
    fs.writeFileSync(file, rawSafetensors(header + '    ', Uint8Array.from([0x80, 0x3f])));
    const { tensors } = readSafetensors(file);
    expect(Array.from(tensors.get('w')!.data)).toEqual([1]);
    expect(tensors.get('e2')!.shape).toEqual([2, 0]);
  });

  it('reports a missing file as a UserError', () => {
    const file = path.join(tempDir(), 'missing.safetensors');
    expect(() => SafetensorsFile.open(file)).toThrow(UserError);
    expect(() => SafetensorsFile.open(file)).toThrow(/missing\.safetensors: cannot open: not found/);
  });
});
