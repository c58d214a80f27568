/**
 * Hash routing: `#/runs`, `#/runs/12`, `#/compare`, … The hash keeps the web host's URL
 * free of server routes and works unchanged under Electron's app:// protocol.
 */
import { DEFAULT_VIEW, parseHash, routeHash, type Route, type ViewId } from './routes.js';

export { VIEWS, DEFAULT_VIEW, isViewId, parseHash, routeHash, type Route, type ViewId } from './routes.js';

export class Router {
  route = $state<Route>({ view: DEFAULT_VIEW, runId: null });
  private readonly onHash = (): void => {
    this.route = parseHash(this.win.location.hash);
  };

  constructor(private readonly win: Window = window) {
    this.route = parseHash(win.location.hash);
    win.addEventListener('hashchange', this.onHash);
  }

  go(route: Route): void {
    const hash = routeHash(route);
    if (this.win.location.hash !== hash) this.win.location.hash = hash;
    this.route = route;
  }

  view(view: ViewId): void {
    this.go({ view, runId: view === 'runs' && this.route.view === 'runs' ? this.route.runId : null });
  }

  dispose(): void {
    this.win.removeEventListener('hashchange', this.onHash);
  }
}
