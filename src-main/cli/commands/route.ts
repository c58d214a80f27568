import type { Command } from 'commander';
import { RouteConfig } from '../../jobs/kinds/catalog.js';
import type { RouteJobResult } from '../../jobs/kinds/route.js';
import { table } from '../format.js';
import { backendOption, jsonOption, parseFloatOption, parseIntOption, workspaceOption } from './options.js';
import { runJobCommand } from './job-command.js';

interface RouteOpts {
  workspace?: string;
  json?: boolean;
  backend: string;
  poolRun: number;
  fraction: number;
  minPerExpert: number;
  cap?: number;
  minBucket: number;
  assignment: string;
  epochs: number;
  lr?: number;
  routerLr: number;
  lmWeight: number;
  freezeExpert?: boolean;
  negatives?: boolean;
  rescale: string;
  batchSize: number;
  maxSeqLen: number;
  seed: number;
}

/** Bucket sizes, the own-bucket routing probability and (ppl) each bucket's perplexity per expert. */
export function routeSummary(r: RouteJobResult, runId: number): string {
  const out = [
    `run ${runId}: router for ${r.n} experts from ${r.seedSamples} seed samples (${r.assignment} buckets)`,
    '',
  ];
  out.push(
    table([
      ['expert', 'bucket', 'σ(r·u) own', ...(r.bucketPpl ? r.bucketPpl.map((_, j) => `ppl e${j}`) : [])],
      ...r.bucketSizes.map((size, i) => [
        String(i),
        String(size),
        Number.isFinite(r.ownProbability[i]) ? r.ownProbability[i]!.toFixed(3) : '-',
        ...(r.bucketPpl ? r.bucketPpl[i]!.map((v) => (Number.isFinite(v) ? v.toFixed(3) : '-')) : []),
      ]),
    ]).trimEnd(),
  );
  if (r.bucketPpl)
    out.push(
      '',
      'ppl eJ: mean perplexity of the bucket’s samples under expert J (the diagonal: its own expert)',
    );
  return out.join('\n');
}

export function registerRoute(program: Command): void {
  program
    .command('route')
    .description('Stage 3: assign seed data to experts by perplexity and pre-train the router on it')
    .addOption(workspaceOption())
    .addOption(jsonOption())
    .addOption(backendOption())
    .requiredOption(
      '--pool-run <id>',
      'run id of a finished expand run (its experts)',
      parseIntOption('--pool-run'),
    )
    .option(
      '--fraction <x>',
      'share of the training set in the seed sample',
      parseFloatOption('--fraction'),
      0.01,
    )
    .option(
      '--min-per-expert <n>',
      'at least n seed samples per expert',
      parseIntOption('--min-per-expert'),
      32,
    )
    .option(
      '--min-bucket <n>',
      'every bucket gets ≥ n samples, moved from fuller ones (0: plain argmin)',
      parseIntOption('--min-bucket'),
      8,
    )
    .option(
      '--cap <n>',
      'at most n samples per expert (spill-over to the next best)',
      parseIntOption('--cap'),
    )
    .option('--assignment <a>', 'ppl (argmin perplexity) or random (ablation)', 'ppl')
    .option('--epochs <n>', 'epochs over each bucket', parseFloatOption('--epochs'), 4)
    .option('--lr <x>', "experts' learning rate (default: the prepare run's)", parseFloatOption('--lr'))
    .option('--router-lr <x>', 'learning rate of the routing vectors', parseFloatOption('--router-lr'), 1e-2)
    .option('--lm-weight <x>', 'weight of L_lm (L_aux gets 1 − x)', parseFloatOption('--lm-weight'), 0.5)
    .option('--freeze-expert', 'train only the routing vectors')
    .option('--negatives', "add the other buckets' tokens with target 0")
    .option('--rescale <r>', 'median (router rows to the median norm) or none', 'median')
    .option('--batch-size <n>', 'examples per step', parseIntOption('--batch-size'), 8)
    .option('--max-seq-len <n>', 'longest example (tokens)', parseIntOption('--max-seq-len'), 256)
    .option('--seed <n>', 'seed', parseIntOption('--seed'), 1)
    .action(async (opts: RouteOpts) => {
      const { resolveRoutePlan } = await import('../../jobs/kinds/route.js');
      await runJobCommand<RouteConfig, RouteJobResult>({
        kind: 'route',
        schema: RouteConfig,
        raw: {
          backend: opts.backend,
          seed: opts.seed,
          poolRun: opts.poolRun,
          fraction: opts.fraction,
          minPerExpert: opts.minPerExpert,
          ...(opts.cap !== undefined ? { cap: opts.cap } : {}),
          minBucket: opts.minBucket,
          assignment: opts.assignment,
          epochs: opts.epochs,
          ...(opts.lr !== undefined ? { lr: opts.lr } : {}),
          routerLr: opts.routerLr,
          lmWeight: opts.lmWeight,
          freezeExpert: opts.freezeExpert === true,
          negatives: opts.negatives === true,
          rescale: opts.rescale,
          batchSize: opts.batchSize,
          maxSeqLen: opts.maxSeqLen,
        },
        workspace: opts.workspace,
        json: opts.json === true,
        precheck: (store, config, dir) => void resolveRoutePlan(store, config, dir),
        summary: (r, runId) => routeSummary(r, runId),
      });
    });
}
