/**
 * The generated world knowledge base behind the QA/MC domains and the pre-training corpus:
 * countries, cities, companies, people and (fictional) animals with attributes and relations.
 * Every relation is functional (one object per subject), so a forward question has one answer.
 */
import { Rng } from '../common/rng.js';
import { UserError } from '../common/errors.js';
import type { Entity, EntityKind, Fact, RelationName, World } from './types.js';

export const COLORS = ['red', 'blue', 'green', 'yellow', 'purple', 'orange', 'black', 'white'];
export const HABITATS = ['forest', 'desert', 'river', 'mountains', 'swamp', 'jungle', 'ocean', 'grassland'];
export const DIETS = ['seeds', 'fish', 'grass', 'insects', 'fruit', 'leaves', 'meat', 'nuts'];
export const PRODUCTS = [
  'shoes',
  'bread',
  'toys',
  'lamps',
  'boats',
  'clocks',
  'paper',
  'glass',
  'tea',
  'bikes',
  'soap',
  'rope',
];
export const LEG_COUNTS = ['2', '4', '6', '8'];

/** What kind of value a relation's object is: an entity kind, or an attribute value class. */
export type ValueClass =
  EntityKind | 'country_year' | 'company_year' | 'age' | 'legs' | 'color' | 'habitat' | 'diet' | 'product';

export interface RelationSpec {
  name: RelationName;
  subject: EntityKind;
  object: ValueClass;
  /** Lowest QA/MC difficulty at which the relation is asked about (see knowledge.ts). */
  level: number;
  /** Question phrasings ({s} = subject). The last one is held out of training at difficulty 5. */
  questions: string[];
  /** Corpus sentences for the subject's document ({s}, {o}). */
  sentences: string[];
  /** Corpus sentences for the object's document (entity-valued relations). */
  objectSentences?: string[];
  /** MC-only reverse questions ({o} = object): the correct choice is a subject with this object. */
  reverseQuestions?: string[];
}

