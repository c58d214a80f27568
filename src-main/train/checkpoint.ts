/**
 * Training checkpoints. Layout:
 *
 *   <outDir>/checkpoints/step-000123/
 *     params.safetensors      trainable parameters under their model (HF) names, F32
 *     optimizer.safetensors   AdamW moments: `<name>.exp_avg`, `<name>.exp_avg_sq`, F32
 *     trainer-state.json      step, epoch, data cursor, rng state, options hash, loss tail
 *     …                       extra files the caller asked for (config.json, adapter spec)
 *
 * A checkpoint is assembled as `step-000123.tmp-<pid>` and renamed into place, so a
 * directory under its final name is always complete.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { UserError, fileError } from '../common/errors.js';
import { fsyncDir, writeFileAtomic } from '../io/atomic.js';
import type { HostTensor } from '../io/host-tensor.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import type { tf } from '../tensor/tf.js';
import type { DataCursor } from './batches.js';

export const PARAMS_FILE = 'params.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const STATE_FILE = 'trainer-state.json';
export const STATE_FORMAT = 'upit-trainer-state';

export interface LossRecord {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
}

export interface TrainerState {
  format: typeof STATE_FORMAT;
  version: 1;
  /** Optimizer steps completed. */
  step: number;
  /** Fractional epochs completed (step / stepsPerEpoch). */
  epoch: number;
  totalSteps: number;
  stepsPerEpoch: number;
  /** Next example: order(cursor.epoch)[cursor.position]. */
  cursor: DataCursor;
  /** State of the trainer's Rng (the one handed to the loss), 4 uint32 words. */
  rng: number[];
  /** AdamW's t. */
  optimizerStep: number;
  /** sha256 of the options that shape the trajectory, and those options. */
  optionsHash: string;
  options: Record<string, unknown>;
  /** Seconds of training before this checkpoint (across resumes). */
  elapsed: number;
  /** The most recent steps. */
  history: LossRecord[];
  savedAt: string;
}

export interface CheckpointRef {
  step: number;
  dir: string;
}

export interface LoadedCheckpoint {
  dir: string;
  state: TrainerState;
  params: Map<string, HostTensor>;
  optimizer: Map<string, HostTensor>;
}

export function checkpointsRoot(outDir: string): string {
  return join(outDir, 'checkpoints');
}

export function checkpointDirName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

const FINAL_NAME = /^step-(\d{6,})$/;
const TMP_NAME = /^step-\d{6,}\.(?:tmp|old)-(\d+)$/;

/** Complete checkpoints under `outDir`, oldest first. */
export async function listCheckpoints(outDir: string): Promise<CheckpointRef[]> {
  const root = checkpointsRoot(outDir);
  let names: string[];
  try {
    names = await readdir(root);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: CheckpointRef[] = [];
  for (const name of names) {
    const m = FINAL_NAME.exec(name);
    if (!m) continue;
    const dir = join(root, name);
    if (!existsSync(join(dir, STATE_FILE))) continue;
    out.push({ step: Number(m[1]), dir });
  }
  return out.sort((a, b) => a.step - b.step);
}

export async function latestCheckpoint(outDir: string): Promise<CheckpointRef | null> {
  const all = await listCheckpoints(outDir);
  return all[all.length - 1] ?? null;
}

export interface SaveCheckpointInput {
  step: number;
  params: Map<string, tf.Tensor>;
  optimizer: Map<string, tf.Tensor>;
  state: Omit<TrainerState, 'format' | 'version' | 'savedAt'>;
  /** Extra files (name → content) placed in the checkpoint directory. */
  files?: Record<string, string | Uint8Array>;
  metadata?: Record<string, string>;
}

/** Write a checkpoint atomically; returns its directory. */
export async function saveCheckpoint(outDir: string, input: SaveCheckpointInput): Promise<string> {
  const root = checkpointsRoot(outDir);
  await mkdir(root, { recursive: true });
  await removeStaleTemporaries(root);
  const name = checkpointDirName(input.step);
  const finalDir = join(root, name);
  const tmpDir = join(root, `${name}.tmp-${process.pid}`);
  await rm(tmpDir, { recursive: true, force: true });
  await mkdir(tmpDir);
  try {
    const meta = { format: 'upit-checkpoint', step: String(input.step), ...input.metadata };
    writeSafetensors(join(tmpDir, PARAMS_FILE), await toHost(input.params), { dtype: 'F32', metadata: meta });
    writeSafetensors(join(tmpDir, OPTIMIZER_FILE), await toHost(input.optimizer), {
      dtype: 'F32',
      metadata: { ...meta, optimizer: 'adamw', t: String(input.state.optimizerStep) },
    });
    for (const [file, content] of Object.entries(input.files ?? {})) {
      if (file.includes('/') || file.includes('\\') || file === STATE_FILE || file.startsWith('.')) {
        throw new UserError(`checkpoint: extra file name '${file}' is not allowed`);
      }
      writeFileAtomic(join(tmpDir, file), content);
    }
    const state: TrainerState = {
      format: STATE_FORMAT,
      version: 1,
      ...input.state,
      savedAt: new Date().toISOString(),
    };
    writeFileAtomic(join(tmpDir, STATE_FILE), JSON.stringify(state, null, 2) + '\n');
    if (existsSync(finalDir)) {
      // Same step written before (e.g. a run resumed from an earlier checkpoint): move the
      // old one aside first; the final name is briefly absent but never partial.
      const old = join(root, `${name}.old-${process.pid}`);
      await rm(old, { recursive: true, force: true });
      await rename(finalDir, old);
      await rename(tmpDir, finalDir);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(tmpDir, finalDir);
    }
    fsyncDir(root);
  } catch (e) {
    await rm(tmpDir, { recursive: true, force: true });
    throw e;
  }
  return finalDir;
}

/** Read a checkpoint directory (all three files, validated). */
export async function loadCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  const statePath = join(dir, STATE_FILE);
  let st;
  try {
    st = await stat(dir);
  } catch {
    throw fileError(dir, 'checkpoint directory not found');
  }
  if (!st.isDirectory()) throw fileError(dir, 'not a checkpoint directory');
  let raw: string;
  try {
    raw = await readFile(statePath, 'utf8');
  } catch {
    throw fileError(statePath, 'missing trainer state (not a complete checkpoint)');
  }
  let state: TrainerState;
  try {
    state = JSON.parse(raw) as TrainerState;
  } catch (e) {
    throw fileError(statePath, `invalid JSON (${(e as Error).message})`);
  }
  validateState(state, statePath);
  const params = readSafetensors(join(dir, PARAMS_FILE)).tensors;
  const optimizer = readSafetensors(join(dir, OPTIMIZER_FILE)).tensors;
  return { dir, state, params, optimizer };
}

