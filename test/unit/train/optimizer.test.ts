import { beforeAll, describe, expect, it } from 'vitest';

import { tf } from '../../../src-main/tensor/tf.js';
import { AdamW } from '../../../src-main/train/optimizer.js';
import { setupCpu } from './toy.js';

beforeAll(setupCpu);

function variable(data: number[], shape: number[], name: string): tf.Variable {
  const t = tf.tensor(data, shape);
  const v = tf.variable(t, true, name);
  t.dispose();
  return v;
}

/** Reference AdamW in float64 (PyTorch's formulation). */
function reference(
  p: number[],
  grads: number[][],
  o: { lr: number[]; b1: number; b2: number; eps: number; wd: number },
): number[] {
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  const x = [...p];
  grads.forEach((g, k) => {
    const t = k + 1;
    const lr = o.lr[k]!;
    for (let i = 0; i < x.length; i++) {
      x[i] = x[i]! * (1 - lr * o.wd);
      m[i] = o.b1 * m[i]! + (1 - o.b1) * g[i]!;
      v[i] = o.b2 * v[i]! + (1 - o.b2) * g[i]! * g[i]!;
      const mh = m[i]! / (1 - o.b1 ** t);
      const vh = v[i]! / (1 - o.b2 ** t);
      x[i] = x[i]! - (lr * mh) / (Math.sqrt(vh) + o.eps);
    }
  });
  return x;
}

describe('AdamW', () => {
  it('one step matches the hand computation (bias correction, decoupled decay)', () => {
    const w = variable([1, -2, 0.5, 3], [2, 2], 'opt-w1');
    const opt = new AdamW(new Map([['w', w]]), { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.1 });
    const g = tf.tensor([0.5, -1, 2, 0], [2, 2]);
    opt.apply(new Map([['w', g]]), 0.01);
    // Step 1: m̂ = g, v̂ = g², update = lr·g/(|g|+eps); decay first: p·(1 − lr·wd).
    const expected = [1, -2, 0.5, 3].map((p, i) => {
      const gi = [0.5, -1, 2, 0][i]!;
      return p * (1 - 0.01 * 0.1) - (0.01 * gi) / (Math.abs(gi) + 1e-8);
    });
    const got = [...w.dataSync()];
    got.forEach((x, i) => expect(x).toBeCloseTo(expected[i]!, 6));
    // Hand values: 1·0.999 − 0.01 = 0.989; 3·0.999 − 0 = 2.997.
    expect(got[0]).toBeCloseTo(0.989, 6);
    expect(got[3]).toBeCloseTo(2.997, 6);
    expect(opt.step).toBe(1);
    g.dispose();
    opt.dispose();
    w.dispose();
  });

  it('three steps match a float64 reference with changing lr', () => {
    const p0 = [0.3, -0.7, 1.1, 0.05, -0.2, 0.9];
    const w = variable(p0, [3, 2], 'opt-w2');
    const gs = [
      [0.1, -0.2, 0.3, 0.0, 0.5, -0.05],
      [-0.3, 0.1, 0.2, 0.4, -0.1, 0.02],
      [0.05, 0.05, -0.6, 0.1, 0.2, 0.3],
    ];
    const lrs = [1e-2, 5e-3, 2e-3];
    const o = { b1: 0.8, b2: 0.95, eps: 1e-6, wd: 0.05 };
    const opt = new AdamW(new Map([['w', w]]), { betas: [o.b1, o.b2], eps: o.eps, weightDecay: o.wd });
    gs.forEach((g, k) => {
      const t = tf.tensor(g, [3, 2]);
      opt.apply(new Map([['w', t]]), lrs[k]!);
      t.dispose();
    });
    const expected = reference(p0, gs, { lr: lrs, ...o });
    [...w.dataSync()].forEach((x, i) => expect(x).toBeCloseTo(expected[i]!, 6));
    opt.dispose();
    w.dispose();
  });

  it('skips weight decay for 1-D parameters by default, and the predicate is configurable', () => {
    const gain = variable([1, 1], [2], 'opt-gain');
    const mat = variable([1, 1], [1, 2], 'opt-mat');
    const params = new Map([
      ['norm.weight', gain],
      ['proj.weight', mat],
    ]);
    const opt = new AdamW(params, { weightDecay: 0.5 });
    expect(opt.decays('norm.weight')).toBe(false);
    expect(opt.decays('proj.weight')).toBe(true);
    const zero = tf.zeros([2]);
    const zero2 = tf.zeros([1, 2]);
    opt.apply(
      new Map([
        ['norm.weight', zero],
        ['proj.weight', zero2],
      ]),
      0.1,
    );
    expect([...gain.dataSync()]).toEqual([1, 1]);
    [...mat.dataSync()].forEach((x) => expect(x).toBeCloseTo(0.95, 6));
    opt.dispose();

    const opt2 = new AdamW(params, { weightDecay: 0.5, decay: (name) => name.startsWith('norm') });
    expect(opt2.decays('norm.weight')).toBe(true);
    expect(opt2.decays('proj.weight')).toBe(false);
    opt2.dispose();
    zero.dispose();
    zero2.dispose();
    gain.dispose();
    mat.dispose();
  });

  it('state round-trips through stateTensors/loadState', () => {
    const w = variable([1, 2, 3, 4], [2, 2], 'opt-w3');
    const opt = new AdamW(new Map([['w', w]]));
    const g = tf.tensor([1, -1, 0.5, 2], [2, 2]);
    opt.apply(new Map([['w', g]]), 0.1);
    const state = opt.stateTensors();
    expect([...state.keys()]).toEqual(['w.exp_avg', 'w.exp_avg_sq']);
    const host = new Map(
      [...state].map(([k, t]) => [
        k,
        { shape: t.shape, data: Float32Array.from(t.dataSync() as Float32Array) },
      ]),
    );
    const w2 = variable([1, 2, 3, 4], [2, 2], 'opt-w4');
    const opt2 = new AdamW(new Map([['w', w2]]));
    opt2.loadState(host, opt.step);
    expect(opt2.step).toBe(1);
    expect([...opt2.stateTensors().get('w.exp_avg')!.dataSync()]).toEqual([...host.get('w.exp_avg')!.data]);
    expect(() => opt2.loadState(new Map(), 1)).toThrow(/missing tensor w.exp_avg/);
    g.dispose();
    opt.dispose();
    opt2.dispose();
    w.dispose();
    w2.dispose();
  });

  it('leaves the tensor count flat across steps', () => {
    const w = variable([1, 2, 3, 4], [2, 2], 'opt-w5');
    const opt = new AdamW(new Map([['w', w]]), { weightDecay: 0.1 });
    const g = tf.tensor([1, -1, 0.5, 2], [2, 2]);
    opt.apply(new Map([['w', g]]), 0.1);
    const n = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) opt.apply(new Map([['w', g]]), 0.1);
    expect(tf.memory().numTensors).toBe(n);
    g.dispose();
    opt.dispose();
    w.dispose();
  });
});
