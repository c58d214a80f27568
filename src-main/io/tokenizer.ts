/**
 * Tokenizers: Hugging Face `tokenizer.json` through @huggingface/tokenizers (tokenizers.js),
 * and the byte-level tokenizer of the embedded models (id = UTF-8 byte value).
 *
 * The byte tokenizer is saved as a real HF tokenizer.json — a byte-level BPE whose 256-entry
 * vocab maps each GPT-2 byte-to-unicode character to its byte value and has no merges, so
 * HF `tokenizers`/transformers (and tokenizers.js) encode any text to exactly its UTF-8
 * bytes — plus a top-level `"upit": {"tokenizer": "byte", ...}` marker (HF ignores unknown
 * top-level keys) by which loadTokenizer recognises it. Its special ids (PAD 0, BOS 2,
 * EOS 3) are byte values and deliberately not declared as HF added tokens: an added token's
 * content is matched in raw text, which would break the byte identity.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Tokenizer as HfLibTokenizer } from '@huggingface/tokenizers';
import { fileError } from '../common/errors.js';
import { readJsonObject, writeFileAtomic } from './atomic.js';
import { isPlainObject } from './json-strict.js';

export interface Tokenizer {
  readonly kind: 'byte' | 'hf';
  /** 1 + the largest token id. */
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number;
  /** Token ids of `text`; BOS is prepended only when `addBos` is true (and a BOS exists). */
  encode(text: string, opts?: { addBos?: boolean }): number[];
  /** Text of `ids`, special tokens dropped. Throws RangeError on an id outside the vocab. */
  decode(ids: readonly number[]): string;
  /** The tokenizer.json content to save. */
  toJSON(): unknown;
}

/**
 * Whether text fed to a model starts with BOS: for HF tokenizers that have one (as their models
 * were trained), never for the byte tokenizer (its models are trained on documents separated by
 * EOS only). Pre-training, instruction tuning, routing and evaluation all follow this rule.
 */
export function addsBos(tok: Tokenizer): boolean {
  return tok.kind === 'hf' && tok.bosId !== null;
}

export const TOKENIZER_FILE = 'tokenizer.json';
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';

// ---------------------------------------------------------------------------------------------
// Byte tokenizer

const BYTE_PAD = 0;
const BYTE_BOS = 2; // STX
const BYTE_EOS = 3; // ETX
const BYTE_MARKER = {
  tokenizer: 'byte',
  version: 1,
  pad_id: BYTE_PAD,
  bos_id: BYTE_BOS,
  eos_id: BYTE_EOS,
} as const;

/** GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 onwards. */
export function byteLevelAlphabet(): string[] {
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) out.push(String.fromCodePoint(printable(b) ? b : next++));
  return out;
}

/** HF's ByteLevel pre-tokenizer/decoder without its own regex (text is split before it, if at all). */
export const BYTE_LEVEL_STEP = {
  type: 'ByteLevel',
  add_prefix_space: false,
  trim_offsets: false,
  use_regex: false,
} as const;

/** A tokenizer.json `model` section: byte-level BPE over `vocab` with `merges` ("a b", by rank). */
export function bpeModelJson(
  vocab: Record<string, number>,
  merges: readonly string[],
): Record<string, unknown> {
  return {
    type: 'BPE',
    dropout: null,
    unk_token: null,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: false,
    byte_fallback: false,
    ignore_merges: false,
    vocab,
    merges: [...merges],
  };
}

function byteTokenizerJson(): Record<string, unknown> {
  const vocab = Object.fromEntries(byteLevelAlphabet().map((ch, b) => [ch, b]));
  const byteLevel = BYTE_LEVEL_STEP;
  return {
    version: '1.0',
    upit: { ...BYTE_MARKER },
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: byteLevel,
    model: bpeModelJson(vocab, []),
  };
}

/** The embedded models' tokenizer: vocab 256, id = UTF-8 byte; PAD 0, BOS 2 (STX), EOS 3 (ETX). */
export class ByteTokenizer implements Tokenizer {
  readonly kind = 'byte' as const;
  readonly vocabSize = 256;
  readonly bosId = BYTE_BOS;
  readonly eosId = BYTE_EOS;
  readonly padId = BYTE_PAD;
  private readonly decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

  encode(text: string, opts: { addBos?: boolean } = {}): number[] {
    const bytes = Buffer.from(text, 'utf8');
    const ids: number[] = opts.addBos ? [BYTE_BOS] : [];
    for (const b of bytes) ids.push(b);
    return ids;
  }

  /** Drops PAD/BOS/EOS; invalid UTF-8 becomes U+FFFD. */
  decode(ids: readonly number[]): string {
    const bytes = new Uint8Array(ids.length);
    let n = 0;
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id > 255)
        throw new RangeError(`byte tokenizer: token id ${id} out of range 0..255`);
      if (id !== BYTE_PAD && id !== BYTE_BOS && id !== BYTE_EOS) bytes[n++] = id;
    }
    return this.decoder.decode(bytes.subarray(0, n));
  }

  toJSON(): unknown {
    return byteTokenizerJson();
  }
}

function checkByteTokenizerJson(file: string, json: Record<string, unknown>): void {
  const marker = json.upit;
  const bad = (what: string) => fileError(file, `marked as the UpIT byte tokenizer but ${what}`);
  if (!isPlainObject(marker) || marker.version !== 1) throw bad(`"upit.version" is not 1`);
  for (const k of ['pad_id', 'bos_id', 'eos_id'] as const) {
    if (marker[k] !== BYTE_MARKER[k])
      throw bad(`"upit.${k}" is ${JSON.stringify(marker[k])}, expected ${BYTE_MARKER[k]}`);
  }
  const model = json.model;
  if (!isPlainObject(model) || model.type !== 'BPE' || !isPlainObject(model.vocab))
    throw bad('"model" is not a BPE model');
  if (!Array.isArray(model.merges) || model.merges.length !== 0) throw bad('"model.merges" is not empty');
  const vocab = model.vocab;
  const alphabet = byteLevelAlphabet();
  if (Object.keys(vocab).length !== 256)
    throw bad(`the vocab has ${Object.keys(vocab).length} entries, not 256`);
  alphabet.forEach((ch, b) => {
    if (vocab[ch] !== b) throw bad(`the vocab does not map byte ${b} to id ${b}`);
  });
}

