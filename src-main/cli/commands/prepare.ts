import { resolve } from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../../common/errors.js';
import type { DomainName } from '../../data/types.js';
import { PrepareConfig } from '../../jobs/kinds/catalog.js';
import type { PrepareResult } from '../../jobs/kinds/prepare.js';
import { defaultWorkspaceDir, openWorkspace } from '../../store/index.js';
import { checkpointDomainTable } from '../format.js';
import {
  difficultyOption,
  parseJobConfig,
  backendOption,
  jsonOption,
  parseFloatOption,
  parseIntOption,
  workspaceOption,
} from './options.js';

interface PrepareOpts {
  workspace?: string;
  backend: string;
  json?: boolean;
  base?: string;
  train?: string;
  eval?: string;
  suiteSeed: number;
  trainPerDomain: number;
  evalPerDomain: number;
  difficulty?: number | Partial<Record<DomainName, number>>;
  mode: string;
  loraR: number;
  loraAlpha: number;
  loraTargets: string;
  epochs: number;
  lr?: number;
  batch: number;
  gradAccum: number;
  maxSeqLen: number;
  checkpointEvery: number;
  evalBatch: number;
  evalBase: boolean;
  seed: number;
}

export function registerPrepare(program: Command): void {
  program
    .command('prepare')
    .description(
      'Stage 1: instruction-tune the base model, checkpoint every 0.25 epoch, score every checkpoint per domain',
    )
    .addOption(workspaceOption())
    .addOption(backendOption())
    .addOption(jsonOption())
    .option('--base <dir>', 'base model directory (default: the shipped tiny base model)')
    .option(
      '--train <file>',
      'instruction JSONL (Alpaca or chat); with --eval, instead of the embedded suite',
    )
    .option('--eval <file>', 'evaluation JSONL ({question, answer, choices?, domain?})')
    .option('--suite-seed <n>', 'embedded suite seed', parseIntOption('--suite-seed'), 1)
    .option(
      '--train-per-domain <n>',
      'embedded training examples per domain',
      parseIntOption('--train-per-domain'),
      400,
    )
    .option(
      '--eval-per-domain <n>',
      'embedded evaluation items per domain',
      parseIntOption('--eval-per-domain'),
      100,
    )
    .addOption(difficultyOption())
    .option('--mode <mode>', 'lora, ffn, or full (every weight: the dense full-SFT baseline)', 'lora')
    .option('--lora-r <n>', 'LoRA rank', parseIntOption('--lora-r'), 8)
    .option('--lora-alpha <x>', 'LoRA alpha', parseFloatOption('--lora-alpha'), 16)
    .option('--lora-targets <list>', 'adapted projections', 'gate_proj,up_proj,down_proj')
    .option('--epochs <x>', 'epochs of instruction tuning', parseFloatOption('--epochs'), 2)
    .option('--lr <x>', 'peak learning rate (default 2e-4 LoRA, 2e-5 FFN)', parseFloatOption('--lr'))
    .option('--batch <n>', 'examples per micro-batch', parseIntOption('--batch'), 16)
    .option('--grad-accum <n>', 'micro-batches per step', parseIntOption('--grad-accum'), 1)
    .option('--max-seq-len <n>', 'longest training sequence', parseIntOption('--max-seq-len'), 256)
    .option(
      '--checkpoint-every <x>',
      'checkpoint cadence in epochs',
      parseFloatOption('--checkpoint-every'),
      0.25,
    )
    .option('--eval-batch <n>', 'evaluation batch size', parseIntOption('--eval-batch'), 32)
    .option('--no-eval-base', 'do not score the base model first')
    .option('--seed <n>', 'seed', parseIntOption('--seed'), 1)
    .action(async (opts: PrepareOpts) => {
      if ((opts.train === undefined) !== (opts.eval === undefined)) {
        throw new UserError('--train and --eval go together');
      }
      const raw = {
        backend: opts.backend,
        seed: opts.seed,
        ...(opts.base ? { base: resolve(opts.base) } : {}),
        data:
          opts.train && opts.eval
            ? { source: 'files', train: resolve(opts.train), eval: resolve(opts.eval) }
            : {
                source: 'embedded',
                suiteSeed: opts.suiteSeed,
                trainPerDomain: opts.trainPerDomain,
                evalPerDomain: opts.evalPerDomain,
                ...(opts.difficulty !== undefined ? { difficulty: opts.difficulty } : {}),
              },
        mode: opts.mode,
        lora: {
          r: opts.loraR,
          alpha: opts.loraAlpha,
          targets: opts.loraTargets.split(',').map((s) => s.trim()),
        },
        epochs: opts.epochs,
        ...(opts.lr !== undefined ? { lr: opts.lr } : {}),
        batchSize: opts.batch,
        gradAccum: opts.gradAccum,
        maxSeqLen: opts.maxSeqLen,
        checkpointEvery: opts.checkpointEvery,
        evalBatchSize: opts.evalBatch,
        evalBase: opts.evalBase,
      };
      const config = parseJobConfig('prepare', PrepareConfig, raw);
      const { runJobInProcess } = await import('../run-job.js');
      const workspace = opts.workspace ?? defaultWorkspaceDir();
      const outcome = await runJobInProcess<PrepareResult>('prepare', config, {
        workspace,
        json: opts.json === true,
      });
      if (opts.json) {
        process.stdout.write(
          JSON.stringify({ event: 'result', run: outcome.runId, ...outcome.result }) + '\n',
        );
        return;
      }
      const ws = openWorkspace(workspace);
      try {
        const runId = outcome.runId!;
        process.stdout.write(
          `run ${runId}: ${outcome.result.steps} steps, ${outcome.result.checkpoints} checkpoints on ${outcome.result.backend}\n\n`,
        );
        process.stdout.write(
          checkpointDomainTable(ws.db.listEvaluations(runId), ws.db.listCheckpoints(runId)),
        );
      } finally {
        ws.close();
      }
    });
}
