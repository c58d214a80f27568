import type { Command } from 'commander';
import { UserError } from '../../common/errors.js';
import { defaultWorkspaceDir, openWorkspace, type RoutingStat } from '../../store/index.js';
import { table } from '../format.js';
import { jsonOption, parseIntOption, workspaceOption } from './options.js';

/**
 * One table per layer: rows are domains (in the stored order), columns the experts' share of the
 * domain's top-k slots in % (each row sums to 100), plus the domain's token count.
 */
export function routingTables(stats: readonly RoutingStat[]): string {
  const layers = [...new Set(stats.map((s) => s.layer))].sort((a, b) => a - b);
  const experts = Math.max(0, ...stats.map((s) => s.expert + 1));
  const out: string[] = [];
  for (const layer of layers) {
    const rows = new Map<string, { tokens: number | null; pct: string[] }>();
    for (const s of stats) {
      if (s.layer !== layer) continue;
      let r = rows.get(s.domain);
      if (!r) rows.set(s.domain, (r = { tokens: s.tokens, pct: new Array<string>(experts).fill('-') }));
      r.pct[s.expert] = (100 * s.fraction).toFixed(1);
    }
    out.push(`layer ${layer}`);
    out.push(
      table([
        ['domain', 'tokens', ...Array.from({ length: experts }, (_, e) => `e${e}`)],
        ...[...rows].map(([domain, r]) => [domain, r.tokens === null ? '-' : String(r.tokens), ...r.pct]),
      ])
        .replace(/^/gm, '  ')
        .trimEnd(),
    );
    out.push('');
  }
  return out.join('\n');
}

export function registerRouting(program: Command): void {
  program
    .command('routing')
    .description(
      "show an MoE run's routing: per layer, the share of each domain's tokens sent to each expert",
    )
    .argument('<run>', 'run id', parseIntOption('<run>'))
    .addOption(workspaceOption())
    .option('--layer <l>', 'only this layer', parseIntOption('--layer'))
    .addOption(jsonOption())
    .action((runId: number, opts: { workspace?: string; layer?: number; json?: boolean }) => {
      const ws = openWorkspace(opts.workspace ?? defaultWorkspaceDir());
      try {
        const run = ws.db.getRun(runId);
        if (!run) throw new UserError(`run ${runId} is not in ${ws.dir}`);
        const all = ws.db.getRoutingStats(runId);
        if (all.length === 0) {
          throw new UserError(
            `run ${runId} has no routing statistics; they are recorded when an MoE is evaluated ` +
              '(upit eval --model MOE_DIR)',
          );
        }
        let stats = all;
        if (opts.layer !== undefined) {
          stats = all.filter((s) => s.layer === opts.layer);
          if (stats.length === 0) {
            const layers = [...new Set(all.map((s) => s.layer))].sort((a, b) => a - b);
            throw new UserError(
              `--layer: run ${runId} has no layer ${opts.layer} (layers ${layers[0]}–${layers[layers.length - 1]})`,
            );
          }
        }
        if (opts.json) {
          process.stdout.write(JSON.stringify(stats, null, 2) + '\n');
          return;
        }
        const experts = Math.max(...all.map((s) => s.expert + 1));
        const layers = new Set(all.map((s) => s.layer)).size;
        process.stdout.write(
          `run ${run.id} · ${run.kind} · routing over ${experts} experts, ${layers} layers\n` +
            "  % of each domain's top-k slots per expert (rows sum to 100); tokens = the domain's tokens\n\n" +
            routingTables(stats).trimEnd() +
            '\n',
        );
      } finally {
        ws.close();
      }
    });
}
