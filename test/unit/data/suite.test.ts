import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src-main/common/errors.js';
import { Rng } from '../../../src-main/common/rng.js';
import { generateArithProblem } from '../../../src-main/data/arith.js';
import { generateCodeProblem } from '../../../src-main/data/code.js';
import { CorpusStream } from '../../../src-main/data/corpus.js';
import { WorldIndex, generateWorld } from '../../../src-main/data/world.js';
import {
  DOMAINS,
  buildSuite,
  formatPrompt,
  normalizeAnswer,
  normalizePrompt,
  renderExample,
  type EvalItem,
  type Example,
  type Suite,
  type World,
} from '../../../src-main/data/index.js';

const hash = (s: Suite, docs = 400) =>
  createHash('sha256')
    .update(JSON.stringify({ w: s.world, t: s.train, e: s.eval, c: s.pretrainCorpus(docs), o: s.options }))
    .digest('hex');

const byDomain = <T extends { domain: string }>(xs: T[], d: string) => xs.filter((x) => x.domain === d);

/** The answer of a question key ("subject/relation" or "subject/hop1.hop2") looked up in the world. */
function lookup(world: World, key: string): string | undefined {
  const [subject, path] = key.split('/') as [string, string];
  let cur: string | undefined = subject;
  for (const rel of path.split('.')) {
    cur = world.facts.find((f) => f.subject === cur && f.relation === rel)?.object;
    if (cur === undefined) return undefined;
  }
  return cur;
}

const isAscii = (s: string) => /^[\x20-\x7e\n]*$/.test(s);

