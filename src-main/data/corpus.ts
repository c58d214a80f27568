/**
 * The pre-training corpus: short documents (≤ 250 bytes, ASCII, no blank lines) drawn from
 *   - knowledge: one document per entity stating every fact about it (random phrasings and
 *     order, plus up to two sentences where the entity is the object); entities are visited in
 *     shuffled "epochs", so every fact is in the corpus once it has ~(#entities / knowledge share)
 *     documents and is repeated with varied wording after that;
 *   - arith: worked word problems ("… 5+3=8. 8-2=6. So the answer is 6.") and equation drills;
 *   - code: programs with their output ("Program:\n…\nOutput: 7") and expression facts;
 *   - instruct: 1–3 question/answer pairs in the instruction template, joined by RESPONSE_END
 *     ("Q: <prompt>\nA: <response>\nQ: …\nA: …"), each pair from a domain drawn uniformly:
 *     arith (chain-of-thought response as in SFT), code ("What does this print?\n<program>"),
 *     qa (a question about a training question key) and mc (the same, rendered with four options
 *     as the suite renders MC prompts, the answer being the option's text). This is what lets
 *     the base model answer in the evaluation template at all (it never sees an eval item);
 *   - recall (optional): a run of words, names and numbers repeated after "Again:", the pattern
 *     that teaches a small model to copy from its context (see CorpusMix.recall).
 * Arith/code documents and pairs span all difficulty levels (LEVEL_WEIGHTS: mostly 1–3); any
 * whose problem or program is in `avoid` (eval prompts) is skipped. QA/MC pairs only ask about the `trainKeys` given (never a held-out
 * key), never in a key's last phrasing (held out of training at difficulty 5), and any whose
 * normalised "question => answer" is in `heldPairs` is skipped. The stream is sequential, so a
 * corpus of n documents is a prefix of every longer one.
 */
import { Rng } from '../common/rng.js';
import { UserError } from '../common/errors.js';
import { arithDrillText, arithResponse, arithWorkedText, generateArithProblem } from './arith.js';
import { CODE_PROMPT_HEADER, generateCodeProblem, generateExpressionFact } from './code.js';
import { mcItem, type QuestionKey } from './knowledge.js';
import { formatPrompt, normalizeAnswer, RESPONSE_END } from './template.js';
import type { CorpusMix, CorpusOptions, DomainName, EntityKind } from './types.js';
import { fill, relationSpec, type WorldIndex } from './world.js';

export const DEFAULT_CORPUS_DOCS = 2000;
export const DEFAULT_MIX: CorpusMix = { knowledge: 0.45, arith: 0.2, code: 0.1, instruct: 0.25 };
export const MAX_DOC_BYTES = 250;
/** Most question/answer pairs in one instruct document. */
export const MAX_INSTRUCT_PAIRS = 3;
const INSTRUCT_DOMAINS: readonly DomainName[] = ['arith', 'code', 'qa', 'mc'];
const RECALL_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789';
/** Between the two copies of a recall document's run. */
export const RECALL_JOIN = ' Again: ';

/**
 * How often each difficulty level (1..5) is drawn for arith/code documents and instruct pairs:
 * every level is in the corpus, the easier ones more often (a tiny model learns to copy and add
 * small numbers before it can do anything with long chains).
 */
export const LEVEL_WEIGHTS: readonly number[] = [0.3, 0.3, 0.2, 0.1, 0.1];

/** Check level weights (five non-negative numbers, not all zero) and normalise them to sum 1. */
export function resolveLevels(levels: readonly number[] | undefined): number[] {
  if (levels === undefined) return [...LEVEL_WEIGHTS]; // as they are: the default corpus stays bit-identical
  const w = levels;
  if (w.length !== LEVEL_WEIGHTS.length)
    throw new UserError(
      `corpus levels must be ${LEVEL_WEIGHTS.length} weights, one per difficulty level (got ${w.length})`,
    );
  for (const [i, v] of w.entries()) {
    if (!Number.isFinite(v) || v < 0)
      throw new UserError(`corpus levels: weight of level ${i + 1} must be a non-negative number (got ${v})`);
  }
  const total = w.reduce((a, b) => a + b, 0);
  if (total <= 0) throw new UserError('corpus levels must have a positive weight');
  return w.map((v) => v / total);
}

/** A difficulty level 1..weights.length drawn with the (normalised) weights. */
function corpusLevel(rng: Rng, weights: readonly number[]): number {
  let u = rng.next();
  let last = 1;
  for (let i = 0; i < weights.length; i++) {
    if (weights[i]! <= 0) continue;
    last = i + 1;
    u -= weights[i]!;
    if (u < 0) return i + 1;
  }
  return last; // rounding left u ≥ 0: the last level with weight
}

