/**
 * loadInstructionData on the embedded suite: the default data is the world the shipped base was
 * pre-trained on, and asking for more held-out qa/mc questions than that world holds says so.
 */
import { describe, expect, it } from 'vitest';
import { parseDifficulty } from '../../../src-main/cli/commands/options.js';
import { UserError } from '../../../src-main/common/errors.js';
import { DataSource } from '../../../src-main/jobs/kinds/catalog.js';
import { loadInstructionData } from '../../../src-main/jobs/kinds/prepare.js';

const embedded = (evalPerDomain: number, difficulty?: number | Record<string, number>) => ({
  source: 'embedded' as const,
  suiteSeed: 1,
  trainPerDomain: 2,
  evalPerDomain,
  ...(difficulty !== undefined ? { difficulty } : {}),
});

describe('loadInstructionData (embedded suite)', () => {
  it('keeps the pre-training world at the default sizes, with no note', () => {
    const d = loadInstructionData(embedded(100));
    expect(d.note).toBeUndefined();
    expect(d.eval.filter((e) => e.domain === 'qa').length).toBe(100);
  });

  it('notes a grown world when more held-out questions are asked for than it holds', () => {
    const d = loadInstructionData(embedded(300, 1));
    expect(d.note).toMatch(/world grew to \d+ entities to hold 300 held-out qa\/mc questions/);
    expect(d.note).toMatch(/not meaningful/);
    // at level 2 the same 300 questions fit in the 100-entity world
    expect(loadInstructionData(embedded(300, 2)).note).toBeUndefined();
  });

  it('takes a difficulty per domain, the other domains keeping their default level', () => {
    const pick = (d: ReturnType<typeof loadInstructionData>, domain: string) =>
      d.eval.filter((e) => e.domain === domain).map((e) => e.prompt);
    const mixed = loadInstructionData(embedded(20, { arith: 3, qa: 2 }));
    const level3 = loadInstructionData(embedded(20, 3));
    const level2 = loadInstructionData(embedded(20, 2));
    const byDefault = loadInstructionData(embedded(20));
    expect(pick(mixed, 'arith')).toEqual(pick(level3, 'arith'));
    expect(pick(mixed, 'arith')).not.toEqual(pick(byDefault, 'arith'));
    expect(pick(mixed, 'qa')).toEqual(pick(level2, 'qa'));
    expect(pick(mixed, 'code')).toEqual(pick(byDefault, 'code'));
    expect(pick(mixed, 'mc')).toEqual(pick(byDefault, 'mc'));
  });

  it('--difficulty is one level or name=level pairs; the schema checks the range, naming the field', () => {
    expect(parseDifficulty('3')).toBe(3);
    expect(parseDifficulty('arith=3,code=1')).toEqual({ arith: 3, code: 1 });
    expect(() => parseDifficulty('arith=2.5')).toThrow(/--difficulty: arith: '2.5' is not an integer/);
    expect(() => parseDifficulty('physics=2')).toThrow(UserError);
    const bad = DataSource.safeParse(embedded(2, { arith: 6 }));
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.path).toEqual(['difficulty', 'arith']);
    expect(DataSource.safeParse(embedded(2, { art: 2 })).success).toBe(false);
  });
});
