/**
 * What each not-yet-built view will show, for its empty state. Plain statements of what is
 * coming — no sample data.
 */
import type { ViewId } from '../lib/router.svelte.js';

export interface Placeholder {
  title: string;
  lead: string;
  items: string[];
}

export const PLACEHOLDERS: Partial<Record<Exclude<ViewId, 'runs'>, Placeholder>> = {};
