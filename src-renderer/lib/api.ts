/**
 * The renderer's API client: typed calls and host events over one Transport, whichever
 * host serves the renderer (web host: HTTP + WebSocket; Electron: the preload bridge).
 * Responses and events are validated against the contract in development builds.
 */
import type { ApiMethod, ApiRequest, ApiResponse, AppEvent } from '../../src-main/contract/index.js';
import { ApiError, parseEvent, parseResponse } from '../../src-main/contract/index.js';

export type ConnectionState = 'connecting' | 'open' | 'closed';

export interface Transport {
  readonly name: 'http' | 'electron';
  /** Resolves with the raw response, rejects with ApiError. */
  call(method: ApiMethod, request: unknown): Promise<unknown>;
  /** Raw host events (validated by the client). Returns unsubscribe. */
  subscribe(listener: (event: unknown) => void): () => void;
  /** The event channel's state; `open` again after a reconnect means events may have been missed. */
  onConnection(listener: (state: ConnectionState) => void): () => void;
  close(): void;
}

export interface ApiClientOptions {
  /** Validate responses and events against the contract (default: development builds). */
  validate?: boolean;
}

export class ApiClient {
  private readonly validate: boolean;

  constructor(
    readonly transport: Transport,
    opts: ApiClientOptions = {},
  ) {
    this.validate = opts.validate ?? import.meta.env.DEV;
  }

  async call<M extends ApiMethod>(method: M, request: ApiRequest<M>): Promise<ApiResponse<M>> {
    const raw = await this.transport.call(method, request);
    return this.validate ? parseResponse(method, raw) : (raw as ApiResponse<M>);
  }

  onEvent(listener: (event: AppEvent) => void): () => void {
    return this.transport.subscribe((raw) => {
      let event: AppEvent;
      if (this.validate) {
        try {
          event = parseEvent(raw);
        } catch (e) {
          console.warn('ignoring an event that breaks the contract', e);
          return;
        }
      } else {
        event = raw as AppEvent;
      }
      listener(event);
    });
  }

  onConnection(listener: (state: ConnectionState) => void): () => void {
    return this.transport.onConnection(listener);
  }
}

export function errorText(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.code === 'unauthorized') return 'Not authorised: open the URL printed by `upit serve` again.';
    return e.message;
  }
  return e instanceof Error ? e.message : String(e);
}
