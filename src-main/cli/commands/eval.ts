import { resolve } from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../../common/errors.js';
import type { DomainName } from '../../data/types.js';
import { EvalConfig } from '../../jobs/kinds/catalog.js';
import type { EvalJobResult } from '../../jobs/kinds/eval.js';
import { defaultWorkspaceDir } from '../../store/index.js';
import { scoreTable } from '../format.js';
import {
  difficultyOption,
  backendOption,
  jsonOption,
  parseIntOption,
  parseJobConfig,
  workspaceOption,
} from './options.js';

interface EvalOpts {
  workspace?: string;
  backend: string;
  json?: boolean;
  model?: string;
  eval?: string;
  suiteSeed: number;
  evalPerDomain: number;
  difficulty?: number | Partial<Record<DomainName, number>>;
  batch: number;
  maxNewTokens: number;
}

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description(
      'score a model directory (dense Llama, Mixtral or LoRA-MoE) on every domain of the embedded suite or ' +
        'an eval JSONL file; for an MoE also record its routing statistics (upit routing RUN)',
    )
    .addOption(workspaceOption())
    .addOption(backendOption())
    .addOption(jsonOption())
    .option(
      '--model <dir>',
      'model directory: Llama, Mixtral or LoRA-MoE (default: the shipped tiny base model)',
    )
    .option(
      '--eval <file>',
      'evaluation JSONL ({question, answer, choices?, domain?}) instead of the embedded suite',
    )
    .option('--suite-seed <n>', 'embedded suite seed', parseIntOption('--suite-seed'), 1)
    .option(
      '--eval-per-domain <n>',
      'embedded evaluation items per domain',
      parseIntOption('--eval-per-domain'),
      100,
    )
    .addOption(difficultyOption())
    .option('--batch <n>', 'sequences per forward pass', parseIntOption('--batch'), 32)
    .option(
      '--max-new-tokens <n>',
      'generation budget for exact-match items',
      parseIntOption('--max-new-tokens'),
      48,
    )
    .action(async (opts: EvalOpts) => {
      const raw = {
        backend: opts.backend,
        ...(opts.model ? { model: resolve(opts.model) } : {}),
        data: opts.eval
          ? { source: 'files', train: resolve(opts.eval), eval: resolve(opts.eval) }
          : {
              source: 'embedded',
              suiteSeed: opts.suiteSeed,
              trainPerDomain: 1,
              evalPerDomain: opts.evalPerDomain,
              ...(opts.difficulty !== undefined ? { difficulty: opts.difficulty } : {}),
            },
        batchSize: opts.batch,
        maxNewTokens: opts.maxNewTokens,
      };
      const config = parseJobConfig('eval', EvalConfig, raw);
      const { runJobInProcess } = await import('../run-job.js');
      const outcome = await runJobInProcess<EvalJobResult>('eval', config, {
        workspace: opts.workspace ?? defaultWorkspaceDir(),
        json: opts.json === true,
      });
      const r = outcome.result;
      if (!r) throw new UserError('eval: no result');
      if (opts.json) {
        process.stdout.write(JSON.stringify({ event: 'result', run: outcome.runId, ...r }) + '\n');
        return;
      }
      process.stdout.write(`${scoreTable(r.perDomain, r.average)} (run ${outcome.runId})\n`);
      if (r.routing) {
        process.stdout.write(
          `routing of ${r.routing.experts} experts (top-${r.routing.topK}) × ${r.routing.layers} layers ` +
            `recorded: upit routing ${outcome.runId}` +
            (opts.workspace ? ` --workspace ${opts.workspace}` : '') +
            '\n',
        );
      }
    });
}
