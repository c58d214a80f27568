/**
 * The `expand` job (Stage 2): grows the pool of a finished prepare run's checkpoints (m source
 * experts) to n experts with `expandPool` (UpIT's genetic algorithm, `upit/expand.ts`).
 *
 * Output, per child (pool index c ≥ m): `runs/<id>/experts/expert-NN/` laid out like a Stage 1
 * checkpoint — `params.safetensors` (LoRA mode: PEFT-named A/B factors + adapter_config.json;
 * FFN mode: the MLP weights under HF names) and the checkpoint's `config.json` — assembled in a
 * temporary directory and renamed into place. The database gets every child as a checkpoint of
 * this run (tag 'expert', step = pool index, sha256), the whole pool with `setExperts` (sources:
 * 'checkpoint' pointing at the prepare checkpoint; children: 'merge' with lineage {parents, α, p,
 * seed}) and the final n × n distance matrix.
 *
 * `resolveExpandPlan` does every check that needs the database (prepare run exists and is done,
 * checkpoints, n ≥ m) and is called by the CLI before the run is created, so a bad request
 * writes nothing.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { embeddedBaseModelDir } from '../../common/paths.js';
import { fileError, UserError } from '../../common/errors.js';
import type { HostTensor } from '../../io/host-tensor.js';
import { SafetensorsFile } from '../../io/safetensors.js';
import { openWeights, type WeightSource } from '../../io/weights.js';
import { parseLlamaConfig } from '../../model/config.js';
import {
  loraFromPeftTensors,
  loraToPeftTensors,
  parsePeftAdapterConfig,
  peftAdapterConfig,
  type LoraSpec,
} from '../../model/lora.js';
import type { Checkpoint, ExpertLineage, NewExpert, Store } from '../../store/index.js';
import { fileSha256, resolveInWorkspace } from '../../store/index.js';
import { expandPool, type ExpandResult, type Lineage, type LoraExpert } from '../../upit/expand.js';
import type { JobContext } from '../job-runner.js';
import { expertDirName, fileSource, readJson, readText, writeExpertDir } from './expert-pool.js';
import type { ExpandConfig } from './catalog.js';
import { runDirectory } from './job-io.js';

export interface ExpandPlan {
  prepareRun: number;
  mode: 'lora' | 'ffn';
  /** LoRA spec recorded in the prepare run's config (each checkpoint's adapter_config.json wins). */
  lora: LoraSpec | null;
  baseDir: string;
  /** The m source checkpoints, by step. */
  checkpoints: Checkpoint[];
}

export interface ExpandLineageRow {
  child: number;
  parents: [number, number];
  alpha: number;
  p: number;
  seed: number;
  distance: number;
}

export interface ExpandJobResult {
  m: number;
  n: number;
  mode: 'lora' | 'ffn';
  metric: 'cosine' | 'l2';
  /** Pool member names by index: `step-N` for sources, `expert-NN` for children. */
  experts: string[];
  lineage: ExpandLineageRow[];
  distances: number[][];
}

const SOURCE_TAGS = new Set(['cadence', 'final']);

function bad(field: string, msg: string): UserError {
  return new UserError(`expand: ${field}: ${msg}`);
}

