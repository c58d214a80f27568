/**
 * The `pretrain` job: a small Llama trained from scratch, or further from a model directory
 * (`init`), on the embedded world's corpus (or a text file). Its tokenizer is the byte tokenizer,
 * a byte-level BPE learned from the corpus first (`vocab`), or the `init` model's own; documents
 * are separated by EOS and, where the tokenizer has one (`addsBos`), start with BOS. This is how
 * the shipped base model in resources/ was made.
 * Checkpoints go to `runs/<id>/checkpoints/`, the final Hugging Face-layout model to
 * `runs/<id>/model/`, and every checkpoint is recorded with its sha256 in the database.
 */
import { join } from 'node:path';
import { Rng } from '../../common/rng.js';
import { UserError } from '../../common/errors.js';
import { buildSuite } from '../../data/suite.js';
import { readPretrainText } from '../../data/jsonl.js';
import {
  ByteTokenizer,
  TOKENIZER_CONFIG_FILE,
  TOKENIZER_FILE,
  addsBos,
  loadTokenizer,
  tokenizerConfigJson,
  type Tokenizer,
} from '../../io/tokenizer.js';
import { makeLlamaConfig, llamaConfigJson, type LlamaConfig } from '../../model/config.js';
import { initLlamaWeights } from '../../model/params.js';
import type { HostTensor } from '../../io/host-tensor.js';
import { loadModel, saveModel } from '../../model/load.js';
import { useBackend } from '../../tensor/backend.js';
import { packDocuments } from '../../train/batches.js';
import { trainBpe } from '../../train/bpe.js';
import { llamaTrainable } from '../../train/llama-trainable.js';
import { train } from '../../train/trainer.js';
import type { JobContext } from '../job-runner.js';
import { recordCheckpoint, reportStep, runDirectory } from './job-io.js';
import type { PretrainConfig } from './catalog.js';

export interface PretrainResult {
  /** The final model, relative to the workspace. */
  modelDir: string;
  steps: number;
  finalLoss: number;
  tokens: number;
  backend: string;
}

export function pretrainDocuments(config: PretrainConfig): string[] {
  if (config.corpus.source === 'file') return readPretrainText(config.corpus.path);
  const { suiteSeed, docs, mix, levels } = config.corpus;
  const suite = buildSuite({ seed: suiteSeed, trainPerDomain: 1, evalPerDomain: 50 });
  return suite.pretrainCorpus({ docs, ...(mix ? { mix } : {}), ...(levels ? { levels } : {}) });
}

/**
 * The model `--init` continues from: a dense Llama whose context holds a window and whose
 * embedding matches its tokenizer. Its weights come back on the host, to become the trainable ones.
 */
async function initialModel(
  dir: string,
  tok: Tokenizer,
  seqLen: number,
): Promise<{ cfg: LlamaConfig; weights: Map<string, HostTensor> }> {
  const loaded = await loadModel(dir);
  const { cfg } = loaded;
  const weights = new Map<string, HostTensor>();
  const problem =
    cfg.vocabSize !== tok.vocabSize
      ? `vocab_size ${cfg.vocabSize} does not match its tokenizer's ${tok.vocabSize} tokens`
      : seqLen > cfg.maxPositionEmbeddings
        ? `max_position_embeddings ${cfg.maxPositionEmbeddings} is shorter than --seq-len ${seqLen}`
        : null;
  if (!problem) {
    for (const [name, t] of loaded.weights)
      weights.set(name, { shape: [...t.shape], data: t.dataSync() as Float32Array });
  }
  loaded.dispose();
  if (problem) throw new UserError(`${join(dir, 'config.json')}: ${problem}`);
  return { cfg, weights };
}