/** What the corpus must not contain, and what its instruct documents may ask about. */
export interface CorpusGuard {
  /** Arithmetic eval prompts and eval programs (exact text): never in a document. */
  avoid: ReadonlySet<string>;
  /** Question keys of the training split: the only keys QA/MC instruct pairs ask about. */
  trainKeys: readonly QuestionKey[];
  /** `questionAnswerKey()`s of held-out questions: no QA/MC instruct pair has one. */
  heldPairs: ReadonlySet<string>;
}

/** Normalised "question => answer" of a QA/MC item (MC: the question line without the options). */
export function questionAnswerKey(prompt: string, answer: string): string {
  const question = prompt.split('\n')[0]!;
  return `${question.trim().toLowerCase().replace(/\s+/g, ' ')}=>${normalizeAnswer(answer)}`;
}

/** One instruction-template pair: `formatPrompt(prompt) + response` is its text. */
export interface InstructPair {
  domain: DomainName;
  prompt: string;
  response: string;
}

const INTRO: Record<EntityKind, string[]> = {
  country: ['{s} is a country.'],
  city: [],
  company: ['{s} is a company.'],
  person: ['{s} is a person.'],
  animal: ['The {s} is an animal.'],
};

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)]!;
}

/** A document about one entity: every fact with it as subject, up to two with it as object. */
export function entityDocument(rng: Rng, index: WorldIndex, name: string): string {
  const kind = index.kindOf.get(name)!;
  const own = index
    .factsAbout(name)
    .map((f) => fill(pick(rng, relationSpec(f.relation).sentences), f.subject, f.object));
  const others = rng
    .shuffle(index.factsWithObject(name).filter((f) => relationSpec(f.relation).objectSentences))
    .slice(0, 2)
    .map((f) => fill(pick(rng, relationSpec(f.relation).objectSentences!), f.subject, f.object));
  const intro = INTRO[kind].length > 0 ? [fill(pick(rng, INTRO[kind]), name)] : [];
  const body = rng.shuffle([...own]);
  let sentences = [...intro, ...body, ...others];
  while (sentences.join(' ').length > MAX_DOC_BYTES && sentences.length > own.length) {
    sentences = sentences.slice(0, -1);
  }
  if (sentences.join(' ').length > MAX_DOC_BYTES) sentences = body;
  return sentences.join(' ');
}

/** Sequential, prefix-stable document stream for one mix. */
export class CorpusStream {
  private readonly docs: string[] = [];
  private readonly rng: Rng;
  private readonly entities: string[];
  private epoch: string[] = [];
  private readonly mix: CorpusMix;
  private readonly levels: number[];
  private readonly people: string[];
  /** Training keys with the last phrasing dropped (it is eval-only at difficulty 5). */
  private readonly trainKeys: QuestionKey[];

  constructor(
    seed: number,
    private readonly index: WorldIndex,
    mix: CorpusMix,
    private readonly guard: CorpusGuard,
    levels?: readonly number[],
  ) {
    const recall = mix.recall ?? 0;
    const total = mix.knowledge + mix.arith + mix.code + mix.instruct + recall;
    this.mix = {
      knowledge: mix.knowledge / total,
      arith: mix.arith / total,
      code: mix.code / total,
      instruct: mix.instruct / total,
      recall: recall / total,
    };
    const m = this.mix;
    // A mix without recall documents keeps the stream key (and so the corpus) of earlier versions.
    const recallKey = recall > 0 ? `:recall=${m.recall!.toFixed(6)}` : '';
    this.levels = resolveLevels(levels);
    // The default levels keep the stream key (and so the corpus) of earlier versions.
    const levelKey = levels === undefined ? '' : `:levels=${this.levels.map((v) => v.toFixed(6)).join(',')}`;
    this.rng = Rng.derive(
      seed,
      `corpus:${m.knowledge.toFixed(6)}:${m.arith.toFixed(6)}:${m.instruct.toFixed(6)}${levelKey}${recallKey}`,
    );
    this.entities = index.world.entities.map((e) => e.name);
    this.people = index.entities('person');
    this.trainKeys = guard.trainKeys.map((k) => ({
      ...k,
      questions: k.questions.length < 2 ? k.questions : k.questions.slice(0, -1),
    }));
  }

  private arithProblem(level: number) {
    for (;;) {
      const p = generateArithProblem(this.rng, level, this.people);
      if (!this.guard.avoid.has(p.prompt)) return p;
    }
  }

  private codeProblem(level: number) {
    for (;;) {
      const p = generateCodeProblem(this.rng, level);
      if (!this.guard.avoid.has(p.program)) return p;
    }
  }

