/**
 * NQ-like open QA and MMLU-like multiple choice over the generated world.
 *
 * A *question key* is what a question asks: a single fact (`Velma/mayor`) or a two-hop path
 * (`Tobin/lives_in.located_in`). Keys are split once per suite into train and held-out eval
 * keys (stratified by relation/path), shared by QA and MC: no SFT example — QA or MC, forward or
 * reverse — is about a held-out key, so an eval item can only be answered from what pre-training
 * taught (every fact is in the pre-training corpus) in the format SFT taught.
 *
 * Difficulty (QA and MC alike):
 *   1: geography and small-pool attributes (capital, city→country, favourite colour, habitat, diet,
 *      product, animal colour, legs)
 *   2: + people and companies (lives_in, born_in, works_at, based_in, mayor, pet)
 *   3: + numbers (ages, founding years); MC distractors are "near" (same country, close years)
 *   4: + two-hop questions ("In which country does Tobin live?")
 *   5: + eval uses a phrasing held out of training (the last phrasing of each relation)
 */
import type { Rng } from '../common/rng.js';
import type { EntityKind, RelationName } from './types.js';
import type { WorldIndex } from './world.js';
import { PATHS, RELATIONS, fill, isNumericClass, relationSpec, type ValueClass } from './world.js';

export interface QuestionKey {
  key: string;
  /** Relation or path name (the stratum of the split). */
  group: string;
  subject: string;
  answer: string;
  valueClass: ValueClass;
  level: number;
  questions: string[];
  /** Reverse phrasings (MC only, single-hop entity relations). */
  reverse: string[];
  relation?: RelationName;
  /** Facts the key depends on (one for single hop, two for paths). */
  factIds: string[];
}

export function enumerateKeys(index: WorldIndex): QuestionKey[] {
  const keys: QuestionKey[] = [];
  for (const f of index.world.facts) {
    const spec = relationSpec(f.relation);
    keys.push({
      key: f.id,
      group: f.relation,
      subject: f.subject,
      answer: f.object,
      valueClass: spec.object,
      level: spec.level,
      questions: spec.questions,
      reverse: spec.reverseQuestions ?? [],
      relation: f.relation,
      factIds: [f.id],
    });
  }
  for (const p of PATHS) {
    const last = relationSpec(p.hops[1]);
    for (const subject of index.entities(p.subject)) {
      const mid = index.object(subject, p.hops[0]);
      const answer = mid === undefined ? undefined : index.object(mid, p.hops[1]);
      if (mid === undefined || answer === undefined) continue;
      keys.push({
        key: `${subject}/${p.name}`,
        group: p.name,
        subject,
        answer,
        valueClass: last.object,
        level: p.level,
        questions: p.questions,
        reverse: [],
        factIds: [`${subject}/${p.hops[0]}`, `${mid}/${p.hops[1]}`],
      });
    }
  }
  return keys;
}

/** Held-out keys: `fraction` of each relation/path group (at least one of a group of two or more). */
export function splitKeys(keys: readonly QuestionKey[], rng: Rng, fraction: number): Set<string> {
  const groups = new Map<string, string[]>();
  for (const k of keys) {
    const g = groups.get(k.group) ?? [];
    g.push(k.key);
    groups.set(k.group, g);
  }
  const held = new Set<string>();
  for (const [, g] of groups) {
    const n = g.length < 2 ? 0 : Math.max(1, Math.round(g.length * fraction));
    for (const k of rng.shuffle([...g]).slice(0, n)) held.add(k);
  }
  return held;
}

/** Phrasings usable for a key in a split at a difficulty (at 5 the last phrasing is eval-only). */
export function phrasings(k: QuestionKey, split: 'train' | 'eval', difficulty: number): string[] {
  if (difficulty < 5 || k.questions.length < 2) return k.questions;
  return split === 'train' ? k.questions.slice(0, -1) : k.questions.slice(-1);
}

export function activeKeys(keys: readonly QuestionKey[], difficulty: number): QuestionKey[] {
  return keys.filter((k) => k.level <= difficulty);
}

export interface KnowledgeItem {
  prompt: string;
  answer: string;
  choices?: string[];
  key: string;
  factIds: string[];
}

/** QA prompts for keys, cycling phrasings: the first pass asks each key once (in `keys` order). */
export function qaItems(
  keys: readonly QuestionKey[],
  split: 'train' | 'eval',
  difficulty: number,
  rng: Rng,
  count: number,
): KnowledgeItem[] {
  const pool: KnowledgeItem[][] = keys.map((k) =>
    rng.shuffle(
      phrasings(k, split, difficulty).map((q) => ({
        prompt: fill(q, k.subject),
        answer: k.answer,
        key: k.key,
        factIds: k.factIds,
      })),
    ),
  );
  const out: KnowledgeItem[] = [];
  const maxPass = Math.max(0, ...pool.map((p) => p.length));
  for (let pass = 0; pass < maxPass && out.length < count; pass++) {
    for (const p of pool) {
      const item = p[pass];
      if (item) out.push(item);
      if (out.length >= count) break;
    }
  }
  return out;
}

