/**
 * MoE training cost against the dense model of the same base, measured in the same run: the
 * reference model (vocab 256, d 128, 4 layers, 4 heads, SwiGLU 344, T 128, B 16, AdamW through
 * `train()`), as
 *
 *   dense full / ffn / lora   llamaTrainable in each mode (LoRA r 8, α 16, gate/up/down)
 *   dense lora, lazy dW0      dense LoRA with the MLP's frozen W0 products done as the MoE does them
 *                             (plain matMul: no weight gradient for W0; ops.linear always computes one)
 *   lora-moe 8e top-2         8 LoRA experts (r 8) sharing the frozen dense MLP; routers + A/B train
 *   ffn-moe 4e top-2          4 FFN experts copied from the dense MLP; routers + experts train
 *
 * with the load-balancing loss (λ 0.01) on. The variants run in interleaved rounds (the first step of
 * each round dropped) so a change in machine load hits all of them alike. Ratios are of process CPU
 * time (robust on a shared machine when wasm runs one thread: set UPIT_WASM_THREADS=1), median and
 * min. Target: LoRA-MoE ≤ 1.3× the dense LoRA step.
 *
 * First, one MLP block alone (N 2048 tokens, fwd+bwd w.r.t. its input, routers and trained weights):
 * the LoRA expert strategies of model/moe.ts — routed rows ('gather') vs all experts on all tokens
 * ('dense') — and the FFN experts.
 *
 * Env: UPIT_BENCH_BACKEND (default wasm), UPIT_BENCH_ROUNDS (3; 0 = the block only), UPIT_BENCH_STEPS
 * (timed steps per round, 3).
 */
import { Rng } from '../../src-main/common/rng.js';
import type { HostTensor } from '../../src-main/io/host-tensor.js';
import type { LlamaConfig } from '../../src-main/model/config.js';
import { llamaLogits, mlp, type MlpHook } from '../../src-main/model/llama.js';
import { weightsFromHost } from '../../src-main/model/load.js';
import { initLora, loraState, type LoraHost, type LoraSpec } from '../../src-main/model/lora.js';
import {
  disposeMoe,
  ffnExpertsFromDense,
  ffnMoe,
  initRouters,
  loraMoe,
  moeFromHost,
  moeTensors,
  moeTrainLoss,
  route,
  type MoeDispatch,
  type MoeHost,
  type MoeSpec,
} from '../../src-main/model/moe.js';
import { initLlamaWeights } from '../../src-main/model/params.js';
import { useBackend, type BackendName } from '../../src-main/tensor/backend.js';
import { crossEntropy, linear } from '../../src-main/tensor/ops.js';
import { tf } from '../../src-main/tensor/tf.js';
import { llamaTrainable } from '../../src-main/train/llama-trainable.js';
import { train, type Trainable } from '../../src-main/train/trainer.js';
import { referenceConfig } from './train.js';

const T = 128;
const B = 16;
const LORA: LoraSpec = { r: 8, alpha: 16, targets: ['gate_proj', 'up_proj', 'down_proj'] };

/** Wall and process CPU milliseconds (CPU time is what a step costs on a shared, busy machine). */
function clock(): { wall: number; cpu: number } {
  const u = process.cpuUsage();
  return { wall: performance.now(), cpu: (u.user + u.system) / 1000 };
}

interface Timing {
  wall: number[];
  cpu: number[];
}

