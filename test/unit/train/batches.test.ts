import { beforeAll, describe, expect, it } from 'vitest';

import {
  EpochSampler,
  disposeBatch,
  epochOrder,
  makeHostBatch,
  packDocuments,
  prepareExamples,
  toBatch,
} from '../../../src-main/train/batches.js';
import { tf } from '../../../src-main/tensor/tf.js';
import { setupCpu } from './toy.js';

beforeAll(setupCpu);

describe('next-token batches', () => {
  const a = { ids: [10, 11, 12, 13, 14], lossMask: [0, 0, 1, 1, 1] };
  const b = { ids: [20, 21, 22], lossMask: [0, 1, 1] };

  it('shifts targets by one, aligns the mask to the targets and right-pads', () => {
    const h = makeHostBatch([a, b], { padId: 0 });
    expect(h.rows).toBe(2);
    expect(h.seqLen).toBe(4);
    expect([...h.ids]).toEqual([10, 11, 12, 13, 20, 21, 0, 0]);
    expect([...h.targets]).toEqual([11, 12, 13, 14, 21, 22, 0, 0]);
    // target 11 is a prompt token (mask 0); 12, 13, 14 response; row b: 21, 22 response.
    expect([...h.mask]).toEqual([0, 1, 1, 1, 1, 1, 0, 0]);
    expect(h.tokens).toBe(5);
    expect(h.inputTokens).toBe(6);
  });

  it('truncates to maxSeqLen input positions and pads to a multiple', () => {
    const h = makeHostBatch([a, b], { padId: 9, maxSeqLen: 3 });
    expect(h.seqLen).toBe(3);
    expect([...h.ids]).toEqual([10, 11, 12, 20, 21, 9]);
    expect([...h.targets]).toEqual([11, 12, 13, 21, 22, 9]);
    expect([...h.mask]).toEqual([0, 1, 1, 1, 1, 0]);
    expect(makeHostBatch([b], { padId: 0, padMultiple: 8 }).seqLen).toBe(8);
    expect(makeHostBatch([a], { padId: 0, padMultiple: 8, maxSeqLen: 6 }).seqLen).toBe(6);
  });

  it('drops examples whose loss tokens were all truncated away and rejects ragged masks', () => {
    const r = prepareExamples([a, b, { ids: [1, 2, 3, 4], lossMask: [0, 0, 0, 1] }], 2);
    expect(r.examples.length).toBe(2);
    expect(r.dropped).toBe(1);
    expect(() => prepareExamples([{ ids: [1, 2], lossMask: [1] }])).toThrow(
      /example 0: ids has 2 tokens but lossMask has 1/,
    );
  });

  it('uploads int32 ids/targets and float32 mask', () => {
    const before = tf.memory().numTensors;
    const batch = toBatch(makeHostBatch([a, b], { padId: 0 }));
    expect(batch.ids.dtype).toBe('int32');
    expect(batch.targets.dtype).toBe('int32');
    expect(batch.mask.dtype).toBe('float32');
    expect(batch.ids.shape).toEqual([2, 4]);
    expect(batch.tokens).toBe(5);
    disposeBatch(batch);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('epoch order and sampler', () => {
  it('is a seeded permutation per epoch, reproducible and different across epochs/seeds', () => {
    const o = epochOrder(20, 7, 0);
    expect([...o].sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(epochOrder(20, 7, 0)).toEqual(o);
    expect(epochOrder(20, 7, 1)).not.toEqual(o);
    expect(epochOrder(20, 8, 0)).not.toEqual(o);
    expect(epochOrder(5, 7, 0, false)).toEqual([0, 1, 2, 3, 4]);
  });

  it('cuts epochs into steps of B·G examples and micro-batches of B, never spanning epochs', () => {
    const s = new EpochSampler(10, 2, 2, 1);
    expect(s.stepsPerEpoch).toBe(3);
    const steps = [s.nextStep(), s.nextStep(), s.nextStep()];
    expect(steps.map((st) => st.map((m) => m.length))).toEqual([[2, 2], [2, 2], [2]]);
    expect(steps.flat(2).sort((x, y) => x - y)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(s.position).toEqual({ epoch: 1, position: 0 });
    expect(s.nextStep().flat()).toEqual(epochOrder(10, 1, 1).slice(0, 4));
  });

  it('resumes from a cursor exactly', () => {
    const s1 = new EpochSampler(13, 3, 1, 5);
    for (let i = 0; i < 7; i++) s1.nextStep();
    const cur = s1.position;
    const rest1 = Array.from({ length: 6 }, () => s1.nextStep());
    const s2 = new EpochSampler(13, 3, 1, 5);
    s2.seek(cur);
    const rest2 = Array.from({ length: 6 }, () => s2.nextStep());
    expect(rest2).toEqual(rest1);
    expect(() => s2.seek({ epoch: 0, position: 13 })).toThrow(/outside/);
  });
});

describe('pre-training packer', () => {
  it('joins documents with EOS and cuts T+1 windows with stride T, all tokens masked', () => {
    const w = packDocuments(
      [
        [1, 2, 3],
        [4, 5],
        [6, 7, 8, 9],
      ],
      { seqLen: 4, eos: 0 },
    );
    // stream: 1 2 3 0 4 5 0 6 7 8 9 0 (12 tokens) → windows at 0, 4 (8 would need 13)
    expect(w.map((e) => e.ids)).toEqual([
      [1, 2, 3, 0, 4],
      [4, 5, 0, 6, 7],
    ]);
    expect(w.every((e) => e.lossMask.every((m) => m === 1))).toBe(true);
    const h = makeHostBatch(w, { padId: 0 });
    expect(h.tokens).toBe(8);
    // Consecutive windows: every token after the first is a target exactly once.
    expect([...h.targets]).toEqual([2, 3, 0, 4, 5, 0, 6, 7]);
  });

  it('fails clearly on a corpus shorter than one window', () => {
    expect(() => packDocuments([[1, 2]], { seqLen: 8, eos: 0 })).toThrow(/fewer than one window/);
  });
});
