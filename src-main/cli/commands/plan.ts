import type { Command } from 'commander';
import { UserError } from '../../common/errors.js';
import type { PlanNode } from '../../jobs/plan/graph.js';
import type { PlanJobState } from '../../jobs/plan/runner.js';
import { readPlanFile } from '../../jobs/plan/schema.js';
import { defaultWorkspaceDir } from '../../store/index.js';
import { table } from '../format.js';
import { jsonOption, parseIdList, workspaceOption } from './options.js';

function jobLabel(n: PlanNode): string {
  return `${n.kind}${n.terminalOf ? ` → ${n.terminalOf}` : ''} (seed ${n.seed})`;
}

/** The job graph: one row per job with what it needs, who uses it, and its run/status. */
export function jobTable(jobs: readonly PlanJobState[]): string {
  const index = new Map(jobs.map((j, i) => [j.node.key, i + 1]));
  return table([
    ['#', 'job', 'kind', 'seed', 'needs', 'result of', 'used by', 'run', 'status'],
    ...jobs.map((j, i) => [
      String(i + 1),
      j.node.key.slice(0, 8),
      j.node.kind,
      String(j.node.seed),
      j.node.deps.map((d) => `#${index.get(d)}`).join(' ') || '-',
      j.node.terminalOf ?? '-',
      j.node.usedBy.join(', '),
      j.runId === null ? '-' : String(j.runId),
      j.status,
    ]),
  ]);
}

