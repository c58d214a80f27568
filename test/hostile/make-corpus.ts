/**
 * The hostile-input corpus: malformed safetensors, model directories (config.json, weights,
 * tokenizer.json, shard index), instruction and evaluation JSONL, and plan files — each with the
 * one-line error it must produce. Deterministic: the same bytes on every run (no randomness, no
 * clock), so a failing case reproduces exactly.
 *
 * The tests build the corpus in a temporary directory (`writeCorpus`); to look at the files:
 *
 *   npx tsx test/hostile/make-corpus.ts /tmp/hostile     # writes /tmp/hostile/<case>/…
 *
 * Layout of a case directory:
 *   target 'model'        a model directory: config.json, model.safetensors (or shards), tokenizer.json?
 *                         — every safetensors case is one too, so the CLI can be pointed at it
 *   target 'instruction'  data.jsonl (instruction JSONL) — good-eval.jsonl beside it for `upit prepare`
 *   target 'eval'         data.jsonl (evaluation JSONL)
 *   target 'plan'         plan.yaml (or plan.json)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type HostileTarget = 'model' | 'instruction' | 'eval' | 'plan';

export interface HostileCase {
  /** Directory name of the case (unique). */
  name: string;
  target: HostileTarget;
  /** Also a malformed safetensors file: `SafetensorsFile.open(<case>/model.safetensors)` must refuse it. */
  safetensors?: boolean;
  /** Files of the case directory. */
  files: Record<string, string | Uint8Array>;
  /** What the one-line error must say (besides naming the file). */
  expect: RegExp;
  /** The file the error must name (relative to the case directory; default: the target's main file). */
  names?: string;
}

// ---- a valid tiny Llama ------------------------------------------------------------------------

/** vocab 16, d 8, 1 layer, 2 heads over 1 KV head (GQA), FFN 16, untied head. */
export const GOOD_CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: 16,
  hidden_size: 8,
  intermediate_size: 16,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  hidden_act: 'silu',
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  max_position_embeddings: 64,
  tie_word_embeddings: false,
  bos_token_id: 2,
  eos_token_id: 3,
  pad_token_id: 0,
};

interface T {
  name: string;
  shape: number[];
  dtype?: 'F32' | 'F16';
}

/** The tiny model's tensors in HF order. */
export function goodTensors(): T[] {
  const d = 8;
  const f = 16;
  const v = 16;
  const l = 'model.layers.0';
  return [
    { name: 'model.embed_tokens.weight', shape: [v, d] },
    { name: `${l}.input_layernorm.weight`, shape: [d] },
    { name: `${l}.self_attn.q_proj.weight`, shape: [d, d] },
    { name: `${l}.self_attn.k_proj.weight`, shape: [4, d] },
    { name: `${l}.self_attn.v_proj.weight`, shape: [4, d] },
    { name: `${l}.self_attn.o_proj.weight`, shape: [d, d] },
    { name: `${l}.post_attention_layernorm.weight`, shape: [d] },
    { name: `${l}.mlp.gate_proj.weight`, shape: [f, d] },
    { name: `${l}.mlp.up_proj.weight`, shape: [f, d] },
    { name: `${l}.mlp.down_proj.weight`, shape: [d, f] },
    { name: 'model.norm.weight', shape: [d] },
    { name: 'lm_head.weight', shape: [v, d] },
  ];
}

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Deterministic small weights: norms 1, the rest 0.1·sin(k·i + k). */
function values(t: T, k: number): Float32Array {
  const out = new Float32Array(numel(t.shape));
  const norm = t.name.endsWith('norm.weight');
  for (let i = 0; i < out.length; i++) out[i] = norm ? 1 : 0.1 * Math.sin((k + 1) * (i + 1));
  return out;
}

