import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src-main/common/rng.js';
import { generateArithProblem } from '../../../src-main/data/arith.js';
import { generateCodeProblem } from '../../../src-main/data/code.js';
import {
  CorpusStream,
  DEFAULT_MIX,
  LEVEL_WEIGHTS,
  MAX_INSTRUCT_PAIRS,
  questionAnswerKey,
  resolveLevels,
} from '../../../src-main/data/corpus.js';
import { enumerateKeys, splitKeys } from '../../../src-main/data/knowledge.js';
import { WorldIndex, fill, generateWorld } from '../../../src-main/data/world.js';
import {
  CODE_PROMPT_HEADER,
  DOMAINS,
  MAX_DOC_BYTES,
  buildSuite,
  extractFinalAnswer,
  formatPrompt,
  normalizePrompt,
  type EvalItem,
} from '../../../src-main/data/index.js';

interface Pair {
  prompt: string;
  response: string;
}

const INSTRUCT_ONLY = { knowledge: 0, arith: 0, code: 0, instruct: 1 };

/** The question/answer pairs of an instruct document; throws when it is not in the template. */
function pairsOf(doc: string): Pair[] {
  return doc.split(/\n(?=Q: )/).map((chunk) => {
    const m = /^Q: ([\s\S]+)\nA: ([^\n]+)$/.exec(chunk);
    if (!m) throw new Error(`not a template pair: ${JSON.stringify(chunk)}`);
    return { prompt: m[1]!, response: m[2]! };
  });
}

const isInstruct = (d: string) => d.startsWith('Q: ');
const domainOf = (p: Pair) =>
  p.prompt.startsWith(CODE_PROMPT_HEADER)
    ? 'code'
    : /\nA\) .+ B\) .+ C\) .+ D\) .+$/.test(p.prompt)
      ? 'mc'
      : p.response.includes('####')
        ? 'arith'
        : 'qa';

