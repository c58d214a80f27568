/**
 * The `upcycle` job (Stage 4): assembles the MoE from a pool run's experts and a router
 * (`upit/upcycle.ts`), post-trains it, exports it and scores it.
 *
 * Output in `runs/<id>/`: training checkpoints (`checkpoints/step-N/`, routers and experts under
 * the `moeTensors` names; resumable) and `model/`, the final MoE as a Hugging Face directory —
 * FFN experts: a `MixtralForCausalLM`; LoRA experts: the dense base plus one PEFT adapter per
 * expert and the routers (model/lora-moe.ts). `model/` is then loaded back like any model
 * directory, scored on every domain (evaluations against the model's checkpoint row) and routed
 * domain by domain (routing statistics of this run: `upit routing RUN`).
 */
import { dirname, join } from 'node:path';
import { UserError } from '../../common/errors.js';
import { evaluate, llamaScorable, type EvalResult } from '../../eval/index.js';
import { SafetensorsFile } from '../../io/safetensors.js';
import type { HostTensor } from '../../io/host-tensor.js';
import { loadAnyModel } from '../../model/load-any.js';
import { saveLoraMoe } from '../../model/lora-moe.js';
import { mixtralConfigFromLlama, saveMixtral } from '../../model/mixtral.js';
import { initRouters } from '../../model/moe.js';
import { Rng } from '../../common/rng.js';
import { llamaConfigJson } from '../../model/config.js';
import type { Run, Store } from '../../store/index.js';
import { resolveInWorkspace } from '../../store/index.js';
import { useBackend } from '../../tensor/backend.js';
import { assembleMoe, upcycle } from '../../upit/upcycle.js';
import type { RoutingSummary } from '../../eval/routing.js';
import type { JobContext } from '../job-runner.js';
import type { UpcycleConfig } from './catalog.js';
import { asRoutingModel, recordRoutingAnalysis } from './eval.js';
import {
  expertDir,
  loadBaseModel,
  readExpert,
  resolvePool,
  resolvePrepareRun,
  type PrepareInfo,
} from './expert-pool.js';
import type { ExpertWeights } from '../../upit/route.js';
import { DEFAULT_LORA, initLora } from '../../model/lora.js';
import { recordCheckpoint, recordScores, reportStep, runDirectory } from './job-io.js';
import { loadInstructionData } from './prepare.js';
import { routerTensorName } from './route.js';

export const MODEL_DIR = 'model';

export interface UpcyclePlan extends PrepareInfo {
  init: 'pool' | 'copies' | 'random';
  /** The pool run (init 'pool'). */
  poolRun: Run | null;
  /** Directories of the n experts (init 'pool': the pool's; 'copies': the final checkpoint n times). */
  expertDirs: string[];
  n: number;
  router: 'pretrained' | 'random';
  /** Workspace-relative path of the route run's router file ('pretrained'). */
  routerPath: string | null;
}

export interface UpcycleJobResult {
  init: 'pool' | 'copies' | 'random';
  n: number;
  topK: number;
  mode: 'lora' | 'ffn';
  router: 'pretrained' | 'random';
  steps: number;
  /** Workspace-relative directory of the exported MoE. */
  model: string;
  average: number;
  perDomain: EvalResult['perDomain'];
  routing: RoutingSummary | null;
  backend: string;
}

const SOURCE_TAGS = new Set(['cadence', 'final']);

