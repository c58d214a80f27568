/**
 * Data types shared by the embedded suite, the JSONL readers, training and evaluation.
 *
 * Domain labels: the embedded suite uses the four `DomainName`s; items read from a user's
 * JSONL carry whatever `domain`/`category` the line names ('custom' when it names none),
 * so `Example.domain` / `EvalItem.domain` are typed `DomainLabel` (any string, with the
 * four built-in names offered by autocompletion).
 */

/** The embedded suite's domains, mirroring HumanEval / GSM8K / NQ / MMLU. */
export const DOMAINS = ['arith', 'code', 'qa', 'mc'] as const;

/** GSM8K-like arithmetic, HumanEval-like program-execution prediction, NQ-like open QA, MMLU-like multiple choice. */
export type DomainName = (typeof DOMAINS)[number];

/** A domain label on an item: a built-in `DomainName` or any label from a user's data. */
export type DomainLabel = DomainName | (string & {});

/** Label given to real-data items that name no domain. */
export const CUSTOM_DOMAIN = 'custom';

export function isDomainName(s: string): s is DomainName {
  return (DOMAINS as readonly string[]).includes(s);
}

/**
 * One instruction-tuning pair. The training text is
 * `formatPrompt(prompt) + response + RESPONSE_END` (see template.ts) and the loss counts
 * only the bytes of `response + RESPONSE_END`. `response` never contains the terminator.
 */
export interface Example {
  domain: DomainLabel;
  prompt: string;
  response: string;
  id: string;
  /** World facts / question keys this item is about (embedded QA/MC only; for analysis and tests). */
  facts?: string[];
}

/**
 * One evaluation item. `metric: 'exact'`: generate greedily after `formatPrompt(prompt)` up to
 * RESPONSE_END and compare with `isCorrect` (normalised exact match; for arith the final number).
 * `metric: 'choice'`: `answer` is one of `choices`; score each choice as a continuation of
 * `formatPrompt(prompt)` by summed log-probability (lm-eval-harness style) — see `choiceContinuation`.
 */
export interface EvalItem {
  domain: DomainLabel;
  id: string;
  prompt: string;
  answer: string;
  choices?: string[];
  metric: 'exact' | 'choice';
  /** World facts / question keys this item is about (embedded QA/MC only). */
  facts?: string[];
}

// ---------------------------------------------------------------------------------------
// World knowledge base

export type EntityKind = 'country' | 'city' | 'company' | 'person' | 'animal';

export interface Entity {
  /** Unique across the whole world (also the entity's id). */
  name: string;
  kind: EntityKind;
}

/** A relation name; see RELATIONS in world.ts for subject/object kinds and phrasings. */
export type RelationName =
  | 'capital'
  | 'country_founded'
  | 'located_in'
  | 'mayor'
  | 'company_founded'
  | 'based_in'
  | 'product'
  | 'age'
  | 'lives_in'
  | 'born_in'
  | 'works_at'
  | 'favorite_color'
  | 'pet'
  | 'animal_color'
  | 'habitat'
  | 'diet'
  | 'legs';

/** One (subject, relation, object) triple. Functional: a subject has one object per relation. */
export interface Fact {
  /** `subject/relation`, unique. */
  id: string;
  subject: string;
  relation: RelationName;
  /** Entity name or attribute value as it appears in text ("Velma", "1203", "red"). */
  object: string;
}

export interface World {
  seed: number;
  size: number;
  entities: Entity[];
  facts: Fact[];
}

// ---------------------------------------------------------------------------------------
// Suite

/** Difficulty knob per domain: integer 1 (easiest) .. 5 (hardest); default DEFAULT_DIFFICULTY. */
export type Difficulty = Record<DomainName, number>;

export interface SuiteOptions {
  seed: number;
  trainPerDomain: number;
  evalPerDomain: number;
  difficulty?: Partial<Difficulty>;
  /** Approximate number of entities in the world (default 100, minimum 30). */
  worldSize?: number;
  /** Fraction of QA/MC question keys held out for evaluation (default 0.3, in (0, 0.8]). */
  heldOutFraction?: number;
  /** Include a chain of thought in arith training responses ("5+3=8. 8-2=6. #### 6"); default true. */
  arithChainOfThought?: boolean;
}

/**
 * Mixture weights of the pre-training corpus (normalised; default knowledge 0.45, arith 0.2,
 * code 0.1, instruct 0.25 — see DEFAULT_MIX in corpus.ts).
 */
export interface CorpusMix {
  /** Entity documents stating the world's facts. */
  knowledge: number;
  /** Worked word problems and equation drills in running text. */
  arith: number;
  /** Programs with their output and expression facts. */
  code: number;
  /**
   * Documents in the instruction template ("Q: …\nA: …", 1–3 pairs) drawn from the training
   * side of all four domains: arith/code problems that are no eval prompt, QA/MC questions about
   * training (never held-out) question keys.
   */
  instruct: number;
  /**
   * Recall documents: a run of random strings, then "Again:" and the same run
   * ("k3vqz8 tolm2xwe. Again: k3vqz8 tolm2xwe."). Copying from context is what the exact-match
   * tasks need (the numbers of a word problem, a variable's value, the entity asked about); the
   * other kinds reward it too weakly for a tiny model to learn it. Optional; default 0.
   */
  recall?: number;
}

export interface CorpusOptions {
  /** Number of documents (default 2000 when neither docs nor bytes is given). */
  docs?: number;
  /** Stop once the documents total at least this many bytes. With `docs`, whichever is reached first. */
  bytes?: number;
  mix?: Partial<CorpusMix>;
  /**
   * Relative weights of difficulty levels 1..5 for arith/code documents and instruct pairs
   * (default LEVEL_WEIGHTS in corpus.ts: 0.3, 0.3, 0.2, 0.1, 0.1). Tilt it towards the level a
   * model is evaluated at, e.g. [0.6, 0.25, 0.1, 0.05, 0] for a level-1 tiny model.
   */
  levels?: readonly number[];
}

export interface Suite {
  options: Required<Omit<SuiteOptions, 'difficulty'>> & { difficulty: Difficulty };
  world: World;
  /** All domains' training examples, shuffled together (seeded). */
  train: Example[];
  /** Evaluation items grouped by domain in DOMAINS order. */
  eval: EvalItem[];
  /**
   * Pre-training documents about the same world plus arithmetic and code in running text.
   * A number is a document count. Deterministic, and a prefix of any longer corpus for the same
   * suite. Each document is ASCII, at most ~250 bytes, has no blank line and no trailing newline.
   */
  pretrainCorpus(size: number | CorpusOptions): string[];
}
