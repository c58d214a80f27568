/**
 * Plan files: one experiment — base model, data, the options of the four stages, the variants
 * to run (the paper's baselines and ablations), seeds — in YAML or JSON, validated with zod.
 *
 * The stage sections take the fields of the stage's job config (catalog.ts) except the wiring
 * (run ids, seed, backend, base, data), all optional: a field left out gets the job's default.
 * A variant is a kind from VARIANT_KINDS, optionally named, with per-stage overrides and a
 * `sweep` (`{ "expand.n": [2, 4, 8] }` → one variant per value, named `upit@expand.n=4`).
 *
 * Every error names the file, the line and the field path: `plan.yaml:14:7: variants.2.kind: …`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { UserError } from '../../common/errors.js';
import { DataConfig, ExpandConfig, PrepareConfig, RouteConfig, UpcycleConfig } from '../kinds/catalog.js';

/** The paper's variants (DESIGN §5): what each builds is in graph.ts. */
export const VARIANT_KINDS = [
  'dense',
  'upit',
  'no-router-init',
  'router-random-data',
  'no-expansion',
  'random-parents',
  'first-half',
  'second-half',
  'vanilla',
  'loramoe',
] as const;
export type VariantKind = (typeof VARIANT_KINDS)[number];

type Shape = Record<string, z.ZodType>;

/** A strict object of `keys` from a job config's shape, each optional and without its default. */
function section(shape: Shape, keys: readonly string[]) {
  const out: Shape = {};
  for (const k of keys) {
    let f = shape[k];
    if (!f) throw new Error(`plan schema: no field ${k}`);
    if (f instanceof z.ZodDefault) f = f.unwrap() as z.ZodType;
    out[k] = f.optional();
  }
  return z.strictObject(out);
}

const shapeOf = (s: z.ZodType): Shape => (s as unknown as { shape: Shape }).shape;

export const PREPARE_KEYS = [
  'mode',
  'lora',
  'epochs',
  'lr',
  'warmupRatio',
  'weightDecay',
  'clipNorm',
  'batchSize',
  'gradAccum',
  'maxSeqLen',
  'checkpointEvery',
  'evalBatchSize',
  'evalMaxNewTokens',
  'evalBase',
] as const;
export const EXPAND_KEYS = ['n', 'p', 'alphaClamp', 'metric', 'selection', 'loraMergeSpace'] as const;
export const ROUTE_KEYS = [
  'fraction',
  'minPerExpert',
  'minBucket',
  'cap',
  'assignment',
  'epochs',
  'lr',
  'routerLr',
  'lmWeight',
  'freezeExpert',
  'negatives',
  'rescale',
  'batchSize',
  'maxSeqLen',
  'scoreBatchSize',
] as const;
export const UPCYCLE_KEYS = [
  'topK',
  'epochs',
  'lr',
  'auxCoef',
  'zCoef',
  'warmupRatio',
  'weightDecay',
  'clipNorm',
  'batchSize',
  'gradAccum',
  'maxSeqLen',
  'checkpointEvery',
  'evalBatchSize',
  'evalMaxNewTokens',
] as const;

export const STAGES = ['prepare', 'expand', 'route', 'upcycle'] as const;
export type Stage = (typeof STAGES)[number];

const PrepareSection = section(shapeOf(PrepareConfig), PREPARE_KEYS);
const ExpandSection = section(shapeOf(ExpandConfig), EXPAND_KEYS);
const RouteSection = section(shapeOf(RouteConfig), ROUTE_KEYS);
const UpcycleSection = section(shapeOf(UpcycleConfig), UPCYCLE_KEYS);

/** Variants after sweeps are expanded (each becomes jobs: a bound on what a plan file can ask for). */
export const MAX_VARIANTS = 1024;

const SweepValue = z.union([z.number(), z.string(), z.boolean()]);
const NAME = /^[A-Za-z0-9][A-Za-z0-9._=@+-]*$/;

