/**
 * Learning-rate schedules as pure functions of the optimizer step.
 *
 * `step` is the 0-based index of the update being made (the first update is step 0).
 * Warm-up is linear and reaches the peak on the last warm-up step:
 *   lr(s) = base · (s + 1) / W                                  for s < W
 *   lr(s) = base · (m + (1 − m) · ½(1 + cos(π · (s − W) / (T − W))))   for s ≥ W   (cosine)
 *   lr(s) = base                                                 for s ≥ W   (constant)
 * with W warm-up steps, T total steps, m = minLrRatio. lr(W) = base, lr(T) = m · base.
 */
import { UserError } from '../common/errors.js';

export type ScheduleKind = 'cosine' | 'constant';

export interface ScheduleSpec {
  kind: ScheduleKind;
  /** Fraction of the total steps spent warming up (cosine default 0.03, constant default 0). */
  warmupRatio?: number;
  /** Explicit warm-up length; wins over `warmupRatio`. */
  warmupSteps?: number;
  /** Final learning rate as a fraction of the peak (cosine only; default 0). */
  minLrRatio?: number;
}

export interface ResolvedSchedule {
  kind: ScheduleKind;
  totalSteps: number;
  warmupSteps: number;
  minLrRatio: number;
}

export function resolveSchedule(spec: ScheduleSpec | ScheduleKind, totalSteps: number): ResolvedSchedule {
  const s: ScheduleSpec = typeof spec === 'string' ? { kind: spec } : spec;
  if (s.kind !== 'cosine' && s.kind !== 'constant') {
    throw new UserError(`schedule: unknown kind '${String(s.kind)}' (cosine or constant)`);
  }
  if (!Number.isInteger(totalSteps) || totalSteps < 1) {
    throw new UserError(`schedule: total steps must be a positive integer (got ${totalSteps})`);
  }
  const ratio = s.warmupRatio ?? (s.kind === 'cosine' ? 0.03 : 0);
  if (!(ratio >= 0 && ratio <= 1))
    throw new UserError(`schedule.warmupRatio must be in [0, 1] (got ${ratio})`);
  let warmupSteps = s.warmupSteps ?? Math.ceil(ratio * totalSteps);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) {
    throw new UserError(`schedule.warmupSteps must be a non-negative integer (got ${s.warmupSteps})`);
  }
  warmupSteps = Math.min(warmupSteps, totalSteps);
  const minLrRatio = s.minLrRatio ?? 0;
  if (!(minLrRatio >= 0 && minLrRatio <= 1)) {
    throw new UserError(`schedule.minLrRatio must be in [0, 1] (got ${minLrRatio})`);
  }
  return { kind: s.kind, totalSteps, warmupSteps, minLrRatio };
}

/** Learning rate for the 0-based update `step`. */
export function lrAt(step: number, baseLr: number, sch: ResolvedSchedule): number {
  const w = sch.warmupSteps;
  if (step < w) return (baseLr * (step + 1)) / w;
  if (sch.kind === 'constant') return baseLr;
  const span = Math.max(1, sch.totalSteps - w);
  const progress = Math.min(1, (step - w) / span);
  const m = sch.minLrRatio;
  return baseLr * (m + (1 - m) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}
