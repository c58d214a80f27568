/**
 * A generic, deterministic training loop: AdamW, cosine/constant schedule, global-norm
 * clipping, token-weighted gradient accumulation, epoch/step checkpoint cadence and exact
 * resume. It knows nothing about the model: a Trainable is its parameters and a loss.
 *
 * Determinism: the data order is a function of (seed, epoch), the Rng handed to the loss
 * is seeded from the run's seed and saved in checkpoints, and the reductions are done in a
 * fixed order, so on one backend the same seed gives bit-identical losses and a resumed
 * run continues exactly as the uninterrupted one would have.
 */
import { createHash } from 'node:crypto';

import { Rng } from '../common/rng.js';
import { UserError } from '../common/errors.js';
import { tf } from '../tensor/tf.js';
import {
  EpochSampler,
  disposeBatch,
  makeHostBatch,
  prepareExamples,
  toBatch,
  type Batch,
  type TokenizedExample,
} from './batches.js';
import {
  latestCheckpoint,
  loadCheckpoint,
  pruneCheckpoints,
  saveCheckpoint,
  type LoadedCheckpoint,
  type LossRecord,
} from './checkpoint.js';
import { clipByGlobalNorm } from './clip.js';
import { AdamW, sameShape, type DecayPredicate } from './optimizer.js';
import { lrAt, resolveSchedule, type ScheduleKind, type ScheduleSpec } from './schedule.js';

export type { Batch } from './batches.js';

/** What the loss may use besides the batch. */
export interface LossContext {
  /** 0-based index of the optimizer step being computed. */
  step: number;
  /** 0-based micro-batch within the step. */
  micro: number;
  /** The run's generator (saved in checkpoints): use it for any sampling inside the loss. */
  rng: Rng;
  /**
   * Report a scalar diagnostic (aux loss, router entropy…). The trainer keeps the tensor,
   * averages it over the step's micro-batches with the token weights and disposes it.
   */
  report(name: string, value: tf.Tensor): void;
}

export interface Trainable {
  /** The parameters to train, under their model (HF) names. */
  params: Map<string, tf.Variable>;
  /** Mean loss over the batch's masked tokens; called inside tf.variableGrads. */
  loss(batch: Batch, ctx: LossContext): tf.Scalar;
}

export interface TrainData {
  examples: readonly TokenizedExample[];
  padId: number;
  /** Largest number of input positions per row (examples are cut to maxSeqLen + 1 tokens). */
  maxSeqLen?: number;
  /** Pad each batch's length to a multiple of this (default 1). */
  padMultiple?: number;
  /** Shuffle each epoch (default true). */
  shuffle?: boolean;
}

export interface TrainOptions {
  /** Peak learning rate. */
  lr: number;
  /** Default cosine (3% warm-up, decays to minLrRatio·lr = 0). */
  schedule?: ScheduleKind | ScheduleSpec;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  /** Which parameters decay (default: those with ≥ 2 dimensions). */
  decay?: DecayPredicate;
  /** Global-norm clip (default 1.0; 0 or Infinity: no clipping). */
  clipNorm?: number;
  /** Examples per micro-batch. */
  batchSize: number;
  /** Micro-batches per optimizer step (default 1). */
  gradAccum?: number;
  /** Epochs to train (fractional allowed). Ignored when maxSteps is set. */
  epochs?: number;
  /** Optimizer steps to train; wins over epochs. */
  maxSteps?: number;
  seed: number;
  /** Checkpoint every this many epochs (e.g. 0.25), plus the final step. */
  checkpointEvery?: number;
  /** Checkpoint every this many steps, plus the final step. */
  checkpointEverySteps?: number;
  /** Keep only the newest N checkpoints (default: keep all). */
  keepLast?: number;
  /** Where checkpoints go (`<outDir>/checkpoints/step-NNNNNN/`). No outDir: no checkpoints. */
  outDir?: string;
  /** A checkpoint directory, or 'latest' (the newest under outDir; none → fresh start). */
  resume?: string;
  /** Write a checkpoint when shouldStop() ends the run early (default true). */
  checkpointOnStop?: boolean;
  /** Extra files written into every checkpoint (e.g. config.json, adapter spec). */
  checkpointFiles?: Record<string, string | Uint8Array>;
  /** Extra safetensors metadata for params.safetensors. */
  checkpointMetadata?: Record<string, string>;
  /** Steps of loss history kept in trainer-state.json (default 200). */
  historyTail?: number;
}

