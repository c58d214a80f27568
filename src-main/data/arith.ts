/**
 * GSM8K-like multi-step arithmetic word problems with small numbers.
 *
 *   "Mira has 12 pens. Mira gives 5 to Tobin. Mira buys 7 more. How many pens does Mira have now?"
 *   → training response "12-5=7. 7+7=14. #### 14", eval answer "14".
 *
 * Difficulty (steps = arithmetic operations, all intermediate values are integers in [0, max]):
 *   1: 1 step of + or −, numbers ≤ 10, results ≤ 20
 *   2: 2 steps of + − (or "k bags of n" ×), results ≤ 50
 *   3: 2 steps of + − ×, prices ("A pen costs 3 coins"), results ≤ 200
 *   4: 3 steps of + − ×, results ≤ 500
 *   5: 3–4 steps of + − × ÷, results ≤ 999
 */
import type { Rng } from '../common/rng.js';
import { FINAL_ANSWER_MARKER } from './template.js';

/** Upper bound on prompt + chain-of-thought response bytes (before the template's 8 bytes). */
export const MAX_TEXT_BYTES = 200;

export interface ArithProblem {
  prompt: string;
  /** Chain-of-thought equations, e.g. ["12-5=7", "7+7=14"]. */
  steps: string[];
  answer: number;
}

interface Level {
  minSteps: number;
  maxSteps: number;
  ops: Op[];
  max: number;
  operand: number;
  starts: Start[];
}

type Op = 'add' | 'sub' | 'mul' | 'div';
type Start = 'has' | 'bags' | 'price';

const LEVELS: Record<number, Level> = {
  1: { minSteps: 1, maxSteps: 1, ops: ['add', 'sub'], max: 20, operand: 10, starts: ['has'] },
  2: { minSteps: 2, maxSteps: 2, ops: ['add', 'sub'], max: 50, operand: 20, starts: ['has', 'has', 'bags'] },
  3: {
    minSteps: 2,
    maxSteps: 2,
    ops: ['add', 'sub', 'mul'],
    max: 200,
    operand: 30,
    starts: ['has', 'bags', 'price'],
  },
  4: {
    minSteps: 3,
    maxSteps: 3,
    ops: ['add', 'sub', 'mul'],
    max: 500,
    operand: 50,
    starts: ['has', 'bags', 'price'],
  },
  5: {
    minSteps: 3,
    maxSteps: 4,
    ops: ['add', 'sub', 'mul', 'div'],
    max: 999,
    operand: 60,
    starts: ['has', 'bags', 'price'],
  },
};

const ITEMS: readonly [string, string][] = [
  ['apple', 'apples'],
  ['pen', 'pens'],
  ['book', 'books'],
  ['egg', 'eggs'],
  ['card', 'cards'],
  ['stamp', 'stamps'],
  ['shell', 'shells'],
  ['cookie', 'cookies'],
  ['marble', 'marbles'],
  ['cup', 'cups'],
];

const ADD = ['{P} buys {n} more.', '{P} finds {n} more.', '{P} gets {n} more from {Q}.'];
const SUB = ['{P} gives {n} to {Q}.', '{P} loses {n}.', '{P} sells {n}.'];
const MUL = ['{P} now has {n} times as many.'];
const DIV = ['{P} splits them into {n} equal groups and keeps one.'];

function between(rng: Rng, lo: number, hi: number): number {
  return lo + rng.int(hi - lo + 1);
}

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)]!;
}

/**
 * One problem at `difficulty` (1..5). `people` supplies names (at least two distinct ones).
 */
export function generateArithProblem(rng: Rng, difficulty: number, people: readonly string[]): ArithProblem {
  const level = LEVELS[difficulty];
  if (!level) throw new Error(`arith difficulty ${difficulty} out of range`);
  for (;;) {
    const p = tryProblem(rng, level, people);
    if (p) return p;
  }
}

