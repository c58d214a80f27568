/**
 * `upit` — the command-line face of the workbench. Each command lives in commands/ and
 * only parses options, calls into the layers below and prints; no business logic here.
 */
import { Command, CommanderError } from 'commander';
import { isUserError } from '../common/errors.js';
import { registerBackends } from './commands/backends.js';
import { registerInspect } from './commands/inspect.js';
import { registerGenerate } from './commands/generate.js';
import { registerServe } from './commands/serve.js';
import { registerPretrain } from './commands/pretrain.js';
import { registerRuns } from './commands/runs.js';
import { registerPrepare } from './commands/prepare.js';
import { registerExpand } from './commands/expand.js';
import { registerMerge } from './commands/merge.js';
import { registerEval } from './commands/eval.js';
import { registerRoute } from './commands/route.js';
import { registerUpcycle } from './commands/upcycle.js';
import { registerPlan } from './commands/plan.js';
import { registerRouting } from './commands/routing.js';
import { registerReport } from './commands/report.js';
import { VERSION } from '../common/version.js';

export function buildProgram(): Command {
  const program = new Command('upit')
    .description('UpIT Workbench: upcycle a dense Llama into a Mixture-of-Experts (arXiv 2410.01610)')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: true })
    .exitOverride();
  registerBackends(program);
  registerInspect(program);
  registerGenerate(program);
  registerServe(program);
  registerPretrain(program);
  registerRuns(program);
  registerPrepare(program);
  registerExpand(program);
  registerMerge(program);
  registerEval(program);
  registerRoute(program);
  registerUpcycle(program);
  registerPlan(program);
  registerRouting(program);
  registerReport(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version exit with 0; usage errors were already printed by commander
      return e.exitCode === 0 ? 0 : 2;
    }
    if (isUserError(e)) {
      process.stderr.write(`upit: ${e.message}\n`);
      return 1;
    }
    process.stderr.write(
      `upit: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
    return 70;
  }
}

const code = await main(process.argv.slice(2));
process.exitCode = code;