export interface StepInfo {
  /** Optimizer steps completed (1 after the first update). */
  step: number;
  totalSteps: number;
  /** Fractional epochs completed. */
  epoch: number;
  /** Token-weighted mean loss of this step's batch (before the update). */
  loss: number;
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Loss (masked) tokens in the step. */
  tokens: number;
  /** Non-padding input tokens in the step. */
  inputTokens: number;
  /** inputTokens per second of this step's wall time. */
  tokensPerSec: number;
  /** Seconds of training so far (across resumes). */
  elapsed: number;
  /** Token-weighted means of what the loss reported. */
  metrics: Record<string, number>;
}

export interface CheckpointInfo {
  step: number;
  epoch: number;
  dir: string;
  reason: 'cadence' | 'final' | 'stop';
}

export interface TrainHooks {
  onStep?(s: StepInfo): void | Promise<void>;
  onCheckpoint?(c: CheckpointInfo): void | Promise<void>;
  /** Checked before every step; true ends the run (with a checkpoint, see checkpointOnStop). */
  shouldStop?(): boolean;
}

export interface TrainResult {
  /** Optimizer steps completed in total (including those before a resume). */
  steps: number;
  totalSteps: number;
  stepsPerEpoch: number;
  /** Steps run by this call. */
  history: LossRecord[];
  checkpoints: string[];
  stopped: boolean;
  resumedFrom: string | null;
  /** Examples dropped because truncation left them without loss tokens. */
  droppedExamples: number;
}

/** Steps at which the cadence options ask for a checkpoint (the final step is added by the trainer). */
export function checkpointSteps(
  totalSteps: number,
  stepsPerEpoch: number,
  everyEpochs?: number,
  everySteps?: number,
): Set<number> {
  const out = new Set<number>();
  if (everyEpochs !== undefined) {
    if (!(everyEpochs > 0)) throw new UserError(`checkpointEvery must be > 0 epochs (got ${everyEpochs})`);
    for (let k = 1; ; k++) {
      const s = Math.round(k * everyEpochs * stepsPerEpoch);
      if (s > totalSteps) break;
      if (s >= 1) out.add(s);
    }
  }
  if (everySteps !== undefined) {
    if (!Number.isInteger(everySteps) || everySteps < 1) {
      throw new UserError(`checkpointEverySteps must be a positive integer (got ${everySteps})`);
    }
    for (let s = everySteps; s <= totalSteps; s += everySteps) out.add(s);
  }
  return out;
}

