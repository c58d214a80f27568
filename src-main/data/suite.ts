/**
 * buildSuite: the embedded multi-domain suite (arith, code, qa, mc), deterministic in its options.
 *
 * Splits: eval items are generated first; arith/code training prompts never equal an eval prompt
 * (nor appear in the pre-training corpus); QA/MC train and eval ask about disjoint question keys
 * (see knowledge.ts). A final guard drops any training example whose normalised prompt equals an
 * eval prompt's.
 *
 * Sizes: `trainPerDomain` / `evalPerDomain` items per domain. When a domain's training pool is
 * smaller than `trainPerDomain` (QA at small worlds), its items repeat (each pass reshuffled).
 * When `worldSize` is not given, the world grows from 100 entities until every knowledge domain
 * has `evalPerDomain` distinct held-out prompts; when it is given and too small, a UserError says so.
 */
import { Rng } from '../common/rng.js';
import { UserError } from '../common/errors.js';
import { arithResponse, generateArithProblem } from './arith.js';
import { CODE_PROMPT_HEADER, generateCodeProblem } from './code.js';
import { CorpusStream, questionAnswerKey, resolveLevels, resolveMix, type CorpusGuard } from './corpus.js';
import {
  activeKeys,
  enumerateKeys,
  mcItems,
  qaCapacity,
  qaItems,
  splitKeys,
  type KnowledgeItem,
  type QuestionKey,
} from './knowledge.js';
import {
  DOMAINS,
  isDomainName,
  type CorpusOptions,
  type Difficulty,
  type DomainName,
  type EvalItem,
  type Example,
  type Suite,
  type SuiteOptions,
  type World,
} from './types.js';
import { DEFAULT_WORLD_SIZE, MIN_WORLD_SIZE, WorldIndex, fill, generateWorld } from './world.js';

/**
 * Per domain, the level at which the shipped tiny base scores in the middle of the range, leaving
 * instruction tuning room to move every domain either way (resources/models/tiny-base/RECIPE.md):
 * arith 5 (38% zero-shot; 98–100% at levels 1–3), code 2 (33%; 83% at level 1), qa 4 (two-hop
 * questions, 54%), mc 4 (73%; chance is 25%). `--difficulty` sets one level for every domain or
 * levels per domain, as does a plan's data.difficulty.
 */
export const DEFAULT_DIFFICULTY: Difficulty = { arith: 5, code: 2, qa: 4, mc: 4 };
export const DEFAULT_HELD_OUT_FRACTION = 0.3;
const MAX_AUTO_WORLD_SIZE = 4000;
/** Draws of each eval generator (per difficulty) kept out of the pre-training corpus. */
export const CORPUS_AVOID_DRAWS = 1000;

/** Normalisation used to compare prompts across splits: trimmed, lowercased, whitespace collapsed. */
export function normalizePrompt(p: string): string {
  return p.trim().toLowerCase().replace(/\s+/g, ' ');
}

function checkCount(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new UserError(`${name} must be a non-negative integer (got ${String(v)})`);
  }
  return v;
}

function resolveDifficulty(d: SuiteOptions['difficulty']): Difficulty {
  const out: Difficulty = { ...DEFAULT_DIFFICULTY };
  for (const [k, v] of Object.entries(d ?? {})) {
    if (!isDomainName(k))
      throw new UserError(`difficulty: unknown domain "${k}" (expected ${DOMAINS.join(', ')})`);
    if (v === undefined) continue;
    if (!Number.isInteger(v) || v < 1 || v > 5)
      throw new UserError(`difficulty.${k} must be an integer 1..5 (got ${v})`);
    out[k] = v;
  }
  return out;
}

interface Knowledge {
  world: World;
  index: WorldIndex;
  keys: QuestionKey[];
  held: Set<string>;
}

function knowledgeFor(seed: number, size: number, fraction: number): Knowledge {
  const world = generateWorld(seed, size);
  const index = new WorldIndex(world);
  const keys = enumerateKeys(index);
  const held = splitKeys(keys, Rng.derive(seed, 'split'), fraction);
  return { world, index, keys, held };
}

function evalCapacity(k: Knowledge, difficulty: Difficulty): number {
  const evalKeys = k.keys.filter((q) => k.held.has(q.key));
  return Math.min(
    qaCapacity(activeKeys(evalKeys, difficulty.qa), 'eval', difficulty.qa),
    qaCapacity(activeKeys(evalKeys, difficulty.mc), 'eval', difficulty.mc),
  );
}

/** Repeat `items` (reshuffled each pass) until there are `n`. */
function cycle<T>(items: readonly T[], n: number, rng: Rng): T[] {
  if (items.length === 0 || items.length >= n) return items.slice(0, n);
  const out = [...items];
  while (out.length < n) out.push(...rng.shuffle([...items]).slice(0, n - out.length));
  return out;
}

