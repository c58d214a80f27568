import type { Command } from 'commander';
import { UserError } from '../../common/errors.js';
import { backendOption, jsonOption, parseIntOption } from './options.js';

export function registerGenerate(program: Command): void {
  program
    .command('generate')
    .description('greedy generation from a model directory; several --prompt values run as one batch')
    .requiredOption('--model <dir>', 'Hugging Face-layout model directory')
    .requiredOption('--prompt <text...>', 'prompt text (repeatable)')
    .option('--max-new-tokens <n>', 'tokens to generate per prompt', parseIntOption('--max-new-tokens'), 64)
    .option('--bos', 'prepend the beginning-of-sequence token to each prompt')
    .addOption(backendOption())
    .addOption(jsonOption())
    .action(
      async (opts: {
        model: string;
        prompt: string[];
        maxNewTokens: number;
        bos?: boolean;
        backend: string;
        json?: boolean;
      }) => {
        if (opts.maxNewTokens < 1) throw new UserError('--max-new-tokens: must be at least 1');
        const { loadModel } = await import('../../model/load.js');
        const { greedyGenerate } = await import('../../model/generate.js');
        const { useBackend } = await import('../../tensor/backend.js');
        await useBackend(opts.backend as never);
        const model = await loadModel(opts.model);
        try {
          const tok = model.tokenizer;
          if (!tok) throw new UserError(`${opts.model}: no tokenizer.json, cannot encode a text prompt`);
          const prompts = opts.prompt.map((p) => tok.encode(p, { addBos: opts.bos === true }));
          const outputs = greedyGenerate(model, prompts, {
            maxNewTokens: opts.maxNewTokens,
            eosId: tok.eosId,
            padId: tok.padId,
          });
          const texts = outputs.map((ids) => tok.decode(ids));
          if (opts.json) {
            process.stdout.write(
              JSON.stringify(opts.prompt.map((prompt, i) => ({ prompt, ids: outputs[i], text: texts[i] }))) +
                '\n',
            );
          } else {
            for (const t of texts) process.stdout.write(t + '\n');
          }
        } finally {
          model.dispose();
        }
      },
    );
}
