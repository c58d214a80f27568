/**
 * The Mixture-of-Experts FFN block (DESIGN §4), as Hugging Face `MixtralSparseMoeBlock` computes it,
 * plugged into the dense forward through `MlpHook` (the attention, norms and head are the Llama's):
 *
 *   u        [N, D]   post-attention-norm hidden states of the N = B·T tokens
 *   logits   = u·W_rᵀ                       W_r [n, D]: one router per FFN block
 *   p        = softmax(logits)              [N, n] (float32)
 *   top-k    = the k largest p per token; g = p_top / Σ p_top   (renormalised over the k)
 *   y        = Σ_{j ∈ top-k} g_j · Expert_j(u)
 *
 * Two kinds of experts:
 *
 *   ffn   Expert_j(u) = w2_j(silu(w1_j u) ⊙ w3_j u)  (Mixtral names: w1 = gate_proj [F,D],
 *         w2 = down_proj [D,F], w3 = up_proj [F,D]).
 *   lora  every expert shares the dense MLP W0 and adds its own low-rank factors on the adapted
 *         projections: P_j(x) = W0_P x + s·B_j A_j x, s = α/r (PEFT).
 *
 * Dispatch ('gather', the default): the router's top-k choice is read on the host (one sync), the
 * N·k (token, expert) slots are sorted by expert (counting sort), the routed rows are gathered once
 * and split into one contiguous block per expert, each expert runs on its own block only, and the
 * results go back to token order with k gathers (each token's j-th choice) summed, weighted by the
 * gates. top-2 of 8 thus costs 2 experts per token, not 8. Every step is differentiable without
 * UnsortedSegmentSum's slow paths: the two row moves are each other's gradient (custom gradients
 * made of gathers), split's gradient is concat, and the gates are `topk(p).values / Σ` (our TopK
 * gradient), so the router learns through the gates and each expert through its block. An expert that
 * receives no token is not run at all (and gets no gradient). 'dense' runs every expert on every
 * token with zero gates outside the top-k: no host read-back (for backends where one is costly, e.g.
 * webgpu) and the reference the tests compare the gather path against.
 *
 * LoRA experts, how they are computed:
 *
 *   - The W0 parts once per token, never per expert: gate and up as W0 u on all N tokens (as the
 *     dense model), then gathered to the N·k slots; down on the gate-weighted sum of the slots'
 *     hidden activations, since Σ_j g_j W0_d h_j = W0_d (Σ_j g_j h_j). (The gates sum to 1, so for a
 *     linear expert the whole W0 path would collapse to W0 u; the SwiGLU nonlinearity sits between
 *     gate/up and down, so only down's W0 comes out of the sum.) W0 is multiplied with a plain
 *     `tf.matMul`, whose gradient is lazy: frozen, it costs no weight gradient (`baseLinear`).
 *   - Per expert only the low-rank paths, on the expert's routed rows: s·(x_e A_eᵀ) B_eᵀ, scaled on
 *     the rank-r side, the A's of gate and up as one [2r, D] product (≈ 4·N·k·r·(D+F) MACs in all,
 *     a tenth of the dense MLP's).
 *   - SwiGLU and the gate weighting at the N·k slots are one custom op with a hand-written backward
 *     (`swiglu`): at the slots these full-size elementwise passes, not the matmuls, dominate on wasm.
 *   - Measured (test/bench/moe.ts, wasm, 1 thread; reference shapes D 128, F 344, r 8, 8 experts
 *     top-2, N 2048 tokens; one block fwd+bwd, CPU time, median of 8 interleaved rounds): routed
 *     rows ('gather') 229 ms; every expert's low-rank paths and SwiGLU on every token ('dense',
 *     n/k = 4× the slot work, and down's A must read each expert's own [N, F] activations) 516 ms,
 *     2.3× slower; the dense MLP + one LoRA 173 ms (138 ms with the lazy W0 gradient). So 'gather'.
 *
 * Load balancing (Stage 4, DESIGN §5): `loadBalancingLoss` = n·Σ_i f_i·P_i with f_i the share of the
 * N·k top-k slots routed to expert i (uniform routing gives 1; HF's Mixtral sums over the k choices
 * instead, which is k times this) and P_i the mean router probability. `RoutingCollector` keeps each
 * layer's router tensors alive past the forward pass's `tidy` so the losses can be taken from them.
 */
import type { HostTensor } from '../io/host-tensor.js';
import { crossEntropy, linear } from '../tensor/ops.js';
import { tf } from '../tensor/tf.js';
import type { Rng } from '../common/rng.js';
import type { LlamaConfig } from './config.js';
import { llamaLogits, type MlpHook } from './llama.js';
import {
  loraModules,
  loraScale,
  validateLoraSpec,
  type LoraHost,
  type LoraSpec,
  type LoraState,
} from './lora.js';
import { MLP_PROJ, need, projModule, projShape, type Weights } from './params.js';

export type MoeKind = 'ffn' | 'lora';

export interface MoeSpec {
  numExperts: number;
  topK: number;
  kind: MoeKind;
  /** LoRA experts: r, α and the adapted MLP projections (gate_proj, up_proj, down_proj). */
  lora?: LoraSpec;
}