describe('buildSuite', () => {
  const base = { seed: 7, trainPerDomain: 300, evalPerDomain: 100 };
  const suite = buildSuite(base);

  it('is deterministic under a seed and changes with it', () => {
    expect(hash(buildSuite(base))).toBe(hash(suite));
    expect(hash(buildSuite({ ...base, seed: 8 }))).not.toBe(hash(suite));
    expect(hash(buildSuite({ ...base, difficulty: { code: 4 } }))).not.toBe(hash(suite));
  });

  it('has the requested counts, unique ids and shuffled training order', () => {
    for (const d of DOMAINS) {
      expect(byDomain(suite.train, d)).toHaveLength(300);
      expect(byDomain(suite.eval, d)).toHaveLength(100);
    }
    const ids = [...suite.train.map((e) => e.id), ...suite.eval.map((e) => e.id)];
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(suite.train.slice(0, 20).map((e) => e.domain)).size).toBeGreaterThan(1);
    expect(suite.eval.map((e) => e.domain)).toEqual(DOMAINS.flatMap((d) => Array<string>(100).fill(d)));
  });

  it('keeps train and eval disjoint (prompts, (question, answer) pairs, question keys)', () => {
    for (const s of [suite, buildSuite({ ...base, difficulty: { qa: 5, mc: 5 }, trainPerDomain: 1000 })]) {
      const trainPrompts = new Set(s.train.map((e) => normalizePrompt(e.prompt)));
      for (const it of s.eval) expect(trainPrompts.has(normalizePrompt(it.prompt)), it.prompt).toBe(false);
      // question (MC: the question line without the choices) with its answer
      const question = (d: string, p: string) => normalizePrompt(d === 'mc' ? p.split('\n')[0]! : p);
      const qa = (d: string, p: string, a: string) => `${question(d, p)}=>${normalizeAnswer(a)}`;
      const trainPairs = new Set(s.train.map((e) => qa(e.domain, e.prompt, e.response)));
      for (const it of s.eval)
        expect(trainPairs.has(qa(it.domain, it.prompt, it.answer)), it.prompt).toBe(false);
      // and no QA eval question is asked (with its answer) as an MC training question, or vice versa
      const trainQuestions = new Set(
        s.train.map((e) => `${question('mc', e.prompt)}=>${normalizeAnswer(e.response)}`),
      );
      for (const it of s.eval.filter((e) => e.domain === 'qa' || e.domain === 'mc')) {
        expect(
          trainQuestions.has(`${question('mc', it.prompt)}=>${normalizeAnswer(it.answer)}`),
          it.prompt,
        ).toBe(false);
      }
      // QA/MC: held-out keys never appear in training
      const trainKeys = new Set(s.train.flatMap((e) => (e.facts ? [e.facts[0]!] : [])));
      const evalKnowledge = s.eval.filter((e) => e.domain === 'qa' || e.domain === 'mc');
      expect(evalKnowledge.every((e) => e.facts && e.facts.length > 0)).toBe(true);
      for (const it of evalKnowledge) expect(trainKeys.has(it.facts![0]!), it.facts![0]).toBe(false);
    }
  });

  it('answers QA and MC items from the world, about the subject they name', () => {
    const items: (Example | EvalItem)[] = [...suite.train, ...suite.eval].filter(
      (x) => x.domain === 'qa' || x.domain === 'mc',
    );
    for (const it of items) {
      const key = it.facts![0]!;
      const answer = 'answer' in it ? it.answer : it.response;
      const question = it.prompt.split('\n')[0]!;
      if (question.startsWith('Which of these')) {
        // reverse MC: the answer is the subject of the key; its object is named in the question
        expect(key.split('/')[0]).toBe(answer);
        const object = lookup(suite.world, key)!;
        expect(question).toContain(object);
        const relation = key.split('/')[1]!;
        for (const c of (it as EvalItem).choices ?? []) {
          if (c === answer) continue;
          expect(lookup(suite.world, `${c}/${relation}`), `${c} is a wrong choice`).not.toBe(object);
        }
      } else {
        expect(lookup(suite.world, key)).toBe(answer);
        expect(question).toContain(key.split('/')[0]);
      }
    }
  });

  it('makes well-formed MC items: four distinct choices, the answer among them, in the prompt', () => {
    const mc = [
      ...byDomain(suite.eval, 'mc'),
      ...byDomain(buildSuite({ ...base, difficulty: { mc: 4 } }).eval, 'mc'),
    ];
    const positions = [0, 0, 0, 0];
    for (const it of mc) {
      expect(it.metric).toBe('choice');
      const choices = it.choices!;
      expect(choices).toHaveLength(4);
      expect(new Set(choices).size).toBe(4);
      expect(choices).toContain(it.answer);
      positions[choices.indexOf(it.answer)]!++;
      expect(it.prompt.split('\n')[1]).toBe(choices.map((c, i) => `${'ABCD'[i]}) ${c}`).join(' '));
    }
    for (const p of positions) expect(p / mc.length).toBeGreaterThan(0.12);
    for (const it of suite.eval.filter((e) => e.domain !== 'mc')) {
      expect(it.metric).toBe('exact');
      expect(it.choices).toBeUndefined();
    }
  });

  it('keeps every item ASCII, single-line in its answer and short at every difficulty', () => {
    for (let d = 1; d <= 5; d++) {
      const s = buildSuite({
        seed: 3,
        trainPerDomain: 150,
        evalPerDomain: 60,
        difficulty: { arith: d, code: d, qa: d, mc: d },
      });
      for (const dom of DOMAINS) {
        const lens: number[] = [];
        for (const ex of byDomain(s.train, dom)) {
          const r = renderExample(ex);
          expect(isAscii(ex.prompt) && isAscii(ex.response)).toBe(true);
          expect(ex.prompt.trim()).not.toBe('');
          expect(ex.response.trim()).not.toBe('');
          expect(ex.response).not.toContain('\n');
          lens.push(r.prompt.length + r.response.length);
        }
        for (const it of byDomain(s.eval, dom)) {
          expect(isAscii(it.prompt) && isAscii(it.answer)).toBe(true);
          expect(it.answer).not.toContain('\n');
          expect(it.answer.trim()).not.toBe('');
          lens.push(formatPrompt(it.prompt).length + it.answer.length + 1);
        }
        lens.sort((a, b) => a - b);
        const median = lens[lens.length >> 1]!;
        expect(median, `${dom} d${d} median`).toBeGreaterThanOrEqual(35);
        expect(median, `${dom} d${d} median`).toBeLessThanOrEqual(180);
        expect(lens[lens.length - 1]!, `${dom} d${d} max`).toBeLessThanOrEqual(230);
      }
    }
  });

  it('adds two-hop questions at difficulty 4 and holds out phrasings at 5', () => {
    const hops = (s: Suite) => s.eval.filter((e) => e.domain === 'qa' && e.facts![0]!.includes('.')).length;
    const level3 = buildSuite({ ...base, difficulty: { qa: 3 } });
    expect(hops(level3)).toBe(0);
    expect(hops(buildSuite({ ...base, difficulty: { qa: 4 } }))).toBeGreaterThan(0);
    const s5 = buildSuite({ ...base, difficulty: { qa: 5 } });
    const template = (it: { prompt: string; facts?: string[] }) =>
      it.prompt.replace(it.facts![0]!.split('/')[0]!, '{s}');
    const trainTemplates = new Set(byDomain(s5.train, 'qa').map(template));
    for (const it of byDomain(s5.eval, 'qa')) expect(trainTemplates.has(template(it)), it.prompt).toBe(false);
    // below 5, eval phrasings are ones training also uses
    const trainT3 = new Set(byDomain(level3.train, 'qa').map(template));
    expect(byDomain(level3.eval, 'qa').some((it) => trainT3.has(template(it)))).toBe(true);
  });

  it('grows the world when evalPerDomain needs it, and refuses an explicit world that is too small', () => {
    const big = buildSuite({ seed: 1, trainPerDomain: 10, evalPerDomain: 300, difficulty: { qa: 1, mc: 1 } });
    expect(big.options.worldSize).toBeGreaterThan(100);
    expect(byDomain(big.eval, 'qa')).toHaveLength(300);
    expect(() => buildSuite({ seed: 1, trainPerDomain: 10, evalPerDomain: 300, worldSize: 40 })).toThrow(
      UserError,
    );
  });

  it('validates options', () => {
    const bad = [
      { ...base, trainPerDomain: -1 },
      { ...base, evalPerDomain: 1.5 },
      { ...base, seed: Number.NaN },
      { ...base, difficulty: { arith: 6 } },
      { ...base, difficulty: { poetry: 2 } as never },
      { ...base, worldSize: 5 },
      { ...base, heldOutFraction: 0 },
    ];
    for (const o of bad) expect(() => buildSuite(o), JSON.stringify(o)).toThrow(UserError);
    expect(() => suite.pretrainCorpus({ docs: 5, mix: { code: -1 } })).toThrow(UserError);
  });
});

