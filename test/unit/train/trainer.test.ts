import { beforeAll, describe, expect, it } from 'vitest';

import { UserError } from '../../../src-main/common/errors.js';
import { tf } from '../../../src-main/tensor/tf.js';
import { checkpointSteps, train, type StepInfo } from '../../../src-main/train/trainer.js';
import { byteExamples, setupCpu, toyModel } from './toy.js';

beforeAll(setupCpu);

const VOCAB = 128;
const examples = byteExamples(24, 16);
const data = { examples, padId: 0 };

async function run(seed: number, extra: Partial<Parameters<typeof train>[2]> = {}) {
  const model = toyModel(VOCAB, 16, 1);
  const steps: StepInfo[] = [];
  const r = await train(
    model,
    data,
    { lr: 3e-2, batchSize: 4, maxSteps: 12, seed, schedule: 'constant', ...extra },
    { onStep: (s) => void steps.push(s) },
  );
  const params = model.snapshot();
  model.dispose();
  return { r, steps, params };
}

describe('trainer on a toy model', () => {
  it('reduces the loss on a small corpus', async () => {
    const model = toyModel(VOCAB, 16, 1);
    const losses: number[] = [];
    await train(
      model,
      data,
      { lr: 3e-2, batchSize: 8, epochs: 20, seed: 3, weightDecay: 0.01 },
      { onStep: (s) => void losses.push(s.loss) },
    );
    model.dispose();
    expect(losses.length).toBe(60);
    expect(losses[0]).toBeGreaterThan(3);
    expect(losses.at(-1)!).toBeLessThan(0.5 * losses[0]!);
  });

  it('reports step info (fractional epoch, lr from the schedule, tokens)', async () => {
    const { steps } = await run(1, {
      maxSteps: undefined,
      epochs: 1.5,
      schedule: { kind: 'cosine', warmupSteps: 2 },
    });
    expect(steps.length).toBe(9); // 24 examples / 4 = 6 steps per epoch
    expect(steps[0]!.step).toBe(1);
    expect(steps[0]!.epoch).toBeCloseTo(1 / 6, 12);
    expect(steps[8]!.epoch).toBeCloseTo(1.5, 12);
    expect(steps[0]!.lr).toBeCloseTo(1.5e-2, 12);
    expect(steps[1]!.lr).toBeCloseTo(3e-2, 12);
    expect(steps[0]!.tokens).toBe(4 * 8);
    expect(steps[0]!.inputTokens).toBe(4 * 15);
    expect(steps[0]!.gradNorm).toBeGreaterThan(0);
    expect(steps[0]!.tokensPerSec).toBeGreaterThan(0);
  });

  it('is deterministic under a seed and depends on it', async () => {
    const a = await run(11);
    const b = await run(11);
    const c = await run(12);
    expect(b.steps.map((s) => s.loss)).toEqual(a.steps.map((s) => s.loss));
    for (const [k, v] of a.params) expect(b.params.get(k)).toEqual(v);
    expect(c.steps.map((s) => s.loss)).not.toEqual(a.steps.map((s) => s.loss));
  });

  it('gradient accumulation 2 × B/2 equals 1 × B with token-weighted means', async () => {
    // Unequal lengths → unequal token counts per micro-batch, so a plain mean of the
    // micro-batch losses would differ from the token-weighted one.
    const ragged = examples.map((e, i) => {
      const n = 6 + (i % 5) * 2;
      return { ids: e.ids.slice(0, n), lossMask: e.lossMask.slice(0, n).map((_, j) => (j >= 2 ? 1 : 0)) };
    });
    const go = async (batchSize: number, gradAccum: number) => {
      const model = toyModel(VOCAB, 16, 1);
      const losses: number[] = [];
      await train(
        model,
        { examples: ragged, padId: 0 },
        { lr: 1e-2, batchSize, gradAccum, maxSteps: 4, seed: 5, clipNorm: 0.5 },
        { onStep: (s) => void losses.push(s.loss) },
      );
      const p = model.snapshot();
      model.dispose();
      return { losses, p };
    };
    const one = await go(8, 1);
    const two = await go(4, 2);
    const eight = await go(1, 8);
    for (const other of [two, eight]) {
      other.losses.forEach((l, i) => expect(l).toBeCloseTo(one.losses[i]!, 5));
      for (const [k, v] of one.p) {
        const w = other.p.get(k)!;
        let maxDiff = 0;
        for (let i = 0; i < v.length; i++) maxDiff = Math.max(maxDiff, Math.abs(v[i]! - w[i]!));
        expect(maxDiff).toBeLessThan(1e-5);
      }
    }
  });

  it('keeps tf.memory().numTensors flat across steps', async () => {
    const model = toyModel(VOCAB, 16, 1);
    const counts: number[] = [];
    const start = tf.memory().numTensors;
    await train(
      model,
      data,
      { lr: 1e-2, batchSize: 4, gradAccum: 2, maxSteps: 8, seed: 1, weightDecay: 0.1, clipNorm: 1e-3 },
      { onStep: () => void counts.push(tf.memory().numTensors) },
    );
    // During the run: the parameters plus AdamW's m and v (4 + 8), nothing else.
    expect(counts).toEqual(counts.map(() => start + 8));
    const after = tf.memory().numTensors;
    model.dispose();
    expect(tf.memory().numTensors).toBe(after - 4);
  });

  it('stops with a UserError on a non-finite loss', async () => {
    const model = toyModel(VOCAB, 16, 1);
    const base = model.loss.bind(model);
    let calls = 0;
    model.loss = (b, ctx) => {
      calls++;
      const l = base(b, ctx);
      return calls === 3 ? (tf.mul(l, tf.scalar(NaN)) as tf.Scalar) : l;
    };
    const before = tf.memory().numTensors;
    const err = await train(model, data, { lr: 1e-2, batchSize: 4, maxSteps: 5, seed: 1 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/^non-finite loss at step 3 /);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('passes the run rng to the loss and collects reported metrics', async () => {
    const model = toyModel(VOCAB, 16, 1);
    const base = model.loss.bind(model);
    const draws: number[] = [];
    model.loss = (b, ctx) => {
      draws.push(ctx.rng.next());
      ctx.report('aux', tf.scalar(b.tokens));
      return base(b, ctx);
    };
    const seen: StepInfo[] = [];
    const before = tf.memory().numTensors;
    await train(
      model,
      data,
      { lr: 1e-2, batchSize: 4, gradAccum: 2, maxSteps: 2, seed: 1 },
      {
        onStep: (s) => void seen.push(s),
      },
    );
    expect(tf.memory().numTensors).toBe(before);
    expect(draws.length).toBe(4);
    expect(new Set(draws).size).toBe(4);
    expect(seen[0]!.metrics.aux).toBeCloseTo(32, 6); // token-weighted mean of 32 and 32
    model.dispose();
  });

  it('shouldStop ends the run early', async () => {
    const model = toyModel(VOCAB, 16, 1);
    let n = 0;
    const r = await train(
      model,
      data,
      { lr: 1e-2, batchSize: 4, maxSteps: 10, seed: 1 },
      { onStep: () => void n++, shouldStop: () => n >= 3 },
    );
    expect(r.steps).toBe(3);
    expect(r.stopped).toBe(true);
    model.dispose();
  });
});

describe('checkpoint cadence', () => {
  it('0.25 epoch over 2 epochs gives 8 checkpoint steps', () => {
    const s = checkpointSteps(2 * 37, 37, 0.25);
    expect(s.size).toBe(8);
    expect([...s]).toEqual([9, 19, 28, 37, 46, 56, 65, 74]);
    expect([...checkpointSteps(10, 4, undefined, 3)]).toEqual([3, 6, 9]);
  });
});