export async function train(
  model: Trainable,
  data: TrainData,
  opts: TrainOptions,
  hooks: TrainHooks = {},
): Promise<TrainResult> {
  if (!(opts.lr >= 0) || !Number.isFinite(opts.lr)) throw new UserError(`lr must be ≥ 0 (got ${opts.lr})`);
  if (!Number.isInteger(opts.seed)) throw new UserError(`seed must be an integer (got ${opts.seed})`);
  if (model.params.size === 0) throw new UserError('training: the model has no trainable parameters');
  for (const [name, v] of model.params) {
    if (v.dtype !== 'float32') throw new UserError(`training: parameter ${name} is ${v.dtype}, not float32`);
  }
  if (!Number.isInteger(data.padId) || data.padId < 0) {
    throw new UserError(`padId must be a non-negative integer (got ${data.padId})`);
  }
  const gradAccum = opts.gradAccum ?? 1;
  const clipNorm = opts.clipNorm ?? 1.0;
  const historyTail = opts.historyTail ?? 200;

  const { examples, dropped } = prepareExamples(data.examples, data.maxSeqLen);
  const sampler = new EpochSampler(
    examples.length,
    opts.batchSize,
    gradAccum,
    opts.seed,
    data.shuffle ?? true,
  );
  const stepsPerEpoch = sampler.stepsPerEpoch;
  let totalSteps: number;
  if (opts.maxSteps !== undefined) {
    if (!Number.isInteger(opts.maxSteps) || opts.maxSteps < 1) {
      throw new UserError(`maxSteps must be a positive integer (got ${opts.maxSteps})`);
    }
    totalSteps = opts.maxSteps;
  } else {
    const epochs = opts.epochs ?? 1;
    if (!(epochs > 0) || !Number.isFinite(epochs)) throw new UserError(`epochs must be > 0 (got ${epochs})`);
    totalSteps = Math.max(1, Math.round(epochs * stepsPerEpoch));
  }
  const schedule = resolveSchedule(opts.schedule ?? 'cosine', totalSteps);
  const cadence = checkpointSteps(totalSteps, stepsPerEpoch, opts.checkpointEvery, opts.checkpointEverySteps);
  if (opts.resume === 'latest' && !opts.outDir) throw new UserError("resume: 'latest' needs an outDir");

  const varList = [...model.params.values()];
  const nameOfVariable = new Map<string, string>();
  for (const [name, v] of model.params) nameOfVariable.set(v.name, name);

  let rng = Rng.derive(opts.seed, 'trainer');
  let step = 0;
  let elapsedBefore = 0;
  let tail: LossRecord[] = [];
  let resumedFrom: string | null = null;
  let lastCheckpoint: string | null = null;
  const history: LossRecord[] = [];
  const checkpoints: string[] = [];
  let stopped = false;

  const optimizer = new AdamW(model.params, {
    betas: opts.betas,
    eps: opts.eps,
    weightDecay: opts.weightDecay,
    decay: opts.decay,
  });
  try {
    const hashed = hashedOptions(model, examples, data, opts, {
      gradAccum,
      clipNorm,
      totalSteps,
      schedule,
      optimizer,
    });
    const optionsHash = sha256(stableJson(hashed));

    // ---- resume ----
    let ckpt: LoadedCheckpoint | null = null;
    if (opts.resume === 'latest') {
      const ref = await latestCheckpoint(opts.outDir!);
      if (ref) ckpt = await loadCheckpoint(ref.dir);
    } else if (opts.resume) {
      ckpt = await loadCheckpoint(opts.resume);
    }
    if (ckpt) {
      checkResumable(ckpt, hashed, optionsHash);
      restoreParams(model, ckpt);
      optimizer.loadState(ckpt.optimizer, ckpt.state.optimizerStep, `${ckpt.dir}/optimizer.safetensors`);
      if (ckpt.state.step < totalSteps) sampler.seek(ckpt.state.cursor);
      rng = new Rng(Uint32Array.from(ckpt.state.rng));
      step = ckpt.state.step;
      elapsedBefore = ckpt.state.elapsed;
      tail = ckpt.state.history.slice(-historyTail);
      resumedFrom = ckpt.dir;
      lastCheckpoint = ckpt.dir;
      ckpt = null; // drop the host copies
    }

    const t0 = performance.now();
    const elapsed = (): number => elapsedBefore + (performance.now() - t0) / 1000;

    const writeCheckpoint = async (reason: CheckpointInfo['reason']): Promise<void> => {
      if (!opts.outDir) return;
      const dir = await saveCheckpoint(opts.outDir, {
        step,
        params: model.params as Map<string, tf.Tensor>,
        optimizer: optimizer.stateTensors(),
        state: {
          step,
          epoch: step / stepsPerEpoch,
          totalSteps,
          stepsPerEpoch,
          cursor: sampler.position,
          rng: [...rng.state()],
          optimizerStep: optimizer.step,
          optionsHash,
          options: hashed,
          elapsed: elapsed(),
          history: tail,
        },
        files: opts.checkpointFiles,
        metadata: opts.checkpointMetadata,
      });
      lastCheckpoint = dir;
      checkpoints.push(dir);
      if (opts.keepLast !== undefined) await pruneCheckpoints(opts.outDir, Math.max(1, opts.keepLast));
      await hooks.onCheckpoint?.({ step, epoch: step / stepsPerEpoch, dir, reason });
    };

    // ---- loop ----
    while (step < totalSteps) {
      if (hooks.shouldStop?.()) {
        stopped = true;
        break;
      }
      const tStep = performance.now();
      const micro = sampler.nextStep();
      const hosts = micro.map((idx) =>
        makeHostBatch(
          idx.map((i) => examples[i]!),
          { padId: data.padId, maxSeqLen: data.maxSeqLen, padMultiple: data.padMultiple },
        ),
      );
      const tokens = hosts.reduce((a, h) => a + h.tokens, 0);
      const inputTokens = hosts.reduce((a, h) => a + h.inputTokens, 0);

      const acc = new Map<string, tf.Tensor>();
      const metrics: Record<string, number> = {};
      let loss = 0;
      let grads: Map<string, tf.Tensor> = acc;
      let info: StepInfo | null = null;
      try {
        for (let k = 0; k < hosts.length; k++) {
          const h = hosts[k]!;
          if (h.tokens === 0) continue;
          const w = h.tokens / tokens;
          const reported = new Map<string, tf.Tensor>();
          const ctx: LossContext = {
            step,
            micro: k,
            rng,
            report(name, value) {
              reported.get(name)?.dispose();
              reported.set(name, tf.keep(value));
            },
          };
          const batch = toBatch(h);
          let value: tf.Scalar | null = null;
          let g: tf.NamedTensorMap = {};
          try {
            ({ value, grads: g } = tf.variableGrads(() => model.loss(batch, ctx), varList));
            const lv = (await value.data())[0]!;
            if (!Number.isFinite(lv)) {
              throw new UserError(
                `non-finite loss at step ${step + 1} (loss ${lv}, micro-batch ${k}); training stopped` +
                  lastGoodNote(lastCheckpoint),
              );
            }
            loss += w * lv;
            for (const [vname, grad] of Object.entries(g)) {
              const name = nameOfVariable.get(vname);
              if (name === undefined) continue;
              let scaled = grad;
              if (w === 1)
                delete g[vname]; // taken over: not disposed below
              else scaled = tf.tidy(() => tf.mul(grad, tf.scalar(w)));
              const prev = acc.get(name);
              if (prev) {
                acc.set(
                  name,
                  tf.tidy(() => tf.add(prev, scaled)),
                );
                prev.dispose();
                scaled.dispose();
              } else {
                acc.set(name, scaled);
              }
            }
            for (const [name, t] of reported) {
              const v = (await t.data())[0]!;
              metrics[name] = (metrics[name] ?? 0) + w * v;
            }
          } finally {
            value?.dispose();
            for (const t of Object.values(g)) t.dispose();
            for (const t of reported.values()) t.dispose();
            disposeBatch(batch);
          }
        }
        if (acc.size === 0) throw new Error(`training: no gradients at step ${step + 1}`);

        const clipped = clipByGlobalNorm(acc, clipNorm, true);
        grads = clipped.grads;
        if (!Number.isFinite(clipped.norm)) {
          throw new UserError(
            `non-finite gradient norm at step ${step + 1} (loss ${loss}, norm ${clipped.norm}); training stopped` +
              lastGoodNote(lastCheckpoint),
          );
        }
        const lr = lrAt(step, opts.lr, schedule);
        optimizer.apply(grads, lr);
        step += 1;

        const record: LossRecord = { step, loss, lr, gradNorm: clipped.norm };
        history.push(record);
        tail.push(record);
        if (tail.length > historyTail) tail = tail.slice(-historyTail);
        const seconds = (performance.now() - tStep) / 1000;
        info = {
          step,
          totalSteps,
          epoch: step / stepsPerEpoch,
          loss,
          lr,
          gradNorm: clipped.norm,
          tokens,
          inputTokens,
          tokensPerSec: seconds > 0 ? inputTokens / seconds : 0,
          elapsed: elapsed(),
          metrics,
        };
      } finally {
        if (grads !== acc) for (const t of grads.values()) t.dispose();
        for (const t of acc.values()) t.dispose();
      }
      // Gradients are gone: hooks see the steady-state tensor count.
      if (info) await hooks.onStep?.(info);

      if (step === totalSteps) await writeCheckpoint('final');
      else if (cadence.has(step)) await writeCheckpoint('cadence');
    }
    if (
      stopped &&
      (opts.checkpointOnStop ?? true) &&
      step > 0 &&
      lastCheckpointStep(lastCheckpoint) !== step
    ) {
      await writeCheckpoint('stop');
    }
  } finally {
    optimizer.dispose();
  }

  return {
    steps: step,
    totalSteps,
    stepsPerEpoch,
    history,
    checkpoints,
    stopped,
    resumedFrom,
    droppedExamples: dropped,
  };
}

