/**
 * Scores a model on evaluation items, per domain, with 95% Wilson intervals.
 *
 * - `metric: 'exact'`: batched greedy generation after `formatPrompt(prompt)`, cut at the first
 *   "\n", judged by `isCorrect` (data/template.ts). Reported as `exact_match`.
 * - `metric: 'choice'`: lm-eval-harness log-likelihood scoring. Each choice's continuation
 *   `choiceContinuation(choice)` (= choice + "\n") is scored given `formatPrompt(prompt)`:
 *     acc      = argmax_i Σ log p(continuation_i tokens)
 *     acc_norm = argmax_i Σ log p(continuation_i tokens) / bytes(continuation_i)
 *   Both are reported; `acc_norm` is primary by default (`choiceMetric`): a summed log-probability
 *   pays for every extra token, so it favours short options (the embedded MC options are names of
 *   different lengths), and per-byte normalisation is tokenizer-independent. lm-eval divides by
 *   the character length of the choice without its delimiter; here the divisor is the UTF-8 byte
 *   length of exactly the text that is scored (choice + "\n", plus a moved leading space when a
 *   BPE token straddles the prompt boundary — see score.ts).
 * All (item, choice) pairs are scored together in right-padded batches.
 */
import { createHash, type Hash } from 'node:crypto';
import { UserError } from '../common/errors.js';
import {
  choiceContinuation,
  cutAtResponseEnd,
  formatPrompt,
  isCorrect,
  normalizeAnswer,
  type EvalItem,
} from '../data/index.js';
import type { Scorable } from './scorable.js';
import { checkpoint, encodePair, planBatches, scoreRows, type ScoreRow } from './score.js';
import { wilsonInterval } from './stats.js';

export type EvalMetricName = 'exact_match' | 'acc' | 'acc_norm';

export interface EvalProgress {
  phase: 'generate' | 'score';
  /** Sequences finished so far over both phases: exact items + (choice item, option) pairs. */
  done: number;
  total: number;
}

export interface EvaluateOptions {
  /** Sequences per forward pass (prompts when generating, (prompt, option) pairs when scoring). */
  batchSize: number;
  /** Generation budget for exact-match items (default 64). */
  maxNewTokens?: number;
  /** Primary multiple-choice metric (default 'acc_norm'). */
  choiceMetric?: 'acc' | 'acc_norm';
  /** Optional cap on rows × padded length of a scoring batch. */
  maxBatchTokens?: number;
  onProgress?: (p: EvalProgress) => void;
  /** Checked between batches; aborting rejects with the signal's reason. */
  signal?: AbortSignal;
}

export const DEFAULT_MAX_NEW_TOKENS = 64;

export interface DomainScore {
  domain: string;
  metric: EvalMetricName;
  /** Fraction correct in [0, 1]. */
  score: number;
  n: number;
  correct: number;
  /** 95% Wilson score interval. */
  ciLow: number;
  ciHigh: number;
  /** The metric that `ItemResult.correct` and `average` use for this domain. */
  primary: boolean;
  /** Per item, in input order: '1' correct, '0' wrong under this metric (for paired tests). */
  outcomes: string;
  /** sha256 of the items' ids and answers in order: equal keys mean the same items. */
  itemsKey: string;
}

export interface ChoiceDetail {
  /** Index of `answer` in `choices`. */
  gold: number;
  /** Summed log-likelihood of each option's continuation. */
  logLik: number[];
  /** logLik / continuation bytes. */
  logLikNorm: number[];
  tokens: number[];
  predAcc: number;
  predNorm: number;
  correctAcc: boolean;
  correctNorm: boolean;
}

export interface ItemResult {
  id: string;
  domain: string;
  metric: 'exact' | 'choice';
  /** Under the primary metric. */
  correct: boolean;
  /** Exact: the generated line; choice: the option predicted by the primary metric. */
  prediction: string;
  answer: string;
  choice?: ChoiceDetail;
}

export interface EvalResult {
  /** One row per (domain, metric): exact → exact_match; choice → acc_norm and acc. First-appearance order. */
  perDomain: DomainScore[];
  /**
   * Mean of the primary rows' scores (macro average over domains, as the paper's "Avg."; a domain
   * mixing exact and choice items contributes two rows); NaN when there are no items.
   */
  average: number;
  /** In input order. */
  items: ItemResult[];
}

function argmax(xs: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}

function goldIndex(item: EvalItem): number {
  const choices = item.choices;
  if (!choices || choices.length < 2) {
    throw new UserError(`eval item ${item.id}: a 'choice' item needs at least two choices`);
  }
  let i = choices.indexOf(item.answer);
  if (i < 0) i = choices.findIndex((c) => normalizeAnswer(c) === normalizeAnswer(item.answer));
  if (i < 0)
    throw new UserError(
      `eval item ${item.id}: answer ${JSON.stringify(item.answer)} is not one of its choices`,
    );
  return i;
}

