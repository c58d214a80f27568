// jsdom lacks a few browser APIs the renderer touches; stub them with inert versions.
// (Written without DOM type names so that it also type-checks under the Node tsconfig.)
interface DomGlobals {
  ResizeObserver?: unknown;
  window: { matchMedia?: unknown };
  HTMLCanvasElement: { prototype: { getContext: unknown } };
}
const g = globalThis as unknown as DomGlobals;

g.ResizeObserver ??= class {
  observe(): void {}
  unobserve(): void {}
  disconnect(): void {}
};

g.window.matchMedia ??= (query: string) => ({
  matches: false,
  media: query,
  onchange: null,
  addEventListener: () => {},
  removeEventListener: () => {},
  addListener: () => {},
  removeListener: () => {},
  dispatchEvent: () => false,
});

// jsdom has no canvas: a chart in Canvas mode must cope with a null context
g.HTMLCanvasElement.prototype.getContext = () => null;