/** Number of distinct QA prompts available for keys in a split. */
export function qaCapacity(
  keys: readonly QuestionKey[],
  split: 'train' | 'eval',
  difficulty: number,
): number {
  return keys.reduce((n, k) => n + phrasings(k, split, difficulty).length, 0);
}

const LETTERS = ['A', 'B', 'C', 'D'];

/** "Question\nA) x B) y C) z D) w" */
export function mcPrompt(question: string, choices: readonly string[]): string {
  return `${question}\n${choices.map((c, i) => `${LETTERS[i]}) ${c}`).join(' ')}`;
}

function kindOfClass(cls: ValueClass): EntityKind | undefined {
  return cls === 'country' || cls === 'city' || cls === 'company' || cls === 'person' || cls === 'animal'
    ? cls
    : undefined;
}

/** Values that make hard distractors for `answer` (difficulty 3+). */
function nearValues(index: WorldIndex, k: QuestionKey, answer: string, cls: ValueClass): string[] {
  if (isNumericClass(cls)) {
    const a = Number(answer);
    const spread = cls === 'legs' ? 8 : cls === 'age' ? 6 : 15;
    return index.values(cls).filter((v) => v !== answer && Math.abs(Number(v) - a) <= spread);
  }
  const kind = kindOfClass(cls);
  if (!kind) return [];
  const near = new Set<string>();
  for (const f of index.factsAbout(k.subject)) if (index.kindOf.get(f.object) === kind) near.add(f.object);
  if (kind === 'city') {
    const country = index.object(answer, 'located_in');
    for (const c of index.entities('city')) if (index.object(c, 'located_in') === country) near.add(c);
  } else if (kind === 'person') {
    const home = index.object(answer, 'lives_in');
    for (const p of index.entities('person')) if (index.object(p, 'lives_in') === home) near.add(p);
  } else if (kind === 'company') {
    const city = index.object(answer, 'based_in');
    for (const c of index.entities('company')) if (index.object(c, 'based_in') === city) near.add(c);
  }
  near.delete(answer);
  return [...near];
}

function pickDistinct(rng: Rng, pool: readonly string[], n: number, exclude: Set<string>): string[] {
  const out: string[] = [];
  for (const v of rng.shuffle([...pool])) {
    if (out.length >= n) break;
    if (!exclude.has(v)) {
      out.push(v);
      exclude.add(v);
    }
  }
  return out;
}

/**
 * One MC item for a key: forward (or, 30% of the time when the relation has one, reverse), four
 * distinct choices with the correct one at a uniformly random position. Undefined when the world
 * has too few candidates.
 */
export function mcItem(
  index: WorldIndex,
  k: QuestionKey,
  split: 'train' | 'eval',
  difficulty: number,
  rng: Rng,
): KnowledgeItem | undefined {
  const useReverse = k.reverse.length > 0 && rng.next() < 0.3;
  let question: string;
  let answer: string;
  let distractors: string[];
  if (useReverse) {
    const spec = RELATIONS.find((r) => r.name === k.relation)!;
    question = fill(k.reverse[rng.int(k.reverse.length)]!, '', k.answer);
    answer = k.subject;
    // Other subjects of the relation that do NOT have this object.
    const candidates = index.entities(spec.subject).filter((s) => index.object(s, spec.name) !== k.answer);
    distractors = pickDistinct(rng, candidates, 3, new Set([answer]));
  } else {
    const qs = phrasings(k, split, difficulty);
    question = fill(qs[rng.int(qs.length)]!, k.subject);
    answer = k.answer;
    const exclude = new Set([answer]);
    distractors =
      difficulty >= 3 ? pickDistinct(rng, nearValues(index, k, answer, k.valueClass), 2, exclude) : [];
    distractors.push(...pickDistinct(rng, index.values(k.valueClass), 3 - distractors.length, exclude));
  }
  if (distractors.length < 3) return undefined;
  const choices = [...distractors];
  choices.splice(rng.int(4), 0, answer);
  return { prompt: mcPrompt(question, choices), answer, choices, key: k.key, factIds: k.factIds };
}

/**
 * `count` MC items over `keys`: passes over the keys in order, each pass one item per key, skipping
 * prompts already produced (or listed in `avoid`).
 */
export function mcItems(
  index: WorldIndex,
  keys: readonly QuestionKey[],
  split: 'train' | 'eval',
  difficulty: number,
  rng: Rng,
  count: number,
  avoid: ReadonlySet<string> = new Set(),
): KnowledgeItem[] {
  const out: KnowledgeItem[] = [];
  const seen = new Set<string>(avoid);
  let stale = 0;
  while (out.length < count && keys.length > 0 && stale < 3) {
    const before = out.length;
    for (const k of keys) {
      if (out.length >= count) break;
      for (let attempt = 0; attempt < 4; attempt++) {
        const item = mcItem(index, k, split, difficulty, rng);
        if (item && !seen.has(item.prompt)) {
          seen.add(item.prompt);
          out.push(item);
          break;
        }
      }
    }
    stale = out.length === before ? stale + 1 : 0;
  }
  return out;
}
