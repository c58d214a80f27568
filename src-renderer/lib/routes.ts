/** Views and hash routes (pure: no runes, unit-tested in Node). */
export const VIEWS = [
  { id: 'experiments', label: 'Experiments' },
  { id: 'checkpoints', label: 'Checkpoints' },
  { id: 'expansion', label: 'Expansion' },
  { id: 'router', label: 'Router' },
  { id: 'runs', label: 'Runs' },
  { id: 'compare', label: 'Compare' },
  { id: 'reports', label: 'Reports' },
] as const;

export type ViewId = (typeof VIEWS)[number]['id'];
export const DEFAULT_VIEW: ViewId = 'runs';

export interface Route {
  view: ViewId;
  /** Runs view: the selected run. */
  runId: number | null;
}

export function isViewId(s: string): s is ViewId {
  return VIEWS.some((v) => v.id === s);
}

export function parseHash(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  const [view = '', id] = parts;
  if (!isViewId(view)) return { view: DEFAULT_VIEW, runId: null };
  const n = id !== undefined && /^[1-9][0-9]{0,15}$/.test(id) ? Number(id) : NaN;
  return { view, runId: view === 'runs' && Number.isSafeInteger(n) ? n : null };
}

export function routeHash(route: Route): string {
  return route.runId !== null && route.view === 'runs' ? `#/runs/${route.runId}` : `#/${route.view}`;
}
