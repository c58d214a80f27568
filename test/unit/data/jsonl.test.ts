import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../../src-main/common/errors.js';
import {
  buildSuite,
  exportSuite,
  formatPrompt,
  readEvalJsonl,
  readInstructionJsonl,
  readPretrainText,
  writeJsonl,
} from '../../../src-main/data/index.js';

const dir = mkdtempSync(join(tmpdir(), 'upit-data-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(lines: (string | object)[]): string {
  const f = join(dir, `f${n++}.jsonl`);
  writeFileSync(f, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
  return f;
}

/** The error a reader throws, asserting it is a UserError naming file:line. */
function failure(read: (f: string) => unknown, f: string, line: number): string {
  try {
    read(f);
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    const msg = (e as Error).message;
    expect(msg.startsWith(`${f}:${line}: `), msg).toBe(true);
    return msg;
  }
  throw new Error(`expected ${f} to be rejected`);
}

describe('readInstructionJsonl', () => {
  it('reads Alpaca lines', () => {
    const f = file([
      { instruction: 'Add the numbers.', input: '2 and 3', output: '5', domain: 'math' },
      '',
      { instruction: 'Say hi.', input: '', output: 'hi', category: 'chat', id: 7 },
      { instruction: 'Name a color.', output: 'red', id: 'c1' },
    ]);
    expect(readInstructionJsonl(f)).toEqual([
      { domain: 'math', prompt: 'Add the numbers.\n2 and 3', response: '5', id: 'f0.jsonl:1' },
      { domain: 'chat', prompt: 'Say hi.', response: 'hi', id: '7' },
      { domain: 'custom', prompt: 'Name a color.', response: 'red', id: 'c1' },
    ]);
  });

  it('reads chat lines, rendering the conversation with the same template', () => {
    const f = file([
      {
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'What is 2+2?' },
          { role: 'assistant', content: '4' },
          { role: 'user', content: 'And 3+3?' },
          { role: 'assistant', content: '6' },
        ],
      },
      {
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'hello' },
        ],
        domain: 'greet',
      },
    ]);
    const [a, b] = readInstructionJsonl(f);
    expect(a!.response).toBe('6');
    expect(formatPrompt(a!.prompt)).toBe('Q: Be brief.\nWhat is 2+2?\nA: 4\nQ: And 3+3?\nA: ');
    expect(a!.domain).toBe('custom');
    expect(b).toEqual({ domain: 'greet', prompt: 'hi', response: 'hello', id: 'f1.jsonl:2' });
  });

  it('accepts CRLF line ends and a byte-order mark', () => {
    const f = join(dir, 'crlf.jsonl');
    writeFileSync(f, '\ufeff{"instruction":"a","output":"b"}\r\n\r\n{"instruction":"c","output":"d"}\r\n');
    expect(readInstructionJsonl(f).map((e) => e.prompt)).toEqual(['a', 'c']);
  });

  const good = { instruction: 'Say hi.', output: 'hi' };
  const cases: [string, unknown, RegExp][] = [
    ['bad JSON', '{"instruction": "x", ', /invalid JSON/],
    ['not an object', '[1, 2]', /expected a JSON object/],
    ['neither form', { prompt: 'x', completion: 'y' }, /expected \{"instruction", "output"\}/],
    ['missing instruction', { output: 'y' }, /missing field "instruction"/],
    ['missing output', { instruction: 'x' }, /missing field "output"/],
    ['output not a string', { instruction: 'x', output: 5 }, /field "output" must be a string/],
    ['empty output', { instruction: 'x', output: '  ' }, /field "output" is empty/],
    ['empty instruction', { instruction: '', output: 'y' }, /field "instruction" is empty/],
    ['input not a string', { instruction: 'x', input: ['a'], output: 'y' }, /field "input" must be a string/],
    ['domain not a string', { ...good, domain: 3 }, /field "domain" must be a string/],
    ['bad id', { ...good, id: { a: 1 } }, /field "id"/],
    ['messages not an array', { messages: 'hi' }, /field "messages" must be an array/],
    ['messages empty', { messages: [] }, /field "messages" is empty/],
    ['bad role', { messages: [{ role: 'bot', content: 'x' }] }, /messages\[0\]\.role/],
    [
      'content not a string',
      { messages: [{ role: 'user', content: 1 }] },
      /messages\[0\]\.content must be a string/,
    ],
    [
      'last not assistant',
      { messages: [{ role: 'user', content: 'x' }] },
      /last message must be the assistant's/,
    ],
    [
      'empty assistant',
      {
        messages: [
          { role: 'user', content: 'x' },
          { role: 'assistant', content: '' },
        ],
      },
      /last assistant message is empty/,
    ],
    ['no user turn', { messages: [{ role: 'assistant', content: 'x' }] }, /no user message/],
  ];
  for (const [name, bad, re] of cases) {
    it(`rejects ${name} with file:line`, () => {
      // the bad record sits on line 4, after a good line and a blank line and another good line
      const f = file([good, '', good, bad as object]);
      expect(failure(readInstructionJsonl, f, 4)).toMatch(re);
    });
  }

  it('rejects a missing or empty file naming it', () => {
    expect(() => readInstructionJsonl(join(dir, 'nope.jsonl'))).toThrow(/nope\.jsonl: cannot read/);
    const empty = join(dir, 'empty.jsonl');
    writeFileSync(empty, '\n\n');
    expect(() => readInstructionJsonl(empty)).toThrow(UserError);
  });
});

