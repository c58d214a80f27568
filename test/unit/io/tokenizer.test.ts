import fs from 'node:fs';
import path from 'node:path';
import { Tokenizer as HfLibTokenizer } from '@huggingface/tokenizers';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src-main/common/errors.js';
import {
  ByteTokenizer,
  HfTokenizer,
  addsBos,
  loadTokenizer,
  saveTokenizer,
} from '../../../src-main/io/tokenizer.js';
import { FIXTURES, ls, tempDir } from './helpers.js';

const TINY_BPE = path.join(FIXTURES, 'tiny-bpe');
const SAMPLE = 'héllo wörld — 日本語 😀\n\ttabs  and spaces \u00a0 ÿĀ\ufeff';

describe('ByteTokenizer', () => {
  const tok = new ByteTokenizer();

  it('encodes to UTF-8 byte values and back, multibyte included', () => {
    expect(tok.kind).toBe('byte');
    expect([tok.vocabSize, tok.padId, tok.bosId, tok.eosId]).toEqual([256, 0, 2, 3]);
    const ids = tok.encode(SAMPLE);
    expect(ids).toEqual([...Buffer.from(SAMPLE, 'utf8')]);
    expect(tok.encode('é😀')).toEqual([0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80]);
    expect(tok.decode(ids)).toBe(SAMPLE);
    expect(tok.encode('\ufeffx')).toEqual([0xef, 0xbb, 0xbf, 0x78]);
    expect(tok.decode([0xef, 0xbb, 0xbf, 0x78])).toBe('\ufeffx'); // a leading BOM char is kept
  });

  it('adds BOS only when asked, drops specials and replaces invalid UTF-8 when decoding', () => {
    expect(tok.encode('A', { addBos: true })).toEqual([2, 65]);
    expect(tok.encode('A')).toEqual([65]);
    expect(tok.decode([2, 72, 105, 3, 0, 0])).toBe('Hi');
    expect(tok.decode([0xff, 0x41])).toBe('\ufffdA');
    expect(tok.decode([0xe6, 0x97])).toBe('\ufffd'); // truncated 3-byte sequence
    expect(tok.decode([])).toBe('');
    expect(() => tok.decode([256])).toThrow(RangeError);
    expect(() => tok.decode([1.5])).toThrow(RangeError);
  });

  it('saves as a real HF byte-level tokenizer.json (tokenizers.js encodes to the same ids)', () => {
    const dir = tempDir();
    saveTokenizer(dir, tok);
    expect(ls(dir)).toEqual(['tokenizer.json', 'tokenizer_config.json']);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(json.upit).toEqual({ tokenizer: 'byte', version: 1, pad_id: 0, bos_id: 2, eos_id: 3 });
    const lib = new HfLibTokenizer(json, {});
    expect(lib.encode(SAMPLE, { add_special_tokens: false }).ids).toEqual(tok.encode(SAMPLE));
    expect(lib.decode(tok.encode(SAMPLE))).toBe(SAMPLE);

    const back = loadTokenizer(dir);
    expect(back).toBeInstanceOf(ByteTokenizer);
    expect(back.encode(SAMPLE, { addBos: true })).toEqual(tok.encode(SAMPLE, { addBos: true }));
  });

  it('rejects a tampered byte tokenizer.json', () => {
    const dir = tempDir();
    saveTokenizer(dir, tok);
    const file = path.join(dir, 'tokenizer.json');
    const json = JSON.parse(fs.readFileSync(file, 'utf8')) as { model: { vocab: Record<string, number> } };
    json.model.vocab['A'] = 66;
    fs.writeFileSync(file, JSON.stringify(json));
    expect(() => loadTokenizer(dir)).toThrow(UserError);
    expect(() => loadTokenizer(dir)).toThrow(
      /tokenizer\.json: marked as the UpIT byte tokenizer but the vocab does not map byte 65/,
    );
  });
});

