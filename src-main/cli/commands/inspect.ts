import type { Command } from 'commander';
import { UserError } from '../../common/errors.js';
import { backendOption, parseIdList } from './options.js';

export function registerInspect(program: Command): void {
  const inspect = program.command('inspect').description('look inside a model directory');

  inspect
    .command('logits')
    .description('print the logits of a token sequence as JSON {"ids":[...],"logits":[[...],...]} (float32)')
    .requiredOption('--model <dir>', 'Hugging Face-layout model directory')
    .requiredOption('--ids <list>', 'comma-separated token ids, e.g. 1,2,3')
    .addOption(backendOption())
    .action(async (opts: { model: string; ids: string; backend: string }) => {
      const ids = parseIdList('--ids', opts.ids);
      const { loadAnyModel, anyModelLogits } = await import('../../model/load-any.js');
      const { useBackend } = await import('../../tensor/backend.js');
      const { tf } = await import('../../tensor/tf.js');
      await useBackend(opts.backend as never);
      const model = await loadAnyModel(opts.model);
      try {
        const bad = ids.find((id) => id >= model.cfg.vocabSize);
        if (bad !== undefined)
          throw new UserError(
            `--ids: token id ${bad} is outside the vocabulary (size ${model.cfg.vocabSize})`,
          );
        const rows = tf.tidy(() => {
          const input = tf.tensor2d([ids], [1, ids.length], 'int32');
          const logits = anyModelLogits(model, input);
          return tf.squeeze(logits, [0]).arraySync() as number[][];
        });
        process.stdout.write(JSON.stringify({ ids, logits: rows }) + '\n');
      } finally {
        model.dispose();
      }
    });

  inspect
    .command('tokens')
    .description("print the token ids of a text under a model directory's tokenizer")
    .requiredOption('--model <dir>', 'model directory holding tokenizer.json')
    .requiredOption('--text <text>', 'text to tokenize')
    .option('--bos', 'prepend the beginning-of-sequence token')
    .option('--json', 'print {"ids":[...],"tokens":[...]} instead of a plain list')
    .action(async (opts: { model: string; text: string; bos?: boolean; json?: boolean }) => {
      const { loadTokenizer } = await import('../../io/tokenizer.js');
      const tokenizer = await loadTokenizer(opts.model);
      const ids = tokenizer.encode(opts.text, { addBos: opts.bos === true });
      if (opts.json) {
        const tokens = ids.map((id) => tokenizer.decode([id]));
        process.stdout.write(JSON.stringify({ ids, tokens }) + '\n');
      } else {
        process.stdout.write(ids.join(',') + '\n');
      }
    });
}
