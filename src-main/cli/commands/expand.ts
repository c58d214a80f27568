import type { Command } from 'commander';
import { UserError } from '../../common/errors.js';
import { ExpandConfig } from '../../jobs/kinds/catalog.js';
import type { ExpandJobResult } from '../../jobs/kinds/expand.js';
import { defaultWorkspaceDir, openWorkspace, type Expert } from '../../store/index.js';
import { table } from '../format.js';
import { jsonOption, parseFloatOption, parseIdList, parseIntOption, workspaceOption } from './options.js';

interface ExpandOpts {
  workspace?: string;
  json?: boolean;
  prepareRun: number;
  n: number;
  p: number;
  alphaClamp?: string;
  metric: string;
  selection: string;
  loraMergeSpace: string;
  checkpoints?: string;
  subset: string;
  seed: number;
}

function parseClamp(value: string): [number, number] {
  const parts = value.split(',').map((s) => Number(s.trim()));
  if (parts.length !== 2 || parts.some((x) => !Number.isFinite(x)))
    throw new UserError(`--alpha-clamp: expected lo,hi (e.g. 0.2,0.8), got '${value}'`);
  return [parts[0]!, parts[1]!];
}

/** Lineage rows of a pool: child, parents (idx and name), α, p, seed, parents' distance. */
export function lineageTable(experts: readonly Expert[]): string {
  const name = (i: number) => experts.find((e) => e.idx === i)?.name ?? String(i);
  const rows = experts
    .filter((e) => e.lineage)
    .map((e) => {
      const l = e.lineage!;
      const d = l.extra?.['distance'];
      return [
        `${e.idx} ${e.name ?? ''}`.trim(),
        l.parents.map((p) => `${p} ${name(p)}`).join(' × '),
        l.alpha === null ? '-' : l.alpha.toFixed(3),
        l.p === null ? '-' : String(l.p),
        l.seed === null ? '-' : String(l.seed),
        typeof d === 'number' ? d.toPrecision(4) : '-',
      ];
    });
  if (rows.length === 0) return '';
  return table([['child', 'parents', 'α', 'p', 'seed', 'distance'], ...rows]);
}

/** The pool's experts: idx, name, source, checkpoint id, sha256 prefix. */
export function expertsTable(experts: readonly Expert[]): string {
  if (experts.length === 0) return '';
  return table([
    ['idx', 'name', 'source', 'checkpoint', 'sha256'],
    ...experts.map((e) => [
      String(e.idx),
      e.name ?? '-',
      e.source,
      e.checkpointId === null ? '-' : String(e.checkpointId),
      e.sha256 ? e.sha256.slice(0, 12) : '-',
    ]),
  ]);
}

/** An n × n distance matrix with row/column indices. */
export function distanceTable(d: readonly (readonly number[])[]): string {
  if (d.length === 0) return '';
  return table([
    ['', ...d.map((_, j) => String(j))],
    ...d.map((row, i) => [String(i), ...row.map((v) => (Number.isFinite(v) ? v.toFixed(4) : '-'))]),
  ]);
}

export function registerExpand(program: Command): void {
  program
    .command('expand')
    .description(
      "Stage 2: grow a prepare run's checkpoints to n experts (DARE merges of the most distant pairs)",
    )
    .addOption(workspaceOption())
    .addOption(jsonOption())
    .requiredOption('--prepare-run <id>', 'run id of a finished prepare run', parseIntOption('--prepare-run'))
    .requiredOption('--n <n>', 'target pool size (≥ the number of checkpoints)', parseIntOption('--n'))
    .option('--p <x>', 'DARE drop probability in [0, 1)', parseFloatOption('--p'), 0.5)
    .option('--alpha-clamp <lo,hi>', 'clamp α ~ U(0,1) to [lo, hi]')
    .option('--metric <m>', 'cosine or l2', 'cosine')
    .option('--selection <s>', 'most-distant or random parents', 'most-distant')
    .option('--lora-merge-space <s>', 'LoRA: delta (DARE on ΔW + SVD) or factor (fast)', 'delta')
    .option('--checkpoints <steps>', 'checkpoint steps to use (default: all cadence/final checkpoints)')
    .option('--subset <s>', 'all, first-half or second-half of those checkpoints', 'all')
    .option('--seed <n>', 'seed', parseIntOption('--seed'), 1)
    .action(async (opts: ExpandOpts) => {
      const raw = {
        seed: opts.seed,
        prepareRun: opts.prepareRun,
        n: opts.n,
        p: opts.p,
        ...(opts.alphaClamp !== undefined ? { alphaClamp: parseClamp(opts.alphaClamp) } : {}),
        ...(opts.checkpoints !== undefined
          ? { checkpoints: parseIdList('--checkpoints', opts.checkpoints) }
          : {}),
        subset: opts.subset,
        metric: opts.metric,
        selection: opts.selection,
        loraMergeSpace: opts.loraMergeSpace,
      };
      const parsed = ExpandConfig.safeParse(raw);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new UserError(`expand: ${issue?.path.join('.') ?? 'config'}: ${issue?.message ?? 'invalid'}`);
      }
      const workspace = opts.workspace ?? defaultWorkspaceDir();
      // database checks (run, checkpoints, n ≥ m) before the run is created
      const { resolveExpandPlan } = await import('../../jobs/kinds/expand.js');
      const pre = openWorkspace(workspace);
      try {
        resolveExpandPlan(pre.db, parsed.data, pre.dir);
      } finally {
        pre.close();
      }
      const { runJobInProcess } = await import('../run-job.js');
      const outcome = await runJobInProcess<ExpandJobResult>('expand', parsed.data, {
        workspace,
        json: opts.json === true,
      });
      if (opts.json) {
        process.stdout.write(
          JSON.stringify({ event: 'result', run: outcome.runId, ...outcome.result }) + '\n',
        );
        return;
      }
      const ws = openWorkspace(workspace);
      try {
        const runId = outcome.runId!;
        const r = outcome.result;
        const experts = ws.db.listExperts(runId);
        const out: string[] = [
          `run ${runId}: ${r.n} experts (${r.m} checkpoints + ${r.n - r.m} merged, ${r.mode} mode)`,
          '',
        ];
        const lin = lineageTable(experts);
        if (lin) out.push('lineage', lin.replace(/^/gm, '  ').trimEnd(), '');
        out.push(
          `distances (${r.metric})`,
          distanceTable(ws.db.getDistanceMatrix(runId, r.metric, r.n))
            .replace(/^/gm, '  ')
            .trimEnd(),
        );
        process.stdout.write(out.join('\n') + '\n');
      } finally {
        ws.close();
      }
    });
}
