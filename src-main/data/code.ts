/**
 * HumanEval-like program-execution prediction over a tiny Python subset:
 *
 *   "What does this print?\nx=3\ny=x*2\nprint(y+1)"  →  "7"
 *
 * Programs are generated as an AST, printed as Python (2-space indents, no spaces around
 * operators) and executed by the evaluator below; every program ends with exactly one print,
 * so the expected output is one line. Values: ints in [-99, 999], strings of at most 10 lowercase
 * letters, lists of at most 6 ints (printed Python-style "[1, 2, 3]").
 *
 * Difficulty:
 *   1: one or two int assignments, print of one operation (+ − ×)
 *   2: two or three dependent int assignments / reassignments
 *   3: + lists and strings: indexing, len/sum/max/min, concatenation, repetition
 *   4: + one if/else or for loop (range or list), // and %
 *   5: + loops with an if inside, up to two control structures, longer programs
 */
import type { Rng } from '../common/rng.js';

export type Value = number | string | number[];
type Ty = 'int' | 'str' | 'list';

export type Expr =
  | { k: 'num'; v: number }
  | { k: 'str'; v: string }
  | { k: 'list'; items: number[] }
  | { k: 'var'; name: string }
  | { k: 'bin'; op: '+' | '-' | '*' | '//' | '%'; l: Expr; r: Expr }
  | { k: 'cmp'; op: '<' | '>' | '=='; l: Expr; r: Expr }
  | { k: 'idx'; target: Expr; index: Expr }
  | { k: 'call'; fn: 'len' | 'sum' | 'max' | 'min'; arg: Expr };

export type Stmt =
  | { k: 'assign'; name: string; expr: Expr }
  | { k: 'print'; expr: Expr }
  | { k: 'if'; cond: Expr; then: Stmt[]; else?: Stmt[] }
  | { k: 'for'; name: string; iter: { range: number } | { list: number[] }; body: Stmt[] };

export interface CodeProblem {
  program: string;
  output: string;
}

/** Header of every code prompt. */
export const CODE_PROMPT_HEADER = 'What does this print?\n';

// ---------------------------------------------------------------------------------------
// Printer

function prec(e: Expr): number {
  if (e.k === 'cmp') return 0;
  if (e.k === 'bin') return e.op === '+' || e.op === '-' ? 1 : 2;
  return 3;
}

export function printExpr(e: Expr): string {
  switch (e.k) {
    case 'num':
      return String(e.v);
    case 'str':
      return `'${e.v}'`;
    case 'list':
      return `[${e.items.join(',')}]`;
    case 'var':
      return e.name;
    case 'bin':
    case 'cmp': {
      const p = prec(e);
      const l = printExpr(e.l);
      const r = printExpr(e.r);
      return `${prec(e.l) < p ? `(${l})` : l}${e.op}${prec(e.r) <= p ? `(${r})` : r}`;
    }
    case 'idx':
      return `${printExpr(e.target)}[${printExpr(e.index)}]`;
    case 'call':
      return `${e.fn}(${printExpr(e.arg)})`;
  }
}

export function printProgram(stmts: readonly Stmt[], indent = ''): string {
  const lines: string[] = [];
  for (const s of stmts) {
    switch (s.k) {
      case 'assign':
        lines.push(`${indent}${s.name}=${printExpr(s.expr)}`);
        break;
      case 'print':
        lines.push(`${indent}print(${printExpr(s.expr)})`);
        break;
      case 'if':
        lines.push(`${indent}if ${printExpr(s.cond)}:`, printProgram(s.then, indent + '  '));
        if (s.else) lines.push(`${indent}else:`, printProgram(s.else, indent + '  '));
        break;
      case 'for': {
        const iter = 'range' in s.iter ? `range(${s.iter.range})` : `[${s.iter.list.join(',')}]`;
        lines.push(`${indent}for ${s.name} in ${iter}:`, printProgram(s.body, indent + '  '));
        break;
      }
    }
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------
// Evaluator

export class ExecError extends Error {}

const INT_MIN = -99;
const INT_MAX = 999;
const STR_MAX = 10;
const LIST_MAX = 6;

function checkValue(v: Value | boolean): void {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < INT_MIN || v > INT_MAX) throw new ExecError(`int out of range: ${v}`);
  } else if (typeof v === 'string') {
    if (v.length > STR_MAX) throw new ExecError('string too long');
  } else if (Array.isArray(v)) {
    if (v.length > LIST_MAX) throw new ExecError('list too long');
    v.forEach(checkValue);
  }
}