describe('pretrainCorpus', () => {
  const suite = buildSuite({
    seed: 7,
    trainPerDomain: 50,
    evalPerDomain: 100,
    difficulty: { arith: 1, code: 1 },
  });

  it('is deterministic and prefix-stable, sized by documents or bytes', () => {
    const a = suite.pretrainCorpus(300);
    expect(a).toHaveLength(300);
    expect(suite.pretrainCorpus(100)).toEqual(a.slice(0, 100));
    expect(
      buildSuite({
        seed: 7,
        trainPerDomain: 50,
        evalPerDomain: 100,
        difficulty: { arith: 1, code: 1 },
      }).pretrainCorpus(300),
    ).toEqual(a);
    const b = suite.pretrainCorpus({ bytes: 20_000 });
    const total = b.reduce((n, d) => n + d.length, 0);
    expect(total).toBeGreaterThanOrEqual(20_000);
    expect(total - b[b.length - 1]!.length).toBeLessThan(20_000);
    expect(b).toEqual(a.slice(0, b.length));
    expect(suite.pretrainCorpus({ docs: 10, bytes: 1e9 })).toHaveLength(10);
  });

  it('has short ASCII documents with no blank lines, mixing knowledge, arithmetic, code and Q/A', () => {
    const docs = suite.pretrainCorpus(2000);
    for (const d of docs) {
      expect(isAscii(d)).toBe(true);
      expect(d.length).toBeGreaterThan(10);
      expect(d.length).toBeLessThanOrEqual(250);
      expect(d).not.toMatch(/\n\s*\n/);
      expect(d).not.toMatch(/\s$/);
    }
    const share = (re: RegExp) => docs.filter((d) => re.test(d)).length / docs.length;
    expect(share(/So the answer is|\d[-+*/]\d+=\d/)).toBeGreaterThan(0.1);
    expect(share(/print\(| is \d/)).toBeGreaterThan(0.1);
    expect(share(/^Program:\n/)).toBeGreaterThan(0.05);
    expect(share(/^Q: .+\n(.+\n)*A: .+/)).toBeGreaterThan(0.1);
  });

  it('states every fact of the world (so held-out questions are answerable)', () => {
    const w = suite.world;
    const docs = suite.pretrainCorpus({
      docs: w.entities.length,
      mix: { knowledge: 1, arith: 0, code: 0, instruct: 0 },
    });
    const docOf = new Map<string, string>();
    for (const e of w.entities) {
      const own = w.facts.filter((f) => f.subject === e.name);
      const doc = docs.find((d) =>
        own.every((f) => new RegExp(`\\b${e.name}\\b`).test(d) && new RegExp(`\\b${f.object}\\b`).test(d)),
      );
      expect(doc, e.name).toBeDefined();
      docOf.set(e.name, doc!);
    }
    expect(docOf.size).toBe(w.entities.length);
    // with the default mix, a few epochs' worth of documents covers every entity too
    const mixed = suite.pretrainCorpus(w.entities.length * 4).join('\n');
    for (const e of w.entities) expect(mixed).toContain(e.name);
  });

  it('never contains an eval arithmetic problem or eval program, nor one of a larger eval set', () => {
    const docs = suite.pretrainCorpus(4000);
    const text = docs.join('\n\n');
    // the corpus of a 100-item suite is also clean for a 250-item eval set of the same world
    const larger = buildSuite({
      seed: 7,
      trainPerDomain: 1,
      evalPerDomain: 250,
      // qa/mc at level 2 hold 250 held-out questions in the same 100-entity world
      difficulty: { arith: 1, code: 1, qa: 2, mc: 2 },
    });
    expect(larger.world).toEqual(suite.world);
    for (const s of [suite, larger]) {
      for (const it of s.eval.filter((e) => e.domain === 'arith')) expect(text).not.toContain(it.prompt);
      for (const it of s.eval.filter((e) => e.domain === 'code')) {
        const program = it.prompt.slice(it.prompt.indexOf('\n') + 1);
        expect(
          docs.some(
            (d) =>
              d.includes(`:\n${program}\n`) ||
              d.includes(`code\n${program}\n`) ||
              d.includes(`?\n${program}\nA: `),
          ),
          program,
        ).toBe(false);
      }
    }
  });
});

describe('CorpusStream', () => {
  it('skips every program and problem it is told to avoid', () => {
    const world = generateWorld(1, 40);
    const rng = new Rng(99);
    const avoid = new Set<string>();
    for (let i = 0; i < 6000; i++) avoid.add(generateCodeProblem(rng, 1).program);
    const people = world.entities.filter((e) => e.kind === 'person').map((e) => e.name);
    for (let i = 0; i < 6000; i++) avoid.add(generateArithProblem(rng, 1, people).prompt);
    const stream = new CorpusStream(
      1,
      new WorldIndex(world),
      { knowledge: 0, arith: 1, code: 1, instruct: 0 },
      { avoid, trainKeys: [], heldPairs: new Set() },
    );
    const docs = stream.take({ docs: 3000 });
    for (const d of docs) {
      const program = d.match(/^(?:Program:|The code)\n([\s\S]*)\n(?:Output: |prints )/)?.[1];
      if (program !== undefined) expect(avoid.has(program), program).toBe(false);
      const problem = d.match(/^(.*\?) \d/)?.[1];
      if (problem !== undefined) expect(avoid.has(problem), problem).toBe(false);
    }
  });
});

describe('source hygiene', () => {
  it('draws randomness only from Rng', () => {
    const dir = join(import.meta.dirname, '../../../src-main/data');
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.ts'))) {
      const src = readFileSync(join(dir, f), 'utf8');
      expect(src, f).not.toMatch(/Math\.random|Date\.now|new Date\(/);
    }
  });
});
