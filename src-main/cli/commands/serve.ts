import type { Command } from 'commander';
import { defaultWorkspaceDir } from '../../store/index.js';
import { parseIntOption } from './options.js';
import { UserError } from '../../common/errors.js';

interface ServeOptions {
  port: number;
  workspace?: string;
}

/** `upit serve`: the workbench GUI in a browser, served on 127.0.0.1 with a per-launch token. */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve the workbench GUI on 127.0.0.1 (open the printed URL: it carries the access token)')
    .option('--port <n>', 'port to listen on (0: any free port)', parseIntOption('--port'), 0)
    .option('--workspace <dir>', 'workspace directory (default: $UPIT_WORKSPACE or ~/.upit/workspace)')
    .action(async (opts: ServeOptions) => {
      const { launchWebHost } = await import('../../host/web/launch.js');
      if (opts.port < 0 || opts.port > 65535)
        throw new UserError(`--port: ${opts.port} is not a port number`);
      const host = await launchWebHost({
        workspaceDir: opts.workspace ?? defaultWorkspaceDir(),
        port: opts.port,
      });
      process.stdout.write(`UpIT Workbench: workspace ${host.workspace.dir}\n`);
      process.stdout.write(`open ${host.server.url}\n`);
      process.stdout.write('(Ctrl+C to stop)\n');
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void host.stop().finally(resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