/** One FFN expert (Mixtral names): w1 = gate_proj [F, D], w2 = down_proj [D, F], w3 = up_proj [F, D]. */
export interface FfnExpert<T = tf.Tensor> {
  w1: T;
  w2: T;
  w3: T;
}

export interface MoeWeights {
  /** Per layer, [n, D] (Mixtral's `block_sparse_moe.gate.weight`). */
  routers: tf.Tensor[];
  /** FFN experts, [layer][expert]. */
  ffn?: FfnExpert[][];
  /** LoRA experts, [expert]: factors keyed by module (`model.layers.{i}.mlp.gate_proj`), as LoraState. */
  lora?: LoraState[];
}

/** The same on the host (files, checkpoints). */
export interface MoeHost {
  routers: HostTensor[];
  ffn?: FfnExpert<HostTensor>[][];
  lora?: LoraHost[];
}

export type MoeDispatch = 'gather' | 'dense';

/** Called once per MoE layer and forward pass; the tensors die with the forward's tidy unless kept. */
export type RoutingCallback = (
  layer: number,
  /** Router probabilities [N, n] (differentiable w.r.t. the router and everything before it). */
  probs: tf.Tensor2D,
  /** int32 [N, k], the chosen experts, most probable first. */
  topIdx: tf.Tensor2D,
  /** Router logits [N, n] (for the z-loss). */
  logits: tf.Tensor2D,
) => void;

export interface MoeHookOptions {
  onRouting?: RoutingCallback;
  /** 'gather' (default): run each expert on its routed rows only. 'dense': every expert on every row. */
  dispatch?: MoeDispatch;
}

// ---------------------------------------------------------------------------------------------------
// Validation

const MLP_TARGETS: readonly string[] = MLP_PROJ;

export function validateMoeSpec(spec: MoeSpec, where = 'moe'): void {
  const bad = (msg: string): Error => new Error(`${where}: ${msg}`);
  if (!Number.isSafeInteger(spec.numExperts) || spec.numExperts < 1)
    throw bad(`numExperts must be a positive integer, got ${spec.numExperts}`);
  if (!Number.isSafeInteger(spec.topK) || spec.topK < 1 || spec.topK > spec.numExperts)
    throw bad(`topK must be an integer in [1, ${spec.numExperts}], got ${spec.topK}`);
  if (spec.kind === 'lora') {
    if (!spec.lora) throw bad("kind 'lora' needs a lora spec");
    validateLoraSpec(spec.lora, where);
    for (const t of spec.lora.targets) {
      if (!MLP_TARGETS.includes(t))
        throw bad(`LoRA experts adapt MLP projections only (${MLP_PROJ.join(', ')}), not ${t}`);
    }
  } else if (spec.kind !== 'ffn') {
    throw bad(`kind must be 'ffn' or 'lora', got ${String(spec.kind)}`);
  }
}

function sameShape(t: { shape: readonly number[] }, shape: readonly number[]): boolean {
  return t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]);
}

