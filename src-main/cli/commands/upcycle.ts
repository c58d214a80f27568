import type { Command } from 'commander';
import { routingHighlights } from '../../eval/routing.js';
import { UpcycleConfig } from '../../jobs/kinds/catalog.js';
import type { UpcycleJobResult } from '../../jobs/kinds/upcycle.js';
import type { Store } from '../../store/index.js';
import { scoreTable } from '../format.js';
import { runJobCommand } from './job-command.js';
import { backendOption, jsonOption, parseFloatOption, parseIntOption, workspaceOption } from './options.js';

interface UpcycleOpts {
  workspace?: string;
  json?: boolean;
  backend: string;
  poolRun?: number;
  init: string;
  prepareRun?: number;
  numExperts?: number;
  router: string;
  topK: number;
  epochs: number;
  lr?: number;
  auxCoef: number;
  zCoef: number;
  batchSize: number;
  gradAccum: number;
  maxSeqLen: number;
  checkpointEvery: number;
  seed: number;
}

export function upcycleSummary(r: UpcycleJobResult, runId: number, store: Store): string {
  const out = [
    `run ${runId}: ${r.mode === 'ffn' ? 'FFN' : 'LoRA'}-MoE, ${r.n} experts (${r.init}) top-${r.topK}, ${r.router} router, ` +
      `${r.steps} steps → ${r.model}`,
    '',
    scoreTable(r.perDomain, r.average),
  ];
  if (r.routing) {
    out.push('', `routing (most-used expert per domain; full table: upit routing ${runId})`);
    for (const line of routingHighlights(store.getRoutingStats(runId))) out.push(`  ${line}`);
  }
  return out.join('\n');
}

export function registerUpcycle(program: Command): void {
  program
    .command('upcycle')
    .description(
      'Stage 4: assemble the MoE from a pool and its router, post-train with load balancing, export, score',
    )
    .addOption(workspaceOption())
    .addOption(jsonOption())
    .addOption(backendOption())
    .option(
      '--pool-run <id>',
      'run id of a finished route run (or expand run, with a random router); init pool',
      parseIntOption('--pool-run'),
    )
    .option(
      '--init <i>',
      'pool (UpIT), copies (vanilla upcycling: copies of the final checkpoint) or random (LoRAMoE-style)',
      'pool',
    )
    .option('--prepare-run <id>', 'prepare run for init copies/random', parseIntOption('--prepare-run'))
    .option('--num-experts <n>', 'number of experts for init copies/random', parseIntOption('--num-experts'))
    .option('--router <r>', 'auto, pretrained (the route run’s) or random', 'auto')
    .option('--top-k <k>', 'experts per token', parseIntOption('--top-k'), 2)
    .option('--epochs <n>', 'post-training epochs', parseFloatOption('--epochs'), 2)
    .option('--lr <x>', "learning rate (default: the prepare run's)", parseFloatOption('--lr'))
    .option('--aux-coef <x>', 'λ of the load-balancing loss', parseFloatOption('--aux-coef'), 0.01)
    .option('--z-coef <x>', 'router z-loss coefficient (0: off)', parseFloatOption('--z-coef'), 0)
    .option('--batch-size <n>', 'examples per micro-batch', parseIntOption('--batch-size'), 16)
    .option('--grad-accum <n>', 'micro-batches per step', parseIntOption('--grad-accum'), 1)
    .option('--max-seq-len <n>', 'longest example (tokens)', parseIntOption('--max-seq-len'), 256)
    .option(
      '--checkpoint-every <x>',
      'checkpoint cadence in epochs',
      parseFloatOption('--checkpoint-every'),
      1,
    )
    .option('--seed <n>', 'seed', parseIntOption('--seed'), 1)
    .action(async (opts: UpcycleOpts) => {
      const { resolveUpcyclePlan } = await import('../../jobs/kinds/upcycle.js');
      await runJobCommand<UpcycleConfig, UpcycleJobResult>({
        kind: 'upcycle',
        schema: UpcycleConfig,
        raw: {
          backend: opts.backend,
          seed: opts.seed,
          init: opts.init,
          ...(opts.poolRun !== undefined ? { poolRun: opts.poolRun } : {}),
          ...(opts.prepareRun !== undefined ? { prepareRun: opts.prepareRun } : {}),
          ...(opts.numExperts !== undefined ? { numExperts: opts.numExperts } : {}),
          router: opts.router,
          topK: opts.topK,
          epochs: opts.epochs,
          ...(opts.lr !== undefined ? { lr: opts.lr } : {}),
          auxCoef: opts.auxCoef,
          zCoef: opts.zCoef,
          batchSize: opts.batchSize,
          gradAccum: opts.gradAccum,
          maxSeqLen: opts.maxSeqLen,
          checkpointEvery: opts.checkpointEvery,
        },
        workspace: opts.workspace,
        json: opts.json === true,
        precheck: (store, config, dir) => void resolveUpcyclePlan(store, config, dir),
        summary: upcycleSummary,
      });
    });
}