export const RELATIONS: readonly RelationSpec[] = [
  {
    name: 'capital',
    subject: 'country',
    object: 'city',
    level: 1,
    questions: [
      'What is the capital of {s}?',
      'Which city is the capital of {s}?',
      'Name the capital of {s}.',
    ],
    sentences: ['The capital of {s} is {o}.', '{s} has its capital in {o}.'],
    objectSentences: ['{o} is the capital of {s}.'],
  },
  {
    name: 'country_founded',
    subject: 'country',
    object: 'country_year',
    level: 3,
    questions: ['When was {s} founded?', 'In what year was {s} founded?', 'What year was {s} founded in?'],
    sentences: ['{s} was founded in {o}.', 'The country of {s} dates from {o}.'],
  },
  {
    name: 'located_in',
    subject: 'city',
    object: 'country',
    level: 1,
    questions: ['In which country is {s}?', 'Which country is {s} in?', '{s} is a city in which country?'],
    sentences: ['{s} is a city in {o}.', '{s} lies in {o}.'],
    objectSentences: ['{o} has a city called {s}.'],
    reverseQuestions: ['Which of these cities is in {o}?'],
  },
  {
    name: 'mayor',
    subject: 'city',
    object: 'person',
    level: 2,
    questions: ['Who is the mayor of {s}?', 'Who runs the city of {s}?', 'Name the mayor of {s}.'],
    sentences: ['The mayor of {s} is {o}.'],
    objectSentences: ['{o} is the mayor of {s}.'],
  },
  {
    name: 'company_founded',
    subject: 'company',
    object: 'company_year',
    level: 3,
    questions: ['When was {s} founded?', 'In what year was {s} founded?', 'What year was {s} started?'],
    sentences: ['{s} was founded in {o}.', 'The company {s} was started in {o}.'],
  },
  {
    name: 'based_in',
    subject: 'company',
    object: 'city',
    level: 2,
    questions: ['Where is {s} based?', 'In which city is {s} based?', 'Where are the offices of {s}?'],
    sentences: ['{s} is based in {o}.', 'The offices of {s} are in {o}.'],
    objectSentences: ['The company {s} is based in {o}.'],
    reverseQuestions: ['Which of these companies is based in {o}?'],
  },
  {
    name: 'product',
    subject: 'company',
    object: 'product',
    level: 1,
    questions: ['What does {s} make?', 'What does {s} sell?', 'Which product does {s} make?'],
    sentences: ['{s} makes {o}.', '{s} is a maker of {o}.'],
  },
  {
    name: 'age',
    subject: 'person',
    object: 'age',
    level: 3,
    questions: ['How old is {s}?', 'What is the age of {s}?', 'What age is {s}?'],
    sentences: ['{s} is {o} years old.', '{s} is aged {o}.'],
  },
  {
    name: 'lives_in',
    subject: 'person',
    object: 'city',
    level: 2,
    questions: ['Where does {s} live?', 'In which city does {s} live?', 'What city is the home of {s}?'],
    sentences: ['{s} lives in {o}.', '{s} has a home in {o}.'],
    objectSentences: ['{s} lives in {o}.'],
    reverseQuestions: ['Which of these people lives in {o}?'],
  },
  {
    name: 'born_in',
    subject: 'person',
    object: 'city',
    level: 2,
    questions: ['Where was {s} born?', 'In which city was {s} born?', 'What is the birthplace of {s}?'],
    sentences: ['{s} was born in {o}.', 'The birthplace of {s} is {o}.'],
    objectSentences: ['{s} was born in {o}.'],
  },
  {
    name: 'works_at',
    subject: 'person',
    object: 'company',
    level: 2,
    questions: ['Where does {s} work?', 'Which company does {s} work for?', 'Who employs {s}?'],
    sentences: ['{s} works at {o}.', '{s} works for {o}.'],
    objectSentences: ['{o} employs {s}.'],
    reverseQuestions: ['Which of these people works at {o}?'],
  },
  {
    name: 'favorite_color',
    subject: 'person',
    object: 'color',
    level: 1,
    questions: [
      "What is {s}'s favorite color?",
      'Which color does {s} like best?',
      'What color does {s} love?',
    ],
    sentences: ["{s}'s favorite color is {o}.", '{s} likes {o} best.'],
  },
  {
    name: 'pet',
    subject: 'person',
    object: 'animal',
    level: 2,
    questions: ['What pet does {s} have?', 'What animal does {s} keep?', "What is {s}'s pet?"],
    sentences: ['{s} has a pet {o}.', '{s} keeps a {o} as a pet.'],
    objectSentences: ['{s} keeps a {o}.'],
  },
  {
    name: 'animal_color',
    subject: 'animal',
    object: 'color',
    level: 1,
    questions: ['What color is the {s}?', 'What is the color of the {s}?', 'Which color is a {s}?'],
    sentences: ['The {s} is {o}.', 'A {s} has {o} fur.'],
  },
  {
    name: 'habitat',
    subject: 'animal',
    object: 'habitat',
    level: 1,
    questions: [
      'Where does the {s} live?',
      'What is the home of the {s}?',
      'In what habitat does the {s} live?',
    ],
    sentences: ['The {s} lives in the {o}.', 'A {s} makes its home in the {o}.'],
  },
  {
    name: 'diet',
    subject: 'animal',
    object: 'diet',
    level: 1,
    questions: ['What does the {s} eat?', 'What is the food of the {s}?', 'What food does a {s} eat?'],
    sentences: ['The {s} eats {o}.', 'A {s} feeds on {o}.'],
  },
  {
    name: 'legs',
    subject: 'animal',
    object: 'legs',
    level: 1,
    questions: [
      'How many legs does the {s} have?',
      'How many legs has a {s}?',
      'What is the leg count of the {s}?',
    ],
    sentences: ['The {s} has {o} legs.', 'A {s} walks on {o} legs.'],
  },
];

