import { describe, expect, it } from 'vitest';
import type { EvalItem } from '../../../src-main/data/index.js';
import { aggregate, evaluate, type ItemResult } from '../../../src-main/eval/evaluate.js';
import { wilsonInterval } from '../../../src-main/eval/stats.js';
import { ByteTokenizer } from '../../../src-main/io/tokenizer.js';
import { tf } from '../../../src-main/tensor/tf.js';
import { tableScorable } from './helpers.js';

const tok = new ByteTokenizer();

describe('evaluate: exact match against a stubbed generator', () => {
  // What the "model" answers for each prompt (text after "A: "), newline and junk included.
  const replies: Record<string, string> = {
    'What is 2+2?': '2+2=4. #### 4\nQ: more',
    'Mira has 3 pens. How many?': 'I think 5',
    'Which country is Tozanvale in?': ' Pimland. \nextra',
    'What does this print?\nprint(7)': '8\n',
    'Capital of Gapimstan?': 'Nelmark',
  };
  const items: EvalItem[] = [
    { domain: 'arith', id: 'a1', prompt: 'What is 2+2?', answer: '4', metric: 'exact' },
    { domain: 'arith', id: 'a2', prompt: 'Mira has 3 pens. How many?', answer: '3', metric: 'exact' },
    { domain: 'qa', id: 'q1', prompt: 'Which country is Tozanvale in?', answer: 'pimland', metric: 'exact' },
    { domain: 'code', id: 'c1', prompt: 'What does this print?\nprint(7)', answer: '7', metric: 'exact' },
    { domain: 'qa', id: 'q2', prompt: 'Capital of Gapimstan?', answer: 'Nelmark', metric: 'exact' },
  ];
  const stub = () =>
    tableScorable(
      tok,
      () => 0,
      (prompts, maxNew) =>
        prompts.map((p) => {
          const text = tok.decode(p);
          expect(text.startsWith('Q: ') && text.endsWith('\nA: ')).toBe(true);
          return tok.encode(replies[text.slice(3, -4)]!).slice(0, maxNew);
        }),
    );

  it('cuts at the first newline, scores with isCorrect and aggregates per domain', async () => {
    const m = stub();
    const r = await evaluate(m, items, { batchSize: 2 });
    expect(r.items.map((i) => [i.id, i.correct, i.prediction])).toEqual([
      ['a1', true, '2+2=4. #### 4'],
      ['a2', false, 'I think 5'],
      ['q1', true, ' Pimland. '],
      ['c1', false, '8'],
      ['q2', true, 'Nelmark'],
    ]);
    expect(m.genBatches).toEqual([2, 2, 1]);
    const ci = wilsonInterval(1, 2);
    expect(r.perDomain).toEqual([
      {
        domain: 'arith',
        metric: 'exact_match',
        score: 0.5,
        n: 2,
        correct: 1,
        ciLow: ci.low,
        ciHigh: ci.high,
        primary: true,
        outcomes: '10',
        itemsKey: expect.stringMatching(/^[0-9a-f]{64}$/) as unknown as string,
      },
      {
        domain: 'qa',
        metric: 'exact_match',
        score: 1,
        n: 2,
        correct: 2,
        ...ends(2, 2),
        primary: true,
        outcomes: '11',
        itemsKey: expect.stringMatching(/^[0-9a-f]{64}$/) as unknown as string,
      },
      {
        domain: 'code',
        metric: 'exact_match',
        score: 0,
        n: 1,
        correct: 0,
        ...ends(0, 1),
        primary: true,
        outcomes: '0',
        itemsKey: expect.stringMatching(/^[0-9a-f]{64}$/) as unknown as string,
      },
    ]);
    expect(r.average).toBeCloseTo((0.5 + 1 + 0) / 3, 12);
  });

  it('gives the same results for every batch size and respects maxNewTokens', async () => {
    const one = await evaluate(stub(), items, { batchSize: 1 });
    const all = await evaluate(stub(), items, { batchSize: 16 });
    expect(all).toEqual(one);
    const short = await evaluate(stub(), items, { batchSize: 4, maxNewTokens: 3 });
    expect(short.items[4]!.prediction).toBe('Nel');
  });
});

function ends(k: number, n: number) {
  const c = wilsonInterval(k, n);
  return { ciLow: c.low, ciHigh: c.high };
}

