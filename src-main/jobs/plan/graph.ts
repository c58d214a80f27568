/**
 * A plan's jobs: every variant × seed becomes a chain of stage jobs, identical jobs are shared
 * (one Stage 1 run feeds every variant that trains the same way), and the result is a DAG in
 * dependency order.
 *
 *   dense               prepare                                        (terminal: the prepare run)
 *   upit                prepare → expand → route → upcycle
 *   no-router-init      prepare → expand → upcycle (random router)
 *   router-random-data  prepare → expand → route (random buckets) → upcycle
 *   random-parents      prepare → expand (random parents) → route → upcycle
 *   no-expansion        prepare (n checkpoints) → expand (n = m: the checkpoints only) → route → upcycle
 *   first-half          prepare (2× the checkpoints) → expand (first half, to n) → route → upcycle
 *   second-half         prepare (2× the checkpoints) → expand (second half, to n) → route → upcycle
 *   vanilla             prepare → upcycle (n copies of the final checkpoint, random router)
 *   loramoe             prepare → upcycle (n fresh LoRA experts, random router; LoRA mode only)
 *
 * Options come from the plan's stage sections, then the variant's overrides, then what the
 * variant kind fixes (e.g. the router for no-router-init). A job's config refers to the runs it
 * needs by node key; the runner swaps in run ids. A node's key is a hash of its kind and config,
 * so equal jobs are one node, and a rerun finds the run that a node already has by its config.
 */
import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { ExpandConfig, PrepareConfig, RouteConfig, UpcycleConfig } from '../kinds/catalog.js';
import { planError, type Plan, type PlanVariant, type Stage } from './schema.js';

export type PlanJobKind = 'prepare' | 'expand' | 'route' | 'upcycle';

/** A run id to fill in: the run of node `key`. */
export interface RunRef {
  $run: string;
}

export interface PlanNode {
  key: string;
  kind: PlanJobKind;
  seed: number;
  /** The job config, with RunRef where a run id goes. */
  config: Record<string, unknown>;
  deps: string[];
  /** Variants whose result this job is (at most one per seed). */
  terminalOf: string | null;
  /** Every variant that needs this job. */
  usedBy: string[];
}

export interface PlanGraph {
  /** In dependency order. */
  nodes: PlanNode[];
}

const SCHEMAS: Record<PlanJobKind, z.ZodType> = {
  prepare: PrepareConfig,
  expand: ExpandConfig,
  route: RouteConfig,
  upcycle: UpcycleConfig,
};

/** JSON with sorted keys (a stable identity for configs). */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export function isRunRef(v: unknown): v is RunRef {
  return typeof v === 'object' && v !== null && typeof (v as RunRef).$run === 'string';
}

/** The config with every RunRef replaced by `runId(key)`. */
export function bindRuns(
  config: Record<string, unknown>,
  runId: (key: string) => number,
): Record<string, unknown> {
  return Object.fromEntries(Object.entries(config).map(([k, v]) => [k, isRunRef(v) ? runId(v.$run) : v]));
}

/** Builds the graph; errors name the plan field (`plan.yaml:12:5: variants.3.upcycle.topK: …`). */
export function buildPlanGraph(plan: Plan): PlanGraph {
  const nodes = new Map<string, PlanNode>();
  for (const seed of plan.seeds) {
    for (const v of plan.variants) {
      const chain = variantChain(plan, v, seed);
      for (const [i, n] of chain.entries()) {
        const existing = nodes.get(n.key);
        const node = existing ?? n;
        if (!existing) nodes.set(n.key, node);
        if (!node.usedBy.includes(v.name)) node.usedBy.push(v.name);
        if (i === chain.length - 1) {
          if (node.terminalOf !== null && node.terminalOf !== v.name) {
            throw planError(
              plan.locate,
              ['variants', v.index],
              `variants '${node.terminalOf}' and '${v.name}' are the same job (${node.kind}); change one or drop it`,
            );
          }
          node.terminalOf = v.name;
        }
      }
    }
  }
  return { nodes: [...nodes.values()] }; // chains are built in order, so insertion order is topological
}