/** Two-hop questions (difficulty 4+): follow `hops[0]` from the subject, then `hops[1]`. */
export interface PathSpec {
  name: string;
  subject: EntityKind;
  hops: [RelationName, RelationName];
  level: number;
  questions: string[];
}

export const PATHS: readonly PathSpec[] = [
  {
    name: 'lives_in.located_in',
    subject: 'person',
    hops: ['lives_in', 'located_in'],
    level: 4,
    questions: ['In which country does {s} live?', 'Which country does {s} live in?'],
  },
  {
    name: 'born_in.located_in',
    subject: 'person',
    hops: ['born_in', 'located_in'],
    level: 4,
    questions: ['In which country was {s} born?', 'Which country was {s} born in?'],
  },
  {
    name: 'based_in.located_in',
    subject: 'company',
    hops: ['based_in', 'located_in'],
    level: 4,
    questions: ['In which country is {s} based?', 'Which country is {s} based in?'],
  },
  {
    name: 'capital.mayor',
    subject: 'country',
    hops: ['capital', 'mayor'],
    level: 4,
    questions: ['Who is the mayor of the capital of {s}?', 'Who runs the capital city of {s}?'],
  },
  {
    name: 'works_at.based_in',
    subject: 'person',
    hops: ['works_at', 'based_in'],
    level: 4,
    questions: ['In which city is the company of {s} based?', 'Where is the employer of {s} based?'],
  },
];

export function relationSpec(name: RelationName): RelationSpec {
  const spec = RELATIONS.find((r) => r.name === name);
  if (!spec) throw new Error(`unknown relation ${name}`);
  return spec;
}

/** Fill {s} / {o} placeholders. */
export function fill(template: string, s: string, o = ''): string {
  return template.replace(/\{s\}/g, s).replace(/\{o\}/g, o);
}

// ---------------------------------------------------------------------------------------
// Names

const ONSETS = [
  'b',
  'd',
  'f',
  'g',
  'k',
  'l',
  'm',
  'n',
  'p',
  'r',
  's',
  't',
  'v',
  'z',
  'br',
  'dr',
  'gr',
  'kr',
  'tr',
  'st',
  'sh',
];
const VOWELS = ['a', 'e', 'i', 'o', 'u', 'a', 'e', 'o'];
const CODAS = ['', '', '', 'n', 'r', 'l', 's', 'm'];
const SUFFIXES: Record<EntityKind, string[]> = {
  country: ['land', 'ia', 'stan', 'mark', 'onia'],
  city: ['ton', 'burg', 'vale', 'port', 'by', 'ford'],
  company: ['tek', 'corp', 'ex', 'co', 'works'],
  person: [''],
  animal: ['', 'o', 'ax', 'ling'],
};

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function syllable(rng: Rng, coda: boolean): string {
  return (
    ONSETS[rng.int(ONSETS.length)]! +
    VOWELS[rng.int(VOWELS.length)]! +
    (coda ? CODAS[rng.int(CODAS.length)]! : '')
  );
}

/** Words of the templates and value pools: no generated name may equal one of them. */
function reservedWords(): Set<string> {
  const words = new Set<string>();
  const add = (text: string) => {
    for (const w of text.toLowerCase().split(/[^a-z]+/)) if (w) words.add(w);
  };
  for (const r of RELATIONS) {
    for (const t of [
      ...r.questions,
      ...r.sentences,
      ...(r.objectSentences ?? []),
      ...(r.reverseQuestions ?? []),
    ])
      add(t);
  }
  for (const p of PATHS) for (const q of p.questions) add(q);
  for (const v of [...COLORS, ...HABITATS, ...DIETS, ...PRODUCTS]) add(v);
  for (const w of [
    'is',
    'a',
    'an',
    'the',
    'and',
    'of',
    'in',
    'to',
    'has',
    'print',
    'len',
    'sum',
    'max',
    'min',
    'range',
    'for',
    'if',
    'else',
  ]) {
    words.add(w);
  }
  return words;
}