// ---------------------------------------------------------------------------------------------
// Hugging Face tokenizer

function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (isPlainObject(v) && typeof v.content === 'string') return v.content;
  return null;
}

const WELL_KNOWN = {
  bos: ['<|begin_of_text|>', '<s>', '<bos>', '<|startoftext|>'],
  eos: ['<|end_of_text|>', '</s>', '<eos>', '<|endoftext|>'],
  pad: ['<pad>', '<|pad|>', '<|finetune_right_pad_id|>'],
};

/** A tokenizer.json loaded through tokenizers.js. */
export class HfTokenizer implements Tokenizer {
  readonly kind = 'hf' as const;
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number;
  private readonly lib: HfLibTokenizer;
  private readonly cleanUpSpaces: boolean;

  /**
   * @param json tokenizer.json content
   * @param config tokenizer_config.json content (bos/eos/pad tokens, clean-up), or null
   * @param source file named in errors
   */
  constructor(
    private readonly json: Record<string, unknown>,
    readonly config: Record<string, unknown> | null,
    source = TOKENIZER_FILE,
  ) {
    try {
      this.lib = new HfLibTokenizer(json, config ?? {});
    } catch (e) {
      throw fileError(source, `unsupported or malformed tokenizer: ${(e as Error).message}`);
    }
    let max = -1;
    for (const id of this.lib.get_vocab(true).values()) if (id > max) max = id;
    if (max < 0) throw fileError(source, 'the tokenizer has an empty vocab');
    this.vocabSize = max + 1;
    const addedSpecial = new Set<string>();
    if (Array.isArray(json.added_tokens)) {
      for (const t of json.added_tokens)
        if (isPlainObject(t) && t.special === true && typeof t.content === 'string')
          addedSpecial.add(t.content);
    }
    const resolve = (key: 'bos' | 'eos' | 'pad'): number | null => {
      const k = `${key}_token`;
      if (config && k in config) {
        const c = tokenContent(config[k]);
        return c === null ? null : (this.lib.token_to_id(c) ?? null);
      }
      for (const c of WELL_KNOWN[key]) if (addedSpecial.has(c)) return this.lib.token_to_id(c) ?? null;
      return null;
    };
    this.bosId = resolve('bos');
    this.eosId = resolve('eos');
    this.padId = resolve('pad') ?? this.eosId ?? 0;
    this.cleanUpSpaces = config?.clean_up_tokenization_spaces === true;
  }

  encode(text: string, opts: { addBos?: boolean } = {}): number[] {
    const ids = this.lib.encode(text, { add_special_tokens: false }).ids;
    return opts.addBos && this.bosId !== null ? [this.bosId, ...ids] : ids;
  }

  decode(ids: readonly number[]): string {
    if (ids.length === 0) return '';
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new RangeError(`tokenizer: token id ${id} out of range 0..${this.vocabSize - 1}`);
      }
    }
    return this.lib.decode([...ids], {
      skip_special_tokens: true,
      clean_up_tokenization_spaces: this.cleanUpSpaces,
    });
  }

  toJSON(): unknown {
    return this.json;
  }
}

// ---------------------------------------------------------------------------------------------
// Files

/**
 * Load `dir/tokenizer.json` (and `dir/tokenizer_config.json` where present). Our byte
 * tokenizer is recognised by its `upit` marker; anything else goes through tokenizers.js.
 */
export function loadTokenizer(dir: string): Tokenizer {
  const file = path.join(dir, TOKENIZER_FILE);
  const json = readJsonObject(file);
  if (isPlainObject(json.upit) && json.upit.tokenizer === 'byte') {
    checkByteTokenizerJson(file, json);
    return new ByteTokenizer();
  }
  const configFile = path.join(dir, TOKENIZER_CONFIG_FILE);
  const config = fs.existsSync(configFile) ? readJsonObject(configFile) : null;
  return new HfTokenizer(json, config, file);
}

/** tokenizer_config.json for the byte tokenizer: no bos/eos (see the module comment). */
const BYTE_TOKENIZER_CONFIG = {
  tokenizer_class: 'PreTrainedTokenizerFast',
  clean_up_tokenization_spaces: false,
  model_input_names: ['input_ids', 'attention_mask'],
};

/** The tokenizer_config.json content saved beside `tok`'s tokenizer.json, or null for none. */
export function tokenizerConfigJson(tok: Tokenizer): Record<string, unknown> | null {
  return tok instanceof ByteTokenizer
    ? BYTE_TOKENIZER_CONFIG
    : tok instanceof HfTokenizer
      ? tok.config
      : null;
}

/** Write `dir/tokenizer.json` (and tokenizer_config.json when there is one), atomically. */
export function saveTokenizer(dir: string, tok: Tokenizer): void {
  fs.mkdirSync(dir, { recursive: true });
  writeFileAtomic(path.join(dir, TOKENIZER_FILE), JSON.stringify(tok.toJSON(), null, 2) + '\n');
  const config = tokenizerConfigJson(tok);
  if (config) writeFileAtomic(path.join(dir, TOKENIZER_CONFIG_FILE), JSON.stringify(config, null, 2) + '\n');
}