const VariantObject = z.strictObject({
  name: z.string().max(80).regex(NAME, 'letters, digits and . _ = @ + - only').optional(),
  kind: z.enum(VARIANT_KINDS),
  prepare: PrepareSection.optional(),
  expand: ExpandSection.optional(),
  route: RouteSection.optional(),
  upcycle: UpcycleSection.optional(),
  /** `stage.field` (or `data.field`) → values: one variant per value (several keys: every combination). */
  sweep: z.record(z.string(), z.array(SweepValue).min(1).max(64)).optional(),
});

export const PlanSchema = z
  .strictObject({
    /** The experiment's name (runs of the plan are grouped under it in the workspace). */
    name: z.string().min(1).max(100).regex(NAME, 'letters, digits and . _ = @ + - only'),
    description: z.string().max(4000).optional(),
    /** Base model directory (relative to the plan file); default: the shipped tiny base model. */
    base: z.string().min(1).optional(),
    backend: z.enum(['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu']).default('auto'),
    seeds: z.array(z.number().int().min(0).max(0xffffffff)).min(1).max(100).default([1]),
    data: DataConfig,
    prepare: PrepareSection.default({}),
    expand: ExpandSection.default({}),
    route: RouteSection.default({}),
    upcycle: UpcycleSection.default({}),
    variants: z
      .array(z.union([z.enum(VARIANT_KINDS), VariantObject]))
      .min(1)
      .max(256),
  })
  .superRefine((p, ctx) => {
    if (new Set(p.seeds).size !== p.seeds.length)
      ctx.addIssue({ code: 'custom', path: ['seeds'], message: 'lists a seed twice' });
  });
export type PlanInput = z.input<typeof PlanSchema>;
export type ParsedPlan = z.output<typeof PlanSchema>;
export type StageSections = Pick<ParsedPlan, Stage>;

/** One variant after sweeps are expanded. `index` is its entry in the file's `variants`. */
export interface PlanVariant {
  name: string;
  kind: VariantKind;
  index: number;
  data: Partial<Record<string, unknown>>;
  overrides: { [S in Stage]: Record<string, unknown> };
}

export interface Plan {
  file: string;
  name: string;
  description: string | null;
  /** Absolute base model directory, or null for the shipped model. */
  base: string | null;
  backend: ParsedPlan['backend'];
  seeds: number[];
  data: DataConfig;
  sections: { [S in Stage]: Record<string, unknown> };
  variants: PlanVariant[];
  /** The parsed plan as JSON (stored with the experiment). */
  json: Record<string, unknown>;
  /** `file:line:col` of a field path (for errors found later, e.g. by the job graph). */
  locate: Locate;
}

/** Maps a field path to `file:line:col` (when the YAML/JSON source has the node). */
type Locate = (path: readonly PropertyKey[]) => string;

export function planError(locate: Locate, path: readonly PropertyKey[], message: string): UserError {
  const where = path.length > 0 ? `${path.map(String).join('.')}: ` : '';
  return new UserError(`${locate(path)}: ${where}${message}`);
}

