import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src-main/common/rng.js';
import {
  CODE_PROMPT_HEADER,
  generateCodeProblem,
  generateExpressionFact,
} from '../../../src-main/data/code.js';
import { buildSuite } from '../../../src-main/data/suite.js';

// ---------------------------------------------------------------------------------------
// A tiny, independent Python-subset interpreter working from the program text.

type PyValue = number | string | boolean | PyValue[];

function tokenize(src: string): string[] {
  const re = /\s*(\d+|[A-Za-z_]\w*|'[^']*'|\/\/|==|<=|>=|!=|[-+*%<>()[\],])/y;
  const out: string[] = [];
  let pos = 0;
  while (pos < src.length) {
    if (/^\s*$/.test(src.slice(pos))) break;
    re.lastIndex = pos;
    const m = re.exec(src);
    if (!m) throw new Error(`cannot tokenize at ${src.slice(pos)}`);
    out.push(m[1]!);
    pos = re.lastIndex;
  }
  return out;
}

class Parser {
  private i = 0;
  constructor(
    private readonly toks: string[],
    private readonly env: Map<string, PyValue>,
  ) {}
  private peek(): string | undefined {
    return this.toks[this.i];
  }
  private take(expect?: string): string {
    const t = this.toks[this.i++];
    if (t === undefined || (expect !== undefined && t !== expect))
      throw new Error(`expected ${expect} got ${t}`);
    return t;
  }
  done(): boolean {
    return this.i === this.toks.length;
  }
  expr(): PyValue {
    const l = this.sum();
    const op = this.peek();
    if (op === '<' || op === '>' || op === '==' || op === '<=' || op === '>=' || op === '!=') {
      this.take();
      const r = this.sum() as number;
      const a = l as number;
      return op === '<'
        ? a < r
        : op === '>'
          ? a > r
          : op === '=='
            ? a === r
            : op === '<='
              ? a <= r
              : op === '>='
                ? a >= r
                : a !== r;
    }
    return l;
  }
  private sum(): PyValue {
    let v = this.product();
    while (this.peek() === '+' || this.peek() === '-') {
      const op = this.take();
      const r = this.product();
      if (op === '-') v = (v as number) - (r as number);
      else if (typeof v === 'number' && typeof r === 'number') v = v + r;
      else if (typeof v === 'string' && typeof r === 'string') v = v + r;
      else if (Array.isArray(v) && Array.isArray(r)) v = [...v, ...r];
      else throw new Error('TypeError +');
    }
    return v;
  }
  private product(): PyValue {
    let v = this.unary();
    while (this.peek() === '*' || this.peek() === '//' || this.peek() === '%') {
      const op = this.take();
      const r = this.unary();
      if (op === '*') {
        if (typeof v === 'number' && typeof r === 'number') v = v * r;
        else if (typeof v === 'string' && typeof r === 'number') v = v.repeat(Math.max(0, r));
        else if (typeof v === 'number' && typeof r === 'string') v = r.repeat(Math.max(0, v));
        else throw new Error('TypeError *');
      } else {
        const a = v as number;
        const b = r as number;
        if (b === 0) throw new Error('ZeroDivisionError');
        v = op === '//' ? Math.floor(a / b) : ((a % b) + b) % b;
      }
    }
    return v;
  }
  private unary(): PyValue {
    if (this.peek() === '-') {
      this.take();
      return -(this.unary() as number);
    }
    return this.postfix();
  }
  private postfix(): PyValue {
    let v = this.atom();
    while (this.peek() === '[') {
      this.take('[');
      const idx = this.expr() as number;
      this.take(']');
      const seq = v as string | PyValue[];
      const j = idx < 0 ? seq.length + idx : idx;
      if (j < 0 || j >= seq.length) throw new Error('IndexError');
      v = seq[j]!;
    }
    return v;
  }
  private atom(): PyValue {
    const t = this.take();
    if (/^\d+$/.test(t)) return Number(t);
    if (t.startsWith("'")) return t.slice(1, -1);
    if (t === '(') {
      const v = this.expr();
      this.take(')');
      return v;
    }
    if (t === '[') {
      const items: PyValue[] = [];
      while (this.peek() !== ']') {
        items.push(this.expr());
        if (this.peek() === ',') this.take(',');
      }
      this.take(']');
      return items;
    }
    if (this.peek() === '(' && ['len', 'sum', 'max', 'min', 'range'].includes(t)) {
      this.take('(');
      const arg = this.expr();
      this.take(')');
      if (t === 'len') return (arg as string | PyValue[]).length;
      if (t === 'range') return Array.from({ length: arg as number }, (_, i) => i);
      const xs = arg as number[];
      if (xs.length === 0) throw new Error('ValueError');
      return t === 'sum' ? xs.reduce((a, b) => a + b, 0) : t === 'max' ? Math.max(...xs) : Math.min(...xs);
    }
    if (!this.env.has(t)) throw new Error(`NameError ${t}`);
    return this.env.get(t)!;
  }
}

function evalExpr(src: string, env: Map<string, PyValue>): PyValue {
  const p = new Parser(tokenize(src), env);
  const v = p.expr();
  if (!p.done()) throw new Error(`trailing tokens in ${src}`);
  return v;
}

function pyStr(v: PyValue): string {
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (Array.isArray(v)) return `[${v.map((x) => (typeof x === 'string' ? `'${x}'` : pyStr(x))).join(', ')}]`;
  return String(v);
}

