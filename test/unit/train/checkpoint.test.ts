import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { UserError } from '../../../src-main/common/errors.js';
import { readSafetensors } from '../../../src-main/io/safetensors.js';
import { tf } from '../../../src-main/tensor/tf.js';
import {
  latestCheckpoint,
  listCheckpoints,
  loadCheckpoint,
  type TrainerState,
} from '../../../src-main/train/checkpoint.js';
import { train, type CheckpointInfo, type TrainOptions } from '../../../src-main/train/trainer.js';
import { byteExamples, setupCpu, toyModel } from './toy.js';

const root = mkdtempSync(join(tmpdir(), 'upit-train-ckpt-'));
beforeAll(setupCpu);
afterAll(() => rmSync(root, { recursive: true, force: true }));

const VOCAB = 128;
const data = { examples: byteExamples(20, 12), padId: 0 };
/** The loss draws from the run's Rng, so resume must restore the Rng state too. */
function noisy<M extends ReturnType<typeof toyModel>>(m: M): M {
  const orig = m.loss.bind(m);
  m.loss = (b, ctx) => tf.tidy(() => tf.mul(orig(b, ctx), tf.scalar(1 + 0.1 * ctx.rng.next())) as tf.Scalar);
  return m;
}

const base: TrainOptions = {
  lr: 2e-2,
  batchSize: 4,
  seed: 9,
  weightDecay: 0.01,
  schedule: { kind: 'cosine', warmupSteps: 2 },
};