describe('instruct documents', () => {
  const suite = buildSuite({ seed: 5, trainPerDomain: 1, evalPerDomain: 50 });
  const docs = suite.pretrainCorpus({ docs: 1500, mix: INSTRUCT_ONLY });
  const pairs = docs.flatMap(pairsOf);

  it('are 1–3 pairs in the instruction template, joined by the response terminator', () => {
    const counts = new Set<number>();
    for (const d of docs) {
      expect(d.length).toBeLessThanOrEqual(MAX_DOC_BYTES);
      expect(d).toMatch(/^[\x20-\x7e\n]+$/);
      expect(d).not.toMatch(/\n\s*\n|\s$/);
      const ps = pairsOf(d);
      counts.add(ps.length);
      expect(ps.length).toBeLessThanOrEqual(MAX_INSTRUCT_PAIRS);
      // the document is exactly formatPrompt(prompt) + response, pairs joined by "\n"
      expect(ps.map((p) => formatPrompt(p.prompt) + p.response).join('\n')).toBe(d);
    }
    expect([...counts].sort()).toEqual([1, 2, 3]);
  });

  it('render every domain as the suite does, with correct answers', () => {
    const byDomain = new Map<string, Pair[]>(DOMAINS.map((d) => [d, []]));
    for (const p of pairs) byDomain.get(domainOf(p))!.push(p);
    for (const d of DOMAINS) expect(byDomain.get(d)!.length / pairs.length, d).toBeGreaterThan(0.15);
    // arith: the SFT chain of thought, whose equations are right and end in the final answer
    for (const p of byDomain.get('arith')!) {
      expect(p.response).toMatch(/^(\d+[-+*/]\d+=\d+\. )+#### \d+$/);
      const eqs = [...p.response.matchAll(/(\d+)([-+*/])(\d+)=(\d+)/g)];
      for (const [, a, op, b, r] of eqs) {
        const [x, y] = [Number(a), Number(b)];
        const v = op === '+' ? x + y : op === '-' ? x - y : op === '*' ? x * y : x / y;
        expect(v, p.response).toBe(Number(r));
      }
      expect(extractFinalAnswer(p.response)).toBe(eqs[eqs.length - 1]![4]);
    }
    // mc: "question\nA) w B) x C) y D) z", four distinct options, the answer one of them
    for (const p of byDomain.get('mc')!) {
      const options = p.prompt
        .split('\n')[1]!
        .split(/ ?[A-D]\) /)
        .slice(1);
      expect(options).toHaveLength(4);
      expect(new Set(options).size).toBe(4);
      expect(options).toContain(p.response);
    }
    // qa: one line, answered with a value the world has
    const values = new Set(suite.world.facts.map((f) => f.object));
    for (const p of byDomain.get('qa')!) {
      expect(p.prompt).not.toContain('\n');
      expect(values.has(p.response), p.prompt).toBe(true);
    }
  });

  it('never contain an eval item, at any difficulty or eval size', () => {
    // the pre-training job builds its suite with 50 eval items; `upit eval` / `prepare` use others
    const prompts = new Set(pairs.map((p) => normalizePrompt(p.prompt)));
    const questionLines = new Set(pairs.map((p) => normalizePrompt(p.prompt.split('\n')[0]!)));
    const qaPairs = new Set(pairs.map((p) => questionAnswerKey(p.prompt, p.response)));
    const evalItems: EvalItem[] = [];
    for (let d = 1; d <= 5; d++) {
      for (const n of [50, 100]) {
        const e = buildSuite({
          seed: 5,
          trainPerDomain: 1,
          evalPerDomain: n,
          difficulty: { arith: d, code: d, qa: d, mc: d },
        });
        expect(e.world).toEqual(suite.world);
        evalItems.push(...e.eval);
      }
    }
    for (const it of evalItems) {
      expect(prompts.has(normalizePrompt(it.prompt)), it.prompt).toBe(false);
      if (it.domain !== 'qa' && it.domain !== 'mc') continue;
      expect(qaPairs.has(questionAnswerKey(it.prompt, it.answer)), it.prompt).toBe(false);
      // a forward question names its (held-out) key: never asked at all
      const question = it.prompt.split('\n')[0]!;
      if (!question.startsWith('Which of these'))
        expect(questionLines.has(normalizePrompt(question)), question).toBe(false);
    }
  });

  it('are deterministic by seed and prefix-stable, with the default mix too', () => {
    const again = buildSuite({ seed: 5, trainPerDomain: 1, evalPerDomain: 50 });
    expect(again.pretrainCorpus({ docs: 1500, mix: INSTRUCT_ONLY })).toEqual(docs);
    expect(again.pretrainCorpus({ docs: 300, mix: INSTRUCT_ONLY })).toEqual(docs.slice(0, 300));
    const other = buildSuite({ seed: 6, trainPerDomain: 1, evalPerDomain: 50 });
    expect(other.pretrainCorpus({ docs: 300, mix: INSTRUCT_ONLY })).not.toEqual(docs.slice(0, 300));
    const mixed = suite.pretrainCorpus(3000);
    expect(again.pretrainCorpus(1000)).toEqual(mixed.slice(0, 1000));
    const share = mixed.filter(isInstruct).length / mixed.length;
    const expected = DEFAULT_MIX.instruct / Object.values(DEFAULT_MIX).reduce((a, b) => a + b, 0);
    expect(Math.abs(share - expected)).toBeLessThan(0.03);
    for (const d of mixed.filter(isInstruct)) expect(() => pairsOf(d)).not.toThrow();
  });
});

