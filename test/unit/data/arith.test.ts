import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src-main/common/rng.js';
import { arithResponse, generateArithProblem } from '../../../src-main/data/arith.js';
import { buildSuite } from '../../../src-main/data/suite.js';
import { extractFinalAnswer } from '../../../src-main/data/template.js';

/**
 * An independent reading of the word problems: every sentence must match one of these patterns,
 * whose meaning is written here, not imported from the generator.
 */
function solve(prompt: string): number {
  const sentences = prompt.split(/(?<=[.?]) /);
  let v: number | undefined;
  let price: number | undefined;
  let person: string | undefined;
  const same = (p: string) => {
    if (person === undefined) person = p;
    expect(p).toBe(person);
  };
  const last = sentences.pop()!;
  for (const s of sentences) {
    let m: RegExpMatchArray | null;
    if ((m = s.match(/^(\w+) has (\d+) (\w+)\.$/))) {
      same(m[1]!);
      expect(v).toBeUndefined();
      v = Number(m[2]);
    } else if ((m = s.match(/^(\w+) buys (\d+) bags of (\d+) (\w+)\.$/))) {
      same(m[1]!);
      expect(v).toBeUndefined();
      v = Number(m[2]) * Number(m[3]);
    } else if ((m = s.match(/^An? (\w+) costs (\d+) coins\.$/))) {
      expect(s.startsWith('An ')).toBe(/^[aeiou]/.test(m[1]!));
      price = Number(m[2]);
    } else if (
      (m = s.match(/^(\w+) (?:buys|finds) (\d+) more\.$/)) ||
      (m = s.match(/^(\w+) gets (\d+) more from \w+\.$/))
    ) {
      same(m[1]!);
      v = v! + Number(m[2]);
    } else if ((m = s.match(/^(\w+) buys (\d+) (\w+)\.$/))) {
      same(m[1]!);
      expect(price).toBeDefined();
      v = v! - Number(m[2]) * price!;
    } else if ((m = s.match(/^(\w+) gives (\d+) to (\w+)\.$/))) {
      same(m[1]!);
      expect(m[3]).not.toBe(m[1]);
      v = v! - Number(m[2]);
    } else if ((m = s.match(/^(\w+) (?:loses|sells) (\d+)\.$/))) {
      same(m[1]!);
      v = v! - Number(m[2]);
    } else if ((m = s.match(/^(\w+) now has (\d+) times as many\.$/))) {
      same(m[1]!);
      v = v! * Number(m[2]);
    } else if ((m = s.match(/^(\w+) splits them into (\d+) equal groups and keeps one\.$/))) {
      same(m[1]!);
      expect(v! % Number(m[2])).toBe(0);
      v = v! / Number(m[2]);
    } else {
      throw new Error(`unrecognised sentence: ${s}`);
    }
    expect(v === undefined || (Number.isInteger(v) && v >= 0 && v < 1000)).toBe(true);
  }
  const q = last.match(/^How many (\w+) does (\w+) have (?:now|left)\?$/);
  expect(q, last).not.toBeNull();
  same(q![2]!);
  return v!;
}

/** Check every "a op b=c" step and that the chain ends in "#### answer". */
function checkChain(response: string): number {
  const m = response.match(/^(.*)\. #### (\d+)$/);
  expect(m, response).not.toBeNull();
  const steps = m![1]!.split('. ');
  let last = NaN;
  for (const step of steps) {
    const e = step.match(/^(\d+)([-+*/])(\d+)=(\d+)$/);
    expect(e, step).not.toBeNull();
    const [a, op, b, c] = [Number(e![1]), e![2], Number(e![3]), Number(e![4])];
    const want = op === '+' ? a + b : op === '-' ? a - b : op === '*' ? a * b : a / b;
    expect(c).toBe(want);
    last = c;
  }
  expect(Number(m![2])).toBe(last);
  return last;
}

describe('arith', () => {
  it('eval answers and training chains of thought are correct at every difficulty', () => {
    for (let d = 1; d <= 5; d++) {
      const suite = buildSuite({
        seed: 11,
        trainPerDomain: 150,
        evalPerDomain: 150,
        difficulty: { arith: d },
      });
      for (const item of suite.eval.filter((e) => e.domain === 'arith')) {
        expect(String(solve(item.prompt))).toBe(item.answer);
        expect(item.metric).toBe('exact');
      }
      for (const ex of suite.train.filter((e) => e.domain === 'arith')) {
        const v = solve(ex.prompt);
        expect(checkChain(ex.response)).toBe(v);
        expect(extractFinalAnswer(ex.response)).toBe(String(v));
      }
    }
  });

  it('difficulty sets the number of steps', () => {
    const rng = new Rng(3);
    const people = ['Mira', 'Tobin'];
    const mean = (d: number) => {
      let n = 0;
      for (let i = 0; i < 200; i++) n += generateArithProblem(rng, d, people).steps.length;
      return n / 200;
    };
    expect(mean(1)).toBe(1);
    expect(mean(2)).toBe(2);
    expect(mean(4)).toBe(3);
    expect(mean(5)).toBeGreaterThan(3);
  });

  it('can answer without a chain of thought', () => {
    const p = generateArithProblem(new Rng(1), 3, ['Mira', 'Tobin']);
    expect(arithResponse(p, false)).toBe(String(p.answer));
    const suite = buildSuite({ seed: 1, trainPerDomain: 20, evalPerDomain: 5, arithChainOfThought: false });
    for (const ex of suite.train.filter((e) => e.domain === 'arith')) expect(ex.response).toMatch(/^\d+$/);
  });
});
