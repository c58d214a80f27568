import type { Command } from 'commander';
import { DEFAULT_REFERENCE, parseFormats, writeReports } from '../../report/index.js';
import { defaultWorkspaceDir, openWorkspace } from '../../store/index.js';
import { jsonOption, workspaceOption } from './options.js';

interface ReportOpts {
  workspace?: string;
  format: string;
  out?: string;
  reference: string;
  json?: boolean;
}

export function registerReport(program: Command): void {
  program
    .command('report')
    .description(
      "write an experiment's report: main table (variant × domain, mean ± 95% CI over seeds), ablation " +
        'deltas, checkpoint profile, expert lineage, routing heatmaps and loss curves',
    )
    .argument('<experiment>', 'experiment id or name')
    .addOption(workspaceOption())
    .option('--format <list>', 'md, html, csv, tex, a comma list of them, or all', 'md')
    .option(
      '--out <file>',
      'output file (several formats: its extension is replaced per format; a directory: <experiment>.<ext> ' +
        'inside it); default <workspace>/reports/<experiment>.<ext>',
    )
    .option('--reference <variant>', 'the variant ablation deltas are taken against', DEFAULT_REFERENCE)
    .addOption(jsonOption())
    .action((experiment: string, opts: ReportOpts) => {
      const formats = parseFormats(opts.format);
      const ws = openWorkspace(opts.workspace ?? defaultWorkspaceDir());
      try {
        const { data, written } = writeReports(ws, experiment, {
          formats,
          reference: opts.reference,
          ...(opts.out !== undefined ? { out: opts.out } : {}),
        });
        if (opts.json) {
          process.stdout.write(
            JSON.stringify({ experiment: data.experiment, notes: data.notes, reports: written }, null, 2) +
              '\n',
          );
          return;
        }
        for (const w of written) process.stdout.write(`${w.path}\n`);
      } finally {
        ws.close();
      }
    });
}