/** Whether two strings are at most one insertion, deletion or substitution apart. */
function withinOneEdit(a: string, b: string): boolean {
  if (Math.abs(a.length - b.length) > 1) return false;
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return a.slice(i + 1) === b.slice(i + 1) || a.slice(i) === b.slice(i + 1) || a.slice(i + 1) === b.slice(i);
}

function makeName(
  rng: Rng,
  kind: EntityKind,
  taken: Set<string>,
  sameKind: string[],
  reserved: Set<string>,
): string {
  for (let attempt = 0; attempt < 10_000; attempt++) {
    let root: string;
    const suffixes = SUFFIXES[kind];
    const suffix = suffixes[rng.int(suffixes.length)]!;
    if (kind === 'person') root = syllable(rng, false) + syllable(rng, rng.next() < 0.6);
    else if (kind === 'animal') root = syllable(rng, true) + (suffix === '' ? syllable(rng, true) : '');
    else root = (rng.next() < 0.5 ? syllable(rng, false) : '') + syllable(rng, true);
    let name = root + suffix;
    name = name.replace(/([aeiou])\1+/g, '$1');
    if (name.length < 4 || name.length > 10) continue;
    if (kind !== 'animal') name = capitalize(name);
    const key = name.toLowerCase();
    if (taken.has(key) || reserved.has(key)) continue;
    if (sameKind.some((other) => withinOneEdit(other, key))) continue;
    taken.add(key);
    sameKind.push(key);
    return name;
  }
  throw new Error('could not generate a unique name');
}

// ---------------------------------------------------------------------------------------
// World

export const MIN_WORLD_SIZE = 30;
export const DEFAULT_WORLD_SIZE = 100;

export interface WorldCounts {
  country: number;
  city: number;
  company: number;
  animal: number;
  person: number;
}

/** Entity counts for a world of about `size` entities. */
export function worldCounts(size: number): WorldCounts {
  const country = Math.max(3, Math.round(size * 0.07));
  const city = Math.max(2 * country, Math.round(size * 0.2));
  const company = Math.max(3, Math.round(size * 0.13));
  const animal = Math.max(4, Math.round(size * 0.12));
  const person = Math.max(city, size - country - city - company - animal);
  return { country, city, company, animal, person };
}

/**
 * A world of about `size` entities (minimum 30), deterministic in (seed, size). Each city lies in
 * one country (every country has at least two cities, one of them its capital); each city has a
 * mayor who lives there; people, companies and animals get random attributes.
 */
export function generateWorld(seed: number, size: number = DEFAULT_WORLD_SIZE): World {
  if (!Number.isInteger(size) || size < MIN_WORLD_SIZE) {
    throw new UserError(`worldSize must be an integer >= ${MIN_WORLD_SIZE} (got ${size})`);
  }
  const rng = Rng.derive(seed, 'world');
  const counts = worldCounts(size);
  const taken = new Set<string>();
  const reserved = reservedWords();
  const entities: Entity[] = [];
  const names: Record<EntityKind, string[]> = { country: [], city: [], company: [], person: [], animal: [] };
  for (const kind of ['country', 'city', 'company', 'person', 'animal'] as const) {
    const sameKind: string[] = [];
    for (let i = 0; i < counts[kind]; i++) {
      const name = makeName(rng, kind, taken, sameKind, reserved);
      names[kind].push(name);
      entities.push({ name, kind });
    }
  }
  const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)]!;
  const between = (lo: number, hi: number) => lo + rng.int(hi - lo + 1);

  const facts: Fact[] = [];
  const add = (subject: string, relation: RelationName, object: string) =>
    facts.push({ id: `${subject}/${relation}`, subject, relation, object });

  // Cities → countries: the first 2 per country round-robin, the rest at random.
  const countryOf = new Map<string, string>();
  names.city.forEach((city, i) => {
    countryOf.set(city, i < 2 * counts.country ? names.country[i % counts.country]! : pick(names.country));
  });
  for (const country of names.country) {
    const cities = names.city.filter((c) => countryOf.get(c) === country);
    add(country, 'capital', pick(cities));
    add(country, 'country_founded', String(between(800, 1900)));
  }
  const mayors = rng.shuffle([...names.person]).slice(0, counts.city);
  const mayorCity = new Map<string, string>();
  names.city.forEach((city, i) => {
    add(city, 'located_in', countryOf.get(city)!);
    add(city, 'mayor', mayors[i]!);
    mayorCity.set(mayors[i]!, city);
  });
  for (const company of names.company) {
    add(company, 'company_founded', String(between(1850, 2015)));
    add(company, 'based_in', pick(names.city));
    add(company, 'product', pick(PRODUCTS));
  }
  for (const person of names.person) {
    add(person, 'age', String(between(18, 90)));
    add(person, 'lives_in', mayorCity.get(person) ?? pick(names.city));
    add(person, 'born_in', pick(names.city));
    add(person, 'works_at', pick(names.company));
    add(person, 'favorite_color', pick(COLORS));
    add(person, 'pet', pick(names.animal));
  }
  for (const animal of names.animal) {
    add(animal, 'animal_color', pick(COLORS));
    add(animal, 'habitat', pick(HABITATS));
    add(animal, 'diet', pick(DIETS));
    add(animal, 'legs', pick(LEG_COUNTS));
  }
  return { seed, size, entities, facts };
}