describe('corpus difficulty levels', () => {
  const suite = buildSuite({ seed: 5, trainPerDomain: 1, evalPerDomain: 50 });
  const arithPairs = (levels: number[]) =>
    suite
      .pretrainCorpus({ docs: 600, mix: INSTRUCT_ONLY, levels })
      .flatMap(pairsOf)
      .filter((p) => domainOf(p) === 'arith');
  const steps = (p: Pair) => [...p.response.matchAll(/\d+[-+*/]\d+=\d+/g)].length;

  it('draw arithmetic and programs at the weighted levels only', () => {
    const easy = arithPairs([1, 0, 0, 0, 0]);
    expect(easy.length).toBeGreaterThan(50);
    for (const p of easy) {
      expect(steps(p), p.response).toBe(1); // level 1: one step of + or −, numbers ≤ 10
      const [a, b] = [...p.response.matchAll(/(\d+)[-+](\d+)=/g)][0]!.slice(1).map(Number);
      expect(Math.max(a!, b!), p.response).toBeLessThanOrEqual(10);
    }
    for (const p of arithPairs([0, 0, 0, 0, 1])) expect(steps(p), p.response).toBeGreaterThanOrEqual(3);
    // mostly level 1: one-step problems dominate, other levels still appear
    const tilted = arithPairs([0.8, 0.2, 0, 0, 0]).map(steps);
    const oneStep = tilted.filter((n) => n === 1).length / tilted.length;
    expect(oneStep).toBeGreaterThan(0.65);
    expect(oneStep).toBeLessThan(0.95);
  });

  it('are part of the corpus identity: deterministic, and a new stream for other weights', () => {
    const a = suite.pretrainCorpus({ docs: 300, levels: [0.6, 0.25, 0.1, 0.05, 0] });
    const again = buildSuite({ seed: 5, trainPerDomain: 1, evalPerDomain: 50 });
    expect(again.pretrainCorpus({ docs: 300, levels: [0.6, 0.25, 0.1, 0.05, 0] })).toEqual(a);
    expect(a).not.toEqual(suite.pretrainCorpus(300));
    // weights are relative: scaled weights are the same stream
    expect(again.pretrainCorpus({ docs: 300, levels: [6, 2.5, 1, 0.5, 0] })).toEqual(a);
  });

  it('keep eval items out of a tilted corpus too', () => {
    const docs = suite.pretrainCorpus({ docs: 1500, mix: INSTRUCT_ONLY, levels: [1, 0, 0, 0, 0] });
    const prompts = new Set(docs.flatMap(pairsOf).map((p) => normalizePrompt(p.prompt)));
    const e = buildSuite({ seed: 5, trainPerDomain: 1, evalPerDomain: 120 });
    for (const it of e.eval) expect(prompts.has(normalizePrompt(it.prompt)), it.prompt).toBe(false);
  });

  it('must be five non-negative weights with a positive sum', () => {
    expect(resolveLevels(undefined)).toEqual([...LEVEL_WEIGHTS]);
    expect(resolveLevels([2, 2, 0, 0, 0])).toEqual([0.5, 0.5, 0, 0, 0]);
    expect(() => resolveLevels([1, 2])).toThrow(/5 weights, one per difficulty level \(got 2\)/);
    expect(() => resolveLevels([1, -1, 0, 0, 0])).toThrow(/level 2 must be a non-negative number/);
    expect(() => resolveLevels([0, 0, 0, 0, 0])).toThrow(/positive weight/);
    expect(() => suite.pretrainCorpus({ docs: 10, levels: [1, Number.NaN, 0, 0, 0] })).toThrow(/level 2/);
  });
});

describe('recall documents', () => {
  const suite = buildSuite({ seed: 5, trainPerDomain: 1, evalPerDomain: 50 });

  it('repeat a run of random strings of letters and digits after "Again:"', () => {
    const docs = suite.pretrainCorpus({
      docs: 400,
      mix: { knowledge: 0, arith: 0, code: 0, instruct: 0, recall: 1 },
    });
    const runs = new Set<string>();
    const lengths = new Set<number>();
    for (const d of docs) {
      expect(d.length).toBeLessThanOrEqual(MAX_DOC_BYTES);
      const m = /^([a-z0-9 ]+)\. Again: \1\.$/.exec(d);
      expect(m, d).not.toBeNull();
      const chunks = m![1]!.split(' ');
      expect(chunks.length).toBeGreaterThanOrEqual(1);
      expect(chunks.length).toBeLessThanOrEqual(3);
      for (const c of chunks) expect(c).toMatch(/^[a-z0-9]{4,12}$/);
      runs.add(m![1]!);
      lengths.add(m![1]!.length);
    }
    expect(runs.size).toBe(docs.length); // random: no run twice
    expect(lengths.size).toBeGreaterThan(15); // the copy distance varies: no fixed offset to learn
  });

  it('take their share of a mix, and a zero share leaves the corpus as it was', () => {
    const mixed = suite.pretrainCorpus({ docs: 2000, mix: { ...DEFAULT_MIX, recall: 0.25 } });
    const share = mixed.filter((d) => / Again: /.test(d)).length / mixed.length;
    expect(Math.abs(share - 0.25 / 1.25)).toBeLessThan(0.03);
    const again = buildSuite({ seed: 5, trainPerDomain: 1, evalPerDomain: 50 });
    expect(again.pretrainCorpus({ docs: 300, mix: { recall: 0 } })).toEqual(suite.pretrainCorpus(300));
  });
});