describe('HF tokenizer (tokenizers.js)', () => {
  // tiny byte-level BPE: ids 0..255 are the byte alphabet, merges give he=256 ll=257
  // hell=258 hello=259 Ġw=260 or=261 Ġwor=262 ld=263 Ġworld=264; <s>=265 </s>=266 <pad>=267
  const tok = loadTokenizer(TINY_BPE);

  it('encodes to the expected ids', () => {
    expect(tok.kind).toBe('hf');
    expect(tok.vocabSize).toBe(268);
    expect(tok.bosId).toBe(265);
    expect(tok.eosId).toBe(266); // given as an AddedToken object in tokenizer_config.json
    expect(tok.padId).toBe(266); // pad_token null → falls back to EOS
    expect(tok.encode('hello world')).toEqual([259, 264]);
    expect(tok.encode('hello world', { addBos: true })).toEqual([265, 259, 264]);
    expect(tok.encode('hello world!')).toEqual([259, 264, 33]);
    expect(tok.encode('held')).toEqual([256, 263]);
    expect(tok.encode('é')).toEqual([195, 169]);
    expect(tok.encode(' hello  world')).toEqual([32, 259, 32, 264]);
    expect(tok.encode('<s>hello')).toEqual([265, 259]);
  });

  it('decodes, dropping special tokens', () => {
    expect(tok.decode([265, 259, 264, 266])).toBe('hello world');
    expect(tok.decode(tok.encode(' hello  world, é!'))).toBe(' hello  world, é!');
    expect(tok.decode([])).toBe('');
    expect(() => tok.decode([268])).toThrow(RangeError);
  });

  it('without tokenizer_config.json, finds specials by their well-known names', () => {
    const json = JSON.parse(fs.readFileSync(path.join(TINY_BPE, 'tokenizer.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const t = new HfTokenizer(json, null);
    expect([t.bosId, t.eosId, t.padId]).toEqual([265, 266, 267]);
  });

  it('text starts with BOS for an HF tokenizer that has one, never for the byte tokenizer', () => {
    expect(addsBos(tok)).toBe(true);
    expect(addsBos(new ByteTokenizer())).toBe(false);
    const json = JSON.parse(fs.readFileSync(path.join(TINY_BPE, 'tokenizer.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(addsBos(new HfTokenizer(json, { bos_token: null }))).toBe(false);
  });

  it('saves and loads back the same tokenizer', () => {
    const dir = tempDir();
    saveTokenizer(dir, tok);
    expect(ls(dir)).toEqual(['tokenizer.json', 'tokenizer_config.json']);
    const back = loadTokenizer(dir);
    expect(back.toJSON()).toEqual(tok.toJSON());
    expect([back.bosId, back.eosId, back.padId]).toEqual([265, 266, 266]);
    expect(back.encode('hello world', { addBos: true })).toEqual([265, 259, 264]);
  });

  it('names the file for a missing or malformed tokenizer', () => {
    const dir = tempDir();
    const file = path.join(dir, 'tokenizer.json');
    expect(() => loadTokenizer(dir)).toThrow(UserError);
    expect(() => loadTokenizer(dir)).toThrow(`${file}: cannot read: not found`);
    fs.writeFileSync(file, '{"model": ');
    expect(() => loadTokenizer(dir)).toThrow(`${file}: invalid JSON`);
    fs.writeFileSync(file, '[]');
    expect(() => loadTokenizer(dir)).toThrow(`${file}: not a JSON object`);
    fs.writeFileSync(file, '{"version": "1.0"}');
    expect(() => loadTokenizer(dir)).toThrow(
      new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: unsupported or malformed tokenizer`),
    );
    fs.copyFileSync(path.join(TINY_BPE, 'tokenizer.json'), file);
    fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), '{bad');
    expect(() => loadTokenizer(dir)).toThrow(`${path.join(dir, 'tokenizer_config.json')}: invalid JSON`);
  });
});
