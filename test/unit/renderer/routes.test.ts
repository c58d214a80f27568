import { describe, expect, it } from 'vitest';
import { VIEWS, parseHash, routeHash } from '../../../src-renderer/lib/routes.js';

describe('hash routes', () => {
  it('parses views and run ids, falling back to Runs', () => {
    expect(parseHash('')).toEqual({ view: 'runs', runId: null });
    expect(parseHash('#/compare')).toEqual({ view: 'compare', runId: null });
    expect(parseHash('#/runs/12')).toEqual({ view: 'runs', runId: 12 });
    expect(parseHash('#/runs/-3')).toEqual({ view: 'runs', runId: null });
    expect(parseHash('#/runs/1e3')).toEqual({ view: 'runs', runId: null });
    expect(parseHash('#/runs/007')).toEqual({ view: 'runs', runId: null });
    expect(parseHash('#/nope/1')).toEqual({ view: 'runs', runId: null });
    expect(parseHash('#/compare/3')).toEqual({ view: 'compare', runId: null });
  });

  it('round-trips every view', () => {
    for (const v of VIEWS) expect(parseHash(routeHash({ view: v.id, runId: null })).view).toBe(v.id);
    expect(routeHash({ view: 'runs', runId: 5 })).toBe('#/runs/5');
  });

  it('has the seven views in sidebar order', () => {
    expect(VIEWS.map((v) => v.label)).toEqual([
      'Experiments',
      'Checkpoints',
      'Expansion',
      'Router',
      'Runs',
      'Compare',
      'Reports',
    ]);
  });
});
