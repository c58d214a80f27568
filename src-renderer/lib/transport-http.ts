/**
 * Transport for the web host: `POST /api/<method>` with JSON, events over `/ws`. The access
 * token travels as the HttpOnly cookie the host set when the URL with `?token=` was opened.
 */
import type { ApiMethod } from '../../src-main/contract/index.js';
import { ApiError, ApiErrorBody } from '../../src-main/contract/index.js';
import type { ConnectionState, Transport } from './api.js';

export interface HttpTransportOptions {
  /** Default: the page's origin. */
  baseUrl?: string;
  fetch?: typeof fetch;
  WebSocket?: typeof WebSocket;
  /** Reconnect delays grow from `minDelayMs` to `maxDelayMs` (defaults 500 ms, 10 s). */
  minDelayMs?: number;
  maxDelayMs?: number;
}

export function createHttpTransport(opts: HttpTransportOptions = {}): Transport {
  const base = opts.baseUrl ?? window.location.origin;
  const doFetch = opts.fetch ?? window.fetch.bind(window);
  const WS = opts.WebSocket ?? window.WebSocket;
  const minDelay = opts.minDelayMs ?? 500;
  const maxDelay = opts.maxDelayMs ?? 10_000;

  const eventListeners = new Set<(e: unknown) => void>();
  const stateListeners = new Set<(s: ConnectionState) => void>();
  let state: ConnectionState = 'closed';
  let socket: WebSocket | null = null;
  let delay = minDelay;
  let retry: ReturnType<typeof setTimeout> | null = null;
  let closed = false;

  const setState = (s: ConnectionState): void => {
    state = s;
    for (const l of stateListeners) l(s);
  };

  const connect = (): void => {
    if (closed || socket) return;
    setState('connecting');
    const ws = new WS(base.replace(/^http/, 'ws') + '/ws');
    socket = ws;
    ws.onopen = () => {
      delay = minDelay;
      setState('open');
    };
    ws.onmessage = (m: MessageEvent) => {
      let data: unknown;
      try {
        data = JSON.parse(String(m.data));
      } catch {
        return;
      }
      for (const l of eventListeners) l(data);
    };
    ws.onclose = () => {
      socket = null;
      setState('closed');
      if (closed || eventListeners.size === 0) return;
      retry = setTimeout(() => {
        retry = null;
        connect();
      }, delay);
      delay = Math.min(maxDelay, delay * 2);
    };
  };

  return {
    name: 'http',
    async call(method: ApiMethod, request: unknown): Promise<unknown> {
      let res: Response;
      try {
        res = await doFetch(`${base}/api/${method}`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          credentials: 'same-origin',
          body: JSON.stringify(request ?? {}),
        });
      } catch (e) {
        throw new ApiError(
          'unavailable',
          `cannot reach the workbench host (${e instanceof Error ? e.message : String(e)})`,
        );
      }
      const text = await res.text();
      let body: unknown = undefined;
      try {
        body = text === '' ? undefined : JSON.parse(text);
      } catch {
        // not JSON: handled below
      }
      if (res.ok) return body;
      const err = ApiErrorBody.safeParse(body);
      if (err.success) throw ApiError.fromBody(err.data);
      throw new ApiError(res.status === 401 ? 'unauthorized' : 'internal', `${method}: HTTP ${res.status}`);
    },
    subscribe(listener) {
      eventListeners.add(listener);
      connect();
      return () => {
        eventListeners.delete(listener);
      };
    },
    onConnection(listener) {
      stateListeners.add(listener);
      listener(state);
      return () => {
        stateListeners.delete(listener);
      };
    },
    close() {
      closed = true;
      if (retry) clearTimeout(retry);
      socket?.close();
    },
  };
}
