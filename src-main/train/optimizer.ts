/**
 * AdamW exactly as PyTorch's `torch.optim.AdamW` computes it (decoupled weight decay,
 * bias correction):
 *   p ← p − lr·λ·p                       (only where `decay(name, shape)` is true)
 *   m ← β1·m + (1 − β1)·g
 *   v ← β2·v + (1 − β2)·g²
 *   p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
 * State is one `m` and one `v` variable per parameter plus the step count `t`.
 */
import { UserError } from '../common/errors.js';
import { tf } from '../tensor/tf.js';

export type DecayPredicate = (name: string, shape: readonly number[]) => boolean;

/** Default: decay matrices, skip 1-D parameters (norm gains, biases, router vectors). */
export const decayMatricesOnly: DecayPredicate = (_name, shape) => shape.length >= 2;

export interface AdamWOptions {
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  decay?: DecayPredicate;
}

interface Slot {
  m: tf.Variable;
  v: tf.Variable;
  decay: boolean;
}

export const EXP_AVG = '.exp_avg';
export const EXP_AVG_SQ = '.exp_avg_sq';

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Number of updates applied so far (t in the bias corrections). */
  step = 0;
  private readonly slots = new Map<string, Slot>();
  private disposed = false;

  constructor(
    private readonly params: Map<string, tf.Variable>,
    opts: AdamWOptions = {},
  ) {
    const [b1, b2] = opts.betas ?? [0.9, 0.999];
    this.beta1 = b1;
    this.beta2 = b2;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1)) {
      throw new UserError(`optimizer.betas must be in [0, 1) (got [${b1}, ${b2}])`);
    }
    if (!(this.eps > 0)) throw new UserError(`optimizer.eps must be > 0 (got ${this.eps})`);
    if (!(this.weightDecay >= 0)) {
      throw new UserError(`optimizer.weightDecay must be ≥ 0 (got ${this.weightDecay})`);
    }
    const decay = opts.decay ?? decayMatricesOnly;
    for (const [name, p] of params) {
      this.slots.set(name, {
        m: zerosVariable(p.shape),
        v: zerosVariable(p.shape),
        decay: decay(name, p.shape),
      });
    }
  }

  /** Whether weight decay applies to `name`. */
  decays(name: string): boolean {
    return this.slots.get(name)?.decay ?? false;
  }

  /**
   * One update with learning rate `lr`. Parameters missing from `grads` are left untouched
   * (their moments do not advance), like PyTorch parameters whose `.grad` is None.
   */
  apply(grads: Map<string, tf.Tensor>, lr: number): void {
    if (this.disposed) throw new Error('AdamW used after dispose');
    this.step += 1;
    const t = this.step;
    const bc1 = 1 - Math.pow(this.beta1, t);
    const bc2Sqrt = Math.sqrt(1 - Math.pow(this.beta2, t));
    const stepSize = lr / bc1;
    const shrink = 1 - lr * this.weightDecay;
    for (const [name, g] of grads) {
      const p = this.params.get(name);
      const slot = this.slots.get(name);
      if (!p || !slot) throw new Error(`AdamW: gradient for unknown parameter ${name}`);
      tf.tidy(() => {
        const m = tf.add(tf.mul(slot.m, tf.scalar(this.beta1)), tf.mul(g, tf.scalar(1 - this.beta1)));
        const v = tf.add(
          tf.mul(slot.v, tf.scalar(this.beta2)),
          tf.mul(tf.square(g), tf.scalar(1 - this.beta2)),
        );
        const denom = tf.add(tf.div(tf.sqrt(v), tf.scalar(bc2Sqrt)), tf.scalar(this.eps));
        let base: tf.Tensor = p;
        if (slot.decay && this.weightDecay !== 0) base = tf.mul(p, tf.scalar(shrink));
        const next = tf.sub(base, tf.mul(tf.div(m, denom), tf.scalar(stepSize)));
        slot.m.assign(m);
        slot.v.assign(v);
        p.assign(next);
      });
    }
  }

  /** Moments as named tensors (`<param>.exp_avg`, `<param>.exp_avg_sq`); the optimizer owns them. */
  stateTensors(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    for (const [name, s] of this.slots) {
      out.set(name + EXP_AVG, s.m);
      out.set(name + EXP_AVG_SQ, s.v);
    }
    return out;
  }

  /** Restore moments (shape-checked) and the step count. */
  loadState(
    tensors: Map<string, { shape: readonly number[]; data: Float32Array }>,
    step: number,
    source = 'optimizer state',
  ): void {
    for (const [name, s] of this.slots) {
      for (const [suffix, variable] of [
        [EXP_AVG, s.m],
        [EXP_AVG_SQ, s.v],
      ] as const) {
        const t = tensors.get(name + suffix);
        if (!t) throw new UserError(`${source}: missing tensor ${name + suffix}`);
        if (!sameShape(t.shape, variable.shape)) {
          throw new UserError(
            `${source}: ${name + suffix} has shape [${t.shape.join(', ')}], expected [${variable.shape.join(', ')}]`,
          );
        }
        tf.tidy(() => variable.assign(tf.tensor(t.data, variable.shape, 'float32')));
      }
    }
    if (!Number.isInteger(step) || step < 0) throw new UserError(`${source}: bad step count ${step}`);
    this.step = step;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const s of this.slots.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.slots.clear();
  }
}

function zerosVariable(shape: number[]): tf.Variable {
  const z = tf.zeros(shape, 'float32');
  const v = tf.variable(z, false);
  z.dispose();
  return v;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
