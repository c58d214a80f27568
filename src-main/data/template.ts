/**
 * The one instruction template used for training and evaluation, and answer matching.
 *
 *   formatPrompt(p)  = "Q: " + p + "\nA: "
 *   training text    = formatPrompt(prompt) + response + RESPONSE_END     (loss on response + "\n")
 *   generation       = greedy after formatPrompt(prompt), stop at the first RESPONSE_END ("\n")
 *
 * The byte-level models have no special tokens, so the end-of-response marker is the newline:
 * every embedded response is a single line. Real-data outputs may span lines; trainers that use
 * an HF tokenizer with an EOS token append that EOS instead of (or after) RESPONSE_END.
 *
 * Multi-turn chats render as "Q: u1\nA: a1\nQ: u2\nA: " — i.e. the Example prompt of a chat is
 * "u1\nA: a1\nQ: u2" so that formatPrompt() of it yields the whole conversation (see formatChat).
 */
import type { EvalItem } from './types.js';

export const PROMPT_PREFIX = 'Q: ';
export const ANSWER_PREFIX = '\nA: ';
/** End-of-response marker for byte-level models. */
export const RESPONSE_END = '\n';
/** Marker before the final answer in arithmetic chains of thought. */
export const FINAL_ANSWER_MARKER = '####';

export function formatPrompt(prompt: string): string {
  return PROMPT_PREFIX + prompt + ANSWER_PREFIX;
}

/** The context and target of a training example; the loss counts only `response` bytes. */
export function renderExample(ex: { prompt: string; response: string }): {
  prompt: string;
  response: string;
} {
  return { prompt: formatPrompt(ex.prompt), response: ex.response + RESPONSE_END };
}

/** Continuation scored for a multiple-choice option (the choice text followed by RESPONSE_END). */
export function choiceContinuation(choice: string): string {
  return choice + RESPONSE_END;
}

export interface ChatTurn {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/**
 * The Example prompt for a conversation whose next turn is the assistant's, such that
 * `formatPrompt(formatChat(turns))` renders the whole conversation: user turns as "Q: …\nA: ",
 * assistant turns as "…" + RESPONSE_END. Consecutive turns of one role are joined with "\n";
 * a system message becomes leading lines of the next user turn (trailing lines of the previous
 * one when no user turn follows); an assistant turn with no user turn before it gets an empty one.
 */
export function formatChat(turns: readonly ChatTurn[]): string {
  const blocks: { role: 'user' | 'assistant'; content: string }[] = [];
  let pendingSystem: string[] = [];
  for (const t of turns) {
    if (t.role === 'system') {
      pendingSystem.push(t.content);
      continue;
    }
    const content =
      t.role === 'user' && pendingSystem.length > 0 ? [...pendingSystem, t.content].join('\n') : t.content;
    if (t.role === 'user') pendingSystem = [];
    const last = blocks[blocks.length - 1];
    if (last && last.role === t.role) last.content += '\n' + content;
    else blocks.push({ role: t.role, content });
  }
  if (pendingSystem.length > 0) {
    const last = blocks[blocks.length - 1];
    if (last && last.role === 'user') last.content += '\n' + pendingSystem.join('\n');
    else blocks.push({ role: 'user', content: pendingSystem.join('\n') });
  }
  if (blocks[0]?.role === 'assistant') blocks.unshift({ role: 'user', content: '' });
  if (blocks.length === 0 || blocks[blocks.length - 1]!.role === 'assistant')
    blocks.push({ role: 'user', content: '' });
  let out = '';
  for (const b of blocks) out += b.role === 'user' ? formatPrompt(b.content) : b.content + RESPONSE_END;
  return out.slice(PROMPT_PREFIX.length, out.length - ANSWER_PREFIX.length);
}

/** Normalisation for exact match: trim, lowercase, collapse whitespace, strip trailing punctuation. */
export function normalizeAnswer(s: string): string {
  return s
    .trim()
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .replace(/[\s.,;:!?]+$/, '')
    .trim();
}

const NUMBER_RE = /-?\d+(?:,\d{3})*(?:\.\d+)?/g;

function canonicalNumber(s: string): string {
  const n = Number(s.replace(/,/g, ''));
  return Number.isFinite(n) ? String(n) : s;
}

/**
 * The final answer of an arithmetic response: the first number after the last "####" (or the
 * text after it when it holds no number), else the last number in the text, else the normalised
 * text. Numbers are canonical ("1,000" → "1000", "6.0" → "6").
 */
export function extractFinalAnswer(text: string): string {
  const at = text.lastIndexOf(FINAL_ANSWER_MARKER);
  if (at >= 0) {
    const tail = text.slice(at + FINAL_ANSWER_MARKER.length);
    const m = tail.match(NUMBER_RE);
    return m ? canonicalNumber(m[0]) : normalizeAnswer(tail);
  }
  const all = text.match(NUMBER_RE);
  if (all && all.length > 0) return canonicalNumber(all[all.length - 1]!);
  return normalizeAnswer(text);
}

/** Text of a generation up to (not including) the first RESPONSE_END. */
export function cutAtResponseEnd(generated: string): string {
  const i = generated.indexOf(RESPONSE_END);
  return i >= 0 ? generated.slice(0, i) : generated;
}

/**
 * Reference scoring for `metric: 'exact'` items: the generation is cut at the first RESPONSE_END;
 * arith items (and any generation holding "####") compare the extracted final number, others
 * compare normalizeAnswer of the whole line.
 */
export function isCorrect(item: Pick<EvalItem, 'domain' | 'answer'>, generated: string): boolean {
  const line = cutAtResponseEnd(generated);
  if (item.domain === 'arith' || line.includes(FINAL_ANSWER_MARKER)) {
    return extractFinalAnswer(line) === extractFinalAnswer(item.answer);
  }
  return normalizeAnswer(line) === normalizeAnswer(item.answer);
}