interface Line {
  indent: number;
  text: string;
}

function runBlock(
  lines: Line[],
  start: number,
  indent: number,
  env: Map<string, PyValue>,
  out: string[],
): number {
  let i = start;
  while (i < lines.length && lines[i]!.indent >= indent) {
    const { text, indent: ind } = lines[i]!;
    if (ind !== indent) throw new Error(`bad indent at ${text}`);
    let m: RegExpMatchArray | null;
    const blockEnd = (from: number) => {
      let j = from;
      while (j < lines.length && lines[j]!.indent > indent) j++;
      return j;
    };
    if ((m = text.match(/^if (.+):$/))) {
      const cond = evalExpr(m[1]!, env);
      const thenEnd = blockEnd(i + 1);
      let end = thenEnd;
      let elseStart = -1;
      if (thenEnd < lines.length && lines[thenEnd]!.indent === indent && lines[thenEnd]!.text === 'else:') {
        elseStart = thenEnd + 1;
        end = blockEnd(thenEnd + 1);
      }
      if (cond) runBlock(lines.slice(0, thenEnd), i + 1, indent + 2, env, out);
      else if (elseStart >= 0) runBlock(lines.slice(0, end), elseStart, indent + 2, env, out);
      i = end;
    } else if ((m = text.match(/^for (\w+) in (.+):$/))) {
      const items = evalExpr(m[2]!, env) as PyValue[];
      const end = blockEnd(i + 1);
      for (const it of items) {
        env.set(m[1]!, it);
        runBlock(lines.slice(0, end), i + 1, indent + 2, env, out);
      }
      i = end;
    } else if ((m = text.match(/^print\((.*)\)$/))) {
      out.push(pyStr(evalExpr(m[1]!, env)));
      i++;
    } else if ((m = text.match(/^(\w+)=(.+)$/))) {
      env.set(m[1]!, evalExpr(m[2]!, env));
      i++;
    } else {
      throw new Error(`unknown statement ${text}`);
    }
  }
  return i;
}

function runPython(program: string): string {
  const lines = program
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const indent = l.length - l.trimStart().length;
      return { indent, text: l.trim() };
    });
  const out: string[] = [];
  const env = new Map<string, PyValue>();
  const end = runBlock(lines, 0, 0, env, out);
  expect(end).toBe(lines.length);
  return out.join('\n');
}

describe('tiny interpreter (self-check)', () => {
  it('runs Python semantics', () => {
    expect(runPython('x=3\ny=x*2\nprint(y+1)')).toBe('7');
    expect(runPython("s='ab'\nprint(s*2+'c')")).toBe('ababc');
    expect(runPython('a=[3,1,2]\na=a+[5]\nprint(a)')).toBe('[3, 1, 2, 5]');
    expect(runPython('x=0-7\nprint(x//2)\n')).toBe('-4');
    expect(runPython('x=0-7\nprint(x%3)')).toBe('2');
    expect(runPython('c=0\nfor i in range(4):\n  if i%2==0:\n    c=c+i\nprint(c)')).toBe('2');
    expect(runPython('x=5\nif x>9:\n  x=1\nelse:\n  x=2\nprint(x)')).toBe('2');
  });
});

describe('code', () => {
  it('every item re-executes to its answer at every difficulty', () => {
    for (let d = 1; d <= 5; d++) {
      const suite = buildSuite({ seed: 5, trainPerDomain: 200, evalPerDomain: 200, difficulty: { code: d } });
      const items = [
        ...suite.eval.filter((e) => e.domain === 'code').map((e) => ({ prompt: e.prompt, out: e.answer })),
        ...suite.train.filter((e) => e.domain === 'code').map((e) => ({ prompt: e.prompt, out: e.response })),
      ];
      expect(items.length).toBe(400);
      for (const { prompt, out } of items) {
        expect(prompt.startsWith(CODE_PROMPT_HEADER)).toBe(true);
        const program = prompt.slice(CODE_PROMPT_HEADER.length);
        expect(runPython(program), program).toBe(out);
        expect(out).not.toContain('\n');
        // exactly one print, at the end
        expect(program.match(/print\(/g)?.length).toBe(1);
        expect(program.split('\n').pop()!.startsWith('print(')).toBe(true);
      }
    }
  });

  it('difficulty changes the constructs used', () => {
    const rng = new Rng(9);
    const sample = (d: number) => Array.from({ length: 100 }, () => generateCodeProblem(rng, d).program);
    const l1 = sample(1);
    expect(l1.every((p) => !/[['\]]|if |for /.test(p))).toBe(true);
    expect(sample(3).every((p) => /\[|'/.test(p))).toBe(true);
    expect(sample(4).every((p) => /\b(if|for)\b/.test(p))).toBe(true);
    const l5 = sample(5);
    expect(l5.some((p) => /for .*\n {2}if /.test(p))).toBe(true);
    const meanLen = (ps: string[]) => ps.reduce((n, p) => n + p.length, 0) / ps.length;
    expect(meanLen(l5)).toBeGreaterThan(meanLen(l1) * 2);
  });

  it('expression facts evaluate correctly', () => {
    const rng = new Rng(2);
    for (let i = 0; i < 200; i++) {
      const f = generateExpressionFact(rng, 1 + (i % 5));
      expect(runPython(`print(${f.expr})`)).toBe(f.value);
    }
  });
});
