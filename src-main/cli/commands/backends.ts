import type { Command } from 'commander';
import { jsonOption } from './options.js';

export function registerBackends(program: Command): void {
  program
    .command('backends')
    .description('list the tensor backends and whether each can be used on this machine')
    .addOption(jsonOption())
    .action(async (opts: { json?: boolean }) => {
      const { probeBackends } = await import('../../tensor/backend.js');
      const attempts = await probeBackends();
      if (opts.json) {
        process.stdout.write(JSON.stringify(attempts, null, 2) + '\n');
        return;
      }
      const width = Math.max(...attempts.map((a) => a.name.length));
      for (const a of attempts) {
        process.stdout.write(`${a.name.padEnd(width)}  ${a.status.padEnd(17)}  ${a.detail}\n`);
      }
    });
}