function variantChain(plan: Plan, v: PlanVariant, seed: number): PlanNode[] {
  const chain: PlanNode[] = [];
  const common = { backend: plan.backend, seed };
  const from = (stage: Stage, fixed: Record<string, unknown>) => ({
    ...plan.sections[stage],
    ...v.overrides[stage],
    ...fixed,
  });
  const node = (
    kind: PlanJobKind,
    stage: Stage,
    config: Record<string, unknown>,
    deps: PlanNode[],
  ): PlanNode => {
    const full = { ...common, ...config };
    validate(plan, v, stage, kind, full);
    const key = createHash('sha256')
      .update(`${kind}\n${canonicalJson(full)}`)
      .digest('hex')
      .slice(0, 16);
    const n: PlanNode = {
      key,
      kind,
      seed,
      config: full,
      deps: deps.map((d) => d.key),
      terminalOf: null,
      usedBy: [],
    };
    chain.push(n);
    return n;
  };
  const ref = (n: PlanNode): RunRef => ({ $run: n.key });

  const prep = from('prepare', {});
  const n = Number(from('expand', {})['n'] ?? 8);
  const epochs = Number(prep['epochs'] ?? 2);
  const every = Number(prep['checkpointEvery'] ?? 0.25);
  const prepareFixed: Record<string, unknown> = {
    ...(plan.base !== null ? { base: plan.base } : {}),
    data: { ...plan.data, ...v.data },
  };
  if (v.kind === 'no-expansion') prepareFixed['checkpointEvery'] = epochs / n; // m = n checkpoints
  if (v.kind === 'first-half' || v.kind === 'second-half') prepareFixed['checkpointEvery'] = every / 2;
  const mode = String(prep['mode'] ?? 'lora');
  if (mode === 'full' && v.kind !== 'dense')
    throw planError(
      plan.locate,
      ['variants', v.index],
      `variant '${v.name}' needs experts; prepare.mode full is for dense only`,
    );
  if (v.kind === 'loramoe' && mode !== 'lora')
    throw planError(
      plan.locate,
      ['variants', v.index],
      `'loramoe' makes LoRA experts; prepare.mode is ${mode}`,
    );

  const P = node('prepare', 'prepare', from('prepare', prepareFixed), []);
  if (v.kind === 'dense') return chain;

  const upcycle = (fixed: Record<string, unknown>, deps: PlanNode[]) => {
    const cfg = from('upcycle', fixed);
    const topK = Number(cfg['topK'] ?? 2);
    if (topK > n) {
      const path =
        v.overrides.upcycle['topK'] !== undefined
          ? ['variants', v.index, 'upcycle', 'topK']
          : ['upcycle', 'topK'];
      throw planError(plan.locate, path, `top-${topK} of ${n} experts (expand.n) for variant '${v.name}'`);
    }
    return node('upcycle', 'upcycle', cfg, deps);
  };
  if (v.kind === 'vanilla') {
    upcycle({ init: 'copies', prepareRun: ref(P), numExperts: n, router: 'random' }, [P]);
    return chain;
  }
  if (v.kind === 'loramoe') {
    upcycle({ init: 'random', prepareRun: ref(P), numExperts: n, router: 'random' }, [P]);
    return chain;
  }

  const expandFixed: Record<string, unknown> = { prepareRun: ref(P) };
  if (v.kind === 'random-parents') expandFixed['selection'] = 'random';
  if (v.kind === 'first-half') expandFixed['subset'] = 'first-half';
  if (v.kind === 'second-half') expandFixed['subset'] = 'second-half';
  const E = node('expand', 'expand', from('expand', expandFixed), [P]);
  if (v.kind === 'no-router-init') {
    upcycle({ init: 'pool', poolRun: ref(E), router: 'random' }, [E]);
    return chain;
  }
  const R = node(
    'route',
    'route',
    from('route', { poolRun: ref(E), ...(v.kind === 'router-random-data' ? { assignment: 'random' } : {}) }),
    [E],
  );
  upcycle({ init: 'pool', poolRun: ref(R), router: 'pretrained' }, [R]);
  return chain;
}

/** Validates a node's config with its job schema (run ids as placeholders); errors name the plan field. */
function validate(
  plan: Plan,
  v: PlanVariant,
  stage: Stage,
  kind: PlanJobKind,
  config: Record<string, unknown>,
): void {
  const r = SCHEMAS[kind].safeParse(bindRuns(config, () => 1));
  if (r.success) return;
  const issue = r.error.issues[0]!;
  const field = issue.path[0];
  const path =
    field === 'data'
      ? issue.path
      : typeof field === 'string' && v.overrides[stage][field] !== undefined
        ? ['variants', v.index, stage, ...issue.path]
        : [stage, ...issue.path];
  throw planError(plan.locate, path, `${issue.message} (variant '${v.name}', ${kind} job)`);
}