function lastGoodNote(dir: string | null): string {
  return dir ? `; the last good checkpoint is ${dir}` : '; no checkpoint was written before it';
}

function lastCheckpointStep(dir: string | null): number | null {
  const m = dir ? /step-(\d+)$/.exec(dir) : null;
  return m ? Number(m[1]) : null;
}

function restoreParams(model: Trainable, ckpt: LoadedCheckpoint): void {
  const where = `${ckpt.dir}/params.safetensors`;
  for (const [name, v] of model.params) {
    const t = ckpt.params.get(name);
    if (!t) throw new UserError(`${where}: missing parameter ${name}`);
    if (!sameShape(t.shape, v.shape)) {
      throw new UserError(
        `${where}: ${name} has shape [${t.shape.join(', ')}], expected [${v.shape.join(', ')}]`,
      );
    }
    tf.tidy(() => v.assign(tf.tensor(t.data, v.shape, 'float32')));
  }
}

function checkResumable(ckpt: LoadedCheckpoint, hashed: Record<string, unknown>, hash: string): void {
  if (ckpt.state.optionsHash === hash) return;
  const saved = ckpt.state.options ?? {};
  const diff = Object.keys({ ...saved, ...hashed }).filter(
    (k) => stableJson(saved[k]) !== stableJson(hashed[k]),
  );
  throw new UserError(
    `resume: ${ckpt.dir} was written with different training options (${diff.join(', ') || 'hash'}); ` +
      'resume with the original options or start a new run',
  );
}

