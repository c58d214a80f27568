import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src-main/common/errors.js';
import { RELATIONS, generateWorld, worldCounts } from '../../../src-main/data/world.js';

describe('world', () => {
  it('is deterministic in (seed, size) and differs across seeds', () => {
    expect(JSON.stringify(generateWorld(4, 60))).toBe(JSON.stringify(generateWorld(4, 60)));
    expect(JSON.stringify(generateWorld(4, 60))).not.toBe(JSON.stringify(generateWorld(5, 60)));
  });

  it('has unique ASCII names and one object per (subject, relation)', () => {
    const w = generateWorld(1, 150);
    const names = w.entities.map((e) => e.name.toLowerCase());
    expect(new Set(names).size).toBe(names.length);
    for (const n of names) expect(n).toMatch(/^[a-z]{4,10}$/);
    const ids = w.facts.map((f) => f.id);
    expect(new Set(ids).size).toBe(ids.length);
    const counts = worldCounts(150);
    expect(w.entities.filter((e) => e.kind === 'person').length).toBe(counts.person);
    // every entity has every relation of its kind
    const kindOf = new Map(w.entities.map((e) => [e.name, e.kind]));
    for (const e of w.entities) {
      for (const r of RELATIONS.filter((r) => r.subject === e.kind)) {
        const f = w.facts.find((x) => x.id === `${e.name}/${r.name}`);
        expect(f, `${e.name}/${r.name}`).toBeDefined();
        if (['country', 'city', 'company', 'person', 'animal'].includes(r.object)) {
          expect(kindOf.get(f!.object)).toBe(r.object);
        }
      }
    }
  });

  it('is consistent: capitals lie in their country, mayors live in their city', () => {
    const w = generateWorld(2, 100);
    const obj = (s: string, r: string) => w.facts.find((f) => f.subject === s && f.relation === r)?.object;
    for (const c of w.entities.filter((e) => e.kind === 'country')) {
      expect(obj(obj(c.name, 'capital')!, 'located_in')).toBe(c.name);
      const cities = w.facts.filter((f) => f.relation === 'located_in' && f.object === c.name);
      expect(cities.length).toBeGreaterThanOrEqual(2);
    }
    const mayors = new Set<string>();
    for (const c of w.entities.filter((e) => e.kind === 'city')) {
      const m = obj(c.name, 'mayor')!;
      expect(mayors.has(m)).toBe(false);
      mayors.add(m);
      expect(obj(m, 'lives_in')).toBe(c.name);
    }
  });

  it('rejects a too-small size', () => {
    expect(() => generateWorld(1, 10)).toThrow(UserError);
  });
});
