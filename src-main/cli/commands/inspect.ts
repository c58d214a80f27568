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
    .command('context')
    .description(
      'how much the next-token prediction after a text depends on each of its tokens: KL(p ‖ p with that token replaced), in nats',
    )
    .requiredOption('--model <dir>', 'model directory (Llama, Mixtral or LoRA-MoE)')
    .requiredOption('--text <text>', 'the context, e.g. a prompt in the instruction template')
    .option('--substitute <text>', 'the token that replaces each position in turn', ' ')
    .option('--json', 'print the figures as JSON')
    .addOption(backendOption())
    .action(
      async (opts: { model: string; text: string; substitute: string; json?: boolean; backend: string }) => {
        const { loadAnyModel, anyModelLogits } = await import('../../model/load-any.js');
        const { contextSensitivity } = await import('../../eval/context.js');
        const { useBackend } = await import('../../tensor/backend.js');
        await useBackend(opts.backend as never);
        const model = await loadAnyModel(opts.model);
        try {
          const tok = model.tokenizer;
          if (!tok) throw new UserError(`${opts.model}: no tokenizer.json, cannot tokenize --text`);
          const ids = tok.encode(opts.text);
          if (ids.length === 0) throw new UserError('--text: no tokens');
          if (ids.length > model.cfg.maxPositionEmbeddings)
            throw new UserError(
              `--text: ${ids.length} tokens, more than the model's ${model.cfg.maxPositionEmbeddings} positions`,
            );
          const sub = tok.encode(opts.substitute);
          if (sub.length !== 1)
            throw new UserError(`--substitute: '${opts.substitute}' is ${sub.length} tokens, not one`);
          const r = contextSensitivity((x) => anyModelLogits(model, x), ids, { substitute: sub[0]! });
          const tokens = ids.map((id) => tok.decode([id]));
          if (opts.json) {
            process.stdout.write(JSON.stringify({ ids, tokens, ...r }) + '\n');
            return;
          }
          const shown = (t: string) => JSON.stringify(t).slice(1, -1);
          process.stdout.write(
            tokens
              .map(
                (t, j) =>
                  `${shown(t)}${r.sensitivity[j]! >= 0.005 ? `[${r.sensitivity[j]!.toFixed(2)}]` : ''}`,
              )
              .join('') +
              '\n' +
              `reach: ${r.reach < 0 ? 'none' : `${r.reach} tokens back`} (sensitivity ≥ ${r.threshold} nats) · ` +
              `beyond the last ${r.near} tokens: ${r.beyond.toFixed(3)} nats\n` +
              `next: ${r.top.map((t) => `${JSON.stringify(tok.decode([t.id]))} ${t.p.toFixed(3)}`).join(' · ')}\n`,
          );
        } finally {
          model.dispose();
        }
      },
    );

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
