import type { Tokenizer } from '../../../src-main/io/tokenizer.js';
import type { Scorable } from '../../../src-main/eval/scorable.js';
import { tf } from '../../../src-main/tensor/tf.js';

/**
 * A word-level stand-in for a BPE tokenizer: " word" is one token (the space merges into the
 * word that follows), "\n" and a lone " " are tokens of their own. Ids are assigned on first use.
 */
export class WordTokenizer implements Tokenizer {
  readonly kind = 'hf' as const;
  readonly vocabSize = 1000;
  readonly bosId = 1;
  readonly eosId = 2;
  readonly padId = 0;
  private readonly ids = new Map<string, number>();
  private readonly words: string[] = ['<pad>', '<s>', '</s>'];

  encode(text: string, opts: { addBos?: boolean } = {}): number[] {
    const out = opts.addBos ? [this.bosId] : [];
    for (const w of text.match(/ ?[^\s]+|\n| /g) ?? []) {
      let id = this.ids.get(w);
      if (id === undefined) {
        id = this.words.length;
        this.words.push(w);
        this.ids.set(w, id);
      }
      out.push(id);
    }
    return out;
  }

  decode(ids: readonly number[]): string {
    return ids
      .filter((i) => i > 2)
      .map((i) => this.words[i]!)
      .join('');
  }

  toJSON(): unknown {
    return {};
  }
}

/** A Scorable whose token NLL is a fixed function of the target token (and that records its calls). */
export function tableScorable(
  tokenizer: Tokenizer,
  nllOf: (target: number) => number,
  generate: (prompts: number[][], maxNewTokens: number) => number[][] = () => {
    throw new Error('generate not stubbed');
  },
): Scorable & { calls: { rows: number; targets: number[] }[]; genBatches: number[] } {
  const calls: { rows: number; targets: number[] }[] = [];
  const genBatches: number[] = [];
  return {
    tokenizer,
    addBos: false,
    maxSeqLen: 4096,
    calls,
    genBatches,
    selectedNll(ids, _mask, _positions, targets) {
      const t = Array.from(targets.dataSync());
      calls.push({ rows: ids.shape[0]!, targets: t });
      return tf.tensor1d(t.map(nllOf), 'float32');
    },
    generate(prompts, maxNewTokens) {
      genBatches.push(prompts.length);
      return generate(prompts, maxNewTokens);
    },
  };
}