describe('CorpusStream instruct pairs', () => {
  const world = generateWorld(2, 60);
  const index = new WorldIndex(world);
  const keys = enumerateKeys(index);
  const held = splitKeys(keys, Rng.derive(2, 'split'), 0.3);
  const trainKeys = keys.filter((k) => !held.has(k.key));

  it('ask only about the training keys given, never in their held-out last phrasing', () => {
    const allowed = trainKeys.filter((k) => k.questions.length >= 2).slice(0, 12);
    const forward = new Map<string, string>();
    const lastPhrasing = new Set<string>();
    for (const k of allowed) {
      k.questions.forEach((q, i) => {
        const text = fill(q, k.subject);
        if (
          i === k.questions.length - 1 &&
          !k.questions.slice(0, -1).some((p) => fill(p, k.subject) === text)
        )
          lastPhrasing.add(text);
        else forward.set(text, k.answer);
      });
    }
    const reverse = new Set(
      allowed.flatMap((k) => k.reverse.map((r) => `${fill(r, '', k.answer)}=>${k.subject}`)),
    );
    const stream = new CorpusStream(2, index, INSTRUCT_ONLY, {
      avoid: new Set(),
      trainKeys: allowed,
      heldPairs: new Set(),
    });
    let knowledge = 0;
    for (let i = 0; i < 2000; i++) {
      const p = stream.instructPair();
      if (p.domain !== 'qa' && p.domain !== 'mc') continue;
      knowledge++;
      const question = p.prompt.split('\n')[0]!;
      expect(lastPhrasing.has(question), question).toBe(false);
      if (forward.has(question)) expect(p.response, question).toBe(forward.get(question));
      else expect(reverse.has(`${question}=>${p.response}`), `${question} => ${p.response}`).toBe(true);
    }
    expect(knowledge).toBeGreaterThan(600);
  });

  it('skip held-out question/answer pairs and avoided arithmetic problems and programs', () => {
    const rng = new Rng(7);
    const people = index.entities('person');
    const avoid = new Set<string>();
    for (let i = 0; i < 4000; i++) avoid.add(generateCodeProblem(rng, 1).program);
    for (let i = 0; i < 4000; i++) avoid.add(generateArithProblem(rng, 1, people).prompt);
    // hold out every QA question of half the training keys
    const heldPairs = new Set<string>();
    for (const k of trainKeys.filter((_, i) => i % 2 === 0))
      for (const q of k.questions) heldPairs.add(questionAnswerKey(fill(q, k.subject), k.answer));
    const stream = new CorpusStream(3, index, INSTRUCT_ONLY, { avoid, trainKeys, heldPairs });
    const seen = new Set<string>();
    for (let i = 0; i < 4000; i++) {
      const p = stream.instructPair();
      seen.add(p.domain);
      if (p.domain === 'arith') expect(avoid.has(p.prompt), p.prompt).toBe(false);
      if (p.domain === 'code') {
        expect(p.prompt.startsWith(CODE_PROMPT_HEADER)).toBe(true);
        expect(avoid.has(p.prompt.slice(CODE_PROMPT_HEADER.length)), p.prompt).toBe(false);
      }
      if (p.domain === 'qa' || p.domain === 'mc')
        expect(heldPairs.has(questionAnswerKey(p.prompt, p.response)), p.prompt).toBe(false);
    }
    expect([...seen].sort()).toEqual([...DOMAINS].sort());
  });

  it('fall back to arithmetic and code when there are no training keys', () => {
    const stream = new CorpusStream(4, index, INSTRUCT_ONLY, {
      avoid: new Set(),
      trainKeys: [],
      heldPairs: new Set(),
    });
    const domains = new Set(Array.from({ length: 200 }, () => stream.instructPair().domain));
    expect([...domains].sort()).toEqual(['arith', 'code']);
  });
});