function add(t: Timing | undefined, wall: number[], cpu: number[]): Timing {
  return { wall: [...(t?.wall ?? []), ...wall], cpu: [...(t?.cpu ?? []), ...cpu] };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** LoRA factors with non-zero B (so the experts differ; PEFT's B = 0 would make them identical). */
function randomLora(cfg: LlamaConfig, rng: Rng): LoraHost {
  const h = initLora(cfg, LORA, rng);
  for (const b of h.B.values()) for (let i = 0; i < b.data.length; i++) b.data[i] = 0.01 * rng.normal();
  return h;
}

interface Bench extends Trainable {
  dispose(): void;
}

/** Routers and experts train; the base (embeddings, attention, norms, head, shared W0) is constant. */
function moeTrainable(
  cfg: LlamaConfig,
  base: Map<string, HostTensor>,
  spec: MoeSpec,
  host: MoeHost,
  dispatch: MoeDispatch,
): Bench {
  const weights = weightsFromHost(base);
  const moe = moeFromHost(spec, host, true);
  const params = moeTensors(moe) as Map<string, tf.Variable>;
  return {
    params,
    loss(batch, ctx) {
      const p = moeTrainLoss(cfg, weights, moe, spec, batch, { auxCoef: 0.01, dispatch });
      ctx.report('aux', p.aux);
      return p.loss;
    },
    dispose() {
      for (const t of weights.values()) t.dispose();
      disposeMoe(moe);
    },
  };
}

/**
 * The dense LoRA model with the MLP's frozen W0 products done as in moe.ts (plain matMul, lazy dW0),
 * through the MLP hook: the like-for-like dense reference for the LoRA-MoE (attention the same in both).
 */
function lazyDenseLoraTrainable(cfg: LlamaConfig, base: Map<string, HostTensor>, init: LoraHost): Bench {
  const weights = weightsFromHost(base);
  const params = new Map<string, tf.Variable>();
  const A = new Map<string, tf.Variable>();
  const Bm = new Map<string, tf.Variable>();
  for (const [m, h] of init.A) {
    A.set(m, tf.variable(tf.tensor(h.data, h.shape)));
    Bm.set(m, tf.variable(tf.tensor(init.B.get(m)!.data, init.B.get(m)!.shape)));
    params.set(`${m}.lora_A`, A.get(m)!);
    params.set(`${m}.lora_B`, Bm.get(m)!);
  }
  const s = LORA.alpha / LORA.r;
  const hook: MlpHook = (layer, u) => {
    const x = tf.reshape(u, [-1, cfg.hiddenSize]);
    const proj = (h: tf.Tensor, p: string): tf.Tensor => {
      const m = `model.layers.${layer}.mlp.${p}`;
      const y = tf.matMul(h as tf.Tensor2D, weights.get(`${m}.weight`) as tf.Tensor2D, false, true);
      return tf.add(y, tf.mul(linear(linear(h, A.get(m)!), Bm.get(m)!), s));
    };
    const g = proj(x, 'gate_proj');
    return tf.reshape(proj(tf.mul(tf.mul(g, tf.sigmoid(g)), proj(x, 'up_proj')), 'down_proj'), u.shape);
  };
  return {
    params,
    loss: (batch) =>
      tf.tidy(() =>
        crossEntropy(llamaLogits(cfg, weights, batch.ids, { mlp: hook }), batch.targets, batch.mask),
      ),
    dispose() {
      for (const t of [...weights.values(), ...A.values(), ...Bm.values()]) t.dispose();
    },
  };
}

/** fwd+bwd times (ms) of `f` (a loss of the listed tensors) over `reps`, after one warm-up. */
function timeGrads(f: () => tf.Scalar, xs: tf.Variable[], reps: number): Timing {
  const t: Timing = { wall: [], cpu: [] };
  for (let i = 0; i <= reps; i++) {
    const t0 = clock();
    const { value, grads } = tf.variableGrads(f, xs);
    value.dataSync();
    tf.dispose([value, ...Object.values(grads)]);
    const t1 = clock();
    if (i > 0) {
      t.wall.push(t1.wall - t0.wall);
      t.cpu.push(t1.cpu - t0.cpu);
    }
  }
  return t;
}

function benchBlock(cfg: LlamaConfig, base: Map<string, HostTensor>, rng: Rng): void {
  const N = B * T;
  const D = cfg.hiddenSize;
  const var2 = (data: Float32Array, shape: number[]) => tf.variable(tf.tensor(data, shape));
  const normal = (n: number, std: number) => Float32Array.from({ length: n }, () => std * rng.normal());
  const u = var2(normal(N * D, 1), [N, D]);
  const R = tf.tensor2d(normal(N * D, 1), [N, D]);
  const w = weightsFromHost(base);
  const W0 = {
    gate: w.get('model.layers.0.mlp.gate_proj.weight')!,
    up: w.get('model.layers.0.mlp.up_proj.weight')!,
    down: w.get('model.layers.0.mlp.down_proj.weight')!,
  };
  const loraSpec8: MoeSpec = { numExperts: 8, topK: 2, kind: 'lora', lora: LORA };
  const lm = moeFromHost(
    loraSpec8,
    { routers: initRouters(cfg, 8, rng, 0.5), lora: Array.from({ length: 8 }, () => randomLora(cfg, rng)) },
    true,
  );
  const ffnSpec4: MoeSpec = { numExperts: 4, topK: 2, kind: 'ffn' };
  const fm = moeFromHost(
    ffnSpec4,
    { routers: initRouters(cfg, 4, rng, 0.5), ffn: ffnExpertsFromDense(cfg, base, 4) },
    true,
  );
  const single = loraState(LORA, randomLora(cfg, rng));
  const loraVars = [...single.A.values(), ...single.B.values()].map((t) => tf.variable(t));
  const singleV = {
    spec: LORA,
    A: new Map([...single.A.keys()].map((k, i) => [k, loraVars[i]!])),
    B: new Map([...single.B.keys()].map((k, i) => [k, loraVars[single.A.size + i]!])),
  };
  const layer0 = (m: Map<string, tf.Tensor>) =>
    [...m].filter(([k]) => k.startsWith('model.layers.0.')).map(([, t]) => t as tf.Variable);
  const loraVars0 = [
    lm.routers[0] as tf.Variable,
    ...lm.lora!.flatMap((l) => [...layer0(l.A), ...layer0(l.B)]),
  ];
  const lazyMlp = (x: tf.Tensor): tf.Tensor => {
    const s = LORA.alpha / LORA.r;
    const proj = (h: tf.Tensor, p: 'gate_proj' | 'up_proj' | 'down_proj', W: tf.Tensor): tf.Tensor => {
      const m = `model.layers.0.mlp.${p}`;
      const y = tf.matMul(h as tf.Tensor2D, W as tf.Tensor2D, false, true);
      return tf.add(y, tf.mul(linear(linear(h, singleV.A.get(m)!), singleV.B.get(m)!), s));
    };
    const g = proj(x, 'gate_proj', W0.gate);
    return proj(tf.mul(tf.mul(g, tf.sigmoid(g)), proj(x, 'up_proj', W0.up)), 'down_proj', W0.down);
  };
  const W0v = { gate: tf.variable(W0.gate), up: tf.variable(W0.up), down: tf.variable(W0.down) };
  const loss = (y: () => tf.Tensor) => () => tf.sum(tf.mul(y(), R)) as tf.Scalar;
  const variants: [string, () => tf.Scalar, tf.Variable[]][] = [
    ['dense MLP', loss(() => mlp(w, 0, u)), [u]],
    ['dense MLP + LoRA', loss(() => mlp(w, 0, u, singleV)), [u, ...loraVars]],
    // what the dense path would cost with the same lazy W0 gradient as the MoE's baseLinear
    ['dense MLP + LoRA, lazy dW0', loss(() => lazyMlp(u)), [u, ...loraVars]],
    // W0 as variables: its weight gradient computed too, as ops.linear does for the dense path
    [
      'LoRA-MoE 8e top-2, gather+dW0',
      loss(() => loraMoe(u, route(u, lm.routers[0]!, 2), W0v, lm.lora!, 0, LORA, 2, 'gather')),
      [u, ...loraVars0, W0v.gate, W0v.up, W0v.down],
    ],
    ...(['gather', 'dense'] as const).map((d): [string, () => tf.Scalar, tf.Variable[]] => [
      `LoRA-MoE 8e top-2, ${d}`,
      loss(() => loraMoe(u, route(u, lm.routers[0]!, 2), W0, lm.lora!, 0, LORA, 2, d)),
      [u, ...loraVars0],
    ]),
    ...(['gather', 'dense'] as const).map((d): [string, () => tf.Scalar, tf.Variable[]] => [
      `FFN-MoE 4e top-2, ${d}`,
      loss(() => ffnMoe(u, route(u, fm.routers[0]!, 2), fm.ffn![0]!, 2, d)),
      [u, fm.routers[0] as tf.Variable, ...fm.ffn![0]!.flatMap((e) => [e.w1, e.w2, e.w3] as tf.Variable[])],
    ]),
  ];
  const times = new Map<string, Timing>();
  const rounds = 8;
  for (let round = 0; round < rounds; round++) {
    for (const [name, f, xs] of variants) {
      const t = timeGrads(f, xs, 1);
      times.set(name, add(times.get(name), t.wall, t.cpu));
    }
  }
  const ref = times.get('dense MLP + LoRA')!.cpu;
  console.log(
    `\none MLP block, N ${N} tokens, fwd+bwd, ${rounds} interleaved rounds; CPU ms median (min) and ratios:`,
  );
  for (const [name, t] of times) {
    const [c, m] = [median(t.cpu), Math.min(...t.cpu)];
    console.log(
      `  ${name.padEnd(28)} ${c.toFixed(1).padStart(7)} (${m.toFixed(1).padStart(5)})   ` +
        `${(c / median(ref)).toFixed(2)}× (${(m / Math.min(...ref)).toFixed(2)}×) dense MLP + LoRA`,
    );
  }
  tf.dispose([
    u,
    R,
    ...w.values(),
    ...loraVars,
    ...single.A.values(),
    ...single.B.values(),
    ...Object.values(W0v),
  ]);
  disposeMoe(lm);
  disposeMoe(fm);
}

export async function benchMoe(): Promise<void> {
  const backend = (process.env['UPIT_BENCH_BACKEND'] ?? 'wasm') as BackendName;
  const rounds = Number(process.env['UPIT_BENCH_ROUNDS'] ?? 3);
  const steps = Number(process.env['UPIT_BENCH_STEPS'] ?? 3);
  const choice = await useBackend(backend);
  const cfg = referenceConfig();
  const rng = new Rng(1);
  const base = initLlamaWeights(cfg, rng);
  console.log(
    `backend ${choice.name} (${choice.detail}); reference model: vocab 256, d 128, 4 layers, 4 heads, ffn 344, ` +
      `T ${T}, B ${B}; LoRA r ${LORA.r}`,
  );
  benchBlock(cfg, base, rng);
  if (rounds < 1) return;

  const examples = Array.from({ length: B * 64 }, () => {
    const ids = Array.from({ length: T + 1 }, () => rng.int(256));
    return { ids, lossMask: ids.map(() => 1) };
  });
  const variants: { name: string; ref?: string; ref2?: string; make: () => Bench }[] = [
    { name: 'dense full', make: () => llamaTrainable(cfg, base, { mode: 'full' }) },
    { name: 'dense ffn', make: () => llamaTrainable(cfg, base, { mode: 'ffn' }) },
    {
      name: 'dense lora',
      make: () =>
        llamaTrainable(cfg, base, { mode: 'lora', lora: { spec: LORA, init: randomLora(cfg, rng) } }),
    },
    { name: 'dense lora, lazy dW0', make: () => lazyDenseLoraTrainable(cfg, base, randomLora(cfg, rng)) },
    {
      name: 'lora-moe 8e top-2',
      ref: 'dense lora',
      ref2: 'dense lora, lazy dW0',
      make: () =>
        moeTrainable(
          cfg,
          base,
          { numExperts: 8, topK: 2, kind: 'lora', lora: LORA },
          { routers: initRouters(cfg, 8, rng), lora: Array.from({ length: 8 }, () => randomLora(cfg, rng)) },
          'gather',
        ),
    },
    {
      name: 'ffn-moe 4e top-2',
      ref: 'dense ffn',
      make: () =>
        moeTrainable(
          cfg,
          base,
          { numExperts: 4, topK: 2, kind: 'ffn' },
          { routers: initRouters(cfg, 4, rng), ffn: ffnExpertsFromDense(cfg, base, 4) },
          'gather',
        ),
    },
  ];
  const times = new Map<string, Timing>();
  for (let round = 0; round < rounds; round++) {
    for (const v of variants) {
      const model = v.make();
      const wall: number[] = [];
      const cpu: number[] = [];
      let last = clock();
      await train(
        model,
        { examples, padId: 0, maxSeqLen: T, shuffle: false },
        { lr: 1e-4, batchSize: B, maxSteps: steps + 1, seed: round, schedule: 'constant' },
        {
          onStep: () => {
            const now = clock();
            wall.push(now.wall - last.wall);
            cpu.push(now.cpu - last.cpu);
            last = now;
          },
        },
      );
      model.dispose();
      tf.disposeVariables();
      times.set(v.name, add(times.get(v.name), wall.slice(1), cpu.slice(1)));
    }
  }
  console.log(
    `\ntraining step (AdamW, clip 1.0, load-balancing loss on), ${rounds} interleaved rounds × ${steps} steps; ` +
      'ratios of CPU time, median (min):',
  );
  console.log(`  ${''.padEnd(20)}  wall s/step   CPU s/step median (min)   tok/s`);
  const stat = new Map([...times].map(([k, t]) => [k, { med: median(t.cpu), min: Math.min(...t.cpu) }]));
  const ratio = (a: string, b: string): string => {
    const x = stat.get(a)!;
    const y = stat.get(b)!;
    return `${(x.med / y.med).toFixed(2)}× (${(x.min / y.min).toFixed(2)}×) ${b}`;
  };
  for (const v of variants) {
    const t = times.get(v.name)!;
    const c = stat.get(v.name)!;
    const w = median(t.wall);
    console.log(
      `  ${v.name.padEnd(20)} ${(w / 1000).toFixed(3).padStart(10)} ${(c.med / 1000).toFixed(3).padStart(12)} ` +
        `(${(c.min / 1000).toFixed(3)}) ${((B * T) / (w / 1000)).toFixed(0).padStart(10)}   ${ratio(v.name, 'dense full')}` +
        (v.ref ? `   ${ratio(v.name, v.ref)}` : '') +
        (v.ref2 ? `   ${ratio(v.name, v.ref2)}` : ''),
    );
  }
}