/** Lookups over a world. */
export class WorldIndex {
  readonly kindOf = new Map<string, EntityKind>();
  readonly byKind = new Map<EntityKind, string[]>();
  private readonly fact = new Map<string, Fact>();
  private readonly ofSubject = new Map<string, Fact[]>();
  private readonly ofObject = new Map<string, Fact[]>();

  constructor(readonly world: World) {
    for (const e of world.entities) {
      this.kindOf.set(e.name, e.kind);
      const list = this.byKind.get(e.kind) ?? [];
      list.push(e.name);
      this.byKind.set(e.kind, list);
    }
    for (const f of world.facts) {
      this.fact.set(f.id, f);
      const s = this.ofSubject.get(f.subject) ?? [];
      s.push(f);
      this.ofSubject.set(f.subject, s);
      const o = this.ofObject.get(f.object) ?? [];
      o.push(f);
      this.ofObject.set(f.object, o);
    }
  }

  entities(kind: EntityKind): string[] {
    return this.byKind.get(kind) ?? [];
  }

  get(subject: string, relation: RelationName): Fact | undefined {
    return this.fact.get(`${subject}/${relation}`);
  }

  object(subject: string, relation: RelationName): string | undefined {
    return this.get(subject, relation)?.object;
  }

  factsAbout(subject: string): Fact[] {
    return this.ofSubject.get(subject) ?? [];
  }

  factsWithObject(object: string): Fact[] {
    return this.ofObject.get(object) ?? [];
  }

  /** Follow a two-hop path; undefined when a hop is missing. */
  follow(subject: string, hops: readonly RelationName[]): string | undefined {
    let cur: string | undefined = subject;
    for (const h of hops) {
      if (cur === undefined) return undefined;
      cur = this.object(cur, h);
    }
    return cur;
  }

  /** All values of a value class in this world (entity names, or the attribute pool). */
  values(cls: ValueClass): string[] {
    switch (cls) {
      case 'color':
        return COLORS;
      case 'habitat':
        return HABITATS;
      case 'diet':
        return DIETS;
      case 'product':
        return PRODUCTS;
      case 'legs':
        return LEG_COUNTS;
      case 'age':
        return range(18, 90);
      case 'country_year':
        return range(800, 1900);
      case 'company_year':
        return range(1850, 2015);
      default:
        return this.entities(cls);
    }
  }
}

function range(lo: number, hi: number): string[] {
  const out: string[] = [];
  for (let i = lo; i <= hi; i++) out.push(String(i));
  return out;
}

/** Whether a value class is numeric (MC distractors are then drawn near the answer at higher difficulty). */
export function isNumericClass(cls: ValueClass): boolean {
  return cls === 'age' || cls === 'country_year' || cls === 'company_year' || cls === 'legs';
}