/** Checks the request against the database; throws a UserError naming the field. Writes nothing. */
export function resolveUpcyclePlan(store: Store, config: UpcycleConfig, wsDir: string): UpcyclePlan {
  if (config.init !== 'pool') {
    const field = 'upcycle: prepareRun';
    const run = store.getRun(config.prepareRun!);
    if (!run) throw new UserError(`${field}: run ${config.prepareRun} is not in the workspace ${wsDir}`);
    const info = resolvePrepareRun(run, field);
    if (config.router === 'pretrained')
      throw new UserError(`upcycle: router: init '${config.init}' has no pre-trained router; use 'random'`);
    if (config.init === 'random' && info.mode !== 'lora')
      throw new UserError(
        `upcycle: init: 'random' makes LoRA experts, and prepare run ${run.id} is in ${info.mode} mode`,
      );
    let expertDirs: string[] = [];
    if (config.init === 'copies') {
      const last = store
        .listCheckpoints(run.id)
        .filter((c) => c.tag !== null && SOURCE_TAGS.has(c.tag))
        .sort((a, b) => b.step - a.step || b.id - a.id)[0];
      if (!last) throw new UserError(`${field}: prepare run ${run.id} has no checkpoint`);
      expertDirs = Array.from({ length: config.numExperts! }, () =>
        dirname(resolveInWorkspace(wsDir, last.path)),
      );
    }
    return {
      ...info,
      init: config.init,
      poolRun: null,
      expertDirs,
      n: config.numExperts!,
      router: 'random',
      routerPath: null,
    };
  }
  const pool = resolvePool(store, wsDir, config.poolRun!, 'upcycle: poolRun');
  const n = pool.experts.length;
  if (config.topK > n)
    throw new UserError(
      `upcycle: topK: must be ≤ the ${n} experts of run ${pool.poolRun.id}, got ${config.topK}`,
    );
  const isRoute = pool.poolRun.kind === 'route';
  const router = config.router === 'auto' ? (isRoute ? 'pretrained' : 'random') : config.router;
  let routerPath: string | null = null;
  if (router === 'pretrained') {
    if (!isRoute) {
      throw new UserError(
        `upcycle: router: 'pretrained' needs a route run, and run ${pool.poolRun.id} is an expand run ` +
          "(run `upit route` on it first, or use router 'random')",
      );
    }
    // the newest router row (a rerun of the route run records its router again)
    const ck = store
      .listCheckpoints(pool.poolRun.id)
      .filter((c) => c.tag === 'router')
      .sort((a, b) => b.id - a.id)[0];
    if (!ck) throw new UserError(`upcycle: poolRun: route run ${pool.poolRun.id} recorded no router`);
    routerPath = ck.path;
  }
  return {
    ...pool,
    init: 'pool',
    expertDirs: pool.experts.map((e) => expertDir(wsDir, e)),
    n,
    router,
    routerPath,
  };
}

function readRouters(file: string, layers: number): HostTensor[] {
  const f = SafetensorsFile.open(file);
  try {
    return Array.from({ length: layers }, (_, l) => f.read(routerTensorName(l)));
  } finally {
    f.close();
  }
}

function describeInit(plan: UpcyclePlan): string {
  if (plan.init === 'pool') return `the pool of ${plan.poolRun!.kind} run ${plan.poolRun!.id}`;
  if (plan.init === 'copies') return `copies of prepare run ${plan.prepareRun.id}'s final checkpoint`;
  return 'freshly initialized LoRA experts';
}