/** `count` unique prompts from `make`, none in `avoid`; after many collisions, duplicates are allowed. */
function uniqueGenerate<T extends { prompt: string }>(
  count: number,
  avoid: ReadonlySet<string>,
  make: () => T,
): T[] {
  const out: T[] = [];
  const seen = new Set<string>();
  let misses = 0;
  while (out.length < count) {
    const item = make();
    const key = normalizePrompt(item.prompt);
    if (avoid.has(key)) continue;
    if (seen.has(key) && misses++ < 50 * count + 1000) continue;
    seen.add(key);
    out.push(item);
  }
  return out;
}

export function buildSuite(opts: SuiteOptions): Suite {
  if (typeof opts.seed !== 'number' || !Number.isInteger(opts.seed)) {
    throw new UserError(`seed must be an integer (got ${String(opts.seed)})`);
  }
  const seed = opts.seed;
  const trainPerDomain = checkCount('trainPerDomain', opts.trainPerDomain);
  const evalPerDomain = checkCount('evalPerDomain', opts.evalPerDomain);
  const difficulty = resolveDifficulty(opts.difficulty);
  const heldOutFraction = opts.heldOutFraction ?? DEFAULT_HELD_OUT_FRACTION;
  if (!(heldOutFraction > 0 && heldOutFraction <= 0.8)) {
    throw new UserError(`heldOutFraction must be in (0, 0.8] (got ${heldOutFraction})`);
  }
  const arithChainOfThought = opts.arithChainOfThought ?? true;

  // World: grow until the knowledge domains have enough held-out prompts.
  let size = opts.worldSize ?? DEFAULT_WORLD_SIZE;
  if (opts.worldSize !== undefined && (!Number.isInteger(size) || size < MIN_WORLD_SIZE)) {
    throw new UserError(`worldSize must be an integer >= ${MIN_WORLD_SIZE} (got ${size})`);
  }
  let k = knowledgeFor(seed, size, heldOutFraction);
  while (evalCapacity(k, difficulty) < evalPerDomain) {
    if (opts.worldSize !== undefined || size >= MAX_AUTO_WORLD_SIZE) {
      throw new UserError(
        `worldSize ${size} gives only ${evalCapacity(k, difficulty)} held-out qa/mc questions at this difficulty; ` +
          `raise worldSize or heldOutFraction, or lower evalPerDomain (${evalPerDomain})`,
      );
    }
    size = Math.min(MAX_AUTO_WORLD_SIZE, Math.ceil(size * 1.25));
    k = knowledgeFor(seed, size, heldOutFraction);
  }
  const { world, index, keys, held } = k;
  const people = index.entities('person');

  const evalItems: EvalItem[] = [];
  const train: Example[] = [];
  const addEval = (
    domain: DomainName,
    items: { prompt: string; answer: string; choices?: string[]; facts?: string[] }[],
  ) =>
    items.forEach((it, i) =>
      evalItems.push({
        domain,
        id: `${domain}-eval-${i}`,
        prompt: it.prompt,
        answer: it.answer,
        ...(it.choices ? { choices: it.choices } : {}),
        metric: it.choices ? 'choice' : 'exact',
        ...(it.facts ? { facts: it.facts } : {}),
      }),
    );
  const addTrain = (domain: DomainName, items: { prompt: string; response: string; facts?: string[] }[]) =>
    items.forEach((it, i) =>
      train.push({
        domain,
        prompt: it.prompt,
        response: it.response,
        id: `${domain}-train-${i}`,
        ...(it.facts ? { facts: it.facts } : {}),
      }),
    );
  const promptsOf = (items: readonly { prompt: string }[]) =>
    new Set(items.map((it) => normalizePrompt(it.prompt)));

  // arith
  {
    const d = difficulty.arith;
    const ev = Rng.derive(seed, 'arith:eval');
    const tr = Rng.derive(seed, 'arith:train');
    const evalProblems = uniqueGenerate(evalPerDomain, new Set(), () => generateArithProblem(ev, d, people));
    addEval(
      'arith',
      evalProblems.map((p) => ({ prompt: p.prompt, answer: String(p.answer) })),
    );
    const trainProblems = uniqueGenerate(trainPerDomain, promptsOf(evalProblems), () =>
      generateArithProblem(tr, d, people),
    );
    addTrain(
      'arith',
      trainProblems.map((p) => ({ prompt: p.prompt, response: arithResponse(p, arithChainOfThought) })),
    );
  }

  // code
  const codeProblem = (rng: Rng) => {
    const p = generateCodeProblem(rng, difficulty.code);
    return { prompt: CODE_PROMPT_HEADER + p.program, program: p.program, output: p.output };
  };
  let codeEvalPrograms: string[];
  {
    const ev = Rng.derive(seed, 'code:eval');
    const tr = Rng.derive(seed, 'code:train');
    const evalProblems = uniqueGenerate(evalPerDomain, new Set(), () => codeProblem(ev));
    codeEvalPrograms = evalProblems.map((p) => p.program);
    addEval(
      'code',
      evalProblems.map((p) => ({ prompt: p.prompt, answer: p.output })),
    );
    const trainProblems = uniqueGenerate(trainPerDomain, promptsOf(evalProblems), () => codeProblem(tr));
    addTrain(
      'code',
      trainProblems.map((p) => ({ prompt: p.prompt, response: p.output })),
    );
  }

  // qa and mc
  const evalKeys = keys.filter((q) => held.has(q.key));
  const trainKeys = keys.filter((q) => !held.has(q.key));
  const factsOf = (it: KnowledgeItem) => [...new Set([it.key, ...it.factIds])];
  const toEval = (items: KnowledgeItem[]) =>
    items.map((it) => ({ prompt: it.prompt, answer: it.answer, choices: it.choices, facts: factsOf(it) }));
  const toTrain = (items: KnowledgeItem[]) =>
    items.map((it) => ({ prompt: it.prompt, response: it.answer, facts: factsOf(it) }));
  {
    const d = difficulty.qa;
    const ev = Rng.derive(seed, 'qa:eval');
    const tr = Rng.derive(seed, 'qa:train');
    addEval('qa', toEval(qaItems(ev.shuffle(activeKeys(evalKeys, d)), 'eval', d, ev, evalPerDomain)));
    const pool = qaItems(tr.shuffle(activeKeys(trainKeys, d)), 'train', d, tr, trainPerDomain);
    addTrain('qa', toTrain(cycle(pool, trainPerDomain, tr)));
  }
  {
    const d = difficulty.mc;
    const ev = Rng.derive(seed, 'mc:eval');
    const tr = Rng.derive(seed, 'mc:train');
    const evalMc = mcItems(index, ev.shuffle(activeKeys(evalKeys, d)), 'eval', d, ev, evalPerDomain);
    addEval('mc', toEval(evalMc));
    const pool = mcItems(
      index,
      tr.shuffle(activeKeys(trainKeys, d)),
      'train',
      d,
      tr,
      trainPerDomain,
      promptsOf(evalMc),
    );
    addTrain('mc', toTrain(cycle(pool, trainPerDomain, tr)));
  }

  // Guard: no training prompt equals an eval prompt.
  const evalPrompts = promptsOf(evalItems);
  const trainClean = train.filter((ex) => !evalPrompts.has(normalizePrompt(ex.prompt)));
  Rng.derive(seed, 'train:order').shuffle(trainClean);

  // The corpus guard (built on first use): this suite's eval prompts, and every prompt an eval
  // suite of this seed and world could draw — the first CORPUS_AVOID_DRAWS draws of each eval
  // generator at every difficulty (an eval set is a subsequence of its generator's draws) — so
  // the same corpus is clean for `upit eval` at any difficulty and size up to that many items.
  let guard: CorpusGuard | undefined;
  const corpusGuard = (): CorpusGuard => {
    if (guard) return guard;
    const avoid = new Set<string>([
      ...evalItems.filter((e) => e.domain === 'arith').map((e) => e.prompt),
      ...codeEvalPrograms,
    ]);
    const draws = Math.max(CORPUS_AVOID_DRAWS, 2 * evalPerDomain);
    for (let d = 1; d <= 5; d++) {
      const ar = Rng.derive(seed, 'arith:eval');
      const co = Rng.derive(seed, 'code:eval');
      for (let i = 0; i < draws; i++) {
        avoid.add(generateArithProblem(ar, d, people).prompt);
        avoid.add(generateCodeProblem(co, d).program);
      }
    }
    const heldPairs = new Set<string>();
    for (const q of keys) {
      if (!held.has(q.key)) continue;
      for (const t of q.questions) heldPairs.add(questionAnswerKey(fill(t, q.subject), q.answer));
      for (const t of q.reverse) heldPairs.add(questionAnswerKey(fill(t, '', q.answer), q.subject));
    }
    for (const it of evalItems)
      if (it.domain === 'qa' || it.domain === 'mc') heldPairs.add(questionAnswerKey(it.prompt, it.answer));
    guard = { avoid, trainKeys: keys.filter((q) => !held.has(q.key)), heldPairs };
    return guard;
  };
  const streams = new Map<string, CorpusStream>();
  const pretrainCorpus = (sizeArg: number | CorpusOptions): string[] => {
    const co: CorpusOptions = typeof sizeArg === 'number' ? { docs: sizeArg } : sizeArg;
    if (co.docs !== undefined) checkCount('corpus docs', co.docs);
    if (co.bytes !== undefined) checkCount('corpus bytes', co.bytes);
    const mix = resolveMix(co.mix);
    const levels = co.levels === undefined ? undefined : resolveLevels(co.levels);
    const key = `${mix.knowledge}:${mix.arith}:${mix.code}:${mix.instruct}:${mix.recall ?? 0}:${levels?.join(',') ?? 'default'}`;
    let stream = streams.get(key);
    if (!stream) {
      stream = new CorpusStream(seed, index, mix, corpusGuard(), levels);
      streams.set(key, stream);
    }
    return stream.take(co);
  };

  return {
    options: {
      seed,
      trainPerDomain,
      evalPerDomain,
      difficulty,
      worldSize: size,
      heldOutFraction,
      arithChainOfThought,
    },
    world,
    train: trainClean,
    eval: evalItems,
    pretrainCorpus,
  };
}
