import { z } from 'zod';
import { Empty } from './common.js';

export const WorkspaceInfoRequest = Empty;

export const WorkspaceInfo = z.object({
  /** Absolute path of the workspace directory on the host machine. */
  dir: z.string(),
  /** Directory name, for titles. */
  name: z.string(),
  /** Schema version of the workspace database (null while the store is unavailable). */
  schemaVersion: z.number().int().nonnegative().nullable(),
  appVersion: z.string(),
  /** Which host serves this renderer. */
  host: z.enum(['web', 'electron']),
});
export type WorkspaceInfo = z.infer<typeof WorkspaceInfo>;