/** Checks the request against the database; throws a UserError naming the field. Writes nothing. */
export function resolveExpandPlan(store: Store, config: ExpandConfig, workspaceDir: string): ExpandPlan {
  const run = store.getRun(config.prepareRun);
  if (!run) throw bad('prepareRun', `run ${config.prepareRun} is not in the workspace ${workspaceDir}`);
  if (run.kind !== 'prepare')
    throw bad('prepareRun', `run ${run.id} is a ${run.kind} run, not a prepare (Stage 1) run`);
  if (run.status !== 'done')
    throw bad('prepareRun', `prepare run ${run.id} is ${run.status}, not done: expand a finished run`);
  const rc = run.config;
  if (rc['mode'] === 'full')
    throw bad(
      'prepareRun',
      `prepare run ${run.id} fine-tuned every weight (mode full): a dense baseline, not a source of experts`,
    );
  const mode = rc['mode'] === 'ffn' ? 'ffn' : 'lora';
  const lr = rc['lora'];
  let lora: LoraSpec | null = null;
  if (mode === 'lora' && lr && typeof lr === 'object' && !Array.isArray(lr)) {
    const o = lr as Record<string, unknown>;
    if (typeof o['r'] === 'number' && typeof o['alpha'] === 'number' && Array.isArray(o['targets']))
      lora = { r: o['r'], alpha: o['alpha'], targets: o['targets'].map(String) };
  }
  const baseDir = resolve(typeof rc['base'] === 'string' ? rc['base'] : embeddedBaseModelDir());

  // one checkpoint per step (the newest row if a resumed run wrote a step twice), by step
  const byStep = new Map<number, Checkpoint>();
  for (const c of store.listCheckpoints(run.id)) {
    if (c.tag !== null && !SOURCE_TAGS.has(c.tag) && config.checkpoints === undefined) continue;
    const prev = byStep.get(c.step);
    if (!prev || c.id > prev.id) byStep.set(c.step, c);
  }
  let checkpoints: Checkpoint[];
  if (config.checkpoints) {
    checkpoints = config.checkpoints.map((s) => {
      const c = byStep.get(s);
      if (!c) {
        throw bad(
          'checkpoints',
          `prepare run ${run.id} has no checkpoint at step ${s} (steps: ${[...byStep.keys()].sort((a, b) => a - b).join(', ') || 'none'})`,
        );
      }
      return c;
    });
    checkpoints.sort((a, b) => a.step - b.step);
  } else {
    checkpoints = [...byStep.values()].sort((a, b) => a.step - b.step);
  }
  if (config.subset !== 'all') {
    const half = Math.floor(checkpoints.length / 2);
    checkpoints = config.subset === 'first-half' ? checkpoints.slice(0, half) : checkpoints.slice(half);
  }
  const m = checkpoints.length;
  if (m < 2)
    throw bad(
      'prepareRun',
      `prepare run ${run.id} has ${m} checkpoint(s)${config.subset === 'all' ? '' : ` in its ${config.subset}`}; expansion needs at least 2`,
    );
  if (config.n < m)
    throw bad('n', `must be ≥ the ${m} checkpoints of prepare run ${run.id} (m = ${m}), got ${config.n}`);
  for (const c of checkpoints) {
    const file = resolveInWorkspace(workspaceDir, c.path);
    if (!existsSync(file)) throw fileError(file, `checkpoint ${c.id} (step ${c.step}) is missing on disk`);
  }
  return { prepareRun: run.id, mode, lora, baseDir, checkpoints };
}