/** Delete all but the newest `keep` checkpoints. */
export async function pruneCheckpoints(outDir: string, keep: number): Promise<void> {
  const all = await listCheckpoints(outDir);
  for (const c of all.slice(0, Math.max(0, all.length - keep))) {
    await rm(c.dir, { recursive: true, force: true });
  }
}

function validateState(s: TrainerState, where: string): void {
  const bad = (field: string): never => {
    throw fileError(where, `field '${field}' is missing or invalid`);
  };
  if (s === null || typeof s !== 'object') throw fileError(where, 'not an object');
  if (s.format !== STATE_FORMAT) bad('format');
  if (s.version !== 1) throw fileError(where, `unsupported version ${String(s.version)}`);
  const isInt = (x: unknown): boolean => Number.isInteger(x) && (x as number) >= 0;
  if (!isInt(s.step)) bad('step');
  if (!isInt(s.totalSteps)) bad('totalSteps');
  if (!isInt(s.stepsPerEpoch)) bad('stepsPerEpoch');
  if (!isInt(s.optimizerStep)) bad('optimizerStep');
  if (!s.cursor || !isInt(s.cursor.epoch) || !isInt(s.cursor.position)) bad('cursor');
  if (!Array.isArray(s.rng) || s.rng.length !== 4 || !s.rng.every((w) => isInt(w) && w <= 0xffffffff))
    bad('rng');
  if (typeof s.optionsHash !== 'string') bad('optionsHash');
  if (!Array.isArray(s.history)) bad('history');
  if (typeof s.elapsed !== 'number') bad('elapsed');
}

async function toHost(tensors: Map<string, tf.Tensor>): Promise<[string, HostTensor][]> {
  const out: [string, HostTensor][] = [];
  for (const [name, t] of tensors) {
    if (t.dtype !== 'float32') throw new Error(`checkpoint: ${name} is ${t.dtype}, expected float32`);
    out.push([name, { shape: [...t.shape], data: (await t.data()) as Float32Array }]);
  }
  return out;
}

/** Temporaries left by processes that died mid-write. */
async function removeStaleTemporaries(root: string): Promise<void> {
  for (const name of await readdir(root)) {
    const m = TMP_NAME.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || isAlive(pid)) continue;
    const finalDir = join(root, name.slice(0, name.lastIndexOf('.')));
    if (name.includes('.old-') && !existsSync(finalDir)) {
      // Died between moving the old checkpoint aside and renaming the new one in.
      await rename(join(root, name), finalDir);
      continue;
    }
    await rm(join(root, name), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