function tryProblem(rng: Rng, level: Level, people: readonly string[]): ArithProblem | undefined {
  const P = pick(rng, people);
  let Q = pick(rng, people);
  while (Q === P) Q = pick(rng, people);
  const total = between(rng, level.minSteps, level.maxSteps);
  const start = pick(rng, level.starts);
  const sentences: string[] = [];
  const steps: string[] = [];
  let v: number;
  let question: string;
  if (start === 'price' && total >= 2) {
    const [thing, things] = pick(rng, ITEMS);
    const cost = between(rng, 2, 9);
    const k = between(rng, 2, 5);
    const spent = cost * k;
    const had = between(rng, spent, Math.min(level.max, spent + level.operand));
    v = had - spent;
    sentences.push(
      `${P} has ${had} coins.`,
      `${/^[aeiou]/.test(thing) ? 'An' : 'A'} ${thing} costs ${cost} coins.`,
      `${P} buys ${k} ${things}.`,
    );
    steps.push(`${k}*${cost}=${spent}`, `${had}-${spent}=${v}`);
    question = `How many coins does ${P} have left?`;
  } else {
    const plural = pick(rng, ITEMS)[1];
    if (start === 'bags') {
      const a = between(rng, 2, 6);
      const b = between(rng, 2, Math.min(10, Math.floor(level.max / a)));
      v = a * b;
      sentences.push(`${P} buys ${a} bags of ${b} ${plural}.`);
      steps.push(`${a}*${b}=${v}`);
    } else {
      v = between(rng, 2, level.operand);
      sentences.push(`${P} has ${v} ${plural}.`);
    }
    question = `How many ${plural} does ${P} have now?`;
  }
  let attempts = 0;
  let lastOp: Op | undefined;
  while (steps.length < total) {
    if (++attempts > 50) return undefined;
    const op = pick(rng, level.ops);
    if ((op === 'mul' || op === 'div') && op === lastOp) continue;
    let n: number;
    let r: number;
    let template: string;
    let sym: string;
    if (op === 'add') {
      const room = Math.min(level.operand, level.max - v);
      if (room < 1) continue;
      n = between(rng, 1, room);
      r = v + n;
      template = pick(rng, ADD);
      sym = '+';
    } else if (op === 'sub') {
      if (v < 2) continue;
      n = between(rng, 1, Math.min(v - 1, level.operand));
      r = v - n;
      template = pick(rng, SUB);
      sym = '-';
    } else if (op === 'mul') {
      const most = Math.min(4, Math.floor(level.max / Math.max(v, 1)));
      if (most < 2 || v < 1) continue;
      n = between(rng, 2, most);
      r = v * n;
      template = pick(rng, MUL);
      sym = '*';
    } else {
      const divisors = [2, 3, 4, 5].filter((d) => v % d === 0 && v >= d);
      if (divisors.length === 0) continue;
      n = pick(rng, divisors);
      r = v / n;
      template = pick(rng, DIV);
      sym = '/';
    }
    sentences.push(template.replace('{P}', P).replace('{Q}', Q).replace('{n}', String(n)));
    steps.push(`${v}${sym}${n}=${r}`);
    v = r;
    lastOp = op;
  }
  if (steps.length !== total) return undefined;
  sentences.push(question);
  const problem = { prompt: sentences.join(' '), steps, answer: v };
  // Keep prompt + chain of thought within MAX_TEXT_BYTES (the models' context is ~256 bytes).
  if (problem.prompt.length + arithResponse(problem, true).length > MAX_TEXT_BYTES) return undefined;
  return problem;
}

/** Training response: "12-5=7. 7+7=14. #### 14" (chain of thought) or just "14". */
export function arithResponse(p: ArithProblem, chainOfThought: boolean): string {
  if (!chainOfThought) return String(p.answer);
  return `${p.steps.join('. ')}. ${FINAL_ANSWER_MARKER} ${p.answer}`;
}

/** A pre-training document: a worked problem in running text. */
export function arithWorkedText(p: ArithProblem): string {
  return `${p.prompt} ${p.steps.join('. ')}. So the answer is ${p.answer}.`;
}

/** A pre-training document of plain equations ("7+5=12. 9*3=27. 40-13=27."). */
export function arithDrillText(rng: Rng, difficulty: number): string {
  const level = LEVELS[Math.min(5, Math.max(1, difficulty))]!;
  const count = between(rng, 4, 8);
  const eqs: string[] = [];
  for (let i = 0; i < count; i++) {
    const op = pick(rng, ['+', '-', '*', '+', '-', '*', '/'] as const);
    if (op === '+') {
      const a = between(rng, 0, level.operand);
      const b = between(rng, 0, level.operand);
      eqs.push(`${a}+${b}=${a + b}`);
    } else if (op === '-') {
      const a = between(rng, 0, level.operand * 2);
      const b = between(rng, 0, a);
      eqs.push(`${a}-${b}=${a - b}`);
    } else if (op === '*') {
      const a = between(rng, 0, 12);
      const b = between(rng, 0, 12);
      eqs.push(`${a}*${b}=${a * b}`);
    } else {
      const b = between(rng, 1, 9);
      const q = between(rng, 0, 12);
      eqs.push(`${b * q}/${b}=${q}`);
    }
  }
  return eqs.join('. ') + '.';
}
