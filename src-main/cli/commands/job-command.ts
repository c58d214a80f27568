/**
 * The shape every stage command shares: validate the options as the job's config (errors name the
 * field), check it against the workspace's database before a run is created (so a bad request
 * writes nothing), run the job in this process with a progress bar, then print the result —
 * one JSON line with --json, or the command's own human summary.
 */
import { defaultWorkspaceDir, openWorkspace, type Store } from '../../store/index.js';
import { parseJobConfig } from './options.js';

export interface JobCommand<C, R> {
  kind: string;
  schema: Parameters<typeof parseJobConfig<C>>[1];
  raw: unknown;
  workspace: string | undefined;
  json: boolean;
  /** Database checks; throw a UserError to refuse before anything is written. */
  precheck?: (store: Store, config: C, workspaceDir: string) => void | Promise<void>;
  /** Human-readable summary (the workspace is open for reading). */
  summary: (result: R, runId: number, store: Store) => string;
}

export async function runJobCommand<C extends Record<string, unknown>, R>(
  c: JobCommand<C, R>,
): Promise<void> {
  const config = parseJobConfig(c.kind, c.schema, c.raw);
  const workspace = c.workspace ?? defaultWorkspaceDir();
  if (c.precheck) {
    const pre = openWorkspace(workspace);
    try {
      await c.precheck(pre.db, config, pre.dir);
    } finally {
      pre.close();
    }
  }
  const { runJobInProcess } = await import('../run-job.js');
  const outcome = await runJobInProcess<R>(c.kind, config, { workspace, json: c.json });
  if (c.json) {
    process.stdout.write(JSON.stringify({ event: 'result', run: outcome.runId, ...outcome.result }) + '\n');
    return;
  }
  const ws = openWorkspace(workspace);
  try {
    process.stdout.write(c.summary(outcome.result, outcome.runId!, ws.db).trimEnd() + '\n');
  } finally {
    ws.close();
  }
}
