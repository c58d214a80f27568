/**
 * The worker's end of the channel to its host. The only difference between the two
 * hosts: Electron's utilityProcess gives the child `process.parentPort` (MessagePort-like,
 * payload in `event.data`); Node's child_process.fork gives `process.send`/'message'.
 */
export interface ParentChannel {
  readonly kind: 'utility-process' | 'child-process';
  send(message: unknown): void;
  onMessage(listener: (message: unknown) => void): void;
  /** Called when the host goes away (fork: IPC disconnect). */
  onDisconnect(listener: () => void): void;
}

interface ElectronParentPort {
  postMessage(message: unknown): void;
  on(event: 'message', listener: (e: { data: unknown }) => void): void;
}

export function detectParentChannel(proc: NodeJS.Process = process): ParentChannel {
  const parentPort = (proc as NodeJS.Process & { parentPort?: ElectronParentPort }).parentPort;
  if (parentPort) {
    return {
      kind: 'utility-process',
      send: (m) => parentPort.postMessage(m),
      onMessage: (l) => parentPort.on('message', (e) => l(e.data)),
      // utilityProcess children are terminated with their parent
      onDisconnect: () => {},
    };
  }
  if (typeof proc.send === 'function') {
    return {
      kind: 'child-process',
      send: (m) => {
        if (proc.connected) proc.send!(m);
      },
      onMessage: (l) => proc.on('message', l),
      onDisconnect: (l) => proc.on('disconnect', l),
    };
  }
  throw new Error(
    'the job worker must be started by a workbench host (child_process.fork or utilityProcess)',
  );
}