export async function runUpcycle(config: UpcycleConfig, ctx: JobContext): Promise<UpcycleJobResult> {
  const { store, runId, dir: runDir } = runDirectory(ctx);
  const wsDir = ctx.workspace!.dir;
  const plan = resolveUpcyclePlan(store, config, wsDir);
  const choice = await useBackend(config.backend);
  ctx.log(`backend: ${choice.name} (${choice.detail})`);
  store.setRunBackend(runId, choice.name);

  const base = await loadBaseModel(plan.baseDir);
  const { cfg } = base;
  const n = plan.n;
  const experts: ExpertWeights[] =
    plan.init === 'random'
      ? Array.from({ length: n }, (_, i) => {
          const spec = plan.lora ?? DEFAULT_LORA;
          return {
            kind: 'lora',
            spec,
            lora: initLora(cfg, spec, Rng.derive(config.seed, `upcycle-lora-expert-${i}`)),
          };
        })
      : plan.expertDirs.map((d) => readExpert(d, plan.mode, cfg, plan.lora));
  const routers =
    plan.router === 'pretrained'
      ? readRouters(resolveInWorkspace(wsDir, plan.routerPath!), cfg.numLayers)
      : initRouters(cfg, n, Rng.derive(config.seed, 'upcycle-router-init'));
  const moe = assembleMoe(cfg, experts, routers, config.topK);
  const data = loadInstructionData(config.data ?? plan.data);
  ctx.log(
    `upcycle: ${plan.mode === 'ffn' ? 'FFN' : 'LoRA'}-MoE, ${n} experts (${describeInit(plan)}), ` +
      `top-${config.topK}, ${plan.router} router · ${data.train.length} training examples`,
  );

  const lr = config.lr ?? plan.prepareLr;
  let tokens = 0;
  const modelDir = join(runDir, MODEL_DIR);
  return upcycle(
    base,
    moe,
    data.train,
    {
      auxCoef: config.auxCoef,
      zCoef: config.zCoef,
      epochs: config.epochs,
      lr,
      warmupRatio: config.warmupRatio,
      weightDecay: config.weightDecay,
      clipNorm: config.clipNorm,
      batchSize: config.batchSize,
      gradAccum: config.gradAccum,
      maxSeqLen: config.maxSeqLen,
      seed: config.seed,
      checkpointEvery: config.checkpointEvery,
      outDir: runDir,
      resume: 'latest',
      checkpointFiles: { 'config.json': JSON.stringify(llamaConfigJson(cfg), null, 2) + '\n' },
    },
    {
      onStep: (s) => {
        tokens += s.inputTokens;
        reportStep(ctx, s, tokens);
      },
      onCheckpoint: async (c) => {
        await recordCheckpoint(ctx, c);
      },
      shouldStop: () => ctx.signal.aborted,
    },
    async (model, result) => {
      ctx.signal.throwIfAborted();
      // export
      const host = model.hostMoe();
      if (plan.mode === 'ffn') {
        const mcfg = mixtralConfigFromLlama(cfg, {
          numExperts: n,
          topK: config.topK,
          routerAuxLossCoef: config.auxCoef,
        });
        saveMixtral(modelDir, mcfg, base.weights, host, base.tokenizer);
      } else {
        saveLoraMoe(modelDir, cfg, base.weights, base.tokenizer, moe.spec, host, {
          routerAuxLossCoef: config.auxCoef,
        });
      }
      const modelCk = await recordCheckpoint(
        ctx,
        { step: result.steps, epoch: config.epochs, dir: modelDir, reason: 'model' },
        plan.mode === 'ffn' ? 'model.safetensors' : 'moe.json',
      );
      ctx.log(`upcycle: exported ${plan.mode === 'ffn' ? 'Mixtral' : 'LoRA-MoE'} model to ${modelDir}`);

      // score the exported directory and route every domain through it
      const loaded = await loadAnyModel(modelDir);
      try {
        const scorable = llamaScorable(loaded, { maxSeqLen: config.maxSeqLen });
        const evalResult = await evaluate(scorable, data.eval, {
          batchSize: config.evalBatchSize,
          maxNewTokens: config.evalMaxNewTokens,
          signal: ctx.signal,
          onProgress: (p) => ctx.progress({ step: p.done, total: p.total, phase: 'evaluation' }),
        });
        const line = recordScores(ctx, evalResult, {
          checkpointId: modelCk,
          modelRef: `runs/${runId}/${MODEL_DIR}`,
          step: result.steps,
        });
        ctx.log(`scores: ${line}`);
        const rm = asRoutingModel(loaded);
        const routing = rm
          ? await recordRoutingAnalysis(ctx, rm, data.eval, {
              batchSize: config.evalBatchSize,
              maxSeqLen: config.maxSeqLen,
              onProgress: (p) => ctx.progress({ step: p.done, total: p.total, phase: 'routing' }),
            })
          : null;
        return {
          init: plan.init,
          n,
          topK: config.topK,
          mode: plan.mode,
          router: plan.router,
          steps: result.steps,
          model: `runs/${runId}/${MODEL_DIR}`,
          average: evalResult.average,
          perDomain: evalResult.perDomain,
          routing,
          backend: choice.name,
        };
      } finally {
        loaded.dispose();
      }
    },
  );
}
