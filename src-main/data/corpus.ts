/**
 * The pre-training corpus: short documents (≤ 250 bytes, ASCII, no blank lines) drawn from
 *   - knowledge: one document per entity stating every fact about it (random phrasings and
 *     order, plus up to two sentences where the entity is the object); entities are visited in
 *     shuffled "epochs", so every fact is in the corpus once it has ~(#entities / knowledge share)
 *     documents and is repeated with varied wording after that;
 *   - arith: worked word problems ("… 5+3=8. 8-2=6. So the answer is 6.") and equation drills;
 *   - code: programs with their output ("Program:\n…\nOutput: 7") and expression facts.
 * Arith/code documents span all difficulty levels; any whose problem or program is an eval
 * prompt is skipped (no eval contamination). The stream is sequential, so a corpus of n
 * documents is a prefix of every longer one.
 */
import { Rng } from '../common/rng.js';
import { UserError } from '../common/errors.js';
import { arithDrillText, arithWorkedText, generateArithProblem } from './arith.js';
import { generateCodeProblem, generateExpressionFact } from './code.js';
import type { CorpusMix, CorpusOptions, EntityKind } from './types.js';
import { fill, relationSpec, type WorldIndex } from './world.js';

export const DEFAULT_CORPUS_DOCS = 2000;
export const DEFAULT_MIX: CorpusMix = { knowledge: 0.6, arith: 0.2, code: 0.2 };
export const MAX_DOC_BYTES = 250;

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
  private readonly people: string[];

  constructor(
    seed: number,
    private readonly index: WorldIndex,
    mix: CorpusMix,
    private readonly avoid: ReadonlySet<string>,
  ) {
    const total = mix.knowledge + mix.arith + mix.code;
    this.mix = { knowledge: mix.knowledge / total, arith: mix.arith / total, code: mix.code / total };
    this.rng = Rng.derive(seed, `corpus:${this.mix.knowledge.toFixed(6)}:${this.mix.arith.toFixed(6)}`);
    this.entities = index.world.entities.map((e) => e.name);
    this.people = index.entities('person');
  }

  private next(): string {
    const rng = this.rng;
    const u = rng.next();
    if (u < this.mix.knowledge) {
      if (this.epoch.length === 0) this.epoch = rng.shuffle([...this.entities]).reverse();
      return entityDocument(rng, this.index, this.epoch.pop()!);
    }
    const level = 1 + rng.int(5);
    if (u < this.mix.knowledge + this.mix.arith) {
      if (rng.next() < 0.35) return arithDrillText(rng, level);
      for (;;) {
        const p = generateArithProblem(rng, level, this.people);
        if (!this.avoid.has(p.prompt)) return arithWorkedText(p);
      }
    }
    const form = rng.next();
    if (form < 0.2) {
      const facts = Array.from({ length: 3 + rng.int(3) }, () => generateExpressionFact(rng, level));
      return facts.map((f) => `${f.expr} is ${f.value}.`).join(' ');
    }
    for (;;) {
      const p = generateCodeProblem(rng, level);
      if (this.avoid.has(p.program)) continue;
      return form < 0.75
        ? `Program:\n${p.program}\nOutput: ${p.output}`
        : `The code\n${p.program}\nprints ${p.output}.`;
    }
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
  if (m.knowledge + m.arith + m.code <= 0) throw new UserError('corpus mix must have a positive weight');
  return m;
}
