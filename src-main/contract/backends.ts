import { z } from 'zod';
import { Empty } from './common.js';

export const BackendName = z.enum(['tensorflow', 'webgpu', 'wasm', 'cpu']);
export type BackendName = z.infer<typeof BackendName>;

export const BackendsListRequest = Empty;

export const BackendInfo = z.object({
  name: z.string(),
  /** e.g. 'ok', 'not-installed', 'failed-selfcheck', 'software-adapter' (the engine's vocabulary). */
  status: z.string(),
  detail: z.string(),
});
export type BackendInfo = z.infer<typeof BackendInfo>;

export const BackendsListResponse = z.object({ backends: z.array(BackendInfo) });
export type BackendsListResponse = z.infer<typeof BackendsListResponse>;
