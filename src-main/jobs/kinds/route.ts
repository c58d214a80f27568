/**
 * The `route` job (Stage 3): pre-optimizes the router of the MoE-to-be on perplexity-assigned
 * seed data (`upit/route.ts`).
 *
 * Output in `runs/<id>/`: `router.safetensors` (one `[n, D]` router per layer under Mixtral's
 * name `model.layers.{l}.block_sparse_moe.gate.weight`, checkpoint tag 'router') and, unless the
 * experts are frozen, `experts/expert-NN/` with each expert after its routing epochs (tag
 * 'expert', laid out like the expand run's). The database gets the bucket sizes
 * (`setSeedBuckets`), the pool (`setExperts`: same sources and lineage as the expand run's, new
 * files) and the training curves (a global step across the experts, trained one after another).
 *
 * `resolveRoutePlan` checks the request against the database; the CLI calls it before creating
 * the run, so a bad request writes nothing.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../common/errors.js';
import { writeSafetensors } from '../../io/safetensors.js';
import type { NewExpert, Store } from '../../store/index.js';
import { fileSha256 } from '../../store/index.js';
import { useBackend } from '../../tensor/backend.js';
import {
  assignArgmin,
  assignRandom,
  expertNll,
  initRoutingVectors,
  pretrainRouter,
  sampleSeed,
  stackRouters,
  type Assignment,
  type ExpertWeights,
} from '../../upit/route.js';
import type { JobContext } from '../job-runner.js';
import type { RouteConfig } from './catalog.js';
import {
  expertConfig,
  expertDir,
  expertDirName,
  expertFiles,
  loadBaseModel,
  readExpert,
  resolvePool,
  writeExpertDir,
  type PoolInfo,
} from './expert-pool.js';
import { recordCheckpoint, reportStep, runDirectory } from './job-io.js';
import { loadInstructionData } from './prepare.js';

/** Bucket sizes of the plain argmin, before any floor or cap. */
function argminSizes(nll: number[][]): number[] {
  return assignArgmin(nll).sizes;
}

export const ROUTER_FILE = 'router.safetensors';

export function routerTensorName(layer: number): string {
  return `model.layers.${layer}.block_sparse_moe.gate.weight`;
}

export interface RouteJobResult {
  n: number;
  seedSamples: number;
  assignment: 'ppl' | 'random';
  bucketSizes: number[];
  /** Mean σ(r_i · u) on expert i's own bucket at the end of its training (per expert). */
  ownProbability: number[];
  /** Mean perplexity of each bucket's samples under each expert: [bucket][expert] (ppl only). */
  bucketPpl: number[][] | null;
  backend: string;
}

export function resolveRoutePlan(store: Store, config: RouteConfig, wsDir: string): PoolInfo {
  const pool = resolvePool(store, wsDir, config.poolRun, 'route: poolRun');
  if (pool.poolRun.kind !== 'expand')
    throw new UserError(
      `route: poolRun: run ${pool.poolRun.id} is a ${pool.poolRun.kind} run, not an expand run`,
    );
  return pool;
}

