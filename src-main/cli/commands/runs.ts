import type { Command } from 'commander';
import { UserError } from '../../common/errors.js';
import { RUN_KINDS, RUN_STATUSES, defaultWorkspaceDir, openWorkspace, type Run } from '../../store/index.js';
import { checkpointSpecialisation, specialisationLines } from '../../eval/paired.js';
import { outcomeRows } from '../../store/profile-rows.js';
import { checkpointDomainTable, fmtNum, table } from '../format.js';
import { jsonOption, parseIntOption, workspaceOption } from './options.js';
import { distanceTable, expertsTable, lineageTable } from './expand.js';

function fmtTime(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

function runRow(r: Run): string[] {
  return [
    String(r.id),
    r.kind,
    r.variant ?? '-',
    r.seed === null ? '-' : String(r.seed),
    r.status,
    r.backend ?? '-',
    fmtTime(r.createdAt),
    r.wallSeconds === null ? '-' : `${r.wallSeconds.toFixed(1)}s`,
  ];
}

export function registerRuns(program: Command): void {
  program
    .command('runs')
    .description('list the runs recorded in a workspace, newest first')
    .addOption(workspaceOption())
    .option('--kind <kind>', `only runs of this kind (${RUN_KINDS.join(', ')})`)
    .option('--status <status>', `only runs in this status (${RUN_STATUSES.join(', ')})`)
    .option('--limit <n>', 'at most this many', parseIntOption('--limit'), 50)
    .addOption(jsonOption())
    .action((opts: { workspace?: string; kind?: string; status?: string; limit: number; json?: boolean }) => {
      if (opts.kind && !(RUN_KINDS as readonly string[]).includes(opts.kind)) {
        throw new UserError(`--kind: unknown run kind '${opts.kind}' (known: ${RUN_KINDS.join(', ')})`);
      }
      if (opts.status && !(RUN_STATUSES as readonly string[]).includes(opts.status)) {
        throw new UserError(`--status: unknown status '${opts.status}' (known: ${RUN_STATUSES.join(', ')})`);
      }
      const ws = openWorkspace(opts.workspace ?? defaultWorkspaceDir());
      try {
        const runs = ws.db.listRuns({
          ...(opts.kind ? { kind: opts.kind as Run['kind'] } : {}),
          ...(opts.status ? { status: opts.status as Run['status'] } : {}),
          order: 'desc',
          limit: opts.limit,
        });
        if (opts.json) {
          process.stdout.write(JSON.stringify(runs, null, 2) + '\n');
          return;
        }
        if (runs.length === 0) {
          process.stdout.write(`no runs in ${ws.dir}\n`);
          return;
        }
        const header = ['run', 'kind', 'variant', 'seed', 'status', 'backend', 'created', 'wall'];
        process.stdout.write(table([header, ...runs.map(runRow)]));
      } finally {
        ws.close();
      }
    });

  program
    .command('show')
    .description('show one run: its configuration, metrics summary, checkpoints and evaluations')
    .argument('<run>', 'run id', parseIntOption('<run>'))
    .addOption(workspaceOption())
    .addOption(jsonOption())
    .action((runId: number, opts: { workspace?: string; json?: boolean }) => {
      const ws = openWorkspace(opts.workspace ?? defaultWorkspaceDir());
      try {
        const run = ws.db.getRun(runId);
        if (!run) throw new UserError(`run ${runId} is not in ${ws.dir}`);
        const metrics = ws.db.getMetricSummary(runId);
        const checkpoints = ws.db.listCheckpoints(runId);
        const evaluations = ws.db.listEvaluations(runId);
        const experts = ws.db.listExperts(runId);
        const seedBuckets = ws.db.getSeedBuckets(runId);
        const routingRows = ws.db.getRoutingStats(runId).length;
        const distanceRows = ws.db.getDistances(runId);
        const distanceMetric = distanceRows[0]?.metric ?? null;
        const distances =
          distanceMetric === null
            ? null
            : ws.db.getDistanceMatrix(runId, distanceMetric, experts.length || undefined);
        const specialisation = checkpointSpecialisation(
          outcomeRows(evaluations, checkpoints, ws.db.listEvaluationOutcomes(runId)),
        );
        if (opts.json) {
          process.stdout.write(
            JSON.stringify(
              {
                run,
                metrics,
                checkpoints,
                evaluations,
                ...(experts.length > 0 ? { experts } : {}),
                ...(distances ? { distances: { metric: distanceMetric, matrix: distances } } : {}),
                ...(seedBuckets.length > 0 ? { seedBuckets } : {}),
                ...(specialisation ? { specialisation } : {}),
              },
              null,
              2,
            ) + '\n',
          );
          return;
        }
        const out: string[] = [];
        out.push(`run ${run.id} · ${run.kind}${run.variant ? ` · ${run.variant}` : ''} · ${run.status}`);
        out.push(
          `  backend ${run.backend ?? '-'} · seed ${run.seed ?? '-'} · created ${fmtTime(run.createdAt)}` +
            ` · wall ${run.wallSeconds === null ? '-' : `${run.wallSeconds.toFixed(1)}s`}`,
        );
        if (run.error) out.push(`  error: ${run.error}`);
        out.push(`  config: ${JSON.stringify(run.config)}`);
        out.push('');
        if (metrics.length > 0) {
          out.push('metrics');
          out.push(
            table([
              ['key', 'points', 'steps', 'first', 'last', 'min', 'max'],
              ...metrics.map((m) => [
                m.key,
                String(m.count),
                `${m.firstStep}–${m.lastStep}`,
                fmtNum(m.first),
                fmtNum(m.last),
                fmtNum(m.min),
                fmtNum(m.max),
              ]),
            ])
              .replace(/^/gm, '  ')
              .trimEnd(),
          );
          out.push('');
        }
        if (checkpoints.length > 0) {
          out.push('checkpoints');
          out.push(
            table([
              ['id', 'step', 'epoch', 'tag', 'bytes', 'sha256', 'path'],
              ...checkpoints.map((c) => [
                String(c.id),
                String(c.step),
                c.epoch === null ? '-' : c.epoch.toFixed(2),
                c.tag ?? '-',
                String(c.bytes),
                c.sha256.slice(0, 12),
                c.path,
              ]),
            ])
              .replace(/^/gm, '  ')
              .trimEnd(),
          );
          out.push('');
        }
        if (experts.length > 0) {
          out.push('experts');
          out.push(expertsTable(experts).replace(/^/gm, '  ').trimEnd());
          out.push('');
          const lineage = lineageTable(experts);
          if (lineage) {
            out.push('lineage');
            out.push(lineage.replace(/^/gm, '  ').trimEnd());
            out.push('');
          }
        }
        if (distances && distanceMetric !== null) {
          out.push(`distances (${distanceMetric})`);
          out.push(distanceTable(distances).replace(/^/gm, '  ').trimEnd());
          out.push('');
        }
        if (seedBuckets.length > 0) {
          out.push('seed buckets (samples per expert)');
          out.push(
            table([
              ['expert', ...seedBuckets.map((b) => String(b.expert))],
              ['samples', ...seedBuckets.map((b) => String(b.size))],
            ])
              .replace(/^/gm, '  ')
              .trimEnd(),
          );
          out.push('');
        }
        if (routingRows > 0) out.push(`routing statistics recorded: upit routing ${run.id}`, '');
        const profile = checkpointDomainTable(evaluations, checkpoints);
        if (profile) {
          out.push('checkpoint × domain');
          out.push(profile.replace(/^/gm, '  ').trimEnd());
          out.push('');
        }
        if (specialisation) out.push(...specialisationLines(specialisation), '');
        if (evaluations.length > 0) {
          out.push('evaluations');
          out.push(
            table([
              ['checkpoint', 'domain', 'metric', 'score', 'n', '95% CI'],
              ...evaluations.map((e) => [
                e.checkpointId === null ? '-' : String(e.checkpointId),
                e.domain,
                e.metric,
                fmtNum(e.score),
                String(e.n),
                e.ciLow === null || e.ciHigh === null ? '-' : `${fmtNum(e.ciLow)}–${fmtNum(e.ciHigh)}`,
              ]),
            ])
              .replace(/^/gm, '  ')
              .trimEnd(),
          );
        }
        process.stdout.write(out.join('\n').trimEnd() + '\n');
      } finally {
        ws.close();
      }
    });
}
