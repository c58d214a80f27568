import { describe, expect, it } from 'vitest';
import { ByteTokenizer } from '../../../src-main/io/tokenizer.js';
import { encodePair, planBatches, truncateRow } from '../../../src-main/eval/score.js';
import { WordTokenizer, tableScorable } from './helpers.js';

describe('encodePair', () => {
  it('splits byte tokens exactly at the context boundary', () => {
    const m = tableScorable(new ByteTokenizer(), () => 0);
    const r = encodePair(m, 'Q: hi\nA: ', 'Pimland\n');
    expect(r.ids).toEqual([...Buffer.from('Q: hi\nA: Pimland\n')]);
    expect(r.firstTarget).toBe(9);
    expect(r.contBytes).toBe(8);
    const withBos = encodePair({ ...m, addBos: true }, 'Q: hi\nA: ', 'Pimland\n');
    expect(withBos.ids[0]).toBe(2);
    expect(withBos.firstTarget).toBe(10);
  });

  it('moves trailing whitespace into the continuation when a token straddles the boundary (lm-eval)', () => {
    const tok = new WordTokenizer();
    const m = tableScorable(tok, () => 0);
    const r = encodePair(m, 'Q: x\nA: ', 'Paris\n');
    // full text tokenizes as Q: | " x" | \n | A: | " Paris" | \n — the context without its space is a prefix
    expect(tok.decode(r.ids.slice(0, r.firstTarget))).toBe('Q: x\nA:');
    expect(tok.decode(r.ids.slice(r.firstTarget))).toBe(' Paris\n');
    expect(r.contBytes).toBe(7);
    expect(r.ids).toEqual(tok.encode('Q: x\nA: Paris\n'));
    // no whitespace to move and still no clean split: the parts are encoded separately
    const f = encodePair(m, 'Q: ab', 'cd');
    expect(f.ids).toEqual([...tok.encode('Q: ab'), ...tok.encode('cd')]);
    expect(tok.decode(f.ids.slice(f.firstTarget))).toBe('cd');
  });

  it('cuts long sequences from the left, keeping the continuation', () => {
    const m = { ...tableScorable(new ByteTokenizer(), () => 0), maxSeqLen: 6 };
    const r = encodePair(m, 'abcdefgh', 'XY');
    expect(r.ids).toEqual([...Buffer.from('cdefghXY')].slice(1)); // 7 = maxSeqLen + 1 tokens
    expect(r.ids.length).toBe(7);
    expect(r.firstTarget).toBe(5);
    // a continuation longer than the window keeps its tail; the first kept token is not scored
    const t = truncateRow({ ids: [1, 2, 3, 4, 5, 6], firstTarget: 1, contBytes: 5 }, 3);
    expect(t).toEqual({ ids: [3, 4, 5, 6], firstTarget: 1, contBytes: 5 });
  });
});

describe('planBatches', () => {
  it('sorts longest first and respects batchSize and maxBatchTokens', () => {
    const lengths = [3, 10, 5, 7, 1];
    expect(planBatches(lengths, { batchSize: 2 })).toEqual([[1, 3], [2, 0], [4]]);
    expect(planBatches(lengths, { batchSize: 10, maxBatchTokens: 20 })).toEqual([
      [1, 3],
      [2, 0, 4],
    ]);
    // a single row larger than the budget still gets its own batch
    expect(planBatches([50, 2], { batchSize: 4, maxBatchTokens: 10 })).toEqual([[0], [1]]);
    expect(() => planBatches(lengths, { batchSize: 0 })).toThrow(RangeError);
  });
});
