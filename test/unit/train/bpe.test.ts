import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src-main/common/errors.js';
import { Rng } from '../../../src-main/common/rng.js';
import { buildSuite } from '../../../src-main/data/suite.js';
import { byteLevelAlphabet, loadTokenizer, saveTokenizer } from '../../../src-main/io/tokenizer.js';
import { BPE_MIN_VOCAB, bpePieces, trainBpe } from '../../../src-main/train/bpe.js';
import { tempDir } from '../io/helpers.js';

const ALPHABET = byteLevelAlphabet();
const toSymbols = (piece: string) => [...Buffer.from(piece, 'utf8')].map((b) => ALPHABET[b]!);

/** Textbook BPE training: recount every pair over every piece before each merge. */
function referenceMerges(docs: readonly string[], merges: number): string[] {
  const counts = new Map<string, number>();
  for (const d of docs) for (const p of bpePieces(d)) counts.set(p, (counts.get(p) ?? 0) + 1);
  let words = [...counts].map(([p, c]) => ({ s: toSymbols(p), c }));
  const out: string[] = [];
  while (out.length < merges) {
    const pairs = new Map<string, { a: string; b: string; c: number }>();
    for (const w of words)
      for (let i = 0; i + 1 < w.s.length; i++) {
        const k = `${w.s[i]} ${w.s[i + 1]}`;
        const e = pairs.get(k) ?? { a: w.s[i]!, b: w.s[i + 1]!, c: 0 };
        e.c += w.c;
        pairs.set(k, e);
      }
    let best: { a: string; b: string; c: number } | null = null;
    for (const e of pairs.values())
      if (e.c >= 2 && (!best || e.c > best.c || (e.c === best.c && e.a + e.b < best.a + best.b))) best = e;
    if (!best) break;
    out.push(`${best.a} ${best.b}`);
    const { a, b } = best;
    words = words.map((w) => {
      const s: string[] = [];
      for (let i = 0; i < w.s.length; i++) {
        if (i + 1 < w.s.length && w.s[i] === a && w.s[i + 1] === b) {
          s.push(a + b);
          i++;
        } else s.push(w.s[i]!);
      }
      return { s, c: w.c };
    });
  }
  return out;
}

/** Textbook BPE encoding: split into pieces, then in each merge the lowest-ranked adjacent pair. */
function referenceEncode(text: string, merges: readonly string[], vocab: Record<string, number>): number[] {
  const rank = new Map(merges.map((m, i) => [m, i]));
  const ids: number[] = [];
  for (const piece of bpePieces(text)) {
    let s = toSymbols(piece);
    for (;;) {
      let best = -1;
      for (let i = 0; i + 1 < s.length; i++) {
        const r = rank.get(`${s[i]} ${s[i + 1]}`);
        if (r !== undefined && (best < 0 || r < rank.get(`${s[best]} ${s[best + 1]}`)!)) best = i;
      }
      if (best < 0) break;
      s = [...s.slice(0, best), s[best]! + s[best + 1]!, ...s.slice(best + 2)];
    }
    for (const sym of s) ids.push(vocab[sym]!);
  }
  return ids;
}

function modelOf(tok: { toJSON(): unknown }) {
  return (tok.toJSON() as { model: { vocab: Record<string, number>; merges: string[] } }).model;
}

const suite = buildSuite({ seed: 3, trainPerDomain: 4, evalPerDomain: 8 });
const corpus = suite.pretrainCorpus({ docs: 400 });