/** Parses and validates plan text; `file` names it in errors and anchors relative paths. */
export function parsePlan(text: string, file: string): Plan {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = lineCounter.linePos(e.pos[0]);
    throw new UserError(`${file}:${pos.line}:${pos.col}: ${e.message.split('\n')[0]}`);
  }
  const locate: Locate = (path) => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n) as unknown[], true) as
        { range?: [number, number, number] } | undefined;
      if (node && node.range) {
        const p = lineCounter.linePos(node.range[0]);
        return `${file}:${p.line}:${p.col}`;
      }
    }
    return file;
  };
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    // e.g. the yaml library's ReferenceError on an alias bomb (resource exhaustion)
    throw new UserError(`${file}: cannot read the plan: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new UserError(
      `${file}: a plan is a mapping (name, data, variants, …), got ${
        Array.isArray(raw) ? 'a list' : raw === null || raw === undefined ? 'an empty document' : typeof raw
      }`,
    );
  const parsed = PlanSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw planError(locate, issue.path, issue.message);
  }
  const p = parsed.data;
  const dir = dirname(resolve(file));
  const abs = (x: string) => (isAbsolute(x) ? x : join(dir, x));

  let base: string | null = null;
  if (p.base !== undefined) {
    base = abs(p.base);
    if (!existsSync(join(base, 'config.json')))
      throw planError(locate, ['base'], `no model at ${base} (config.json missing)`);
  }
  let data = p.data;
  if (data.source === 'files') {
    data = { ...data, train: abs(data.train), eval: abs(data.eval) };
    for (const k of ['train', 'eval'] as const)
      if (!existsSync(data[k])) throw planError(locate, ['data', k], `file not found: ${data[k]}`);
  }

  const variants: PlanVariant[] = [];
  p.variants.forEach((v, index) => {
    const o = typeof v === 'string' ? { kind: v } : v;
    const name = ('name' in o && o.name) || o.kind;
    const overrides = {
      prepare: { ...('prepare' in o ? o.prepare : {}) },
      expand: { ...('expand' in o ? o.expand : {}) },
      route: { ...('route' in o ? o.route : {}) },
      upcycle: { ...('upcycle' in o ? o.upcycle : {}) },
    };
    const sweep = 'sweep' in o && o.sweep ? Object.entries(o.sweep) : [];
    const count = sweep.reduce((n, [, vs]) => n * vs.length, 1);
    if (variants.length + count > MAX_VARIANTS)
      throw planError(
        locate,
        ['variants', index, 'sweep'],
        `expands the plan to ${variants.length + count} variants; a plan has at most ${MAX_VARIANTS}`,
      );
    let combos: { suffix: string; data: Record<string, unknown>; set: [Stage, string, unknown][] }[] = [
      { suffix: '', data: {}, set: [] },
    ];
    for (const [key, values] of sweep) {
      const [stage, field, ...rest] = key.split('.');
      const known =
        rest.length === 0 &&
        field !== undefined &&
        (stage === 'data' || (STAGES as readonly string[]).includes(stage ?? ''));
      if (!known)
        throw planError(
          locate,
          ['variants', index, 'sweep', key],
          "a sweep key is 'stage.field' or 'data.field'",
        );
      combos = combos.flatMap((c) =>
        values.map((value) => ({
          suffix: `${c.suffix}@${key}=${String(value)}`,
          data: stage === 'data' ? { ...c.data, [field!]: value } : c.data,
          set:
            stage === 'data'
              ? c.set
              : [...c.set, [stage as Stage, field!, value] as [Stage, string, unknown]],
        })),
      );
    }
    for (const c of combos) {
      const ov = {
        prepare: { ...overrides.prepare },
        expand: { ...overrides.expand },
        route: { ...overrides.route },
        upcycle: { ...overrides.upcycle },
      };
      for (const [stage, field, value] of c.set) (ov[stage] as Record<string, unknown>)[field] = value;
      variants.push({ name: `${name}${c.suffix}`, kind: o.kind, index, data: c.data, overrides: ov });
    }
  });
  const seen = new Map<string, number>();
  for (const v of variants) {
    const prev = seen.get(v.name);
    if (prev !== undefined)
      throw planError(
        locate,
        ['variants', v.index],
        `variant name '${v.name}' is used twice (give one a name)`,
      );
    seen.set(v.name, v.index);
  }
  return {
    file,
    name: p.name,
    description: p.description ?? null,
    base,
    backend: p.backend,
    seeds: p.seeds,
    data,
    sections: { prepare: p.prepare, expand: p.expand, route: p.route, upcycle: p.upcycle },
    variants,
    json: JSON.parse(
      JSON.stringify({ ...p, variants: variants.map((v) => ({ name: v.name, kind: v.kind })) }),
    ) as Record<string, unknown>,
    locate,
  };
}

export function readPlanFile(file: string): Plan {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UserError(`${file}: cannot read the plan file`);
  }
  return parsePlan(text, file);
}

export type { Locate };