/** Python's formatting of a printed value. */
export function formatValue(v: Value | boolean): string {
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (Array.isArray(v)) return `[${v.join(', ')}]`;
  return String(v);
}

function evalExpr(e: Expr, env: Map<string, Value>): Value | boolean {
  switch (e.k) {
    case 'num':
      return e.v;
    case 'str':
      return e.v;
    case 'list':
      return [...e.items];
    case 'var': {
      const v = env.get(e.name);
      if (v === undefined) throw new ExecError(`undefined ${e.name}`);
      return v;
    }
    case 'bin': {
      const a = evalExpr(e.l, env);
      const b = evalExpr(e.r, env);
      let out: Value;
      if (typeof a === 'number' && typeof b === 'number') {
        if ((e.op === '//' || e.op === '%') && b === 0) throw new ExecError('division by zero');
        out =
          e.op === '+'
            ? a + b
            : e.op === '-'
              ? a - b
              : e.op === '*'
                ? a * b
                : e.op === '//'
                  ? Math.floor(a / b)
                  : a - b * Math.floor(a / b);
      } else if (e.op === '+' && typeof a === 'string' && typeof b === 'string') out = a + b;
      else if (e.op === '+' && Array.isArray(a) && Array.isArray(b)) out = [...a, ...b];
      else if (e.op === '*' && typeof a === 'string' && typeof b === 'number') out = a.repeat(Math.max(0, b));
      else throw new ExecError(`bad operands for ${e.op}`);
      checkValue(out);
      return out;
    }
    case 'cmp': {
      const a = evalExpr(e.l, env);
      const b = evalExpr(e.r, env);
      if (typeof a !== 'number' || typeof b !== 'number') throw new ExecError('bad comparison');
      return e.op === '<' ? a < b : e.op === '>' ? a > b : a === b;
    }
    case 'idx': {
      const t = evalExpr(e.target, env);
      const i = evalExpr(e.index, env);
      if (typeof i !== 'number' || (typeof t !== 'string' && !Array.isArray(t)))
        throw new ExecError('bad index');
      if (i < 0 || i >= t.length) throw new ExecError('index out of range');
      return t[i]!;
    }
    case 'call': {
      const a = evalExpr(e.arg, env);
      if (e.fn === 'len') {
        if (typeof a !== 'string' && !Array.isArray(a)) throw new ExecError('bad len');
        return a.length;
      }
      if (!Array.isArray(a) || a.length === 0) throw new ExecError(`bad ${e.fn}`);
      const out =
        e.fn === 'sum' ? a.reduce((x, y) => x + y, 0) : e.fn === 'max' ? Math.max(...a) : Math.min(...a);
      checkValue(out);
      return out;
    }
  }
}