/** Everything that shapes the trajectory (what a resumed run must share with the saved one). */
function hashedOptions(
  model: Trainable,
  examples: readonly TokenizedExample[],
  data: TrainData,
  opts: TrainOptions,
  r: {
    gradAccum: number;
    clipNorm: number;
    totalSteps: number;
    schedule: ReturnType<typeof resolveSchedule>;
    optimizer: AdamW;
  },
): Record<string, unknown> {
  const params = [...model.params].map(([name, v]) => `${name}:[${v.shape.join(',')}]`);
  return {
    lr: opts.lr,
    schedule: r.schedule,
    betas: [r.optimizer.beta1, r.optimizer.beta2],
    eps: r.optimizer.eps,
    weightDecay: r.optimizer.weightDecay,
    decayed: [...model.params.keys()].filter((n) => r.optimizer.decays(n)),
    clipNorm: r.clipNorm,
    batchSize: opts.batchSize,
    gradAccum: r.gradAccum,
    totalSteps: r.totalSteps,
    seed: opts.seed,
    params,
    data: {
      examples: examples.length,
      hash: hashExamples(examples),
      padId: data.padId,
      maxSeqLen: data.maxSeqLen ?? null,
      padMultiple: data.padMultiple ?? 1,
      shuffle: data.shuffle ?? true,
    },
  };
}

function hashExamples(examples: readonly TokenizedExample[]): string {
  const h = createHash('sha256');
  for (const ex of examples) {
    h.update(Int32Array.from(ex.ids));
    h.update(Uint8Array.from(ex.lossMask, (m) => (m ? 1 : 0)));
    h.update('|');
  }
  return h.digest('hex').slice(0, 16);
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

function stableJson(x: unknown): string {
  if (x === undefined) return 'undefined';
  if (x === null || typeof x !== 'object') return JSON.stringify(x);
  if (Array.isArray(x)) return `[${x.map(stableJson).join(',')}]`;
  const o = x as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
    .join(',')}}`;
}