export function registerPlan(program: Command): void {
  const plan = program.command('plan').description('experiment plan files');
  plan
    .command('validate')
    .description('check a plan file (schema, paths, variants) and print its job graph')
    .argument('<file>', 'plan file (YAML or JSON)')
    .addOption(jsonOption())
    .action(async (file: string, opts: { json?: boolean }) => {
      const p = readPlanFile(file);
      const { planStatus } = await import('../../jobs/plan/runner.js');
      const { jobs } = planStatus(p, null);
      if (opts.json) {
        process.stdout.write(
          JSON.stringify({
            name: p.name,
            variants: p.variants.map((v) => ({ name: v.name, kind: v.kind })),
            seeds: p.seeds,
            jobs: jobs.map(jobJson),
          }) + '\n',
        );
        return;
      }
      process.stdout.write(
        `${file}: ok — plan '${p.name}', ${p.variants.length} variants × ${p.seeds.length} seed(s) → ${jobs.length} jobs\n`,
      );
    });

  program
    .command('run')
    .description('run a plan: its jobs in dependency order, shared where identical; rerun to resume')
    .argument('<plan>', 'plan file (YAML or JSON)')
    .addOption(workspaceOption())
    .addOption(jsonOption())
    .option('--dry-run', 'print the job graph and what a run would do, run nothing')
    .option('--seeds <list>', "run only these of the plan's seeds (e.g. 1 or 1,2); the rest can follow later")
    .action(
      async (
        file: string,
        opts: { workspace?: string; json?: boolean; dryRun?: boolean; seeds?: string },
      ) => {
        const p = readPlanFile(file);
        if (opts.seeds !== undefined) {
          const want = parseIdList('--seeds', opts.seeds);
          const unknown = want.filter((s) => !p.seeds.includes(s));
          if (unknown.length > 0)
            throw new UserError(
              `--seeds: ${unknown.join(', ')} not among the plan's seeds (${p.seeds.join(', ')})`,
            );
          p.seeds = p.seeds.filter((s) => want.includes(s));
        }
        const workspace = opts.workspace ?? defaultWorkspaceDir();
        const { planStatus, runPlan } = await import('../../jobs/plan/runner.js');
        const { openWorkspaceHandle } = await import('../../jobs/store-adapter.js');
        const ws = openWorkspaceHandle(workspace, { create: true });
        try {
          if (opts.dryRun) {
            const { jobs, experimentId } = planStatus(p, ws.store);
            if (opts.json) {
              process.stdout.write(JSON.stringify({ experimentId, jobs: jobs.map(jobJson) }) + '\n');
              return;
            }
            const todo = jobs.filter((j) => j.status !== 'skipped').length;
            process.stdout.write(
              `plan '${p.name}' in ${ws.dir}: ${jobs.length} jobs, ${jobs.length - todo} done, ${todo} to run\n` +
                jobTable(jobs).trimEnd() +
                '\n',
            );
            return;
          }
          const { JOB_REGISTRY } = await import('../../jobs/kinds/registry.js');
          const { createProgress } = await import('../progress.js');
          const controller = new AbortController();
          let interrupts = 0;
          const onSigint = (): void => {
            interrupts++;
            if (interrupts > 1) process.exit(130);
            process.stderr.write(
              '\ninterrupted: cancelling the current job (it checkpoints first; Ctrl-C again to exit now)\n',
            );
            controller.abort();
          };
          process.on('SIGINT', onSigint);
          let bar: ReturnType<typeof createProgress> | null = null;
          let res;
          try {
            res = await runPlan(p, ws, {
              registry: JOB_REGISTRY,
              signal: controller.signal,
              hooks: {
                onJob: ({ index, total, node, action, runId }) => {
                  bar?.done();
                  const head = `[${index + 1}/${total}] ${jobLabel(node)}`;
                  if (opts.json) {
                    process.stdout.write(
                      JSON.stringify({
                        event: 'job',
                        index,
                        total,
                        key: node.key,
                        kind: node.kind,
                        seed: node.seed,
                        variant: node.terminalOf,
                        action,
                        run: runId,
                      }) + '\n',
                    );
                  } else if (action === 'skip')
                    process.stderr.write(`${head}: done already (run ${runId})\n`);
                  else
                    process.stderr.write(
                      `${head}: ${action === 'resume' ? `resuming run ${runId}` : 'starting'}\n`,
                    );
                  bar =
                    action === 'skip'
                      ? null
                      : createProgress({
                          label: `[${index + 1}/${total}] ${node.kind}`,
                          json: opts.json === true,
                        });
                },
                onJobEvent: (_node, ev) => {
                  if (!bar) return;
                  if (ev.type === 'job.progress') {
                    bar.update({
                      step: ev.step,
                      total: ev.total,
                      ...(ev.loss !== undefined && ev.loss !== null ? { loss: ev.loss } : {}),
                      ...(ev.tokensPerSec !== undefined ? { tokensPerSec: ev.tokensPerSec } : {}),
                      ...(ev.phase !== undefined ? { extra: { phase: ev.phase } } : {}),
                    });
                  } else if (ev.type === 'job.log' && (ev.level !== 'info' || opts.json)) {
                    bar.log(ev.message.split('\n')[0] ?? '');
                  } else if (ev.type === 'job.started' && ev.runId !== null && !opts.json) {
                    bar.log(`run ${ev.runId}`);
                  }
                },
              },
            });
          } finally {
            process.off('SIGINT', onSigint);
            (bar as ReturnType<typeof createProgress> | null)?.done();
          }
          if (opts.json) {
            process.stdout.write(
              JSON.stringify({
                event: 'result',
                experimentId: res.experimentId,
                status: res.status,
                error: res.error,
                jobs: res.jobs.map(jobJson),
              }) + '\n',
            );
          } else {
            process.stdout.write(
              `plan '${p.name}' (experiment ${res.experimentId}): ${res.status}\n${jobTable(res.jobs)}`,
            );
          }
          if (res.status !== 'done') throw new UserError(res.error ?? `plan ${res.status}`);
        } finally {
          ws.close();
        }
      },
    );
}

function jobJson(j: PlanJobState) {
  return {
    key: j.node.key,
    kind: j.node.kind,
    seed: j.node.seed,
    deps: j.node.deps,
    terminalOf: j.node.terminalOf,
    usedBy: j.node.usedBy,
    run: j.runId,
    status: j.status,
  };
}
