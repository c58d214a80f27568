import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { UserError } from '../../common/errors.js';
import { createProgress } from '../progress.js';
import { jsonOption, parseFloatOption, parseIntOption, parseNumberList } from './options.js';

interface MergeOpts {
  method: string;
  base: string;
  models: string;
  weights?: string;
  drop?: number;
  density?: number;
  lambda?: number;
  rescale?: string;
  seed: number;
  dtype?: string;
  out: string;
  json?: boolean;
}

export function registerMerge(program: Command): void {
  program
    .command('merge')
    .description('merge Hugging Face-layout models tensor by tensor (linear, task arithmetic, TIES, DARE)')
    .addOption(
      new Option('--method <name>', 'merge method')
        .choices(['linear', 'task_arithmetic', 'ties', 'dare_linear', 'dare_ties'])
        .makeOptionMandatory(),
    )
    .requiredOption('--base <dir>', 'base model θ0 (task vectors are models − base)')
    .requiredOption('--models <dirs>', 'comma-separated model directories')
    .option('--weights <list>', 'comma-separated weights, one per model (default 1 each)')
    .option('--drop <p>', 'DARE drop probability p in [0, 1)', parseFloatOption('--drop'))
    .option('--density <d>', 'TIES density in (0, 1]', parseFloatOption('--density'))
    .option('--lambda <x>', 'task-vector scale λ', parseFloatOption('--lambda'))
    .addOption(new Option('--rescale <rule>', 'DARE rescale rule').choices(['inverse', 'l1', 'none']))
    .option('--seed <n>', 'seed of the DARE masks', parseIntOption('--seed'), 0)
    .addOption(new Option('--dtype <dtype>', 'output dtype').choices(['F32', 'BF16']))
    .requiredOption('--out <dir>', 'output model directory (must not exist)')
    .addOption(jsonOption())
    .action(async (opts: MergeOpts) => {
      const out = resolve(opts.out);
      if (existsSync(out)) throw new UserError(`--out: ${opts.out} already exists`);
      const modelDirs = opts.models.split(',').map((d) => resolve(d.trim()));
      const weights = opts.weights !== undefined ? parseNumberList('--weights', opts.weights) : undefined;
      if (weights && weights.length !== modelDirs.length) {
        throw new UserError(`--weights: ${weights.length} weights for ${modelDirs.length} models`);
      }
      const { mergeModels } = await import('../../upit/merge/index.js');
      const progress = createProgress({ label: 'merge', json: opts.json === true });
      const recipe = await mergeModels({
        method: opts.method,
        baseDir: resolve(opts.base),
        modelDirs,
        ...(weights ? { weights } : {}),
        ...(opts.drop !== undefined ? { drop: opts.drop } : {}),
        ...(opts.density !== undefined ? { density: opts.density } : {}),
        ...(opts.lambda !== undefined ? { lambda: opts.lambda } : {}),
        ...(opts.rescale !== undefined ? { rescale: opts.rescale as 'inverse' | 'l1' | 'none' } : {}),
        ...(opts.dtype !== undefined ? { dtype: opts.dtype as 'F32' | 'BF16' } : {}),
        seed: opts.seed,
        outDir: out,
        onProgress: (p) => progress.update({ step: p.done, total: p.total }),
      });
      progress.done();
      if (opts.json) process.stdout.write(JSON.stringify({ event: 'result', out, recipe }) + '\n');
      else process.stdout.write(`merged ${recipe.tensors} tensors (${recipe.method}) into ${out}\n`);
    });
}
