import { cpSync, existsSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../../common/errors.js';
import { PretrainConfig } from '../../jobs/kinds/catalog.js';
import type { PretrainResult } from '../../jobs/kinds/pretrain.js';
import { defaultWorkspaceDir } from '../../store/index.js';
import {
  parseJobConfig,
  parseNamedNumbers,
  parseNumberList,
  backendOption,
  jsonOption,
  parseFloatOption,
  parseIntOption,
  workspaceOption,
} from './options.js';

const CORPUS_KINDS = ['knowledge', 'arith', 'code', 'instruct', 'recall'] as const;
type CorpusKind = (typeof CORPUS_KINDS)[number];

interface PretrainOpts {
  workspace?: string;
  backend: string;
  json?: boolean;
  out?: string;
  corpus: string;
  suiteSeed: number;
  docs: number;
  mix?: Partial<Record<CorpusKind, number>>;
  levels?: number[];
  init?: string;
  vocab?: number;
  seed: number;
  dim: number;
  layers: number;
  heads: number;
  kvHeads?: number;
  ffn: number;
  maxPositions: number;
  tie?: boolean;
  seqLen: number;
  batch: number;
  gradAccum: number;
  steps?: number;
  epochs: number;
  lr: number;
  warmup: number;
  weightDecay: number;
  checkpointEvery?: number;
}

export function registerPretrain(program: Command): void {
  program
    .command('pretrain')
    .description(
      'pre-train a small Llama from scratch, byte-level or on a BPE learned from the corpus (how the shipped base model was made)',
    )
    .addOption(workspaceOption())
    .addOption(backendOption())
    .addOption(jsonOption())
    .option('--out <dir>', 'also copy the final model directory here')
    .option(
      '--corpus <source>',
      "'embedded' (the generated world) or a text file of documents separated by blank lines",
      'embedded',
    )
    .option('--suite-seed <n>', 'seed of the embedded world', parseIntOption('--suite-seed'), 1)
    .option('--docs <n>', 'documents of the embedded corpus', parseIntOption('--docs'), 20_000)
    .option(
      '--mix <shares>',
      'shares of the embedded corpus document kinds, e.g. knowledge=0.4,instruct=0.35 (default knowledge=0.45,arith=0.2,code=0.1,instruct=0.25,recall=0)',
      (v: string) => parseNamedNumbers('--mix', v, CORPUS_KINDS),
    )
    .option(
      '--levels <weights>',
      'weights of difficulty levels 1..5 for the embedded corpus arithmetic, programs and Q/A pairs (default 0.3,0.3,0.2,0.1,0.1)',
      (v: string) => {
        const w = parseNumberList('--levels', v);
        if (w.length !== 5)
          throw new UserError(`--levels: expected 5 weights (levels 1..5), got ${w.length}`);
        return w;
      },
    )
    .option(
      '--init <dir>',
      'continue pre-training from this model directory (its architecture and weights; the model-shape options are ignored)',
    )
    .option(
      '--vocab <n>',
      "learn a byte-level BPE of N tokens from the corpus and train on it (default: bytes, vocab 256; with --init, that model's tokenizer)",
      parseIntOption('--vocab'),
    )
    .option('--seed <n>', 'initialisation and data-order seed', parseIntOption('--seed'), 1)
    .option('--dim <n>', 'hidden size', parseIntOption('--dim'), 128)
    .option('--layers <n>', 'transformer layers', parseIntOption('--layers'), 4)
    .option('--heads <n>', 'attention heads', parseIntOption('--heads'), 4)
    .option(
      '--kv-heads <n>',
      'key/value heads (grouped-query attention; default = heads)',
      parseIntOption('--kv-heads'),
    )
    .option('--ffn <n>', 'SwiGLU intermediate size', parseIntOption('--ffn'), 344)
    .option('--max-positions <n>', 'max_position_embeddings', parseIntOption('--max-positions'), 512)
    .option('--tie', 'tie the output head to the embedding')
    .option('--seq-len <n>', 'tokens per training window', parseIntOption('--seq-len'), 128)
    .option('--batch <n>', 'windows per micro-batch', parseIntOption('--batch'), 16)
    .option('--grad-accum <n>', 'micro-batches per optimizer step', parseIntOption('--grad-accum'), 1)
    .option('--steps <n>', 'optimizer steps (default: --epochs over the corpus)', parseIntOption('--steps'))
    .option('--epochs <x>', 'epochs over the packed corpus', parseFloatOption('--epochs'), 1)
    .option('--lr <x>', 'peak learning rate (cosine schedule)', parseFloatOption('--lr'), 2e-3)
    .option('--warmup <x>', 'warm-up fraction of the steps', parseFloatOption('--warmup'), 0.03)
    .option('--weight-decay <x>', 'AdamW weight decay', parseFloatOption('--weight-decay'), 0.1)
    .option(
      '--checkpoint-every <n>',
      'checkpoint every N steps (and at the end)',
      parseIntOption('--checkpoint-every'),
    )
    .action(async (opts: PretrainOpts) => {
      const raw = {
        backend: opts.backend,
        seed: opts.seed,
        corpus:
          opts.corpus === 'embedded'
            ? {
                source: 'embedded',
                suiteSeed: opts.suiteSeed,
                docs: opts.docs,
                ...(opts.mix ? { mix: opts.mix } : {}),
                ...(opts.levels ? { levels: opts.levels } : {}),
              }
            : { source: 'file', path: resolve(opts.corpus) },
        ...(opts.init !== undefined ? { init: resolve(opts.init) } : {}),
        ...(opts.vocab !== undefined ? { vocab: opts.vocab } : {}),
        model: {
          hiddenSize: opts.dim,
          numLayers: opts.layers,
          numHeads: opts.heads,
          ...(opts.kvHeads !== undefined ? { numKvHeads: opts.kvHeads } : {}),
          intermediateSize: opts.ffn,
          maxPositionEmbeddings: opts.maxPositions,
          ropeTheta: 10000,
          tieWordEmbeddings: opts.tie === true,
        },
        seqLen: opts.seqLen,
        batchSize: opts.batch,
        gradAccum: opts.gradAccum,
        ...(opts.steps !== undefined ? { steps: opts.steps } : {}),
        epochs: opts.epochs,
        lr: opts.lr,
        warmupRatio: opts.warmup,
        weightDecay: opts.weightDecay,
        ...(opts.checkpointEvery !== undefined ? { checkpointEverySteps: opts.checkpointEvery } : {}),
      };
      if (opts.corpus !== 'embedded' && (opts.mix || opts.levels))
        throw new UserError(
          '--mix and --levels shape the embedded corpus; they do not apply to --corpus FILE',
        );
      if (opts.init !== undefined && !existsSync(opts.init))
        throw new UserError(`--init: ${opts.init} does not exist`);
      const config = parseJobConfig('pretrain', PretrainConfig, raw);
      if (opts.out && existsSync(opts.out)) throw new UserError(`--out: ${opts.out} already exists`);
      const { runJobInProcess } = await import('../run-job.js');
      const outcome = await runJobInProcess<PretrainResult>('pretrain', config, {
        workspace: opts.workspace ?? defaultWorkspaceDir(),
        json: opts.json === true,
      });
      const modelDir = join(outcome.workspaceDir, outcome.result.modelDir);
      if (opts.out) {
        const tmp = `${opts.out}.tmp-${process.pid}`;
        rmSync(tmp, { recursive: true, force: true });
        cpSync(modelDir, tmp, { recursive: true });
        renameSync(tmp, opts.out);
      }
      const summary = { run: outcome.runId, ...outcome.result, model: opts.out ?? modelDir };
      if (opts.json) process.stdout.write(JSON.stringify({ event: 'result', ...summary }) + '\n');
      else
        process.stdout.write(
          `run ${summary.run}: ${summary.steps} steps, ${summary.tokens} tokens, final loss ${summary.finalLoss.toFixed(4)} on ${summary.backend}\nmodel: ${summary.model}\n`,
        );
    });
}