describe('evaluate: multiple choice (stubbed log-likelihoods)', () => {
  // −log p per byte: "Bo" bytes are unlikely (2.0 each), the letters of "Pimland" likely (0.9 each),
  // the newline 0.5. Sum:  Bo 4.5  <  Pimland 6.8       → acc picks "Bo"
  // Per byte:            Bo 1.5  >  Pimland 0.85      → acc_norm picks "Pimland"
  const costs: Record<string, number> = { B: 2, o: 2, '\n': 0.5 };
  const nll = (t: number) => costs[String.fromCharCode(t)] ?? 0.9;
  const item: EvalItem = {
    domain: 'mc',
    id: 'm1',
    prompt: 'In which country is Tozanvale?\nA) Bo B) Pimland',
    answer: 'Pimland',
    choices: ['Bo', 'Pimland'],
    metric: 'choice',
  };

  it('sums log-probs of the continuation only and reports acc and acc_norm (acc_norm primary)', async () => {
    const m = tableScorable(tok, nll);
    const r = await evaluate(m, [item], { batchSize: 8 });
    // one forward for both options; the targets are exactly the two continuations
    expect(m.calls).toHaveLength(1);
    expect(m.calls[0]!.rows).toBe(2);
    expect(tok.decode(m.calls[0]!.targets)).toBe('Pimland\nBo\n'); // longest first
    const c = r.items[0]!.choice!;
    expect(c.logLik[0]).toBeCloseTo(-4.5, 5);
    expect(c.logLik[1]).toBeCloseTo(-6.8, 5);
    expect(c.logLikNorm[0]).toBeCloseTo(-1.5, 5);
    expect(c.logLikNorm[1]).toBeCloseTo(-0.85, 5);
    expect(c.tokens).toEqual([3, 8]);
    expect([c.gold, c.predAcc, c.predNorm, c.correctAcc, c.correctNorm]).toEqual([1, 0, 1, false, true]);
    expect(r.items[0]!.correct).toBe(true);
    expect(r.items[0]!.prediction).toBe('Pimland');
    expect(r.perDomain.map((d) => [d.metric, d.score, d.primary])).toEqual([
      ['acc_norm', 1, true],
      ['acc', 0, false],
    ]);
    expect(r.average).toBe(1);
  });

  it('can make acc primary', async () => {
    const r = await evaluate(tableScorable(tok, nll), [item], { batchSize: 1, choiceMetric: 'acc' });
    expect(r.items[0]!.correct).toBe(false);
    expect(r.items[0]!.prediction).toBe('Bo');
    expect(r.perDomain.map((d) => [d.metric, d.score, d.primary])).toEqual([
      ['acc', 0, true],
      ['acc_norm', 1, false],
    ]);
  });

  it('rejects a choice item whose answer is not a choice', async () => {
    await expect(
      evaluate(tableScorable(tok, nll), [{ ...item, answer: 'Nowhere' }], { batchSize: 1 }),
    ).rejects.toThrow(/m1.*not one of its choices/);
  });

  it('stops between batches when the signal is aborted, leaking nothing', async () => {
    const before = tf.memory().numTensors;
    const ac = new AbortController();
    const items = Array.from({ length: 6 }, (_, i) => ({ ...item, id: `m${i}` }));
    const m = tableScorable(tok, nll);
    const run = evaluate(m, items, {
      batchSize: 2,
      signal: ac.signal,
      onProgress: (p) => {
        if (p.done === 4) ac.abort(new Error('cancelled'));
      },
    });
    await expect(run).rejects.toThrow('cancelled');
    expect(m.calls).toHaveLength(2);
    expect(tf.memory().numTensors).toBe(before);
    const pre = new AbortController();
    pre.abort();
    await expect(evaluate(m, items, { batchSize: 2, signal: pre.signal })).rejects.toThrow();
  });
});

describe('aggregate', () => {
  const ex = (domain: string, correct: boolean): ItemResult => ({
    id: domain,
    domain,
    metric: 'exact',
    correct,
    prediction: '',
    answer: '',
  });
  const mc = (domain: string, acc: boolean, norm: boolean): ItemResult => ({
    ...ex(domain, norm),
    metric: 'choice',
    choice: {
      gold: 0,
      logLik: [],
      logLikNorm: [],
      tokens: [],
      predAcc: acc ? 0 : 1,
      predNorm: norm ? 0 : 1,
      correctAcc: acc,
      correctNorm: norm,
    },
  });

  it('counts per (domain, metric) in order of first appearance with Wilson intervals', () => {
    const rows = aggregate([
      ex('code', true),
      mc('mc', true, false),
      ex('code', false),
      mc('mc', false, false),
      ex('code', true),
      mc('mc', true, true),
      ex('arith', false),
    ]);
    expect(rows.map((r) => [r.domain, r.metric, r.correct, r.n, r.primary])).toEqual([
      ['code', 'exact_match', 2, 3, true],
      ['mc', 'acc_norm', 1, 3, true],
      ['mc', 'acc', 2, 3, false],
      ['arith', 'exact_match', 0, 1, true],
    ]);
    expect(rows[0]!.score).toBeCloseTo(2 / 3, 12);
    expect([rows[0]!.ciLow, rows[0]!.ciHigh]).toEqual(Object.values(wilsonInterval(2, 3)));
    expect(aggregate([])).toEqual([]);
    // per-item outcomes in input order under each metric, for paired comparisons
    expect(rows.map((r) => r.outcomes)).toEqual(['101', '001', '101', '0']);
  });

  it('keys the outcomes by the items: the same items give the same key, other items another', () => {
    const items = [ex('code', true), { ...ex('code', false), id: 'code-2' }];
    const [a] = aggregate(items);
    const [b] = aggregate(items.map((r) => ({ ...r, correct: !r.correct })));
    expect(a!.itemsKey).toMatch(/^[0-9a-f]{64}$/);
    expect(b!.itemsKey).toBe(a!.itemsKey); // outcomes differ, items do not
    expect(aggregate([items[1]!, items[0]!])[0]!.itemsKey).not.toBe(a!.itemsKey);
    expect(aggregate([{ ...items[0]!, answer: 'x' }, items[1]!])[0]!.itemsKey).not.toBe(a!.itemsKey);
  });
});
