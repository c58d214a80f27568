/**
 * Perplexity over response tokens, per example and overall — also Stage 3's routing score:
 * PPL_i(x) = exp(mean NLL over x's response tokens) under expert i.
 *
 * With the default `template: 'instruction'` an example is rendered exactly as training renders
 * it (`renderExample`): context `formatPrompt(prompt)`, scored continuation `response + "\n"`.
 * `template: 'raw'` scores `response` given `prompt` verbatim (e.g. plain-text documents).
 *
 *   perExample[k] = exp(Σ_k nll / tokens_k)
 *   meanNll       = Σ_all nll / Σ_all tokens        (token-weighted, like a training loss)
 *   ppl           = exp(meanNll)
 */
import { UserError } from '../common/errors.js';
import { renderExample } from '../data/index.js';
import type { Scorable } from './scorable.js';
import { encodePair, scoreRows, scoredTokens, type BatchOptions } from './score.js';

export interface PerplexityOptions extends BatchOptions {
  /** 'instruction' (default): the training template; 'raw': prompt and response as given. */
  template?: 'instruction' | 'raw';
  /** After each batch: examples done so far. */
  onProgress?: (p: { done: number; total: number }) => void;
}

export interface PerplexityResult {
  /** exp(meanNll); NaN when there are no examples. */
  ppl: number;
  meanNll: number;
  /** Response tokens scored, over all examples. */
  tokens: number;
  /** exp(mean NLL of each example's response tokens), in input order. */
  perExample: number[];
  /** Mean NLL per example (log of perExample, without the exp round trip). */
  perExampleNll: number[];
  perExampleTokens: number[];
}

export async function perplexity(
  model: Scorable,
  examples: readonly { prompt: string; response: string }[],
  opts: PerplexityOptions,
): Promise<PerplexityResult> {
  const raw = opts.template === 'raw';
  const rows = examples.map((ex, i) => {
    const r = raw ? ex : renderExample(ex);
    const row = encodePair(model, r.prompt, r.response);
    if (scoredTokens(row) === 0) {
      throw new UserError(`perplexity: example ${i} has no response token to score (empty response?)`);
    }
    return row;
  });
  const { nll, tokens } = await scoreRows(model, rows, opts, (n) =>
    opts.onProgress?.({ done: n, total: rows.length }),
  );
  let sum = 0;
  let count = 0;
  const perExampleNll = rows.map((_, i) => {
    sum += nll[i]!;
    count += tokens[i]!;
    return nll[i]! / tokens[i]!;
  });
  const meanNll = count > 0 ? sum / count : NaN;
  return {
    ppl: Math.exp(meanNll),
    meanNll,
    tokens: count,
    perExample: perExampleNll.map(Math.exp),
    perExampleNll,
    perExampleTokens: Array.from(tokens),
  };
}
