/**
 * Real data in JSONL, and export of the embedded suite.
 *
 * Instruction lines (readInstructionJsonl), one JSON object per line, blank lines skipped:
 *   Alpaca: {"instruction": str, "input"?: str, "output": str}
 *           → prompt = instruction (+ "\n" + input when input is non-empty), response = output
 *   Chat:   {"messages": [{"role": "system"|"user"|"assistant", "content": str}, …]}
 *           → response = the last message (must be the assistant's), prompt = formatChat(the
 *             messages before it), so formatPrompt(prompt) renders the whole conversation
 * Eval lines (readEvalJsonl): {"question": str, "answer": str|number, "choices"?: str[]}
 *   → metric 'choice' when choices are given (answer must be one of them), else 'exact'.
 * Both accept optional "domain" (or "category") — default 'custom' — and "id" (string or number;
 * default "<file name>:<line>"). Unknown fields are ignored. A bad line fails with
 * UserError "<file>:<line>: <problem>".
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { UserError, fileError } from '../common/errors.js';
import { formatChat, type ChatTurn } from './template.js';
import { CUSTOM_DOMAIN, type CorpusOptions, type EvalItem, type Example, type Suite } from './types.js';

type Json = Record<string, unknown>;

function lineError(file: string, line: number, problem: string): UserError {
  return new UserError(`${file}:${line}: ${problem}`);
}

/** Parse each non-blank line as a JSON object; `visit` gets the object and its 1-based line number. */
function readLines<T>(file: string, visit: (obj: Json, line: number) => T): T[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw fileError(file, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const out: T[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    if (raw.trim() === '') return;
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch (e) {
      throw lineError(file, i + 1, `invalid JSON (${(e as Error).message})`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
      throw lineError(file, i + 1, 'expected a JSON object');
    }
    out.push(visit(obj as Json, i + 1));
  });
  if (out.length === 0) throw fileError(file, 'no records (the file is empty)');
  return out;
}

function optionalString(obj: Json, field: string, file: string, line: number): string | undefined {
  const v = obj[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw lineError(file, line, `field "${field}" must be a string`);
  return v;
}

function requiredText(obj: Json, field: string, file: string, line: number): string {
  const v = obj[field];
  if (v === undefined || v === null) throw lineError(file, line, `missing field "${field}"`);
  if (typeof v !== 'string') throw lineError(file, line, `field "${field}" must be a string`);
  if (v.trim() === '') throw lineError(file, line, `field "${field}" is empty`);
  return v;
}

function domainOf(obj: Json, file: string, line: number): string {
  for (const field of ['domain', 'category']) {
    const v = optionalString(obj, field, file, line);
    if (v !== undefined) {
      if (v.trim() === '') throw lineError(file, line, `field "${field}" is empty`);
      return v.trim();
    }
  }
  return CUSTOM_DOMAIN;
}

function idOf(obj: Json, file: string, line: number): string {
  const v = obj.id;
  if (v === undefined || v === null) return `${basename(file)}:${line}`;
  if (typeof v === 'string' && v !== '') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  throw lineError(file, line, 'field "id" must be a non-empty string or a number');
}

const ROLES = new Set(['system', 'user', 'assistant']);

function parseChat(obj: Json, file: string, line: number): { prompt: string; response: string } {
  const messages = obj.messages;
  if (!Array.isArray(messages)) throw lineError(file, line, 'field "messages" must be an array');
  if (messages.length === 0) throw lineError(file, line, 'field "messages" is empty');
  const turns: ChatTurn[] = messages.map((m: unknown, i) => {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) {
      throw lineError(file, line, `messages[${i}] must be an object`);
    }
    const { role, content } = m as Json;
    if (typeof role !== 'string' || !ROLES.has(role)) {
      throw lineError(file, line, `messages[${i}].role must be "system", "user" or "assistant"`);
    }
    if (typeof content !== 'string') throw lineError(file, line, `messages[${i}].content must be a string`);
    return { role: role as ChatTurn['role'], content };
  });
  const last = turns[turns.length - 1]!;
  if (last.role !== 'assistant') throw lineError(file, line, "the last message must be the assistant's");
  if (last.content.trim() === '') throw lineError(file, line, 'the last assistant message is empty');
  const before = turns.slice(0, -1);
  if (!before.some((t) => t.role === 'user'))
    throw lineError(file, line, 'no user message before the last assistant message');
  return { prompt: formatChat(before), response: last.content };
}

/** Instruction-tuning examples from an Alpaca- or chat-style JSONL file (see the module comment). */
export function readInstructionJsonl(file: string): Example[] {
  return readLines(file, (obj, line) => {
    let prompt: string;
    let response: string;
    if ('messages' in obj) {
      ({ prompt, response } = parseChat(obj, file, line));
    } else if ('instruction' in obj || 'output' in obj) {
      const instruction = requiredText(obj, 'instruction', file, line);
      const input = optionalString(obj, 'input', file, line);
      response = requiredText(obj, 'output', file, line);
      prompt = input !== undefined && input.trim() !== '' ? `${instruction}\n${input}` : instruction;
    } else {
      throw lineError(file, line, 'expected {"instruction", "output"} (Alpaca) or {"messages"} (chat)');
    }
    return { domain: domainOf(obj, file, line), prompt, response, id: idOf(obj, file, line) };
  });
}

/** Evaluation items from a JSONL file of {question, answer, choices?, domain?, id?}. */
export function readEvalJsonl(file: string): EvalItem[] {
  return readLines(file, (obj, line) => {
    const question = requiredText(obj, 'question', file, line);
    const rawAnswer = obj.answer;
    if (rawAnswer === undefined || rawAnswer === null) throw lineError(file, line, 'missing field "answer"');
    let answer: string;
    if (typeof rawAnswer === 'string') answer = rawAnswer;
    else if (typeof rawAnswer === 'number' && Number.isFinite(rawAnswer)) answer = String(rawAnswer);
    else throw lineError(file, line, 'field "answer" must be a string or a number');
    if (answer.trim() === '') throw lineError(file, line, 'field "answer" is empty');
    const item: EvalItem = {
      domain: domainOf(obj, file, line),
      id: idOf(obj, file, line),
      prompt: question,
      answer,
      metric: 'exact',
    };
    const choices = obj.choices;
    if (choices !== undefined && choices !== null) {
      if (!Array.isArray(choices) || choices.some((c) => typeof c !== 'string')) {
        throw lineError(file, line, 'field "choices" must be an array of strings');
      }
      const cs = choices as string[];
      if (cs.length < 2) throw lineError(file, line, 'field "choices" needs at least two choices');
      if (cs.some((c) => c.trim() === '')) throw lineError(file, line, 'field "choices" has an empty choice');
      if (new Set(cs).size !== cs.length)
        throw lineError(file, line, 'field "choices" has duplicate choices');
      if (!cs.includes(answer)) throw lineError(file, line, `answer "${answer}" is not one of the choices`);
      item.choices = cs;
      item.metric = 'choice';
    }
    return item;
  });
}

/** Write `text` to `file` atomically (temporary name in the same directory, then rename). */
export function writeFileAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/** One JSON object per line, atomically. */
export function writeJsonl(file: string, rows: readonly unknown[]): void {
  writeFileAtomic(file, rows.map((r) => JSON.stringify(r) + '\n').join(''));
}

/** Separator between documents in pretrain.txt (documents contain no blank line). */
export const PRETRAIN_DOC_SEPARATOR = '\n\n';

export function readPretrainText(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw fileError(file, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return text
    .split(/\r?\n[ \t]*\r?\n/)
    .map((d) => d.replace(/^\s*\n|\s+$/g, ''))
    .filter((d) => d.trim() !== '');
}

export interface ExportedSuite {
  train: string;
  eval: string;
  pretrain: string;
  world: string;
}

/**
 * Write the suite to `dir` (created if needed):
 *   train.jsonl   Alpaca lines {id, domain, instruction, output} — readInstructionJsonl round-trips them
 *   eval.jsonl    {id, domain, question, answer, choices?}      — readEvalJsonl round-trips them
 *   pretrain.txt  documents separated by a blank line (readPretrainText)
 *   world.json    the knowledge base
 * `pretrain` sizes the corpus (default 2000 documents).
 */
export function exportSuite(
  suite: Suite,
  dir: string,
  opts: { pretrain?: number | CorpusOptions } = {},
): ExportedSuite {
  mkdirSync(dir, { recursive: true });
  const paths: ExportedSuite = {
    train: join(dir, 'train.jsonl'),
    eval: join(dir, 'eval.jsonl'),
    pretrain: join(dir, 'pretrain.txt'),
    world: join(dir, 'world.json'),
  };
  writeJsonl(
    paths.train,
    suite.train.map((ex) => ({ id: ex.id, domain: ex.domain, instruction: ex.prompt, output: ex.response })),
  );
  writeJsonl(
    paths.eval,
    suite.eval.map((it) => ({
      id: it.id,
      domain: it.domain,
      question: it.prompt,
      answer: it.answer,
      ...(it.choices ? { choices: it.choices } : {}),
    })),
  );
  const docs = suite.pretrainCorpus(opts.pretrain ?? 2000);
  writeFileAtomic(paths.pretrain, docs.join(PRETRAIN_DOC_SEPARATOR) + '\n');
  writeFileAtomic(paths.world, JSON.stringify(suite.world, null, 1) + '\n');
  return paths;
}