/** Checks every tensor of `moe` is present with its shape for `cfg` and `spec` (names the first bad one). */
export function validateMoeWeights(cfg: LlamaConfig, spec: MoeSpec, moe: MoeWeights | MoeHost): void {
  validateMoeSpec(spec);
  const n = spec.numExperts;
  const L = cfg.numLayers;
  const D = cfg.hiddenSize;
  const F = cfg.intermediateSize;
  const check = (what: string, t: { shape: readonly number[] } | undefined, shape: number[]): void => {
    if (t === undefined) throw new Error(`moe: missing ${what}`);
    if (!sameShape(t, shape))
      throw new Error(`moe: ${what} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
  };
  if (moe.routers.length !== L) throw new Error(`moe: ${moe.routers.length} routers for ${L} layers`);
  moe.routers.forEach((r, i) => check(`router of layer ${i}`, r, [n, D]));
  if (spec.kind === 'ffn') {
    if (!moe.ffn || moe.ffn.length !== L) throw new Error(`moe: FFN experts needed for each of ${L} layers`);
    moe.ffn.forEach((layer, i) => {
      if (layer.length !== n)
        throw new Error(`moe: layer ${i} has ${layer.length} FFN experts, expected ${n}`);
      layer.forEach((e, j) => {
        check(`layer ${i} expert ${j} w1`, e.w1, [F, D]);
        check(`layer ${i} expert ${j} w2`, e.w2, [D, F]);
        check(`layer ${i} expert ${j} w3`, e.w3, [F, D]);
      });
    });
  } else {
    if (!moe.lora || moe.lora.length !== n) throw new Error(`moe: ${n} LoRA experts needed`);
    const mods = loraModules(cfg, spec.lora!);
    moe.lora.forEach((ex, j) => {
      for (const { module, a, b } of mods) {
        check(`expert ${j} ${module} lora_A`, ex.A.get(module), a);
        check(`expert ${j} ${module} lora_B`, ex.B.get(module), b);
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------------
// Routing

export interface Routing {
  logits: tf.Tensor2D;
  probs: tf.Tensor2D;
  /** Renormalised top-k gates [N, k]. */
  gates: tf.Tensor2D;
  topIdx: tf.Tensor2D;
}

/** Router logits, probabilities, top-k choice and renormalised gates for rows `u2` [N, D]. */
export function route(u2: tf.Tensor, router: tf.Tensor, topK: number): Routing {
  return tf.tidy(() => {
    const logits = linear(u2, router) as tf.Tensor2D;
    const probs = tf.softmax(logits) as tf.Tensor2D;
    const { values, indices } = tf.topk(probs, topK, true);
    const gates = tf.div(values, tf.sum(values, -1, true)) as tf.Tensor2D;
    return { logits, probs, gates, topIdx: indices as tf.Tensor2D };
  });
}

/**
 * The N·k (token, choice) slots sorted by expert: slot s = t·k + j is token t's j-th choice; the
 * sorted order lists the slots expert by expert, tokens ascending within an expert.
 */
export interface RoutingTable {
  /** Rows per expert. */
  counts: number[];
  /** Token of each sorted slot [N·k]. */
  token: Int32Array;
  /** Token-major slot index t·k + j of each sorted slot [N·k]. */
  slot: Int32Array;
  /** Sorted position of each token-major slot [N·k] (the inverse permutation of `slot`). */
  position: Int32Array;
}

export function routingTable(
  topIdx: ArrayLike<number>,
  numTokens: number,
  n: number,
  k: number,
): RoutingTable {
  const S = numTokens * k;
  if (topIdx.length !== S)
    throw new Error(`routingTable: ${topIdx.length} choices for ${numTokens}×${k} slots`);
  const counts = new Array<number>(n).fill(0);
  for (let s = 0; s < S; s++) {
    const e = topIdx[s]!;
    if (!(e >= 0 && e < n)) throw new Error(`routingTable: expert index ${e} outside [0, ${n})`);
    counts[e]!++;
  }
  const next = new Array<number>(n);
  for (let e = 0, o = 0; e < n; e++) {
    next[e] = o;
    o += counts[e]!;
  }
  const token = new Int32Array(S);
  const slot = new Int32Array(S);
  const position = new Int32Array(S);
  for (let s = 0; s < S; s++) {
    const p = next[topIdx[s]!]!++;
    token[p] = Math.floor(s / k);
    slot[p] = s;
    position[s] = p;
  }
  return { counts, token, slot, position };
}

type GradFn = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];

/** `tf.customGrad` with honest types: `f(...inputs, save)` returns the value and the input gradients. */
function customOp<A extends tf.Tensor[]>(
  f: (...args: [...A, tf.GradSaveFunc]) => { value: tf.Tensor; gradFunc: GradFn },
): (...inputs: A) => tf.Tensor {
  return tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (
    ...inputs: A
  ) => tf.Tensor;
}

/**
 * SwiGLU `silu(g) ⊙ u`, optionally times a per-row scale `c` [S, 1] (the gates), with a hand-written
 * backward: d/dg silu = σ + silu·(1 − σ). Autodiff of the same expression takes about twice the
 * full-size elementwise passes (plus a float32 cast per product), and at the N·k routed slots these
 * passes, not the matmuls, dominate the MoE block's time on wasm.
 */
const swigluCore = customOp<[tf.Tensor, tf.Tensor]>((g, u, save) => {
  const sig = tf.sigmoid(g);
  const sl = tf.mul(g, sig);
  save([u, sig, sl]);
  return {
    value: tf.mul(sl, u),
    gradFunc: (dy, saved) => {
      const [us, sg, s] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
      const dsilu = tf.add(sg, tf.mul(s, tf.sub(1, sg)));
      return [tf.mul(tf.mul(dy, us), dsilu), tf.mul(dy, s)];
    },
  };
});

const swigluScaledCore = customOp<[tf.Tensor, tf.Tensor, tf.Tensor]>((g, u, c, save) => {
  const sig = tf.sigmoid(g);
  const sl = tf.mul(g, sig);
  const a = tf.mul(sl, u);
  save([u, sig, sl, a, c]);
  return {
    value: tf.mul(a, c),
    gradFunc: (dy, saved) => {
      const [us, sg, s, as, cs] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      const dc = tf.sum(tf.mul(dy, as), -1, true);
      const dyc = tf.mul(dy, cs);
      const dsilu = tf.add(sg, tf.mul(s, tf.sub(1, sg)));
      return [tf.mul(tf.mul(dyc, us), dsilu), tf.mul(dyc, s), dc];
    },
  };
});

/** `silu(g) ⊙ u` (⊙ `scale` [rows, 1] when given). */
export function swiglu(g: tf.Tensor, u: tf.Tensor, scale?: tf.Tensor): tf.Tensor {
  return scale ? swigluScaledCore(g, u, scale) : swigluCore(g, u);
}

/**
 * Moving rows between token order [N, C] and sorted-slot order [S = N·k, C]. Every token owns exactly
 * k slots, so both directions are gathers: to the slots by `token` (the token of each sorted slot),
 * back by `byChoice[j]` (the sorted position of each token's j-th choice), summing the k choices.
 * Each is the other's gradient. (A segment sum would do the same in one op, but its wasm kernel is a
 * scalar loop about 3× slower than the k row-copying gathers and the k−1 adds.)
 */
interface SlotIndex {
  N: number;
  token: tf.Tensor1D;
  byChoice: tf.Tensor1D[];
}

function sumOfGathers(x: tf.Tensor, idx: tf.Tensor1D[]): tf.Tensor {
  return idx.length === 1 ? tf.gather(x, idx[0]!) : tf.addN(idx.map((i) => tf.gather(x, i)));
}

function toSlots(x: tf.Tensor, ix: SlotIndex): tf.Tensor {
  const f = customOp<[tf.Tensor]>((t, save) => {
    save([ix.token, ...ix.byChoice]);
    return {
      value: tf.gather(t, ix.token),
      gradFunc: (dy, saved) => [sumOfGathers(dy, saved.slice(1) as tf.Tensor1D[])],
    };
  });
  return f(x);
}

function fromSlots(rows: tf.Tensor, ix: SlotIndex): tf.Tensor {
  const f = customOp<[tf.Tensor]>((t, save) => {
    save([ix.token, ...ix.byChoice]);
    return {
      value: sumOfGathers(t, ix.byChoice),
      gradFunc: (dy, saved) => [tf.gather(dy, saved[0]! as tf.Tensor1D)],
    };
  });
  return f(rows);
}

/** Per-expert blocks of the sorted rows (only experts with rows), and which expert each block is. */
function splitByExpert(rows: tf.Tensor, counts: number[]): { expert: number; x: tf.Tensor }[] {
  const active = counts.map((c, e) => ({ c, e })).filter((a) => a.c > 0);
  if (active.length === 1) return [{ expert: active[0]!.e, x: rows }];
  const parts = tf.split(
    rows,
    active.map((a) => a.c),
    0,
  );
  return parts.map((x, i) => ({ expert: active[i]!.e, x }));
}

function concatRows(parts: tf.Tensor[]): tf.Tensor {
  return parts.length === 1 ? parts[0]! : tf.concat(parts, 0);
}

/**
 * `x·wᵀ` for the experts' shared W0 (x [rows, in], w [out, in]). A plain `tf.matMul`: its gradient is
 * lazy, so dW0 — three [F, D] products over all tokens per layer, about a quarter of the block's
 * fwd+bwd time on wasm — is computed only when something differentiates with respect to W0 (it is
 * frozen in LoRA-MoE training). `ops.linear`'s custom gradient always computes it. Forward and dx are
 * the same products.
 */
function baseLinear(x: tf.Tensor, w: tf.Tensor): tf.Tensor {
  return tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D, false, true);
}

/** SwiGLU FFN expert: w2(silu(w1 x) ⊙ w3 x). */
export function ffnExpert(x: tf.Tensor, e: FfnExpert): tf.Tensor {
  return linear(swiglu(linear(x, e.w1), linear(x, e.w3)), e.w2);
}

/** [N, n]: how many of token t's top-k slots chose expert i (0 or 1; no gradient). */
function choiceMask(topIdx: tf.Tensor, n: number): tf.Tensor {
  const [N, k] = topIdx.shape as [number, number];
  if (n === 1) return tf.fill([N, 1], k); // oneHot needs depth >= 2
  return tf.sum(tf.oneHot(topIdx, n, 1, 0, 'float32'), 1);
}

/** Dense [N, n] gates: the renormalised top-k gates at the chosen experts, 0 elsewhere. */
function denseGates(r: Routing, n: number): tf.Tensor2D {
  const kept = tf.mul(r.probs, choiceMask(r.topIdx, n));
  return tf.div(kept, tf.sum(kept, -1, true)) as tf.Tensor2D;
}

/** The routing table's index tensors, and the gates in sorted-slot order [S, 1]. */
function dispatchTensors(r: Routing, n: number, topK: number) {
  const N = r.topIdx.shape[0];
  const tab = routingTable(r.topIdx.dataSync(), N, n, topK);
  const byChoice = Array.from({ length: topK }, (_, j) => {
    const p = new Int32Array(N);
    for (let t = 0; t < N; t++) p[t] = tab.position[t * topK + j]!;
    return tf.tensor1d(p, 'int32');
  });
  const ix: SlotIndex = { N, token: tf.tensor1d(tab.token, 'int32'), byChoice };
  // the gates in sorted order: a gather of the token-major [N·k] gates
  const gates = tf.reshape(tf.gather(tf.reshape(r.gates, [-1]), tf.tensor1d(tab.slot, 'int32')), [-1, 1]);
  return { ix, counts: tab.counts, gates };
}

/** One FFN-MoE block on rows `u2` [N, D] → [N, D]. */
export function ffnMoe(
  u2: tf.Tensor,
  r: Routing,
  experts: FfnExpert[],
  topK: number,
  dispatch: MoeDispatch = 'gather',
): tf.Tensor {
  return tf.tidy(() => {
    const N = u2.shape[0]!;
    const n = experts.length;
    if (dispatch === 'dense') {
      const g = denseGates(r, n);
      let y: tf.Tensor | null = null;
      experts.forEach((e, j) => {
        const t = tf.mul(ffnExpert(u2, e), tf.slice(g, [0, j], [N, 1]));
        y = y === null ? t : tf.add(y, t);
      });
      return y!;
    }
    const d = dispatchTensors(r, n, topK);
    const xs = toSlots(u2, d.ix); // [S, D], sorted by expert
    const ys = splitByExpert(xs, d.counts).map(({ expert, x }) => ffnExpert(x, experts[expert]!));
    return fromSlots(tf.mul(concatRows(ys), d.gates), d.ix);
  });
}

/**
 * One LoRA-MoE block on rows `u2` [N, D] → [N, D]; `W0` = the dense MLP of this layer, `experts`
 * the per-expert factors (modules of `layer`). See the module comment for the computation.
 */
export function loraMoe(
  u2: tf.Tensor,
  r: Routing,
  W0: { gate: tf.Tensor; up: tf.Tensor; down: tf.Tensor },
  experts: LoraState[],
  layer: number,
  spec: LoraSpec,
  topK: number,
  dispatch: MoeDispatch = 'gather',
): tf.Tensor {
  return tf.tidy(() => {
    const N = u2.shape[0]!;
    const n = experts.length;
    const s = loraScale(spec);
    type P = (typeof MLP_PROJ)[number];
    const factors = (e: number, p: P): [tf.Tensor, tf.Tensor] | null => {
      if (!spec.targets.includes(p)) return null;
      const m = projModule(layer, p);
      const A = experts[e]!.A.get(m);
      const B = experts[e]!.B.get(m);
      if (!A || !B) throw new Error(`loraMoe: expert ${e} has no factors for ${m}`);
      return [A, B];
    };
    // s·B(A x), scaled on the rank-r side (the narrow one)
    const lowRank = (x: tf.Tensor, f: [tf.Tensor, tf.Tensor]): tf.Tensor =>
      linear(tf.mul(linear(x, f[0]), s), f[1]);

    const G0 = baseLinear(u2, W0.gate); // [N, F], shared by every expert
    const U0 = baseLinear(u2, W0.up);

    if (dispatch === 'dense') {
      const g = denseGates(r, n);
      const adapt = (base: tf.Tensor, f: [tf.Tensor, tf.Tensor] | null) =>
        f ? tf.add(base, lowRank(u2, f)) : base;
      let H: tf.Tensor | null = null;
      let Z: tf.Tensor | null = null;
      for (let e = 0; e < n; e++) {
        const hw = swiglu(
          adapt(G0, factors(e, 'gate_proj')),
          adapt(U0, factors(e, 'up_proj')),
          tf.slice(g, [0, e], [N, 1]),
        );
        H = H === null ? hw : tf.add(H, hw);
        const fd = factors(e, 'down_proj');
        if (fd) Z = Z === null ? lowRank(hw, fd) : tf.add(Z, lowRank(hw, fd));
      }
      const y = baseLinear(H!, W0.down);
      return Z === null ? y : tf.add(y, Z);
    }

    const d = dispatchTensors(r, n, topK);
    const blocks = splitByExpert(toSlots(u2, d.ix), d.counts); // routed rows, per expert
    // The low-rank parts of gate and up per expert; with both adapted, one [2r, D] product for the two
    // A's (they read the same rows: fewer thin matmuls, which run far below the big ones' FLOP rate).
    const low: Record<'gate_proj' | 'up_proj', tf.Tensor[]> = { gate_proj: [], up_proj: [] };
    for (const { expert, x } of blocks) {
      const fg = factors(expert, 'gate_proj');
      const fu = factors(expert, 'up_proj');
      if (fg && fu) {
        const [zg, zu] = tf.split(tf.mul(linear(x, tf.concat([fg[0], fu[0]], 0)), s), 2, 1);
        low.gate_proj.push(linear(zg!, fg[1]));
        low.up_proj.push(linear(zu!, fu[1]));
      } else {
        if (fg) low.gate_proj.push(lowRank(x, fg));
        if (fu) low.up_proj.push(lowRank(x, fu));
      }
    }
    const slots = (base: tf.Tensor, p: 'gate_proj' | 'up_proj'): tf.Tensor => {
      const at = toSlots(base, d.ix); // W0 x of each slot's token
      return low[p].length === 0 ? at : tf.add(at, concatRows(low[p]));
    };
    const hw = swiglu(slots(G0, 'gate_proj'), slots(U0, 'up_proj'), d.gates); // [S, F] = g_j·h_j
    const y = baseLinear(fromSlots(hw, d.ix), W0.down); // W0_d Σ_j g_j h_j
    if (!spec.targets.includes('down_proj')) return y;
    const z = concatRows(
      splitByExpert(hw, d.counts).map(({ expert, x }) => lowRank(x, factors(expert, 'down_proj')!)),
    );
    return tf.add(y, fromSlots(z, d.ix));
  });
}

/**
 * The MLP hook that turns the dense forward into the MoE: `llamaLogits(cfg, w, ids, { mlp: hook })`.
 * `w` must hold the dense MLP weights for LoRA experts (their shared W0); FFN experts do not read them.
 */
export function moeMlpHook(
  cfg: LlamaConfig,
  w: Weights,
  moe: MoeWeights,
  spec: MoeSpec,
  opts: MoeHookOptions = {},
): MlpHook {
  validateMoeWeights(cfg, spec, moe);
  const dispatch = opts.dispatch ?? 'gather';
  return (layer, u) => {
    const D = u.shape[u.rank - 1]!;
    const u2 = tf.reshape(u, [-1, D]);
    const r = route(u2, moe.routers[layer]!, spec.topK);
    opts.onRouting?.(layer, r.probs, r.topIdx, r.logits);
    const y =
      spec.kind === 'ffn'
        ? ffnMoe(u2, r, moe.ffn![layer]!, spec.topK, dispatch)
        : loraMoe(
            u2,
            r,
            {
              gate: need(w, `${projModule(layer, 'gate_proj')}.weight`),
              up: need(w, `${projModule(layer, 'up_proj')}.weight`),
              down: need(w, `${projModule(layer, 'down_proj')}.weight`),
            },
            moe.lora!,
            layer,
            spec.lora!,
            spec.topK,
            dispatch,
          );
    return tf.reshape(y, u.shape);
  };
}

/** MoE logits [B, T, V] (a convenience over llamaLogits with the hook). */
export function moeLogits(
  cfg: LlamaConfig,
  w: Weights,
  moe: MoeWeights,
  spec: MoeSpec,
  ids: tf.Tensor,
  opts: MoeHookOptions & { attentionMask?: tf.Tensor } = {},
): tf.Tensor {
  const { attentionMask, ...hookOpts } = opts;
  const mlp = moeMlpHook(cfg, w, moe, spec, hookOpts);
  return llamaLogits(cfg, w, ids, { mlp, ...(attentionMask ? { attentionMask } : {}) });
}

// ---------------------------------------------------------------------------------------------------
// Auxiliary losses and routing statistics (`mask` [N] or any shape of N elements: 1 = token counts)

function maskColumn(mask: tf.Tensor | undefined, N: number): tf.Tensor | null {
  if (!mask) return null;
  if (mask.size !== N) throw new Error(`moe loss: mask has ${mask.size} elements for ${N} tokens`);
  return tf.reshape(tf.cast(mask, 'float32'), [N, 1]);
}

/** Share of the top-k slots routed to each expert, f_i [n] (no gradient; uniform → 1/n each). */
export function expertLoad(topIdx: tf.Tensor, n: number, mask?: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    const N = topIdx.shape[0]!;
    const k = topIdx.shape[1]!;
    let perTok = choiceMask(topIdx, n); // [N, n], each row sums to k
    const m = maskColumn(mask, N);
    if (m) perTok = tf.mul(perTok, m);
    const slots = m ? tf.mul(tf.sum(m), k) : tf.scalar(N * k);
    return tf.div(tf.sum(perTok, 0), tf.maximum(slots, 1)) as tf.Tensor1D;
  });
}

/** Mean router probability per expert, P_i [n] (differentiable). */
export function meanRouterProb(probs: tf.Tensor, mask?: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    const m = maskColumn(mask, probs.shape[0]!);
    if (!m) return tf.mean(probs, 0) as tf.Tensor1D;
    return tf.div(tf.sum(tf.mul(probs, m), 0), tf.maximum(tf.sum(m), 1)) as tf.Tensor1D;
  });
}

/**
 * Switch/Mixtral load-balancing loss n·Σ_i f_i·P_i: `probs` [N, n], `topIdx` int32 [N, k]. Uniform
 * routing gives 1; everything on one expert gives up to n. Differentiable through P (f is a count).
 */
export function loadBalancingLoss(
  probs: tf.Tensor,
  topIdx: tf.Tensor,
  n: number,
  mask?: tf.Tensor,
): tf.Scalar {
  if (probs.shape[1] !== n) throw new Error(`loadBalancingLoss: probs [${probs.shape}] for ${n} experts`);
  return tf.tidy(
    () => tf.mul(tf.sum(tf.mul(expertLoad(topIdx, n, mask), meanRouterProb(probs, mask))), n) as tf.Scalar,
  );
}

/** ST-MoE router z-loss: mean over tokens of logsumexp(logits)². */
export function routerZLoss(logits: tf.Tensor, mask?: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const z = tf.square(tf.logSumExp(logits, -1, true)); // [N, 1]
    const m = maskColumn(mask, logits.shape[0]!);
    if (!m) return tf.mean(z) as tf.Scalar;
    return tf.div(tf.sum(tf.mul(z, m)), tf.maximum(tf.sum(m), 1)) as tf.Scalar;
  });
}

/** Mean per-token entropy of the router distribution, −Σ p log p (nats; uniform → log n). */
export function routerEntropy(probs: tf.Tensor, mask?: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const h = tf.neg(tf.sum(tf.mul(probs, tf.log(tf.maximum(probs, 1e-30))), -1, true)); // [N, 1]
    const m = maskColumn(mask, probs.shape[0]!);
    if (!m) return tf.mean(h) as tf.Scalar;
    return tf.div(tf.sum(tf.mul(h, m)), tf.maximum(tf.sum(m), 1)) as tf.Scalar;
  });
}

/**
 * Keeps each layer's router tensors of the latest forward pass alive (past the forward's tidy) for
 * the losses and statistics. Use `onRouting` as the hook option; call `dispose()` when done (after
 * the losses were computed; inside `tf.variableGrads` the gradient tape keeps what it needs).
 */
export class RoutingCollector {
  readonly layers: ({ probs: tf.Tensor2D; topIdx: tf.Tensor2D; logits: tf.Tensor2D } | undefined)[] = [];

  readonly onRouting: RoutingCallback = (layer, probs, topIdx, logits) => {
    this.drop(layer);
    this.layers[layer] = { probs: tf.keep(probs), topIdx: tf.keep(topIdx), logits: tf.keep(logits) };
  };

  private recorded(): { probs: tf.Tensor2D; topIdx: tf.Tensor2D; logits: tf.Tensor2D }[] {
    const r = this.layers.filter((x): x is NonNullable<typeof x> => x !== undefined);
    if (r.length === 0) throw new Error('RoutingCollector: no routing recorded (was the hook used?)');
    return r;
  }

  /** Mean over layers of the load-balancing loss. */
  loadBalancingLoss(mask?: tf.Tensor): tf.Scalar {
    return tf.tidy(() => {
      const ls = this.recorded().map((l) => loadBalancingLoss(l.probs, l.topIdx, l.probs.shape[1], mask));
      return tf.div(tf.addN(ls), ls.length) as tf.Scalar;
    });
  }

  /** Mean over layers of the router z-loss. */
  zLoss(mask?: tf.Tensor): tf.Scalar {
    return tf.tidy(() => {
      const ls = this.recorded().map((l) => routerZLoss(l.logits, mask));
      return tf.div(tf.addN(ls), ls.length) as tf.Scalar;
    });
  }

  /** Per layer: expert load f [n] and mean router entropy, on the host. */
  stats(mask?: tf.Tensor): { layer: number; load: number[]; entropy: number }[] {
    const out: { layer: number; load: number[]; entropy: number }[] = [];
    this.layers.forEach((l, layer) => {
      if (!l) return;
      const [load, ent] = tf.tidy(() => [
        expertLoad(l.topIdx, l.probs.shape[1], mask),
        routerEntropy(l.probs, mask),
      ]);
      out.push({ layer, load: Array.from(load!.dataSync()), entropy: ent!.dataSync()[0]! });
      tf.dispose([load!, ent!]);
    });
    return out;
  }

  private drop(layer: number): void {
    const l = this.layers[layer];
    if (l) tf.dispose([l.probs, l.topIdx, l.logits]);
    this.layers[layer] = undefined;
  }

  dispose(): void {
    for (let i = 0; i < this.layers.length; i++) this.drop(i);
    this.layers.length = 0;
  }
}

export interface MoeLossOptions {
  /** λ of the load-balancing loss (DESIGN §5 default 0.01). */
  auxCoef?: number;
  /** Coefficient of the router z-loss (default 0: off). */
  zCoef?: number;
  /** Count only these tokens in the router losses (default: all tokens). */
  routerMask?: tf.Tensor;
  dispatch?: MoeDispatch;
  /**
   * Per layer, the expert load f [n] and mean router entropy of this batch (tensors die with the
   * loss's tidy: read or keep them inside the callback, e.g. with the trainer's `report`).
   */
  onRouterStats?: (layer: number, load: tf.Tensor1D, entropy: tf.Scalar) => void;
}

/**
 * Stage 4's training loss L_lm + λ·mean_l n·Σ f_i P_i (+ z·z-loss) for one batch; use inside
 * `tf.variableGrads`. Also returns the parts (scalars owned by the caller).
 */
export function moeTrainLoss(
  cfg: LlamaConfig,
  w: Weights,
  moe: MoeWeights,
  spec: MoeSpec,
  batch: { ids: tf.Tensor; targets: tf.Tensor; mask?: tf.Tensor },
  opts: MoeLossOptions = {},
): { loss: tf.Scalar; lm: tf.Scalar; aux: tf.Scalar; z: tf.Scalar } {
  const rc = new RoutingCollector();
  try {
    return tf.tidy(() => {
      const logits = moeLogits(cfg, w, moe, spec, batch.ids, {
        onRouting: rc.onRouting,
        ...(opts.dispatch ? { dispatch: opts.dispatch } : {}),
      });
      const lm = crossEntropy(logits, batch.targets, batch.mask);
      const aux = rc.loadBalancingLoss(opts.routerMask);
      const z = rc.zLoss(opts.routerMask);
      if (opts.onRouterStats) {
        rc.layers.forEach((l, layer) => {
          if (!l) return;
          opts.onRouterStats!(
            layer,
            expertLoad(l.topIdx, l.probs.shape[1], opts.routerMask),
            routerEntropy(l.probs, opts.routerMask),
          );
        });
      }
      let loss = tf.add(lm, tf.mul(aux, opts.auxCoef ?? 0.01));
      if (opts.zCoef) loss = tf.add(loss, tf.mul(z, opts.zCoef));
      return { loss: loss as tf.Scalar, lm, aux, z };
    });
  } finally {
    rc.dispose();
  }
}

// ---------------------------------------------------------------------------------------------------
// Construction, host/tensor conversion

/** Router weights ~ N(0, std²) per layer, [n, D] (vanilla upcycling / LoRAMoE's random router). */
export function initRouters(cfg: LlamaConfig, n: number, rng: Rng, std = 0.02): HostTensor[] {
  return Array.from({ length: cfg.numLayers }, () => {
    const data = new Float32Array(n * cfg.hiddenSize);
    for (let j = 0; j < data.length; j++) data[j] = std * rng.normal();
    return { shape: [n, cfg.hiddenSize], data };
  });
}

/** FFN experts copied from a dense model's MLP weights, n per layer (vanilla upcycling). */
export function ffnExpertsFromDense(
  cfg: LlamaConfig,
  dense: Map<string, HostTensor>,
  n: number,
): FfnExpert<HostTensor>[][] {
  const get = (i: number, p: (typeof MLP_PROJ)[number]): HostTensor => {
    const t = dense.get(`${projModule(i, p)}.weight`);
    if (!t) throw new Error(`ffnExpertsFromDense: missing ${projModule(i, p)}.weight`);
    if (!sameShape(t, projShape(cfg, p)))
      throw new Error(`ffnExpertsFromDense: bad shape for ${projModule(i, p)}`);
    return t;
  };
  const copy = (t: HostTensor): HostTensor => ({ shape: [...t.shape], data: Float32Array.from(t.data) });
  return Array.from({ length: cfg.numLayers }, (_, i) =>
    Array.from({ length: n }, () => ({
      w1: copy(get(i, 'gate_proj')),
      w2: copy(get(i, 'down_proj')),
      w3: copy(get(i, 'up_proj')),
    })),
  );
}

/** TF tensors (trainable variables when `trainable`) for a host MoE. */
export function moeFromHost(spec: MoeSpec, host: MoeHost, trainable = false): MoeWeights {
  const mk = (h: HostTensor): tf.Tensor => {
    const t = tf.tensor(h.data, h.shape, 'float32');
    if (!trainable) return t;
    const v = tf.variable(t, true);
    t.dispose();
    return v;
  };
  const out: MoeWeights = { routers: host.routers.map(mk) };
  if (host.ffn)
    out.ffn = host.ffn.map((layer) => layer.map((e) => ({ w1: mk(e.w1), w2: mk(e.w2), w3: mk(e.w3) })));
  if (host.lora) {
    if (!spec.lora) throw new Error('moeFromHost: LoRA experts need spec.lora');
    const loraSpec = spec.lora;
    out.lora = host.lora.map((ex) => ({
      spec: loraSpec,
      A: new Map([...ex.A].map(([m, t]) => [m, mk(t)])),
      B: new Map([...ex.B].map(([m, t]) => [m, mk(t)])),
    }));
  }
  return out;
}

function toHost(t: tf.Tensor | HostTensor): HostTensor {
  return t instanceof tf.Tensor ? { shape: [...t.shape], data: Float32Array.from(t.dataSync()) } : t;
}

/** Host copies of an MoE's tensors. */
export function moeToHost(moe: MoeWeights | MoeHost): MoeHost {
  const out: MoeHost = { routers: moe.routers.map(toHost) };
  if (moe.ffn)
    out.ffn = moe.ffn.map((layer) =>
      layer.map((e) => ({ w1: toHost(e.w1), w2: toHost(e.w2), w3: toHost(e.w3) })),
    );
  if (moe.lora) {
    out.lora = moe.lora.map((ex) => ({
      A: new Map([...ex.A].map(([m, t]) => [m, toHost(t)])),
      B: new Map([...ex.B].map(([m, t]) => [m, toHost(t)])),
    }));
  }
  return out;
}

/** Every tensor of an MoE (routers, experts), e.g. to make them a Trainable's parameters. */
export function moeTensors(moe: MoeWeights): Map<string, tf.Tensor> {
  const m = new Map<string, tf.Tensor>();
  moe.routers.forEach((r, i) => m.set(`model.layers.${i}.block_sparse_moe.gate.weight`, r));
  moe.ffn?.forEach((layer, i) =>
    layer.forEach((e, j) => {
      const p = `model.layers.${i}.block_sparse_moe.experts.${j}`;
      m.set(`${p}.w1.weight`, e.w1);
      m.set(`${p}.w2.weight`, e.w2);
      m.set(`${p}.w3.weight`, e.w3);
    }),
  );
  moe.lora?.forEach((ex, j) => {
    for (const [mod, t] of ex.A) m.set(`experts.${j}.${mod}.lora_A.weight`, t);
    for (const [mod, t] of ex.B) m.set(`experts.${j}.${mod}.lora_B.weight`, t);
  });
  return m;
}

export function disposeMoe(moe: MoeWeights): void {
  for (const t of moeTensors(moe).values()) t.dispose();
}
