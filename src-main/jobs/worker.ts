/**
 * Job worker entry. The same file runs under Node's child_process.fork (web host, CLI) and
 * Electron's utilityProcess (desktop app); `detectParentChannel` hides the difference.
 *
 * argv: [--workspace DIR]. Without a workspace, jobs run but record no runs.
 * Protocol: src-main/contract/worker.ts. Every message is validated on receipt.
 */
import { HostToWorker, type WorkerToHost } from '../contract/worker.js';
import { JobRunner, errorMessage } from './job-runner.js';
import { JOB_REGISTRY } from './kinds/registry.js';
import { WORKER_QUERIES } from './queries.js';
import type { WorkspaceHandle } from './ports.js';
import { detectParentChannel } from './worker-port.js';

function argValue(argv: string[], name: string): string | null {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1]! : null;
}

async function openWorkspace(dir: string | null): Promise<WorkspaceHandle | null> {
  if (dir === null) return null;
  const { openWorkspaceHandle } = await import('./store-adapter.js');
  return openWorkspaceHandle(dir, { create: true });
}

async function main(): Promise<void> {
  const channel = detectParentChannel();
  const send = (m: WorkerToHost): void => channel.send(m);
  const workspace = await openWorkspace(argValue(process.argv, '--workspace'));
  const runner = new JobRunner({
    registry: JOB_REGISTRY,
    workspace,
    emit: (event) => send({ type: 'event', event }),
  });

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await runner.shutdown();
    workspace?.close();
    process.exit(0);
  };

  channel.onDisconnect(() => void stop());
  channel.onMessage((raw) => {
    const parsed = HostToWorker.safeParse(raw);
    if (!parsed.success) {
      process.stderr.write(`upit worker: ignoring invalid message: ${parsed.error.message}\n`);
      return;
    }
    const msg = parsed.data;
    switch (msg.type) {
      case 'start':
        runner.start(msg.jobId, msg.kind, msg.config);
        break;
      case 'cancel':
        runner.cancel(msg.jobId);
        break;
      case 'fail-runs':
        runner.failRuns(msg.runIds, msg.error);
        break;
      case 'query':
        WORKER_QUERIES[msg.query]().then(
          (result) => send({ type: 'reply', id: msg.id, ok: true, result }),
          (e: unknown) => send({ type: 'reply', id: msg.id, ok: false, error: errorMessage(e) }),
        );
        break;
      case 'shutdown':
        void stop();
        break;
    }
  });
  send({ type: 'ready', pid: process.pid, kinds: runner.kinds });
}

main().catch((e: unknown) => {
  process.stderr.write(`upit worker: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