export async function evaluate(
  model: Scorable,
  items: readonly EvalItem[],
  opts: EvaluateOptions,
): Promise<EvalResult> {
  const maxNew = opts.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS;
  if (!Number.isInteger(maxNew) || maxNew < 1)
    throw new RangeError(`maxNewTokens must be a positive integer, got ${maxNew}`);
  const primaryNorm = (opts.choiceMetric ?? 'acc_norm') === 'acc_norm';
  const results = new Array<ItemResult | undefined>(items.length);

  const exact: number[] = [];
  const choice: { item: number; gold: number; rows: number[] }[] = [];
  const rows: ScoreRow[] = [];
  items.forEach((item, i) => {
    if (item.metric === 'exact') exact.push(i);
    else if (item.metric === 'choice') {
      const gold = goldIndex(item);
      const ctx = formatPrompt(item.prompt);
      const idx = item.choices!.map((c) => rows.push(encodePair(model, ctx, choiceContinuation(c))) - 1);
      choice.push({ item: i, gold, rows: idx });
    } else
      throw new UserError(
        `eval item ${(item as EvalItem).id}: unknown metric ${JSON.stringify((item as EvalItem).metric)}`,
      );
  });
  const total = exact.length + rows.length;
  let done = 0;

  // ---- exact match: greedy generation, prompts of similar length batched together
  const tok = model.tokenizer;
  const keep = Math.max(1, model.maxSeqLen - maxNew);
  const prompts = exact.map((i) =>
    tok.encode(formatPrompt(items[i]!.prompt), { addBos: model.addBos }).slice(-keep),
  );
  for (const batch of planBatches(
    prompts.map((p) => p.length),
    { batchSize: opts.batchSize },
  )) {
    await checkpoint(opts.signal);
    const gens = model.generate(
      batch.map((j) => prompts[j]!),
      maxNew,
    );
    batch.forEach((j, b) => {
      const item = items[exact[j]!]!;
      const text = tok.decode(gens[b] ?? []);
      results[exact[j]!] = {
        id: item.id,
        domain: item.domain,
        metric: 'exact',
        correct: isCorrect(item, text),
        prediction: cutAtResponseEnd(text),
        answer: item.answer,
      };
    });
    done += batch.length;
    opts.onProgress?.({ phase: 'generate', done, total });
  }

  // ---- multiple choice: every (prompt, option) continuation in right-padded batches
  const base = done;
  const { nll, tokens } = await scoreRows(model, rows, opts, (n) =>
    opts.onProgress?.({ phase: 'score', done: base + n, total }),
  );
  for (const c of choice) {
    const item = items[c.item]!;
    const logLik = c.rows.map((r) => -nll[r]!);
    const logLikNorm = c.rows.map((r, k) => logLik[k]! / Math.max(1, rows[r]!.contBytes));
    const predAcc = argmax(logLik);
    const predNorm = argmax(logLikNorm);
    const detail: ChoiceDetail = {
      gold: c.gold,
      logLik,
      logLikNorm,
      tokens: c.rows.map((r) => tokens[r]!),
      predAcc,
      predNorm,
      correctAcc: predAcc === c.gold,
      correctNorm: predNorm === c.gold,
    };
    const pred = primaryNorm ? predNorm : predAcc;
    results[c.item] = {
      id: item.id,
      domain: item.domain,
      metric: 'choice',
      correct: pred === c.gold,
      prediction: item.choices![pred]!,
      answer: item.answer,
      choice: detail,
    };
  }

  const out = results as ItemResult[];
  const perDomain = aggregate(out, primaryNorm);
  const primary = perDomain.filter((d) => d.primary);
  const average = primary.length > 0 ? primary.reduce((s, d) => s + d.score, 0) / primary.length : NaN;
  return { perDomain, average, items: out };
}

/** Per-(domain, metric) accuracy with Wilson intervals, in order of first appearance. */
export function aggregate(items: readonly ItemResult[], primaryNorm = true): DomainScore[] {
  interface Group {
    domain: string;
    metric: EvalMetricName;
    primary: boolean;
    k: number;
    outcomes: string[];
    key: Hash;
  }
  const groups = new Map<string, Group>();
  const add = (r: ItemResult, metric: EvalMetricName, primary: boolean, ok: boolean) => {
    const key = `${r.domain}\u0000${metric}`;
    let g = groups.get(key);
    if (!g) {
      g = { domain: r.domain, metric, primary, k: 0, outcomes: [], key: createHash('sha256') };
      groups.set(key, g);
    }
    g.outcomes.push(ok ? '1' : '0');
    g.key.update(`${r.id}\u0000${r.answer}\u0001`);
    if (ok) g.k++;
  };
  for (const r of items) {
    if (!r.choice) add(r, 'exact_match', true, r.correct);
    else {
      const norm = () => add(r, 'acc_norm', primaryNorm, r.choice!.correctNorm);
      const acc = () => add(r, 'acc', !primaryNorm, r.choice!.correctAcc);
      for (const f of primaryNorm ? [norm, acc] : [acc, norm]) f();
    }
  }
  return [...groups.values()].map((g) => {
    const n = g.outcomes.length;
    const ci = wilsonInterval(g.k, n);
    return {
      domain: g.domain,
      metric: g.metric,
      score: g.k / n,
      n,
      correct: g.k,
      ciLow: ci.low,
      ciHigh: ci.high,
      primary: g.primary,
      outcomes: g.outcomes.join(''),
      itemsKey: g.key.digest('hex'),
    };
  });
}
