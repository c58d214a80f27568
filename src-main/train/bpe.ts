/**
 * Byte-level BPE learned from a corpus, saved as a Hugging Face tokenizer.json (`upit pretrain
 * --vocab N`). Loaded back through tokenizers.js like any other HF tokenizer, so encoding at
 * training and at evaluation time is the same code.
 *
 * Layout of the vocab: ids 0..255 are the 256 bytes (GPT-2's byte-to-unicode characters, id =
 * byte value), 256..258 the special tokens <pad>, <s>, </s>, and merges follow in the order
 * they were learned (rank = order).
 *
 * Pre-tokenization (an HF `Split` on {@link BPE_PRETOKEN_PATTERN}, then ByteLevel without its own
 * regex) cuts text into letter runs with one trailing space, single digits, punctuation runs with
 * one trailing space, and whitespace runs. A space therefore ends a piece rather than starting the
 * next one: a prompt that ends in "A: " ends on a piece boundary, so encoding the prompt and the
 * answer apart gives the same tokens as encoding them together, as training saw them. Single
 * digits keep numbers digit by digit, as Llama's tokenizer does.
 *
 * Merge selection: the pair with the highest count over the corpus's pieces; ties go to the pair
 * whose concatenation sorts first, so the result depends only on the corpus and the size.
 */
import { UserError } from '../common/errors.js';
import { BYTE_LEVEL_STEP, HfTokenizer, bpeModelJson, byteLevelAlphabet } from '../io/tokenizer.js';

export const BPE_PRETOKEN_PATTERN = String.raw`\p{L}+ ?|\p{N}|[^\p{L}\p{N}\s]+ ?|\s+`;
export const BPE_SPECIAL_TOKENS = { pad: '<pad>', bos: '<s>', eos: '</s>' } as const;
/** Bytes plus the three special tokens: the smallest vocab (no merges). */
export const BPE_MIN_VOCAB = 259;
/** Ids are 16-bit inside the trainer's pair keys. */
export const BPE_MAX_VOCAB = 65536;

const PRETOKEN = new RegExp(BPE_PRETOKEN_PATTERN, 'gu');

/** Pieces of `text` as the tokenizer's pre-tokenizer cuts them. */
export function bpePieces(text: string): string[] {
  return text.match(PRETOKEN) ?? []; // match with a global regex starts at 0 and keeps no state
}

interface Word {
  ids: number[];
  count: number;
}

const pairKey = (a: number, b: number) => a * BPE_MAX_VOCAB + b;

/**
 * Learn merges until the vocab holds `vocabSize` tokens (or no pair occurs twice) and return
 * the tokenizer. `onProgress` is called with (merges so far, merges wanted) every 64 merges.
 */
export function trainBpe(
  docs: readonly string[],
  vocabSize: number,
  onProgress?: (done: number, total: number) => void,
): HfTokenizer {
  if (!Number.isInteger(vocabSize) || vocabSize < BPE_MIN_VOCAB || vocabSize > BPE_MAX_VOCAB)
    throw new UserError(
      `--vocab must be an integer from ${BPE_MIN_VOCAB} to ${BPE_MAX_VOCAB}, got ${vocabSize}`,
    );
  const alphabet = byteLevelAlphabet();
  const strings: string[] = [
    ...alphabet,
    BPE_SPECIAL_TOKENS.pad,
    BPE_SPECIAL_TOKENS.bos,
    BPE_SPECIAL_TOKENS.eos,
  ];
  const idOf = new Map<string, number>(strings.map((s, i) => [s, i]));

  // Unique pieces with their counts, as byte ids.
  const counts = new Map<string, number>();
  for (const doc of docs) for (const p of bpePieces(doc)) counts.set(p, (counts.get(p) ?? 0) + 1);
  const words: Word[] = [];
  for (const [p, count] of counts) words.push({ ids: [...Buffer.from(p, 'utf8')], count });

  // Pair counts and, per pair, the words that hold it.
  const pairCount = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const addWord = (w: number, sign: 1 | -1) => {
    const { ids, count } = words[w]!;
    for (let i = 0; i + 1 < ids.length; i++) {
      const k = pairKey(ids[i]!, ids[i + 1]!);
      const c = (pairCount.get(k) ?? 0) + sign * count;
      if (c > 0) pairCount.set(k, c);
      else pairCount.delete(k); // a pair no word holds any more
      if (sign > 0) {
        let s = where.get(k);
        if (!s) where.set(k, (s = new Set()));
        s.add(w);
      }
    }
  };
  for (let w = 0; w < words.length; w++) addWord(w, 1);

  const merges: string[] = [];
  const wanted = vocabSize - strings.length;
  while (strings.length < vocabSize) {
    let best = -1;
    let bestCount = 0;
    let bestText = '';
    for (const [k, c] of pairCount) {
      if (c < 2 || c < bestCount) continue; // a pair must occur at least twice
      const text = strings[Math.floor(k / BPE_MAX_VOCAB)]! + strings[k % BPE_MAX_VOCAB]!;
      if (c > bestCount || text < bestText) {
        best = k;
        bestCount = c;
        bestText = text;
      }
    }
    if (best < 0) break;
    const a = Math.floor(best / BPE_MAX_VOCAB);
    const b = best % BPE_MAX_VOCAB;
    merges.push(`${strings[a]} ${strings[b]}`);
    let merged = idOf.get(bestText);
    if (merged === undefined) {
      merged = strings.length;
      strings.push(bestText);
      idOf.set(bestText, merged);
    }
    for (const w of where.get(best) ?? []) {
      addWord(w, -1);
      const ids = words[w]!.ids;
      const out: number[] = [];
      for (let i = 0; i < ids.length; i++) {
        if (i + 1 < ids.length && ids[i] === a && ids[i + 1] === b) {
          out.push(merged);
          i++;
        } else out.push(ids[i]!);
      }
      words[w]!.ids = out;
      addWord(w, 1);
    }
    where.delete(best);
    pairCount.delete(best);
    if (merges.length % 64 === 0) onProgress?.(merges.length, wanted);
  }
  onProgress?.(merges.length, wanted);
  return new HfTokenizer(
    bpeTokenizerJson(strings, merges),
    bpeTokenizerConfig(),
    'the trained BPE tokenizer',
  );
}

function bpeTokenizerJson(strings: readonly string[], merges: readonly string[]): Record<string, unknown> {
  const special = [BPE_SPECIAL_TOKENS.pad, BPE_SPECIAL_TOKENS.bos, BPE_SPECIAL_TOKENS.eos];
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: special.map((content) => ({
      id: strings.indexOf(content),
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: BPE_PRETOKEN_PATTERN }, behavior: 'Isolated', invert: false },
        BYTE_LEVEL_STEP,
      ],
    },
    post_processor: null,
    decoder: BYTE_LEVEL_STEP,
    model: bpeModelJson(Object.fromEntries(strings.map((s, i) => [s, i])), merges),
  };
}

function bpeTokenizerConfig(): Record<string, unknown> {
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: BPE_SPECIAL_TOKENS.bos,
    eos_token: BPE_SPECIAL_TOKENS.eos,
    pad_token: BPE_SPECIAL_TOKENS.pad,
    clean_up_tokenization_spaces: false,
    model_input_names: ['input_ids', 'attention_mask'],
  };
}