/** The byte tokenizer, a BPE learned from `docs` (`vocab`), or the `init` model's tokenizer. */
function pretrainTokenizer(config: PretrainConfig, docs: readonly string[], ctx: JobContext): Tokenizer {
  if (config.init !== undefined) return loadTokenizer(config.init);
  if (config.vocab === undefined) return new ByteTokenizer();
  const started = Date.now();
  const tok = trainBpe(docs, config.vocab, (done, total) =>
    ctx.progress({ phase: 'tokenizer', step: done, total }),
  );
  ctx.log(
    `tokenizer: byte-level BPE of ${tok.vocabSize} tokens learned from the corpus in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  return tok;
}

/** The tokenizer's files, written into every checkpoint so that each one loads as a model. */
function tokenizerFiles(tok: Tokenizer): Record<string, string> {
  const files: Record<string, string> = {
    [TOKENIZER_FILE]: JSON.stringify(tok.toJSON(), null, 2) + '\n',
  };
  const config = tokenizerConfigJson(tok);
  if (config) files[TOKENIZER_CONFIG_FILE] = JSON.stringify(config, null, 2) + '\n';
  return files;
}

export async function runPretrain(config: PretrainConfig, ctx: JobContext): Promise<PretrainResult> {
  const choice = await useBackend(config.backend);
  ctx.log(`backend: ${choice.name} (${choice.detail})`);
  const { store, runId, dir: runDir } = runDirectory(ctx);
  store.setRunBackend(runId, choice.name);

  const docs = pretrainDocuments(config);
  const tok = pretrainTokenizer(config, docs, ctx);
  const eos = tok.eosId;
  if (eos === null)
    throw new UserError(
      `${join(config.init ?? '.', TOKENIZER_FILE)}: the tokenizer has no end-of-sequence token to separate documents`,
    );
  const addBos = addsBos(tok);
  const examples = packDocuments(
    docs.map((d) => tok.encode(d, { addBos })),
    { seqLen: config.seqLen, eos },
  );
  if (examples.length < config.batchSize) {
    throw new UserError(
      `pretrain: the corpus packs into ${examples.length} windows of ${config.seqLen} tokens, ` +
        `fewer than one batch of ${config.batchSize}`,
    );
  }
  const init = config.init === undefined ? null : await initialModel(config.init, tok, config.seqLen);
  const m = config.model;
  const cfg =
    init?.cfg ??
    makeLlamaConfig({
      vocabSize: tok.vocabSize,
      hiddenSize: m.hiddenSize,
      intermediateSize: m.intermediateSize,
      numLayers: m.numLayers,
      numHeads: m.numHeads,
      numKvHeads: m.numKvHeads ?? m.numHeads,
      maxPositionEmbeddings: m.maxPositionEmbeddings,
      ropeTheta: m.ropeTheta,
      tieWordEmbeddings: m.tieWordEmbeddings,
      bosTokenId: tok.bosId,
      eosTokenId: tok.eosId,
      padTokenId: tok.padId,
    });
  const tokensPerStep = config.batchSize * config.gradAccum * config.seqLen;
  ctx.log(
    `corpus: ${docs.length} documents → ${examples.length} windows of ${config.seqLen} tokens; ` +
      `${tokensPerStep} tokens per step`,
  );

  if (init)
    ctx.log(`continuing from ${config.init} (${init.cfg.numLayers} layers, d ${init.cfg.hiddenSize})`);
  const weights = init?.weights ?? initLlamaWeights(cfg, Rng.derive(config.seed, 'init'));
  const model = llamaTrainable(cfg, weights, { mode: 'full' });
  try {
    let finalLoss = NaN;
    const result = await train(
      model,
      { examples, padId: tok.padId, maxSeqLen: config.seqLen },
      {
        lr: config.lr,
        schedule: { kind: 'cosine', warmupRatio: config.warmupRatio },
        weightDecay: config.weightDecay,
        clipNorm: config.clipNorm,
        batchSize: config.batchSize,
        gradAccum: config.gradAccum,
        ...(config.steps !== undefined ? { maxSteps: config.steps } : { epochs: config.epochs }),
        seed: config.seed,
        outDir: runDir,
        resume: 'latest',
        ...(config.checkpointEverySteps !== undefined
          ? { checkpointEverySteps: config.checkpointEverySteps }
          : {}),
        ...(config.keepLast !== undefined ? { keepLast: config.keepLast } : {}),
        checkpointFiles: {
          'config.json': JSON.stringify(llamaConfigJson(cfg), null, 2) + '\n',
          ...tokenizerFiles(tok),
        },
      },
      {
        onStep: (s) => {
          finalLoss = s.loss;
          reportStep(ctx, s, s.step * tokensPerStep);
        },
        onCheckpoint: async (c) => {
          await recordCheckpoint(ctx, c);
        },
        shouldStop: () => ctx.signal.aborted,
      },
    );
    ctx.signal.throwIfAborted();
    const modelDir = join(runDir, 'model');
    saveModel(modelDir, cfg, model.weights, tok);
    await recordCheckpoint(ctx, {
      step: result.steps,
      epoch: result.steps / result.stepsPerEpoch,
      dir: modelDir,
      reason: 'model',
    });
    ctx.log(`model written to ${modelDir}`);
    return {
      modelDir: join('runs', String(runId), 'model'),
      steps: result.steps,
      finalLoss,
      tokens: result.steps * tokensPerStep,
      backend: choice.name,
    };
  } finally {
    model.dispose();
  }
}