describe('readEvalJsonl', () => {
  it('reads exact and multiple-choice items', () => {
    const f = file([
      { question: 'What is 2+3?', answer: 5, domain: 'arith' },
      {
        question: 'Capital of Norland?',
        answer: 'Velma',
        choices: ['Tarn', 'Velma', 'Oslo', 'Brin'],
        id: 'q2',
      },
    ]);
    expect(readEvalJsonl(f)).toEqual([
      { domain: 'arith', id: `${basename(f)}:1`, prompt: 'What is 2+3?', answer: '5', metric: 'exact' },
      {
        domain: 'custom',
        id: 'q2',
        prompt: 'Capital of Norland?',
        answer: 'Velma',
        choices: ['Tarn', 'Velma', 'Oslo', 'Brin'],
        metric: 'choice',
      },
    ]);
  });

  const good = { question: 'q?', answer: 'a' };
  const cases: [string, unknown, RegExp][] = [
    ['bad JSON', 'nope', /invalid JSON/],
    ['missing question', { answer: 'a' }, /missing field "question"/],
    ['question not a string', { question: 1, answer: 'a' }, /field "question" must be a string/],
    ['missing answer', { question: 'q' }, /missing field "answer"/],
    ['answer wrong type', { question: 'q', answer: { x: 1 } }, /field "answer" must be a string or a number/],
    ['empty answer', { question: 'q', answer: '' }, /field "answer" is empty/],
    ['choices not strings', { question: 'q', answer: 'a', choices: ['a', 2] }, /array of strings/],
    ['one choice', { question: 'q', answer: 'a', choices: ['a'] }, /at least two/],
    ['duplicate choices', { question: 'q', answer: 'a', choices: ['a', 'b', 'a'] }, /duplicate/],
    [
      'answer not among choices',
      { question: 'q', answer: 'c', choices: ['a', 'b'] },
      /not one of the choices/,
    ],
  ];
  for (const [name, bad, re] of cases) {
    it(`rejects ${name} with file:line`, () => {
      const f = file(['', good, bad as object, good]);
      expect(failure(readEvalJsonl, f, 3)).toMatch(re);
    });
  }
});

describe('writeJsonl / exportSuite', () => {
  it('writes one JSON object per line', () => {
    const f = join(dir, 'w.jsonl');
    writeJsonl(f, [{ a: 1 }, { b: 'x\ny' }]);
    expect(readFileSync(f, 'utf8')).toBe('{"a":1}\n{"b":"x\\ny"}\n');
  });

  it('exports the suite so that the readers round-trip it', () => {
    const suite = buildSuite({ seed: 3, trainPerDomain: 20, evalPerDomain: 10 });
    const out = exportSuite(suite, join(dir, 'export', 'suite'), { pretrain: 50 });
    const train = readInstructionJsonl(out.train);
    expect(train).toEqual(
      suite.train.map(({ domain, prompt, response, id }) => ({ domain, prompt, response, id })),
    );
    const ev = readEvalJsonl(out.eval);
    expect(ev).toEqual(suite.eval.map(({ facts: _facts, ...rest }) => rest));
    expect(readPretrainText(out.pretrain)).toEqual(suite.pretrainCorpus(50));
    expect(JSON.parse(readFileSync(out.world, 'utf8'))).toEqual(suite.world);
  });
});
