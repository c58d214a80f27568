/**
 * loadInstructionData on the embedded suite: the default data is the world the shipped base was
 * pre-trained on, and asking for more held-out qa/mc questions than that world holds says so.
 */
import { describe, expect, it } from 'vitest';
import { loadInstructionData } from '../../../src-main/jobs/kinds/prepare.js';

const embedded = (evalPerDomain: number, difficulty?: number) => ({
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
});