function f32ToF16(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  if (x === Infinity) return 0x7c00;
  if (x === -Infinity) return 0xfc00;
  // the corpus only needs small normal values: exact enough for a test fixture
  const f = new Float32Array([x]);
  const b = new Uint32Array(f.buffer)[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = ((b >>> 23) & 0xff) - 127 + 15;
  if (exp <= 0) return sign;
  return sign | (exp << 10) | ((b >>> 13) & 0x3ff);
}

/** A safetensors file: 8-byte length, header JSON (given as text to allow any malformation), data. */
export function safetensorsBytes(header: string, data: Uint8Array, headerLen?: bigint): Uint8Array {
  const h = Buffer.from(header, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLen ?? BigInt(h.length));
  return new Uint8Array(Buffer.concat([len, h, Buffer.from(data)]));
}

/** A well-formed safetensors file of `tensors`; `patch` may change a tensor's values first. */
export function buildSafetensors(
  tensors: readonly T[],
  patch?: (name: string, data: Float32Array) => void,
): { bytes: Uint8Array; header: Record<string, unknown>; data: Uint8Array } {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const parts: Buffer[] = [];
  let pos = 0;
  tensors.forEach((t, k) => {
    const v = values(t, k);
    patch?.(t.name, v);
    let buf: Buffer;
    if (t.dtype === 'F16') {
      buf = Buffer.alloc(v.length * 2);
      v.forEach((x, i) => buf.writeUInt16LE(f32ToF16(x), i * 2));
    } else {
      buf = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    }
    header[t.name] = { dtype: t.dtype ?? 'F32', shape: t.shape, data_offsets: [pos, pos + buf.length] };
    parts.push(buf);
    pos += buf.length;
  });
  const data = new Uint8Array(Buffer.concat(parts));
  return { bytes: safetensorsBytes(JSON.stringify(header), data), header, data };
}

const json = (v: unknown): string => JSON.stringify(v, null, 2) + '\n';

/** A model directory: the good config unless overridden, weights from `weights`. */
function modelDir(
  weights: Uint8Array | null,
  opts: { config?: string; tokenizer?: string; extra?: Record<string, string | Uint8Array> } = {},
): Record<string, string | Uint8Array> {
  const files: Record<string, string | Uint8Array> = { 'config.json': opts.config ?? json(GOOD_CONFIG) };
  if (weights) files['model.safetensors'] = weights;
  if (opts.tokenizer !== undefined) files['tokenizer.json'] = opts.tokenizer;
  return { ...files, ...opts.extra };
}

/** The good model with its header edited (as an object) and its data section as given. */
function edited(edit: (h: Record<string, Record<string, unknown>>) => void, data?: Uint8Array): Uint8Array {
  const good = buildSafetensors(goodTensors());
  const h = JSON.parse(JSON.stringify(good.header)) as Record<string, Record<string, unknown>>;
  edit(h);
  return safetensorsBytes(JSON.stringify(h), data ?? good.data);
}

const Q = 'model.layers.0.self_attn.q_proj.weight';
const K = 'model.layers.0.self_attn.k_proj.weight';
const UP = 'model.layers.0.mlp.up_proj.weight';

function safetensorsCases(): HostileCase[] {
  const good = buildSafetensors(goodTensors());
  const st = (name: string, bytes: Uint8Array, expect: RegExp): HostileCase => ({
    name: `st-${name}`,
    target: 'model',
    safetensors: true,
    files: modelDir(bytes),
    expect,
    names: 'model.safetensors',
  });
  const header = (text: string) => safetensorsBytes(text, new Uint8Array(0));
  return [
    st('too-short', new Uint8Array([1, 2, 3, 4, 5]), /too short to be a safetensors file \(5 bytes/),
    st(
      'truncated-header',
      good.bytes.subarray(0, 40),
      /header length \d+ exceeds the 32 bytes after the length \(truncated file\?\)/,
    ),
    st(
      'truncated-data',
      good.bytes.subarray(0, good.bytes.length - 10),
      /tensor "lm_head\.weight": data_offsets end \d+ is beyond the \d+-byte data section \(truncated file\?\)/,
    ),
    st(
      'header-over-bound',
      safetensorsBytes('{}', new Uint8Array(0), 100_000_001n),
      /header length 100000001 exceeds the limit of 100000000 bytes/,
    ),
    st(
      'header-len-u64-max',
      safetensorsBytes('{}', new Uint8Array(0), 0xffff_ffff_ffff_ffffn),
      /header length 18446744073709551615 exceeds the limit/,
    ),
    st('header-empty', safetensorsBytes('', new Uint8Array(8)), /header is empty/),
    st('header-not-json', header('{"a": [1, 2'), /header is not valid JSON/),
    st(
      'header-not-utf8',
      safetensorsBytes('\u0000', new Uint8Array(0)).map((b, i) => (i === 8 ? 0xff : b)),
      /header is not valid UTF-8/,
    ),
    st('header-array', header('[1, 2]'), /header is an array, not a JSON object/),
    st(
      'header-duplicate-key',
      header('{"a": {"dtype": "F32", "shape": [], "data_offsets": [0, 0]}, "a": 1}'),
      /header is not valid JSON: duplicate key "a"/,
    ),
    st('header-deep-nesting', header('{"a": ' + '['.repeat(40) + ']'.repeat(40) + '}'), /nesting too deep/),
    st(
      'offsets-past-end',
      edited((h) => (h[Q]!.data_offsets = [4000, 4256])),
      new RegExp(
        `tensor "${Q.replace(/\./g, '\\.')}": data_offsets end 4256 is beyond the 3424-byte data section`,
      ),
    ),
    st(
      'overlapping',
      edited((h) => {
        const k = h[K]!.data_offsets as number[];
        h[K]!.data_offsets = [k[0]! - 16, k[1]! - 16];
      }),
      /data_offsets \[\d+, \d+\] overlap tensor "model\.layers\.0\.self_attn\.q_proj\.weight"/,
    ),
    st(
      'gap',
      edited(
        (h) => {
          for (const e of Object.values(h))
            if (Array.isArray(e.data_offsets)) e.data_offsets = e.data_offsets.map((x: number) => x + 4);
        },
        new Uint8Array(Buffer.concat([Buffer.alloc(4), Buffer.from(good.data)])),
      ),
      /data_offsets begin 4 leaves a gap of 4 unindexed bytes after the header/,
    ),
    st(
      'trailing-bytes',
      safetensorsBytes(
        JSON.stringify(good.header),
        new Uint8Array(Buffer.concat([Buffer.from(good.data), Buffer.alloc(3)])),
      ),
      /3 trailing bytes after the last tensor are not indexed by the header/,
    ),
    st(
      'begin-after-end',
      edited((h) => (h[Q]!.data_offsets = [300, 200])),
      /data_offsets \[300, 200\] has begin > end/,
    ),
    st(
      'dtype-unsupported',
      edited((h) => (h[Q]!.dtype = 'I64')),
      /unsupported dtype "I64" \(supported: F32, F16, BF16\)/,
    ),
    st(
      'dtype-missing',
      edited((h) => delete h[Q]!.dtype),
      /dtype is missing/,
    ),
    st(
      'dtype-shape-mismatch',
      edited((h) => (h[Q]!.dtype = 'F16')),
      /data_offsets \[\d+, \d+\] span 256 bytes but shape \[8, 8\] × F16 needs 128/,
    ),
    st(
      'shape-size-mismatch',
      edited((h) => (h[Q]!.shape = [8, 9])),
      /span 256 bytes but shape \[8, 9\] × F32 needs 288/,
    ),
    st(
      'shape-negative',
      edited((h) => (h[Q]!.shape = [-8, -8])),
      /has an invalid dimension number -8/,
    ),
    st(
      'shape-fraction',
      edited((h) => (h[Q]!.shape = [8, 8.5])),
      /has an invalid dimension number 8\.5/,
    ),
    st(
      'shape-string',
      edited((h) => (h[Q]!.shape = '8x8')),
      /shape is string "8x8", not an array/,
    ),
    st(
      'shape-overflow',
      edited((h) => (h[Q]!.shape = [2 ** 30, 2 ** 30, 2 ** 30])),
      /shape \[1073741824, 1073741824, 1073741824\] is too large/,
    ),
    st(
      'offsets-not-pair',
      edited((h) => (h[Q]!.data_offsets = [0])),
      /data_offsets must be \[begin, end\], not \[0\]/,
    ),
    st(
      'offsets-negative',
      edited((h) => (h[Q]!.data_offsets = [-256, 0])),
      /data_offsets begin -256 is not a non-negative integer/,
    ),
    st(
      'offsets-string',
      edited((h) => (h[Q]!.data_offsets = ['0', '256'])),
      /data_offsets begin "0" is not a non-negative integer/,
    ),
    st(
      'metadata-not-strings',
      edited((h) => (h.__metadata__ = { format: 'pt', step: 3 })),
      /__metadata__ must map strings to strings \(key "step" is number 3\)/,
    ),
    st(
      'entry-not-object',
      edited((h) => ((h as Record<string, unknown>)[Q] = [1, 2])),
      /entry is an array, not an object/,
    ),
  ];
}

// ---- model directories: weights that parse but do not fit, config.json, tokenizer.json, index ----

function modelCases(): HostileCase[] {
  const m = (
    name: string,
    files: Record<string, string | Uint8Array>,
    expect: RegExp,
    names: string,
  ): HostileCase => ({ name, target: 'model', files, expect, names });
  const good = buildSafetensors(goodTensors()).bytes;
  const cfg = (edit: (c: Record<string, unknown>) => void): string => {
    const c: Record<string, unknown> = JSON.parse(JSON.stringify(GOOD_CONFIG)) as Record<string, unknown>;
    edit(c);
    return json(c);
  };
  const withTensors = (list: T[], patch?: (name: string, d: Float32Array) => void) =>
    buildSafetensors(list, patch).bytes;
  return [
    m(
      'weights-nan',
      modelDir(withTensors(goodTensors(), (n, d) => n === Q && (d[5] = NaN))),
      new RegExp(`tensor ${Q.replace(/\./g, '\\.')} contains NaN \\(element 5\\)`),
      'model.safetensors',
    ),
    m(
      'weights-inf',
      modelDir(withTensors(goodTensors(), (n, d) => n === 'model.embed_tokens.weight' && (d[0] = -Infinity))),
      /tensor model\.embed_tokens\.weight contains Inf \(element 0\)/,
      'model.safetensors',
    ),
    m(
      'weights-f16-inf',
      modelDir(
        withTensors(
          goodTensors().map((t) => (t.name === UP ? { ...t, dtype: 'F16' as const } : t)),
          (n, d) => n === UP && (d[17] = Infinity),
        ),
      ),
      /tensor model\.layers\.0\.mlp\.up_proj\.weight contains Inf \(element 17\)/,
      'model.safetensors',
    ),
    m(
      'weights-shape-vs-config',
      modelDir(withTensors(goodTensors().map((t) => (t.name === UP ? { ...t, shape: [12, 8] } : t)))),
      /tensor model\.layers\.0\.mlp\.up_proj\.weight has shape \[12, 8\], expected \[16, 8\]/,
      'model.safetensors',
    ),
    m(
      'weights-missing-tensor',
      modelDir(withTensors(goodTensors().filter((t) => t.name !== 'model.norm.weight'))),
      /missing tensor model\.norm\.weight \(shape \[8\]\)/,
      '',
    ),
    m(
      'weights-unexpected-tensor',
      modelDir(withTensors([...goodTensors(), { name: 'model.layers.0.mlp.extra.weight', shape: [2] }])),
      /unexpected tensor model\.layers\.0\.mlp\.extra\.weight \(not part of a LlamaForCausalLM with this config\)/,
      'model.safetensors',
    ),
    m('weights-missing', modelDir(null), /no model\.safetensors or model\.safetensors\.index\.json/, ''),
    m(
      'index-shard-escapes',
      modelDir(null, {
        extra: {
          'model.safetensors.index.json': json({
            metadata: { total_size: 1 },
            weight_map: { 'model.embed_tokens.weight': '../outside.safetensors' },
          }),
        },
      }),
      /weight_map\["model\.embed_tokens\.weight"\]: shard "\.\.\/outside\.safetensors" is not a plain file name/,
      'model.safetensors.index.json',
    ),
    m(
      'index-shard-absolute',
      modelDir(null, {
        extra: {
          'model.safetensors.index.json': json({ weight_map: { 'model.norm.weight': '/etc/passwd' } }),
        },
      }),
      /shard "\/etc\/passwd" is not a plain file name/,
      'model.safetensors.index.json',
    ),
    m(
      'index-not-json',
      modelDir(null, { extra: { 'model.safetensors.index.json': '{"weight_map": {' } }),
      /invalid JSON/,
      'model.safetensors.index.json',
    ),
    m(
      'index-missing-shard',
      modelDir(null, {
        extra: {
          'model.safetensors.index.json': json({
            weight_map: { 'model.norm.weight': 'model-00001-of-00002.safetensors' },
          }),
        },
      }),
      /shard "model-00001-of-00002\.safetensors" \(holding "model\.norm\.weight"\) not found/,
      'model.safetensors.index.json',
    ),
    m('config-missing', { 'model.safetensors': good }, /cannot read: not found/, 'config.json'),
    m('config-not-json', modelDir(good, { config: '{"vocab_size": 16,' }), /invalid JSON/, 'config.json'),
    m('config-array', modelDir(good, { config: '[16, 8]' }), /not a JSON object/, 'config.json'),
    m(
      'config-missing-field',
      modelDir(good, { config: cfg((c) => delete c.vocab_size) }),
      /vocab_size: is required/,
      'config.json',
    ),
    m(
      'config-wrong-type',
      modelDir(good, { config: cfg((c) => (c.hidden_size = '8')) }),
      /hidden_size: must be an integer, got "8"/,
      'config.json',
    ),
    m(
      'config-float-layers',
      modelDir(good, { config: cfg((c) => (c.num_hidden_layers = 1.5)) }),
      /num_hidden_layers: must be an integer, got 1\.5/,
      'config.json',
    ),
    m(
      'config-unsupported-architecture',
      modelDir(good, { config: cfg((c) => (c.architectures = ['MistralForCausalLM'])) }),
      /architectures: unsupported architecture \["MistralForCausalLM"\] \(only LlamaForCausalLM is supported\)/,
      'config.json',
    ),
    m(
      'config-unsupported-model-type',
      modelDir(good, { config: cfg((c) => (c.model_type = 'gpt2')) }),
      /model_type: unsupported model type "gpt2"/,
      'config.json',
    ),
    m(
      'config-bad-activation',
      modelDir(good, { config: cfg((c) => (c.hidden_act = 'gelu')) }),
      /hidden_act: unsupported activation "gelu"/,
      'config.json',
    ),
    m(
      'config-negative-eps',
      modelDir(good, { config: cfg((c) => (c.rms_norm_eps = -1)) }),
      /rms_norm_eps: must be a positive number, got -1/,
      'config.json',
    ),
    m(
      'config-kv-heads',
      modelDir(good, { config: cfg((c) => (c.num_key_value_heads = 3)) }),
      /num_key_value_heads: 3 must divide num_attention_heads 2/,
      'config.json',
    ),
    m(
      'config-eos-out-of-vocab',
      modelDir(good, { config: cfg((c) => (c.eos_token_id = 99)) }),
      /eos_token_id: must be a token id in \[0, 16\), got 99/,
      'config.json',
    ),
    m(
      'config-mixtral-sliding-window',
      modelDir(good, {
        config: cfg((c) => {
          c.architectures = ['MixtralForCausalLM'];
          c.model_type = 'mixtral';
          c.num_local_experts = 2;
          c.num_experts_per_tok = 1;
          c.sliding_window = 4096;
        }),
      }),
      /sliding_window: sliding-window attention is not supported/,
      'config.json',
    ),
    m('tokenizer-not-json', modelDir(good, { tokenizer: '{"model": ' }), /invalid JSON/, 'tokenizer.json'),
    m('tokenizer-array', modelDir(good, { tokenizer: '[]' }), /not a JSON object/, 'tokenizer.json'),
    m(
      'tokenizer-byte-marker-bad-vocab',
      modelDir(good, {
        tokenizer: json({
          version: '1.0',
          upit: { tokenizer: 'byte', version: 1, pad_id: 0, bos_id: 2, eos_id: 3 },
          model: { type: 'BPE', vocab: { a: 0 }, merges: [] },
        }),
      }),
      /marked as the UpIT byte tokenizer but the vocab has 1 entries, not 256/,
      'tokenizer.json',
    ),
    m(
      'tokenizer-unsupported-model',
      modelDir(good, { tokenizer: json({ version: '1.0', model: { type: 'NoSuchModel', vocab: {} } }) }),
      /unsupported or malformed tokenizer/,
      'tokenizer.json',
    ),
  ];
}

// ---- JSONL data -----------------------------------------------------------------------------------

const GOOD_INSTRUCTION = '{"instruction": "Add 2 and 3.", "output": "5"}';
const GOOD_EVAL = '{"question": "2+3?", "answer": "5"}';

function jsonlCases(): HostileCase[] {
  const ins = (name: string, lines: string[], expect: RegExp): HostileCase => ({
    name: `jsonl-${name}`,
    target: 'instruction',
    files: { 'data.jsonl': lines.join('\n') + '\n', 'good-eval.jsonl': GOOD_EVAL + '\n' },
    expect,
  });
  const ev = (name: string, lines: string[], expect: RegExp): HostileCase => ({
    name: `eval-jsonl-${name}`,
    target: 'eval',
    files: { 'data.jsonl': lines.join('\n') + '\n' },
    expect,
  });
  return [
    ins(
      'bad-json',
      [GOOD_INSTRUCTION, GOOD_INSTRUCTION, '{"instruction": "x", "output": '],
      /:3: invalid JSON/,
    ),
    ins('not-object', ['["instruction", "output"]'], /:1: expected a JSON object/),
    ins('missing-output', [GOOD_INSTRUCTION, '{"instruction": "Say hi."}'], /:2: missing field "output"/),
    ins('wrong-type', ['{"instruction": 42, "output": "x"}'], /:1: field "instruction" must be a string/),
    ins('empty-output', ['{"instruction": "x", "output": "   "}'], /:1: field "output" is empty/),
    ins(
      'unknown-shape',
      ['{"prompt": "x", "completion": "y"}'],
      /:1: expected \{"instruction", "output"\} \(Alpaca\) or \{"messages"\} \(chat\)/,
    ),
    ins(
      'chat-last-not-assistant',
      ['{"messages": [{"role": "user", "content": "hi"}]}'],
      /:1: the last message must be the assistant's/,
    ),
    ins(
      'chat-bad-role',
      ['{"messages": [{"role": "root", "content": "hi"}, {"role": "assistant", "content": "x"}]}'],
      /:1: messages\[0\]\.role must be "system", "user" or "assistant"/,
    ),
    ins('empty-file', [''], /no records \(the file is empty\)/),
    ins('binary', ['\u0000\u0001\u0002PK\u0003\u0004'], /:1: invalid JSON/),
    ev('missing-question', ['{"answer": "5"}'], /:1: missing field "question"/),
    ev(
      'answer-object',
      ['{"question": "q", "answer": {"x": 1}}'],
      /:1: field "answer" must be a string or a number/,
    ),
    ev(
      'answer-not-a-choice',
      [GOOD_EVAL, '{"question": "q", "answer": "c", "choices": ["a", "b"]}'],
      /:2: answer "c" is not one of the choices/,
    ),
    ev(
      'choices-not-strings',
      ['{"question": "q", "answer": "1", "choices": [1, 2]}'],
      /:1: field "choices" must be an array of strings/,
    ),
    ev(
      'duplicate-choices',
      ['{"question": "q", "answer": "a", "choices": ["a", "a"]}'],
      /:1: field "choices" has duplicate choices/,
    ),
  ];
}

// ---- plan files ---------------------------------------------------------------------------------

function planCases(): HostileCase[] {
  const p = (name: string, text: string, expect: RegExp, file = 'plan.yaml'): HostileCase => ({
    name: `plan-${name}`,
    target: 'plan',
    files: { [file]: text },
    expect,
    names: file,
  });
  const base = 'name: hostile\n';
  // nine levels of nine aliases each: 9^9 nodes if expanded
  const bomb = ['a0: &a0 [x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 9; i++)
    bomb.push(
      `a${i}: &a${i} [${Array(9)
        .fill(`*a${i - 1}`)
        .join(', ')}]`,
    );
  const values = (n: number, f: (i: number) => number) =>
    `[${Array.from({ length: n }, (_, i) => f(i)).join(', ')}]`;
  return [
    p('yaml-syntax', `${base}variants: [dense\nseeds: [1]\n`, /plan\.yaml:\d+:\d+: /),
    p('tab-indent', `${base}variants:\n\t- dense\n`, /plan\.yaml:\d+:\d+: /),
    p('not-a-mapping', '- dense\n- upit\n', /a plan is a mapping \(name, data, variants, …\), got a list/),
    p('empty', '', /a plan is a mapping .*got (nothing|an empty document)/),
    p(
      'unknown-key',
      `${base}variants: [dense]\nepochs: 3\n`,
      /plan\.yaml:\d+:\d+: Unrecognized key: "epochs"/,
    ),
    p(
      'wrong-type',
      `${base}seeds: one\nvariants: [dense]\n`,
      /plan\.yaml:2:8: seeds: Invalid input: expected array, received string/,
    ),
    p('unknown-variant', `${base}variants: [dense, moe-magic]\n`, /plan\.yaml:2:\d+: variants\.1/),
    p('duplicate-key', `${base}name: again\nvariants: [dense]\n`, /plan\.yaml:2:1: Map keys must be unique/),
    p('duplicate-seed', `${base}seeds: [1, 1]\nvariants: [dense]\n`, /seeds: lists a seed twice/),
    p(
      'bad-p',
      `${base}expand: {p: 1}\nvariants: [upit]\n`,
      /plan\.yaml:2:\d+: expand\.p: must be in \[0, 1\)/,
    ),
    p(
      'missing-data-file',
      `${base}data: {source: files, train: no-such-train.jsonl, eval: no-such-eval.jsonl}\nvariants: [dense]\n`,
      /data\.train: file not found: .*no-such-train\.jsonl/,
    ),
    p(
      'missing-base',
      `${base}base: ./no-such-model\nvariants: [dense]\n`,
      /base: no model at .*no-such-model \(config\.json missing\)/,
    ),
    p(
      'variant-name-clash',
      `${base}variants: [upit, {kind: dense, name: upit}]\n`,
      /variants\.1: variant name 'upit' is used twice/,
    ),
    p(
      'bad-sweep-key',
      `${base}variants: [{kind: upit, sweep: {n: [2, 4]}}]\n`,
      /a sweep key is 'stage\.field' or 'data\.field'/,
    ),
    p('alias-bomb', `${bomb.join('\n')}\n${base}variants: [dense]\n`, /plan\.yaml: .*alias/i),
    p(
      'sweep-explosion',
      `${base}variants:\n  - kind: upit\n    sweep:\n      expand.n: ${values(64, (i) => i + 4)}\n      expand.p: ${values(64, (i) => i / 100)}\n      route.epochs: ${values(64, (i) => i + 1)}\n`,
      /plan\.yaml:\d+:\d+: variants\.0\.sweep: .*262144 variants.*at most/,
    ),
    p(
      'json-unterminated',
      '{"name": "hostile", "variants": ["dense"]\n',
      /plan\.json:\d+:\d+: /,
      'plan.json',
    ),
    p('binary', '\u0000\u0001PK\u0003\u0004\u00ff', /plan\.yaml:\d+:\d+: |a plan is a mapping/),
  ];
}

export function hostileCases(): HostileCase[] {
  const all = [...safetensorsCases(), ...modelCases(), ...jsonlCases(), ...planCases()];
  const seen = new Set<string>();
  for (const c of all) {
    if (seen.has(c.name)) throw new Error(`hostile corpus: case ${c.name} defined twice`);
    seen.add(c.name);
  }
  return all;
}

/** The file a case's error must name, relative to its directory ('' = the directory itself). */
export function namedFile(c: HostileCase): string {
  if (c.names !== undefined) return c.names;
  return c.target === 'plan' ? Object.keys(c.files)[0]! : 'data.jsonl';
}

/** The valid tiny model directory's files (for tests that need a good model next to hostile ones). */
export function goodModelFiles(): Record<string, string | Uint8Array> {
  return modelDir(buildSafetensors(goodTensors()).bytes);
}

export const GOOD_INSTRUCTION_LINE = GOOD_INSTRUCTION;
export const GOOD_EVAL_LINE = GOOD_EVAL;

/** Writes every case to `<dir>/<case name>/` (and the good model to `<dir>/good-model/`); returns the case names. */
export function writeCorpus(dir: string): string[] {
  const write = (caseDir: string, files: Record<string, string | Uint8Array>) => {
    mkdirSync(caseDir, { recursive: true });
    for (const [name, content] of Object.entries(files)) writeFileSync(join(caseDir, name), content);
  };
  write(join(dir, 'good-model'), goodModelFiles());
  const cases = hostileCases();
  for (const c of cases) write(join(dir, c.name), c.files);
  return cases.map((c) => c.name);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = resolve(
    process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..', '.workspace', 'hostile'),
  );
  const names = writeCorpus(out);
  process.stdout.write(`${names.length} hostile cases written to ${out}\n`);
}