describe('checkpoints', () => {
  it('0.25-epoch cadence over 2 epochs writes 8 complete, atomically named checkpoints', async () => {
    const outDir = join(root, 'cadence');
    const model = toyModel(VOCAB, 8, 1);
    const seen: CheckpointInfo[] = [];
    const r = await train(
      model,
      { ...data, examples: byteExamples(32, 12) },
      {
        ...base,
        epochs: 2,
        checkpointEvery: 0.25,
        outDir,
        checkpointFiles: { 'config.json': '{"toy":true}\n' },
      },
      { onCheckpoint: (c) => void seen.push(c) },
    );
    model.dispose();
    expect(r.totalSteps).toBe(16);
    const list = await listCheckpoints(outDir);
    expect(list.map((c) => c.step)).toEqual([2, 4, 6, 8, 10, 12, 14, 16]);
    expect(seen.map((c) => c.epoch)).toEqual([0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2]);
    expect(seen.at(-1)!.reason).toBe('final');
    expect(readdirSync(join(outDir, 'checkpoints'))).toEqual(list.map((c) => c.dir.split('/').at(-1)));
    const dir = list.at(-1)!.dir;
    expect(dir.endsWith('checkpoints/step-000016')).toBe(true);
    expect(readdirSync(dir).sort()).toEqual([
      'config.json',
      'optimizer.safetensors',
      'params.safetensors',
      'trainer-state.json',
    ]);
    const p = readSafetensors(join(dir, 'params.safetensors'));
    expect([...p.tensors.keys()].sort()).toEqual(['embed.weight', 'head.weight', 'mlp.gain', 'mlp.weight']);
    const o = readSafetensors(join(dir, 'optimizer.safetensors'));
    expect(o.tensors.has('mlp.gain.exp_avg_sq')).toBe(true);
    const st = JSON.parse(readFileSync(join(dir, 'trainer-state.json'), 'utf8')) as TrainerState;
    expect(st.step).toBe(16);
    expect(st.epoch).toBe(2);
    expect(st.cursor).toEqual({ epoch: 2, position: 0 });
    expect(st.optimizerStep).toBe(16);
    expect(st.rng).toHaveLength(4);
    expect(st.history).toHaveLength(16);
    expect((await latestCheckpoint(outDir))!.step).toBe(16);
  });

  it('resuming reproduces the uninterrupted run bit-exactly', async () => {
    const opts: TrainOptions = { ...base, batchSize: 3, gradAccum: 2, epochs: 3, checkpointEverySteps: 5 };
    // Uninterrupted run.
    const full = noisy(toyModel(VOCAB, 8, 1));
    const fullLosses: number[] = [];
    const fr = await train(
      full,
      data,
      { ...opts, outDir: join(root, 'full') },
      {
        onStep: (s) => void fullLosses.push(s.loss),
      },
    );
    expect(fr.totalSteps).toBe(12); // ⌈20 / 6⌉ = 4 steps per epoch; step 5 is mid-epoch
    const fullParams = full.snapshot();
    full.dispose();

    // Interrupted after 7 steps (checkpoint at 5 and a stop checkpoint at 7), then resumed from step 5.
    const outDir = join(root, 'resumed');
    const a = noisy(toyModel(VOCAB, 8, 1));
    let n = 0;
    const ar = await train(
      a,
      data,
      { ...opts, outDir },
      { onStep: () => void n++, shouldStop: () => n >= 7 },
    );
    a.dispose();
    expect(ar.stopped).toBe(true);
    expect((await listCheckpoints(outDir)).map((c) => c.step)).toEqual([5, 7]);

    const b = noisy(toyModel(VOCAB, 8, 2)); // different init: everything must come from the checkpoint
    const resumedLosses: number[] = [];
    const br = await train(
      b,
      data,
      { ...opts, outDir, resume: join(outDir, 'checkpoints', 'step-000005') },
      {
        onStep: (s) => void resumedLosses.push(s.loss),
      },
    );
    expect(br.resumedFrom).toMatch(/step-000005$/);
    expect(br.steps).toBe(12);
    expect(resumedLosses).toEqual(fullLosses.slice(5));
    const bParams = b.snapshot();
    for (const [k, v] of fullParams) expect(bParams.get(k)).toEqual(v);
    b.dispose();

    // 'latest' picks the newest (step 12 now): nothing left to do.
    const c = toyModel(VOCAB, 8, 3);
    const cr = await train(c, data, { ...opts, outDir, resume: 'latest' });
    expect(cr.resumedFrom).toMatch(/step-000012$/);
    expect(cr.history).toHaveLength(0);
    c.dispose();
  });

  it("'latest' with no checkpoint starts fresh; a missing path is a UserError", async () => {
    const m = toyModel(VOCAB, 8, 1);
    const r = await train(m, data, { ...base, maxSteps: 2, outDir: join(root, 'fresh'), resume: 'latest' });
    expect(r.resumedFrom).toBeNull();
    expect(r.steps).toBe(2);
    // Training again into the same outDir replaces step-000002 as a whole.
    const again = await train(m, data, { ...base, maxSteps: 2, outDir: join(root, 'fresh') });
    expect(again.checkpoints).toEqual([join(root, 'fresh', 'checkpoints', 'step-000002')]);
    expect(readdirSync(join(root, 'fresh', 'checkpoints'))).toEqual(['step-000002']);
    await expect(train(m, data, { ...base, maxSteps: 2, resume: join(root, 'nope') })).rejects.toThrow(
      /checkpoint directory not found/,
    );
    m.dispose();
  });

  it('refuses to resume with different training options', async () => {
    const outDir = join(root, 'mismatch');
    const m = toyModel(VOCAB, 8, 1);
    await train(m, data, { ...base, maxSteps: 3, outDir });
    const err = await train(m, data, { ...base, lr: 1e-3, maxSteps: 6, outDir, resume: 'latest' }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/different training options \(lr, schedule, totalSteps\)/);
    m.dispose();
  });

  it('a non-finite loss stops training and leaves the last good checkpoint intact', async () => {
    const outDir = join(root, 'nan');
    const m = toyModel(VOCAB, 8, 1);
    const orig = m.loss.bind(m);
    let calls = 0;
    m.loss = (b, ctx) => {
      calls++;
      const l = orig(b, ctx);
      return calls === 5 ? (tf.div(l, tf.scalar(0)) as tf.Scalar) : l;
    };
    const before = tf.memory().numTensors;
    const err = await train(m, data, { ...base, maxSteps: 8, checkpointEverySteps: 2, outDir }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(
      /^non-finite loss at step 5 .*last good checkpoint is .*step-000004$/,
    );
    expect(tf.memory().numTensors).toBe(before);
    const list = await listCheckpoints(outDir);
    expect(list.map((c) => c.step)).toEqual([2, 4]);
    const ck = await loadCheckpoint(list[1]!.dir);
    expect(ck.state.step).toBe(4);
    expect(readdirSync(join(outDir, 'checkpoints')).some((n) => n.includes('.tmp-'))).toBe(false);
    m.dispose();
  });

  it('keepLast prunes old checkpoints; incomplete directories are not listed', async () => {
    const outDir = join(root, 'keep');
    const m = toyModel(VOCAB, 8, 1);
    await train(m, data, { ...base, maxSteps: 6, checkpointEverySteps: 1, keepLast: 2, outDir });
    m.dispose();
    expect((await listCheckpoints(outDir)).map((c) => c.step)).toEqual([5, 6]);
    rmSync(join(outDir, 'checkpoints', 'step-000006', 'trainer-state.json'));
    expect((await listCheckpoints(outDir)).map((c) => c.step)).toEqual([5]);
    expect(existsSync(join(outDir, 'checkpoints', 'step-000005', 'params.safetensors'))).toBe(true);
  });

  it('ignores and cleans up temporaries of dead writers', async () => {
    const outDir = join(root, 'tmpdirs');
    const ckRoot = join(outDir, 'checkpoints');
    const dead = join(ckRoot, 'step-000009.tmp-4194303');
    mkdirSync(dead, { recursive: true });
    writeFileSync(join(dead, 'trainer-state.json'), '{');
    expect(await listCheckpoints(outDir)).toEqual([]);
    const m = toyModel(VOCAB, 8, 1);
    await train(m, data, { ...base, maxSteps: 1, outDir });
    m.dispose();
    expect(readdirSync(ckRoot)).toEqual(['step-000001']);
  });
});
