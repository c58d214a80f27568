/** An in-memory Transport for component tests: canned responses, events emitted by the test. */
import type { ApiMethod } from '../../../src-main/contract/index.js';
import { ApiError } from '../../../src-main/contract/index.js';
import type { ConnectionState, Transport } from '../../../src-renderer/lib/api.js';

export type Handler = (request: unknown) => unknown;

export class FakeTransport implements Transport {
  readonly name = 'http' as const;
  readonly calls: { method: ApiMethod; request: unknown }[] = [];
  private readonly listeners = new Set<(e: unknown) => void>();
  private readonly stateListeners = new Set<(s: ConnectionState) => void>();

  constructor(private readonly handlers: Partial<Record<ApiMethod, Handler>>) {}

  async call(method: ApiMethod, request: unknown): Promise<unknown> {
    this.calls.push({ method, request });
    const h = this.handlers[method];
    if (!h) throw new ApiError('unknown_method', `no fake for ${method}`);
    return h(request);
  }

  subscribe(listener: (e: unknown) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onConnection(listener: (s: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    listener('open');
    return () => this.stateListeners.delete(listener);
  }

  emit(event: unknown): void {
    for (const l of this.listeners) l(event);
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  close(): void {}
}
