import { z } from 'zod';
import { JobEvent } from './jobs.js';
import { WorkspaceInfo } from './workspace.js';

/** The workspace the host serves changed (Electron: File › Open workspace). */
export const WorkspaceChangedEvent = z.object({
  type: z.literal('workspace.changed'),
  at: z.number().int().nonnegative(),
  workspace: WorkspaceInfo,
});

/** A host menu item the renderer acts on (Electron app menu). */
export const UiCommand = z.enum(['new-experiment', 'export-report', 'show-view']);
export const UiCommandEvent = z.object({
  type: z.literal('ui.command'),
  at: z.number().int().nonnegative(),
  command: UiCommand,
  view: z.string().optional(),
});

/** Everything the host pushes to the renderer (WebSocket frames / `upit:event` IPC). */
export const AppEvent = z.discriminatedUnion('type', [JobEvent, WorkspaceChangedEvent, UiCommandEvent]);
export type AppEvent = z.infer<typeof AppEvent>;
export type UiCommandEvent = z.infer<typeof UiCommandEvent>;