export async function runExpand(config: ExpandConfig, ctx: JobContext): Promise<ExpandJobResult> {
  const { store, runId, dir: runDir } = runDirectory(ctx);
  const wsDir = ctx.workspace!.dir;
  const plan = resolveExpandPlan(store, config, wsDir);
  store.setRunBackend(runId, 'cpu');
  const m = plan.checkpoints.length;
  const ckptDirs = plan.checkpoints.map((c) => dirname(resolveInWorkspace(wsDir, c.path)));
  const sourceNames = plan.checkpoints.map((c) => `step-${c.step}`);
  ctx.log(
    `expand: prepare run ${plan.prepareRun} (${plan.mode}), ${m} checkpoints (${sourceNames.join(', ')}) → n = ${config.n}` +
      ` · p ${config.p} · ${config.metric} · ${config.selection}` +
      (plan.mode === 'lora' ? ` · ${config.loraMergeSpace} space` : ''),
  );
  const configPath = join(ckptDirs[0]!, 'config.json');
  const configText = readText(configPath);
  const cfg = parseLlamaConfig(readJson(configPath), configPath);

  const total = config.n - m;
  let done = 0;
  const onChild = (l: Lineage): void => {
    ctx.signal.throwIfAborted();
    done++;
    const name = (i: number) => (i < m ? sourceNames[i]! : expertDirName(i));
    ctx.log(
      `${expertDirName(l.child)} ← ${name(l.parents[0])} × ${name(l.parents[1])} · α ${l.alpha.toFixed(3)}` +
        ` · d ${l.distance.toPrecision(4)}`,
    );
    ctx.metric('expand/parent_distance', l.child, l.distance);
    ctx.metric('expand/alpha', l.child, l.alpha);
    ctx.progress({ step: done, total });
  };
  const common = {
    n: config.n,
    p: config.p,
    ...(config.alphaClamp ? { alphaClamp: config.alphaClamp } : {}),
    metric: config.metric,
    selection: config.selection,
    seed: config.seed,
    onChild,
  };
  ctx.progress({ step: 0, total });

  const opened: { close(): void }[] = [];
  let childFiles: { tensors: Map<string, HostTensor>; files: Record<string, string> }[];
  let result: ExpandResult<unknown>;
  try {
    if (plan.mode === 'lora') {
      const experts: LoraExpert[] = ckptDirs.map((dir) => {
        const acPath = join(dir, 'adapter_config.json');
        const spec = existsSync(acPath) ? parsePeftAdapterConfig(readJson(acPath), acPath) : plan.lora;
        if (!spec) throw fileError(acPath, 'missing, and the prepare run records no LoRA spec');
        const file = join(dir, 'params.safetensors');
        const f = SafetensorsFile.open(file);
        try {
          return { ...loraFromPeftTensors(cfg, spec, fileSource(f), file), spec };
        } finally {
          f.close();
        }
      });
      const r = expandPool({
        mode: 'lora',
        experts,
        loraMergeSpace: config.loraMergeSpace,
        ...common,
      });
      result = r;
      childFiles = r.children.map((c) => ({
        tensors: loraToPeftTensors(c),
        files: {
          'config.json': configText,
          'adapter_config.json': JSON.stringify(peftAdapterConfig(c.spec, plan.baseDir), null, 2) + '\n',
        },
      }));
    } else {
      let base: WeightSource;
      try {
        base = openWeights(plan.baseDir);
      } catch (e) {
        throw new UserError(
          `prepare run ${plan.prepareRun}'s base model: ${e instanceof Error ? e.message : String(e)}`,
        );
      }
      opened.push(base);
      const experts = ckptDirs.map((dir) => {
        const f = SafetensorsFile.open(join(dir, 'params.safetensors'));
        opened.push(f);
        return fileSource(f);
      });
      const r = expandPool({ mode: 'ffn', base, experts, ...common });
      result = r;
      childFiles = r.children.map((c) => ({ tensors: c, files: { 'config.json': configText } }));
    }
  } finally {
    for (const o of opened) o.close();
  }
  ctx.signal.throwIfAborted();

  // children on disk and as checkpoints of this run
  const pool: Omit<NewExpert, 'runId'>[] = plan.checkpoints.map((c, i) => ({
    idx: i,
    name: sourceNames[i]!,
    source: 'checkpoint',
    checkpointId: c.id,
    path: c.path,
    sha256: c.sha256,
    bytes: c.bytes,
    lineage: null,
  }));
  for (const [k, l] of result.lineage.entries()) {
    const { tensors, files } = childFiles[k]!;
    const name = expertDirName(l.child);
    const dir = join(runDir, 'experts', name);
    const lineage: ExpertLineage = {
      parents: [...l.parents],
      alpha: l.alpha,
      p: l.p,
      seed: l.seed,
      method: 'dare_linear',
      extra: {
        beta: l.beta,
        rescale: l.rescale,
        distance: l.distance,
        metric: result.metric,
        ...(plan.mode === 'lora' ? { loraMergeSpace: config.loraMergeSpace } : {}),
      },
    };
    writeExpertDir(dir, tensors, files, {
      format: 'upit-expert',
      mode: plan.mode,
      lineage: JSON.stringify(lineage),
    });
    const file = join(dir, 'params.safetensors');
    const digest = await fileSha256(file);
    const rel = `runs/${runId}/experts/${name}/params.safetensors`;
    const ck = store.addCheckpoint({
      runId,
      step: l.child,
      epoch: null,
      path: rel,
      sha256: digest.sha256,
      bytes: digest.bytes,
      tag: 'expert',
      meta: { parents: [...l.parents], alpha: l.alpha, p: l.p, seed: l.seed },
    });
    pool.push({
      idx: l.child,
      name,
      source: 'merge',
      checkpointId: ck.id,
      path: rel,
      sha256: digest.sha256,
      bytes: digest.bytes,
      lineage,
    });
  }
  store.setExperts(runId, pool);
  const entries: { i: number; j: number; value: number }[] = [];
  for (let i = 0; i < config.n; i++)
    for (let j = i + 1; j < config.n; j++) entries.push({ i, j, value: result.distances[i]![j]! });
  store.upsertDistances(runId, result.metric, entries);
  ctx.log(`expand: ${config.n} experts (${m} checkpoints + ${total} merged) recorded in run ${runId}`);

  return {
    m,
    n: config.n,
    mode: plan.mode,
    metric: result.metric,
    experts: pool.map((e) => e.name ?? String(e.idx)),
    lineage: result.lineage.map((l) => ({
      child: l.child,
      parents: l.parents,
      alpha: l.alpha,
      p: l.p,
      seed: l.seed,
      distance: l.distance,
    })),
    distances: result.distances,
  };
}
