/**
 * The model handle the evaluator scores: anything that can (a) give the negative log-likelihood of
 * chosen next tokens of a right-padded batch and (b) continue prompts greedily. `llamaScorable`
 * wraps the dense Llama forward pass — optionally with a LoRA adapter or an `MlpHook` (the MoE:
 * FFN experts or LoRA experts both replace the per-layer MLP) — so the dense model, a Stage 1
 * checkpoint, a Stage 2 child and the Stage 4 MoE are all scored by the same code. A model that is
 * not a Llama + hook can implement `Scorable` directly (`nllFromLogits` helps).
 */
import { UserError } from '../common/errors.js';
import { addsBos, type Tokenizer } from '../io/tokenizer.js';
import type { LlamaConfig } from '../model/config.js';
import { greedyGenerate, type GenerateOptions } from '../model/generate.js';
import { llamaForward, type MlpHook } from '../model/llama.js';
import type { LoraState } from '../model/lora.js';
import { headWeight, type Weights } from '../model/params.js';
import { linear, tokenNll } from '../tensor/ops.js';
import { tf } from '../tensor/tf.js';

export interface Scorable {
  readonly tokenizer: Tokenizer;
  /** Prepend `tokenizer.bosId` when encoding a prompt/context. */
  readonly addBos: boolean;
  /** Longest input the model takes; longer sequences are cut from the left (lm-eval style). */
  readonly maxSeqLen: number;
  /**
   * −log p(targets[k] | ids[b, 0..t]) for selected positions, float32 [N].
   *
   * `ids` int32 [B, T], right-padded: every row's real tokens are a prefix, so with causal
   * attention the pads cannot change them. `mask` float32 [B, T] (1 = token, 0 = pad) is passed for
   * implementations whose result could otherwise depend on pads (e.g. capacity-limited routing).
   * `positions` int32 [N]: flat indices b·T + t; `targets` int32 [N]: the token expected after t.
   * The caller owns (and disposes) the result; nothing else may be left allocated.
   */
  selectedNll(ids: tf.Tensor, mask: tf.Tensor, positions: tf.Tensor, targets: tf.Tensor): tf.Tensor;
  /**
   * Greedy continuation of each prompt (prompt excluded), at most `maxNewTokens` tokens, cut before
   * the first end-of-response token it knows of (may also stop later; the evaluator still cuts the
   * decoded text at the first "\n").
   */
  generate(prompts: number[][], maxNewTokens: number): number[][];
}

export interface LlamaHandle {
  cfg: LlamaConfig;
  weights: Weights;
  lora?: LoraState;
  /** Per-layer MLP replacement (the MoE). */
  mlp?: MlpHook;
  /** `LoadedModel.tokenizer` may be null: a model directory without a tokenizer cannot be evaluated. */
  tokenizer: Tokenizer | null;
}

export interface LlamaScorableOptions {
  /** Default: true for an HF tokenizer with a BOS token (as HF tokenizers encode), false for the byte tokenizer. */
  addBos?: boolean;
  /** Default: `cfg.maxPositionEmbeddings`. */
  maxSeqLen?: number;
}

/** −log softmax(logits[b, t])[target] at flat positions; `logits` [B, T, V]. For custom `Scorable`s. */
export function nllFromLogits(logits: tf.Tensor, positions: tf.Tensor, targets: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const V = logits.shape[logits.rank - 1]!;
    return tokenNll(tf.gather(tf.reshape(logits, [-1, V]), positions), targets);
  });
}

/** Token ids after which a generation is over: the newline byte for the byte tokenizer, plus EOS ids. */
function stopIds(cfg: LlamaConfig, tok: Tokenizer): Set<number> {
  const s = new Set<number>(cfg.eosTokenIds);
  if (tok.eosId !== null) s.add(tok.eosId);
  if (tok.kind === 'byte') s.add(tok.encode('\n')[0]!);
  return s;
}

export function llamaScorable(model: LlamaHandle, opts: LlamaScorableOptions = {}): Scorable {
  const { cfg, weights, lora, mlp } = model;
  const tokenizer = model.tokenizer;
  if (tokenizer === null)
    throw new UserError('the model has no tokenizer (tokenizer.json); it cannot be evaluated');
  if (tokenizer.vocabSize > cfg.vocabSize) {
    throw new UserError(
      `the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocab_size is ${cfg.vocabSize}`,
    );
  }
  const addBos = opts.addBos ?? addsBos(tokenizer);
  const maxSeqLen = opts.maxSeqLen ?? cfg.maxPositionEmbeddings;
  const stops = stopIds(cfg, tokenizer);
  // greedyGenerate stops on one id: the newline byte for byte models (their responses end there),
  // the config's EOS ids for HF models (a newline is often merged into a larger token there).
  const genStop: Pick<GenerateOptions, 'eosId'> =
    tokenizer.kind === 'byte'
      ? { eosId: tokenizer.encode('\n')[0]! }
      : cfg.eosTokenIds.length > 0
        ? {}
        : { eosId: tokenizer.eosId };
  const fwd = { ...(lora ? { lora } : {}), ...(mlp ? { mlp } : {}) };

  return {
    tokenizer,
    addBos,
    maxSeqLen,
    // Right padding needs no attention mask with causal attention (and positions 0..T-1 are right
    // for every row); passing one would build a [B, 1, T, T] bias on the host for nothing.
    selectedNll(ids, _mask, positions, targets) {
      return tf.tidy(() => {
        const { hidden } = llamaForward(cfg, weights, ids, fwd);
        const rows = tf.gather(tf.reshape(hidden, [-1, cfg.hiddenSize]), positions);
        return tokenNll(linear(rows, headWeight(cfg, weights)), targets);
      });
    },
    generate(prompts, maxNewTokens) {
      const out = greedyGenerate({ cfg, weights, ...fwd }, prompts, {
        maxNewTokens,
        padId: tokenizer.padId,
        ...genStop,
      });
      return out.map((seq) => {
        const i = seq.findIndex((t) => stops.has(t));
        return i >= 0 ? seq.slice(0, i) : seq;
      });
    },
  };
}