  /** One question/answer pair from the training side of a uniformly drawn domain. */
  instructPair(): InstructPair {
    const rng = this.rng;
    let domain = INSTRUCT_DOMAINS[rng.int(INSTRUCT_DOMAINS.length)]!;
    if ((domain === 'qa' || domain === 'mc') && this.trainKeys.length === 0) domain = 'arith';
    const level = corpusLevel(rng, this.levels);
    if (domain === 'arith') {
      const p = this.arithProblem(level);
      return { domain, prompt: p.prompt, response: arithResponse(p, true) };
    }
    if (domain === 'code') {
      const p = this.codeProblem(level);
      return { domain, prompt: CODE_PROMPT_HEADER + p.program, response: p.output };
    }
    for (let attempt = 0; ; attempt++) {
      if (attempt >= 1000) {
        const p = this.arithProblem(level);
        return { domain: 'arith', prompt: p.prompt, response: arithResponse(p, true) };
      }
      const k = this.trainKeys[rng.int(this.trainKeys.length)]!;
      let pair: InstructPair | undefined;
      if (domain === 'qa') {
        pair = {
          domain,
          prompt: fill(k.questions[rng.int(k.questions.length)]!, k.subject),
          response: k.answer,
        };
      } else {
        // difficulty ≥ 3 draws "near" distractors; 4 keeps the (already trimmed) phrasings
        const item = mcItem(this.index, k, 'train', Math.min(level, 4), rng);
        if (item) pair = { domain, prompt: item.prompt, response: item.answer };
      }
      if (pair && !this.guard.heldPairs.has(questionAnswerKey(pair.prompt, pair.response))) return pair;
    }
  }

  /** 1–MAX_INSTRUCT_PAIRS pairs in the template, joined by RESPONSE_END, within MAX_DOC_BYTES. */
  private instructDocument(): string {
    const pairs = 1 + this.rng.int(MAX_INSTRUCT_PAIRS);
    const texts: string[] = [];
    let length = -RESPONSE_END.length;
    while (texts.length < pairs) {
      const p = this.instructPair();
      const text = formatPrompt(p.prompt) + p.response;
      if (texts.length > 0 && length + RESPONSE_END.length + text.length > MAX_DOC_BYTES) break;
      texts.push(text);
      length += RESPONSE_END.length + text.length;
    }
    return texts.join(RESPONSE_END);
  }

  /**
   * "k3vqz8 tolm2xwe. Again: k3vqz8 tolm2xwe." — one to three random strings of 4–12 letters and
   * digits, then the same run. Random strings, not words: nothing but the copy predicts them, so
   * they are what makes a small model learn to look back (names and numbers that an n-gram can
   * guess teach it far more slowly; measured).
   */
  private recallDocument(): string {
    const rng = this.rng;
    const chunks = Array.from({ length: 1 + rng.int(3) }, () =>
      Array.from({ length: 4 + rng.int(9) }, () => RECALL_CHARS[rng.int(RECALL_CHARS.length)]).join(''),
    );
    const run = chunks.join(' ');
    return `${run}.${RECALL_JOIN}${run}.`;
  }

  private next(): string {
    const rng = this.rng;
    const u = rng.next();
    if (u < this.mix.knowledge) {
      if (this.epoch.length === 0) this.epoch = rng.shuffle([...this.entities]).reverse();
      return entityDocument(rng, this.index, this.epoch.pop()!);
    }
    const m = this.mix;
    if (u >= m.knowledge + m.arith + m.code + m.instruct) return this.recallDocument();
    if (u >= m.knowledge + m.arith + m.code) return this.instructDocument();
    const level = corpusLevel(rng, this.levels);
    if (u < this.mix.knowledge + this.mix.arith) {
      if (rng.next() < 0.35) return arithDrillText(rng, level);
      return arithWorkedText(this.arithProblem(level));
    }
    const form = rng.next();
    if (form < 0.2) {
      const facts = Array.from({ length: 3 + rng.int(3) }, () => generateExpressionFact(rng, level));
      return facts.map((f) => `${f.expr} is ${f.value}.`).join(' ');
    }
    const p = this.codeProblem(level);
    return form < 0.75
      ? `Program:\n${p.program}\nOutput: ${p.output}`
      : `The code\n${p.program}\nprints ${p.output}.`;
  }

  take(opts: CorpusOptions): string[] {
    const maxDocs = opts.docs ?? (opts.bytes === undefined ? DEFAULT_CORPUS_DOCS : Infinity);
    const maxBytes = opts.bytes ?? Infinity;
    let n = 0;
    let bytes = 0;
    while (n < maxDocs && bytes < maxBytes) {
      if (n === this.docs.length) {
        const d = this.next();
        this.docs.push(d);
      }
      bytes += this.docs[n]!.length;
      n++;
    }
    return this.docs.slice(0, n);
  }
}

export function resolveMix(mix: Partial<CorpusMix> | undefined): CorpusMix {
  const m = { ...DEFAULT_MIX, ...mix };
  for (const [k, v] of Object.entries(m)) {
    if (!Number.isFinite(v) || v < 0)
      throw new UserError(`corpus mix ${k} must be a non-negative number (got ${v})`);
  }
  if (m.knowledge + m.arith + m.code + m.instruct + (m.recall ?? 0) <= 0)
    throw new UserError('corpus mix must have a positive weight');
  return m;
}