export async function runRoute(config: RouteConfig, ctx: JobContext): Promise<RouteJobResult> {
  const { store, runId, dir: runDir } = runDirectory(ctx);
  const wsDir = ctx.workspace!.dir;
  const pool = resolveRoutePlan(store, config, wsDir);
  const choice = await useBackend(config.backend);
  ctx.log(`backend: ${choice.name} (${choice.detail})`);
  store.setRunBackend(runId, choice.name);

  const base = await loadBaseModel(pool.baseDir);
  const n = pool.experts.length;
  const dirs = pool.experts.map((e) => expertDir(wsDir, e));
  const { text: configText } = expertConfig(dirs[0]!);
  const experts: ExpertWeights[] = dirs.map((d) => readExpert(d, pool.mode, base.cfg, pool.lora));
  const names = pool.experts.map((e) => e.name ?? expertDirName(e.idx));

  const train = loadInstructionData(config.data ?? pool.data).train;
  const seedIdx = sampleSeed(train.length, n, config);
  const seedSet = seedIdx.map((i) => train[i]!);
  ctx.log(
    `route: ${n} experts of expand run ${pool.poolRun.id} (${pool.mode}); seed sample ${seedSet.length} of ` +
      `${train.length} training examples; assignment ${config.assignment}`,
  );

  // --- buckets ------------------------------------------------------------------------------
  let assignment: Assignment;
  let bucketPpl: number[][] | null = null;
  if (config.assignment === 'ppl') {
    ctx.progress({ step: 0, total: n, phase: 'perplexity' });
    const nll = await expertNll(base, experts, seedSet, {
      batchSize: config.scoreBatchSize,
      maxSeqLen: config.maxSeqLen,
      signal: ctx.signal,
      onExpert: (done, total) => ctx.progress({ step: done, total, phase: 'perplexity' }),
    });
    const a = assignArgmin(nll, {
      ...(config.cap !== undefined ? { cap: config.cap } : {}),
      floor: config.minBucket,
    });
    if (a.moved > 0)
      ctx.log(
        `buckets: ${a.moved} samples moved to experts below ${config.minBucket} (argmin alone: ${argminSizes(nll).join(' · ')})`,
      );
    assignment = a;
    bucketPpl = Array.from({ length: n }, (_, b) =>
      nll.map((row) => {
        const xs = row.filter((_, x) => assignment.expert[x] === b);
        return xs.length === 0 ? NaN : Math.exp(xs.reduce((a, v) => a + v, 0) / xs.length);
      }),
    );
  } else {
    assignment = assignRandom(seedSet.length, n, config.seed);
  }
  store.setSeedBuckets(
    runId,
    assignment.sizes.map((size, expert) => ({ expert, size })),
  );
  assignment.sizes.forEach((size, i) => ctx.metric('route/bucket_size', i, size));
  ctx.log(`buckets: ${assignment.sizes.map((s, i) => `${names[i]} ${s}`).join(' · ')}`);
  ctx.signal.throwIfAborted();

  // --- routing vectors, one expert at a time ----------------------------------------------------
  const lr = config.lr ?? pool.prepareLr;
  const vectors: Float32Array[][] = [];
  const trained: ExpertWeights[] = [];
  const ownProbability: number[] = [];
  const stepsPer = assignment.sizes.map((s) => Math.ceil(s / config.batchSize) * Math.ceil(config.epochs));
  const totalSteps = stepsPer.reduce((a, b) => a + b, 0);
  let offset = 0;
  let tokens = 0;
  for (let i = 0; i < n; i++) {
    const positives = seedSet.filter((_, x) => assignment.expert[x] === i);
    const negatives = config.negatives ? seedSet.filter((_, x) => assignment.expert[x] !== i) : [];
    if (positives.length === 0) {
      ctx.log(`${names[i]}: empty bucket — its routing vectors stay at their random initialization`);
      vectors.push(initRoutingVectors(base.cfg, config.seed + i));
      trained.push(experts[i]!);
      ownProbability.push(NaN);
      continue;
    }
    const base0 = offset;
    let pOwn = NaN;
    const r = await pretrainRouter(
      base,
      experts[i]!,
      positives,
      negatives,
      {
        epochs: config.epochs,
        lr,
        routerLr: config.routerLr,
        lmWeight: config.lmWeight,
        freezeExpert: config.freezeExpert,
        batchSize: config.batchSize,
        maxSeqLen: config.maxSeqLen,
        seed: config.seed + i,
      },
      {
        onStep: (s) => {
          tokens += s.inputTokens;
          offset = base0 + s.step;
          pOwn = s.metrics['route/p_own'] ?? NaN;
          reportStep(ctx, { ...s, step: offset, totalSteps }, tokens);
        },
        shouldStop: () => ctx.signal.aborted,
      },
    );
    ctx.signal.throwIfAborted();
    vectors.push(r.vectors);
    trained.push(r.expert);
    const last = r.train.history.length > 0 ? r.train.history[r.train.history.length - 1] : undefined;
    ownProbability.push(pOwn);
    ctx.metric('route/p_own_final', i, pOwn);
    ctx.log(
      `${names[i]}: ${positives.length} samples · ${r.train.steps} steps · loss ${last?.loss.toFixed(4) ?? '—'}` +
        ` · σ(r·u) on own bucket ${pOwn.toFixed(3)}`,
    );
  }

  // --- outputs ----------------------------------------------------------------------------------
  const routers = stackRouters(vectors, config.rescale);
  mkdirSync(runDir, { recursive: true });
  const routerFile = join(runDir, ROUTER_FILE);
  writeSafetensors(
    routerFile,
    routers.map((t, l): [string, (typeof routers)[number]] => [routerTensorName(l), t]),
    { dtype: 'F32', metadata: { format: 'upit-router', num_experts: String(n) } },
  );
  await recordCheckpoint(ctx, { step: 0, epoch: config.epochs, dir: runDir, reason: 'router' }, ROUTER_FILE);

  const entries: Omit<NewExpert, 'runId'>[] = [];
  for (const [k, src] of pool.experts.entries()) {
    const entry: Omit<NewExpert, 'runId'> = {
      idx: src.idx,
      name: src.name,
      source: src.source,
      checkpointId: src.checkpointId,
      path: src.path,
      sha256: src.sha256,
      bytes: src.bytes,
      lineage: src.lineage,
    };
    if (!config.freezeExpert) {
      const name = expertDirName(src.idx);
      const dir = join(runDir, 'experts', name);
      const { tensors, files } = expertFiles(trained[k]!, configText, pool.baseDir);
      writeExpertDir(dir, tensors, files, { format: 'upit-expert', mode: pool.mode, routed: 'true' });
      const file = join(dir, 'params.safetensors');
      const digest = await fileSha256(file);
      const rel = `runs/${runId}/experts/${name}/params.safetensors`;
      const ck = store.addCheckpoint({
        runId,
        step: src.idx,
        epoch: config.epochs,
        path: rel,
        sha256: digest.sha256,
        bytes: digest.bytes,
        tag: 'expert',
        meta: { from: src.path ?? null, bucket: assignment.sizes[k]! },
      });
      Object.assign(entry, { checkpointId: ck.id, path: rel, sha256: digest.sha256, bytes: digest.bytes });
    }
    entries.push(entry);
  }
  store.setExperts(runId, entries);
  ctx.log(
    `route: router ${routers.length} × [${n}, ${base.cfg.hiddenSize}] and ${n} experts recorded in run ${runId}`,
  );
  return {
    n,
    seedSamples: seedSet.length,
    assignment: config.assignment,
    bucketSizes: assignment.sizes,
    ownProbability,
    bucketPpl,
    backend: choice.name,
  };
}
