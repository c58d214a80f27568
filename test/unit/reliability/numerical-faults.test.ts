/**
 * Numerical faults injected into training: a NaN or infinite loss, or a NaN gradient behind a
 * finite loss, at step k. The trainer stops with a one-line UserError naming the step and the last
 * good checkpoint, leaves that checkpoint byte-for-byte as it was written (no half-written
 * checkpoint of the bad step), and a resume from it runs to the end once the fault is gone.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../../src-main/common/errors.js';
import { readSafetensors } from '../../../src-main/io/safetensors.js';
import { tf } from '../../../src-main/tensor/tf.js';
import { listCheckpoints, loadCheckpoint } from '../../../src-main/train/checkpoint.js';
import { train, type TrainOptions } from '../../../src-main/train/trainer.js';
import { byteExamples, setupCpu, toyModel, type ToyModel } from '../train/toy.js';

const root = mkdtempSync(join(tmpdir(), 'upit-numfault-'));
beforeAll(setupCpu);
afterAll(() => rmSync(root, { recursive: true, force: true }));

const data = { examples: byteExamples(16, 12), padId: 0 };
const opts: TrainOptions = { lr: 2e-2, batchSize: 4, seed: 3, maxSteps: 8, checkpointEverySteps: 2 };

type Fault = 'nan-loss' | 'inf-loss' | 'nan-grad';

/** The toy model, its loss faulty from optimizer step `at` (1-based) on. */
function faulty(fault: Fault, at: number): ToyModel {
  const m = toyModel(128, 8, 1);
  const orig = m.loss.bind(m);
  m.loss = (b, ctx) => {
    const l = orig(b, ctx);
    if (ctx.step + 1 < at) return l;
    if (fault === 'nan-loss') return tf.mul(l, tf.scalar(NaN)) as tf.Scalar;
    if (fault === 'inf-loss') return tf.div(l, tf.scalar(0)) as tf.Scalar;
    // finite loss, NaN gradient: d/dp 0·sqrt(p − p) = 0·∞ at every element
    const p = m.params.get('mlp.gain')!;
    return tf.add(l, tf.mul(tf.scalar(0), tf.sum(tf.sqrt(tf.sub(p, p))))) as tf.Scalar;
  };
  return m;
}

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** sha256 of every file of a checkpoint directory. */
function digest(dir: string): Record<string, string> {
  return Object.fromEntries(
    readdirSync(dir)
      .sort()
      .map((f) => [f, sha(join(dir, f))]),
  );
}

describe('numerical faults stop training and keep the last good checkpoint', () => {
  it.each([
    [
      'nan-loss',
      5,
      /^non-finite loss at step 5 \(loss NaN, micro-batch 0\); training stopped; the last good checkpoint is .*step-000004$/,
    ],
    [
      'inf-loss',
      3,
      /^non-finite loss at step 3 \(loss Infinity, micro-batch 0\); training stopped; the last good checkpoint is .*step-000002$/,
    ],
    [
      'nan-grad',
      6,
      /^non-finite gradient norm at step 6 \(loss [\d.]+, norm NaN\); training stopped; the last good checkpoint is .*step-000004$/,
    ],
    ['nan-loss', 1, /^non-finite loss at step 1 .*; no checkpoint was written before it$/],
  ] as const)('%s at step %i', async (fault, at, message) => {
    const outDir = join(root, `${fault}-${at}`);
    const m = faulty(fault, at);
    const written = new Map<string, Record<string, string>>();
    const tensors = tf.memory().numTensors;
    const err = await train(
      m,
      data,
      { ...opts, outDir },
      {
        onCheckpoint: (c) => void written.set(c.dir, digest(c.dir)),
      },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toMatch(/\n/);
    expect(tf.memory().numTensors, 'the failed step leaks no tensors').toBe(tensors);
    m.dispose();

    // the checkpoints before the fault, exactly as written; none of the bad step, no temporaries
    const good = Math.floor((at - 1) / 2) * 2;
    const list = await listCheckpoints(outDir);
    expect(list.map((c) => c.step)).toEqual(Array.from({ length: good / 2 }, (_, i) => 2 * (i + 1)));
    for (const c of list) expect(digest(c.dir), c.dir).toEqual(written.get(c.dir));
    if (good === 0) return;
    expect(readdirSync(join(outDir, 'checkpoints')).filter((n) => n.includes('.tmp'))).toEqual([]);
    const last = list.at(-1)!;
    for (const t of readSafetensors(join(last.dir, 'params.safetensors')).tensors.values())
      expect(t.data.every(Number.isFinite)).toBe(true);
    expect((await loadCheckpoint(last.dir)).state.step).toBe(good);

    // the fault gone, a resume continues from the last good checkpoint to the end
    const healthy = toyModel(128, 8, 1);
    const r = await train(healthy, data, { ...opts, outDir, resume: 'latest' });
    healthy.dispose();
    expect(r.resumedFrom).toBe(last.dir);
    expect(r.steps).toBe(8);
    expect(r.history.map((h) => h.step)).toEqual(Array.from({ length: 8 - good }, (_, i) => good + i + 1));
    expect(r.history.every((h) => Number.isFinite(h.loss))).toBe(true);
    expect(digest(last.dir), 'resuming does not rewrite the checkpoint it starts from').toEqual(
      written.get(last.dir),
    );
  });
});
