/**
 * The `prepare` job (Stage 1): loads the base model and the instruction data, runs
 * `prepareExperts`, scores every checkpoint on every domain and records checkpoints and
 * the checkpoint × domain table in the database.
 */
import { resolve } from 'node:path';
import { embeddedBaseModelDir } from '../../common/paths.js';
import { UserError } from '../../common/errors.js';
import { readEvalJsonl, readInstructionJsonl } from '../../data/jsonl.js';
import { buildSuite } from '../../data/suite.js';
import { DEFAULT_WORLD_SIZE } from '../../data/world.js';
import { DOMAINS, type Difficulty, type DomainName, type EvalItem, type Example } from '../../data/types.js';
import { evaluate, llamaScorable, type EvalResult } from '../../eval/index.js';
import type { HostTensor } from '../../io/host-tensor.js';
import { llamaConfigJson } from '../../model/config.js';
import { loadModel } from '../../model/load.js';
import { peftAdapterConfig } from '../../model/lora.js';
import { useBackend } from '../../tensor/backend.js';
import { prepareExperts } from '../../upit/prepare.js';
import type { JobContext } from '../job-runner.js';
import type { DataConfig, PrepareConfig } from './catalog.js';
import { recordCheckpoint, recordScores, reportStep, runDirectory } from './job-io.js';

export interface PrepareResult {
  checkpoints: number;
  steps: number;
  /** domain → checkpoint step that scores best on it. */
  bestStepByDomain: Record<string, number>;
  backend: string;
}

/** Only the evaluation items of a data config (no training file needed), and a note to log if any. */
export function loadEvalItems(data: DataConfig): { eval: EvalItem[]; note?: string } {
  return data.source === 'files' ? { eval: readEvalJsonl(data.eval) } : loadInstructionData(data);
}

/**
 * The instruction data of a run. For the embedded suite, `note` warns when the world had to grow
 * past the one the shipped base model was pre-trained on (more held-out qa/mc questions asked
 * for than it holds at this difficulty): those questions are then about facts the base never saw.
 */
export function loadInstructionData(data: DataConfig): { train: Example[]; eval: EvalItem[]; note?: string } {
  if (data.source === 'files')
    return { train: readInstructionJsonl(data.train), eval: readEvalJsonl(data.eval) };
  const suite = buildSuite({
    seed: data.suiteSeed,
    trainPerDomain: data.trainPerDomain,
    evalPerDomain: data.evalPerDomain,
    ...(data.difficulty !== undefined ? { difficulty: suiteDifficulty(data.difficulty) } : {}),
  });
  const size = suite.options.worldSize;
  if (size === DEFAULT_WORLD_SIZE) return { train: suite.train, eval: suite.eval };
  const note =
    `note: the embedded world grew to ${size} entities to hold ${data.evalPerDomain} held-out qa/mc ` +
    `questions at this difficulty; the shipped tiny base was pre-trained on the ${DEFAULT_WORLD_SIZE}-entity ` +
    'world, so its qa/mc scores here are not meaningful: ask for fewer evaluation items per domain';
  return { train: suite.train, eval: suite.eval, note };
}