describe('byte-level BPE trained on a corpus', () => {
  it('cuts text into letter runs and punctuation runs with one trailing space, single digits, whitespace runs', () => {
    expect(bpePieces('Q: Zopo has 14 marbles.\nA: 4-3=1. #### 1')).toEqual([
      'Q',
      ': ',
      'Zopo ',
      'has ',
      '1',
      '4',
      ' ',
      'marbles',
      '.',
      '\n',
      'A',
      ': ',
      '4',
      '-',
      '3',
      '=',
      '1',
      '. ',
      '#### ',
      '1',
    ]);
    expect(bpePieces('héllo  wörld\n\n日本 😀').join('')).toBe('héllo  wörld\n\n日本 😀');
  });

  it('learns the same merges as a textbook recount-every-pair trainer, in the same order', () => {
    const tok = trainBpe(corpus, 700);
    const { vocab, merges } = modelOf(tok);
    expect(merges).toHaveLength(700 - BPE_MIN_VOCAB);
    expect(merges).toEqual(referenceMerges(corpus, merges.length));
    expect(tok.vocabSize).toBe(700);
    // bytes keep their values as ids, then the specials
    ALPHABET.forEach((ch, b) => expect(vocab[ch]).toBe(b));
    expect([tok.padId, tok.bosId, tok.eosId]).toEqual([256, 257, 258]);
    // the most frequent words of the corpus became single tokens
    expect(tok.encode('Q: ').length).toBe(2);
  });

  it('encodes (through tokenizers.js) as textbook BPE does, and decodes back to the text', () => {
    const tok = trainBpe(corpus, 600);
    const { vocab, merges } = modelOf(tok);
    const rng = new Rng(7);
    const held = suite.eval.map((e) => `Q: ${e.prompt}\nA: ${e.answer}\n`);
    const noise = Array.from({ length: 20 }, () =>
      String.fromCodePoint(...Array.from({ length: 30 }, () => 32 + Math.floor(rng.next() * 400))),
    );
    for (const text of [...held, ...noise, 'héllo  wörld\n\n日本 😀\t']) {
      const ids = tok.encode(text);
      expect(ids).toEqual(referenceEncode(text, merges, vocab));
      expect(tok.decode(ids)).toBe(text);
    }
    // compression on held-out text of the same world
    const bytes = held.reduce((n, t) => n + Buffer.byteLength(t), 0);
    const tokens = held.reduce((n, t) => n + tok.encode(t).length, 0);
    expect(bytes / tokens).toBeGreaterThan(2); // the byte tokenizer: 1
  });

  it('a prompt ending in "A: " encodes the same alone as followed by its answer (evaluation = training)', () => {
    const tok = trainBpe(corpus, 600);
    for (const e of suite.eval) {
      const ctx = `Q: ${e.prompt}\nA: `;
      expect([...tok.encode(ctx), ...tok.encode(e.answer + '\n')]).toEqual(tok.encode(`${ctx}${e.answer}\n`));
    }
  });

  it('is deterministic, saves and loads back as an HF tokenizer with its specials', () => {
    const a = trainBpe(corpus, 400);
    expect(JSON.stringify(trainBpe([...corpus], 400).toJSON())).toBe(JSON.stringify(a.toJSON()));
    const dir = tempDir();
    saveTokenizer(dir, a);
    const b = loadTokenizer(dir);
    expect(b.kind).toBe('hf');
    expect([b.vocabSize, b.padId, b.bosId, b.eosId]).toEqual([400, 256, 257, 258]);
    const text = corpus.slice(0, 20).join('\n');
    expect(b.encode(text)).toEqual(a.encode(text));
    expect(b.encode('x', { addBos: true })[0]).toBe(257);
    expect(b.decode([257, ...b.encode('Hi there'), 258, 256])).toBe('Hi there');
  });

  it('stops early when no pair occurs twice, and rejects a vocab smaller than bytes + specials', () => {
    const tok = trainBpe(['ab ab ab', 'cd'], 1000);
    expect(modelOf(tok).merges).toEqual(['a b', 'ab Ġ']); // 'ab ' twice; nothing else repeats
    expect(tok.vocabSize).toBe(BPE_MIN_VOCAB + 2);
    expect(() => trainBpe(corpus, 258)).toThrow(UserError);
    expect(() => trainBpe(corpus, 258)).toThrow(/--vocab must be an integer from 259/);
  });
});