/** Execute statements; returns the printed lines. Throws ExecError on a runtime error or a value out of range. */
export function execute(
  stmts: readonly Stmt[],
  env: Map<string, Value> = new Map(),
  out: string[] = [],
): string[] {
  for (const s of stmts) {
    switch (s.k) {
      case 'assign': {
        const v = evalExpr(s.expr, env);
        if (typeof v === 'boolean') throw new ExecError('bool assignment');
        checkValue(v);
        env.set(s.name, v);
        break;
      }
      case 'print':
        out.push(formatValue(evalExpr(s.expr, env)));
        break;
      case 'if': {
        const c = evalExpr(s.cond, env);
        if (typeof c !== 'boolean') throw new ExecError('non-bool condition');
        if (c) execute(s.then, env, out);
        else if (s.else) execute(s.else, env, out);
        break;
      }
      case 'for': {
        const items = 'range' in s.iter ? Array.from({ length: s.iter.range }, (_, i) => i) : s.iter.list;
        for (const it of items) {
          env.set(s.name, it);
          execute(s.body, env, out);
        }
        break;
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Generator

const INT_VARS = ['x', 'y', 'z', 'n', 'm', 't', 'c'];
const LIST_VARS = ['a', 'b'];
const STR_VARS = ['s', 'w'];
const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

interface Scope {
  types: Map<string, Ty>;
  /** Current values of top-level variables (undefined inside loop bodies, where they vary). */
  values: Map<string, Value> | undefined;
}

class Gen {
  constructor(
    private readonly rng: Rng,
    private readonly level: number,
  ) {}

  int(lo: number, hi: number): number {
    return lo + this.rng.int(hi - lo + 1);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.rng.int(xs.length)]!;
  }

  chance(p: number): boolean {
    return this.rng.next() < p;
  }

  varsOf(scope: Scope, ty: Ty): string[] {
    return [...scope.types].filter(([, t]) => t === ty).map(([n]) => n);
  }

  freshVar(scope: Scope, ty: Ty): string {
    const pool = ty === 'int' ? INT_VARS : ty === 'list' ? LIST_VARS : STR_VARS;
    const free = pool.filter((n) => !scope.types.has(n));
    return this.pick(free.length > 0 ? free : pool);
  }

  numConst(): Expr {
    return { k: 'num', v: this.int(this.level <= 1 ? 1 : 0, this.level <= 2 ? 9 : 12) };
  }

  strConst(): Expr {
    let s = '';
    const n = this.int(1, 3);
    for (let i = 0; i < n; i++) s += LETTERS[this.rng.int(LETTERS.length)];
    return { k: 'str', v: s };
  }

  listConst(): number[] {
    return Array.from({ length: this.int(2, 4) }, () => this.int(0, 9));
  }

  /** An int-valued leaf: constant, int variable, or (level 3+) a list/string-derived int. */
  intLeaf(scope: Scope, preferVar: boolean): Expr {
    const ints = this.varsOf(scope, 'int');
    const seqs = this.level >= 3 ? [...this.varsOf(scope, 'list'), ...this.varsOf(scope, 'str')] : [];
    if (seqs.length > 0 && this.chance(0.4)) {
      const v = this.pick(seqs);
      const isList = scope.types.get(v) === 'list';
      if (isList) {
        const len = scope.values ? (scope.values.get(v) as number[] | undefined)?.length : undefined;
        const choice = this.int(0, 4);
        if (choice === 0 || len === undefined) return { k: 'call', fn: 'len', arg: { k: 'var', name: v } };
        if (choice === 1)
          return { k: 'idx', target: { k: 'var', name: v }, index: { k: 'num', v: this.int(0, len - 1) } };
        return { k: 'call', fn: this.pick(['sum', 'max', 'min'] as const), arg: { k: 'var', name: v } };
      }
      return { k: 'call', fn: 'len', arg: { k: 'var', name: v } };
    }
    if (ints.length > 0 && (preferVar || this.chance(0.5))) return { k: 'var', name: this.pick(ints) };
    return this.numConst();
  }

  /** An int expression with `ops` binary operations (0..2). */
  intExpr(scope: Scope, ops: number, first?: Expr): Expr {
    let e = first ?? this.intLeaf(scope, true);
    for (let i = 0; i < ops; i++) {
      const opPool: ('+' | '-' | '*' | '//' | '%')[] =
        this.level >= 4 ? ['+', '-', '*', '+', '//', '%'] : ['+', '-', '*', '+'];
      const op = this.pick(opPool);
      let r: Expr;
      if (op === '//' || op === '%') r = { k: 'num', v: this.int(2, 5) };
      else if (op === '*') r = { k: 'num', v: this.int(2, 4) };
      else r = this.intLeaf(scope, false);
      e =
        this.chance(0.8) || op === '//' || op === '%'
          ? { k: 'bin', op, l: e, r }
          : { k: 'bin', op, l: r, r: e };
    }
    return e;
  }

  strExpr(scope: Scope): Expr {
    const strs = this.varsOf(scope, 'str');
    if (strs.length === 0) return this.strConst();
    const v: Expr = { k: 'var', name: this.pick(strs) };
    const c = this.int(0, 3);
    if (c === 0) return { k: 'bin', op: '+', l: v, r: this.strConst() };
    if (c === 1) return { k: 'bin', op: '*', l: v, r: { k: 'num', v: this.int(2, 3) } };
    if (c === 2) {
      const other = strs.length > 1 ? { k: 'var' as const, name: this.pick(strs) } : this.strConst();
      return { k: 'bin', op: '+', l: other, r: v };
    }
    const len = scope.values
      ? (scope.values.get((v as { name: string }).name) as string | undefined)?.length
      : 1;
    return { k: 'idx', target: v, index: { k: 'num', v: this.int(0, Math.max(0, (len ?? 1) - 1)) } };
  }

  listExpr(scope: Scope): Expr {
    const lists = this.varsOf(scope, 'list');
    if (lists.length === 0 || this.chance(0.3)) return { k: 'list', items: this.listConst() };
    return {
      k: 'bin',
      op: '+',
      l: { k: 'var', name: this.pick(lists) },
      r: { k: 'list', items: [this.int(0, 9)] },
    };
  }

  /** A top-level assignment. */
  assign(scope: Scope, first: boolean): Stmt {
    const seqOk = this.level >= 3 && (first ? this.chance(0.6) : this.chance(0.35));
    if (seqOk) {
      const ty: Ty = this.chance(0.5) ? 'list' : 'str';
      const existing = this.varsOf(scope, ty);
      const name = existing.length > 0 && this.chance(0.5) ? this.pick(existing) : this.freshVar(scope, ty);
      const expr = ty === 'list' ? this.listExpr(scope) : this.strExpr(scope);
      return { k: 'assign', name, expr };
    }
    const ints = this.varsOf(scope, 'int');
    if (first || (ints.length === 0 && this.level <= 2)) {
      return { k: 'assign', name: this.freshVar(scope, 'int'), expr: this.numConst() };
    }
    const reassign = this.level >= 2 && ints.length > 0 && this.chance(0.35);
    const name = reassign ? this.pick(ints) : this.freshVar(scope, 'int');
    const ops = this.level <= 1 ? this.int(0, 1) : this.int(1, 2);
    if (reassign) {
      // x=x+k style
      const e = this.intExpr({ ...scope, types: new Map([...scope.types].filter(([n]) => n !== name)) }, 0);
      const op = this.pick(['+', '-', '*'] as const);
      return {
        k: 'assign',
        name,
        expr: { k: 'bin', op, l: { k: 'var', name }, r: op === '*' ? { k: 'num', v: this.int(2, 3) } : e },
      };
    }
    return { k: 'assign', name, expr: this.intExpr(scope, ops) };
  }

  cond(scope: Scope, name: string): Expr {
    const cur = scope.values?.get(name);
    const base = typeof cur === 'number' ? cur : this.int(0, 10);
    if (this.level >= 5 && this.chance(0.3)) {
      return {
        k: 'cmp',
        op: '==',
        l: { k: 'bin', op: '%', l: { k: 'var', name }, r: { k: 'num', v: 2 } },
        r: { k: 'num', v: this.int(0, 1) },
      };
    }
    const op = this.pick(['<', '>', '>', '<', '=='] as const);
    const k = Math.max(0, base + this.int(-3, 3));
    return { k: 'cmp', op, l: { k: 'var', name }, r: { k: 'num', v: k } };
  }

  /** `v=v op e` inside a block, where e may use the loop variable. */
  update(scope: Scope, target: string, loopVar?: string): Stmt {
    const op = this.pick(['+', '+', '-', '*'] as const);
    let r: Expr;
    if (op === '*') r = { k: 'num', v: 2 };
    else if (loopVar && this.chance(0.6)) r = { k: 'var', name: loopVar };
    else r = { k: 'num', v: this.int(1, 5) };
    return { k: 'assign', name: target, expr: { k: 'bin', op, l: { k: 'var', name: target }, r } };
  }

  control(scope: Scope): Stmt | undefined {
    const ints = this.varsOf(scope, 'int');
    if (ints.length === 0) return undefined;
    const target = this.pick(ints);
    const kind = this.int(0, 2);
    if (kind === 0) {
      const other = this.pick(ints);
      return {
        k: 'if',
        cond: this.cond(scope, other),
        then: [this.update(scope, target)],
        else: this.chance(0.7) ? [this.update(scope, target)] : undefined,
      };
    }
    const loopVar = kind === 1 ? 'i' : 'v';
    const iter = kind === 1 ? { range: this.int(2, this.level >= 5 ? 6 : 4) } : { list: this.listConst() };
    const inner: Scope = { types: new Map([...scope.types, [loopVar, 'int']]), values: undefined };
    let body: Stmt[];
    if (this.level >= 5 && this.chance(0.6)) {
      const cond: Expr = this.chance(0.5)
        ? {
            k: 'cmp',
            op: '==',
            l: { k: 'bin', op: '%', l: { k: 'var', name: loopVar }, r: { k: 'num', v: 2 } },
            r: { k: 'num', v: this.int(0, 1) },
          }
        : {
            k: 'cmp',
            op: this.pick(['<', '>'] as const),
            l: { k: 'var', name: loopVar },
            r: { k: 'num', v: this.int(1, 4) },
          };
      body = [{ k: 'if', cond, then: [this.update(inner, target, loopVar)] }];
    } else {
      body = [this.update(inner, target, loopVar)];
    }
    return { k: 'for', name: loopVar, iter, body };
  }

  /** The final print: it always reads `last`, the variable the last statement wrote. */
  finalPrint(scope: Scope, last: string): Stmt {
    const ty = scope.types.get(last);
    const v: Expr = { k: 'var', name: last };
    if (ty === 'str') {
      if (this.chance(0.5)) return { k: 'print', expr: v };
      return { k: 'print', expr: this.strExpr({ ...scope, types: new Map([[last, 'str']]) }) };
    }
    if (ty === 'list') {
      if (this.chance(0.4)) return { k: 'print', expr: v };
      const len = (scope.values?.get(last) as number[] | undefined)?.length ?? 1;
      const first: Expr = this.chance(0.3)
        ? { k: 'idx', target: v, index: { k: 'num', v: this.int(0, len - 1) } }
        : { k: 'call', fn: this.pick(['len', 'sum', 'max', 'min'] as const), arg: v };
      return { k: 'print', expr: this.chance(0.5) ? first : this.intExpr(scope, 1, first) };
    }
    const ops = this.level <= 1 ? 1 : this.chance(0.4) ? 0 : 1;
    return { k: 'print', expr: this.intExpr(scope, ops, v) };
  }

  program(): Stmt[] {
    const scope: Scope = { types: new Map(), values: new Map() };
    const stmts: Stmt[] = [];
    const counts: Record<number, [number, number]> = {
      1: [1, 2],
      2: [2, 3],
      3: [2, 3],
      4: [2, 3],
      5: [3, 4],
    };
    const [lo, hi] = counts[this.level]!;
    const n = this.int(lo, hi);
    const controls = this.level >= 5 ? this.int(1, 2) : this.level === 4 ? 1 : 0;
    const controlAt = new Set<number>();
    while (controlAt.size < Math.min(controls, n - 1)) controlAt.add(this.int(1, n - 1));
    let last = '';
    for (let i = 0; i < n; i++) {
      let s: Stmt | undefined = controlAt.has(i) ? this.control(scope) : undefined;
      s ??= this.assign(scope, i === 0);
      stmts.push(s);
      execute([s], scope.values!);
      if (s.k === 'assign') scope.types.set(s.name, tyOf(scope.values!.get(s.name)!));
      last = written(s);
    }
    stmts.push(this.finalPrint(scope, last));
    return stmts;
  }
}

/** The variable a statement writes (for a block: the one its first update writes). */
function written(s: Stmt): string {
  if (s.k === 'assign') return s.name;
  if (s.k === 'if') return written(s.then[0]!);
  if (s.k === 'for') return written(s.body[0]!);
  throw new Error('print writes nothing');
}

function tyOf(v: Value): Ty {
  return typeof v === 'number' ? 'int' : typeof v === 'string' ? 'str' : 'list';
}

/** Whether a program exercises what its level is about (so levels differ). */
function fitsLevel(stmts: readonly Stmt[], level: number): boolean {
  const text = printProgram(stmts);
  if (level === 3) return /\[|'/.test(text);
  if (level >= 4) return /\b(if|for)\b/.test(text);
  return true;
}

/** One program at `difficulty` (1..5) with its single output line. */
export function generateCodeProblem(rng: Rng, difficulty: number): CodeProblem {
  if (!Number.isInteger(difficulty) || difficulty < 1 || difficulty > 5) {
    throw new Error(`code difficulty ${difficulty} out of range`);
  }
  const gen = new Gen(rng, difficulty);
  for (;;) {
    let stmts: Stmt[];
    try {
      stmts = gen.program();
    } catch (e) {
      if (e instanceof ExecError) continue;
      throw e;
    }
    if (!fitsLevel(stmts, difficulty)) continue;
    let out: string[];
    try {
      out = execute(stmts);
    } catch (e) {
      if (e instanceof ExecError) continue;
      throw e;
    }
    const output = out[0]!;
    const program = printProgram(stmts);
    if (out.length !== 1 || output.length === 0 || output.length > 24 || program.length > 130) continue;
    return { program, output };
  }
}

/** A constant-only int expression and its value, for pre-training text ("3*4+2 is 14."). */
export function generateExpressionFact(rng: Rng, difficulty: number): { expr: string; value: string } {
  const gen = new Gen(rng, Math.max(2, difficulty));
  for (;;) {
    const scope: Scope = { types: new Map(), values: new Map() };
    const e = rng.next() < 0.25 && difficulty >= 3 ? listFact(gen) : gen.intExpr(scope, gen.int(1, 2));
    try {
      const v = evalExpr(e, new Map());
      if (typeof v === 'boolean') continue;
      return { expr: printExpr(e), value: formatValue(v) };
    } catch (err) {
      if (err instanceof ExecError) continue;
      throw err;
    }
  }
}

function listFact(gen: Gen): Expr {
  return {
    k: 'call',
    fn: gen.pick(['len', 'sum', 'max', 'min'] as const),
    arg: { k: 'list', items: gen.listConst() },
  };
}