/** A level for every domain, or the levels given per domain (the rest default). */
export function suiteDifficulty(
  d: number | Partial<Record<DomainName, number | undefined>>,
): Partial<Difficulty> {
  if (typeof d === 'number') return { arith: d, code: d, qa: d, mc: d };
  const out: Partial<Difficulty> = {};
  for (const k of DOMAINS) {
    const v = d[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

function primaryScores(r: EvalResult): Map<string, number> {
  return new Map(r.perDomain.filter((d) => d.primary).map((d) => [d.domain, d.score]));
}

export async function runPrepare(config: PrepareConfig, ctx: JobContext): Promise<PrepareResult> {
  const choice = await useBackend(config.backend);
  ctx.log(`backend: ${choice.name} (${choice.detail})`);
  const { store, runId, dir: runDir } = runDirectory(ctx);
  store.setRunBackend(runId, choice.name);

  const data = loadInstructionData(config.data);
  ctx.log(`data: ${data.train.length} training examples, ${data.eval.length} evaluation items`);
  if (data.note !== undefined) ctx.log(data.note);

  const baseDir = resolve(config.base ?? embeddedBaseModelDir());
  const loaded = await loadModel(baseDir);
  const tokenizer = loaded.tokenizer;
  if (!tokenizer) {
    loaded.dispose();
    throw new UserError(`${baseDir}: no tokenizer.json, cannot tokenize the instruction data`);
  }
  const hostWeights = new Map<string, HostTensor>();
  for (const [name, t] of loaded.weights)
    hostWeights.set(name, { shape: [...t.shape], data: t.dataSync() as Float32Array });
  const cfg = loaded.cfg;

  const lr = config.lr ?? (config.mode === 'lora' ? 2e-4 : 2e-5);
  const evalOpts = {
    batchSize: config.evalBatchSize,
    maxNewTokens: config.evalMaxNewTokens,
    signal: ctx.signal,
  };
  const table = new Map<number, Map<string, number>>();

  const record = (result: EvalResult, step: number, checkpointId: number | null, modelRef: string): void => {
    const line = recordScores(ctx, result, { checkpointId, modelRef, step });
    table.set(step, primaryScores(result));
    ctx.log(`${modelRef}: ${line}`);
  };

  try {
    if (config.evalBase) {
      const scorable = llamaScorable(
        { cfg, weights: loaded.weights, tokenizer },
        { maxSeqLen: config.maxSeqLen },
      );
      record(await evaluate(scorable, data.eval, evalOpts), 0, null, 'base');
    }
  } finally {
    loaded.dispose();
  }

  const checkpointFiles: Record<string, string> = {
    'config.json': JSON.stringify(llamaConfigJson(cfg), null, 2) + '\n',
  };
  if (config.mode === 'lora') {
    checkpointFiles['adapter_config.json'] =
      JSON.stringify(peftAdapterConfig(config.lora, baseDir), null, 2) + '\n';
  }
  let tokens = 0;
  const result = await prepareExperts(
    { cfg, weights: hostWeights, tokenizer },
    data.train,
    {
      mode: config.mode,
      lora: config.lora,
      epochs: config.epochs,
      lr,
      warmupRatio: config.warmupRatio,
      weightDecay: config.weightDecay,
      clipNorm: config.clipNorm,
      batchSize: config.batchSize,
      gradAccum: config.gradAccum,
      maxSeqLen: config.maxSeqLen,
      checkpointEvery: config.checkpointEvery,
      seed: config.seed,
      outDir: runDir,
      resume: 'latest',
      checkpointFiles,
    },
    {
      onStep: (s) => {
        tokens += s.inputTokens;
        reportStep(ctx, s, tokens);
      },
      onCheckpoint: async (c, state) => {
        const checkpointId = await recordCheckpoint(ctx, c);
        const scorable = llamaScorable({ ...state, tokenizer }, { maxSeqLen: config.maxSeqLen });
        record(await evaluate(scorable, data.eval, evalOpts), c.step, checkpointId, `step-${c.step}`);
      },
      shouldStop: () => ctx.signal.aborted,
    },
  );
  ctx.signal.throwIfAborted();

  const best: Record<string, number> = {};
  const domains = new Set([...table.values()].flatMap((m) => [...m.keys()]));
  for (const d of domains) {
    let bestStep = -1;
    let bestScore = -Infinity;
    for (const [step, scores] of table) {
      if (step === 0) continue;
      const s = scores.get(d) ?? -Infinity;
      if (s > bestScore) {
        bestScore = s;
        bestStep = step;
      }
    }
    best[d] = bestStep;
  }
  return {
    checkpoints: result.checkpoints.length,
    steps: result.steps,
    bestStepByDomain: best,
    backend: choice.name,
  };
}
