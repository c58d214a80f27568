/**
 * A dense Llama as a Trainable, in one of three modes:
 *   full  every weight is a variable;
 *   ffn   only the MLP projections (gate/up/down) train, the rest is constant;
 *   lora  the base is constant, only the LoRA factors A and B train.
 * Parameter names are the HF names (full/ffn) or PEFT's names
 * (`base_model.model.<module>.lora_A.weight`) for LoRA, so a checkpoint's
 * params.safetensors is readable as model weights or as an adapter.
 */
import type { HostTensor } from '../io/host-tensor.js';
import type { LlamaConfig } from '../model/config.js';
import { llamaLogits } from '../model/llama.js';
import { peftTensorName, type LoraHost, type LoraSpec, type LoraState } from '../model/lora.js';
import { MLP_PROJ } from '../model/params.js';
import { crossEntropy } from '../tensor/ops.js';
import { tf } from '../tensor/tf.js';
import type { Batch } from './batches.js';
import type { Trainable } from './trainer.js';

export type LlamaTrainMode = 'full' | 'ffn' | 'lora';

export interface LlamaTrainableOptions {
  mode: LlamaTrainMode;
  /** LoRA mode: the spec and initial factors (e.g. from initLora). */
  lora?: { spec: LoraSpec; init: LoraHost };
}

export interface LlamaTrainable extends Trainable {
  cfg: LlamaConfig;
  /** All weights the forward pass reads (variables for the trained ones). */
  weights: Map<string, tf.Tensor>;
  lora: LoraState | null;
  /** Current values of the trained parameters, on the host. */
  hostParams(): Map<string, HostTensor>;
  dispose(): void;
}

const MLP_SUFFIXES = MLP_PROJ.map((p) => `.mlp.${p}.weight`);

export function isMlpWeight(name: string): boolean {
  return MLP_SUFFIXES.some((s) => name.endsWith(s));
}

export function llamaTrainable(
  cfg: LlamaConfig,
  base: Map<string, HostTensor>,
  opts: LlamaTrainableOptions,
): LlamaTrainable {
  const weights = new Map<string, tf.Tensor>();
  const params = new Map<string, tf.Variable>();
  const trains = (name: string): boolean =>
    opts.mode === 'full' || (opts.mode === 'ffn' && isMlpWeight(name));
  for (const [name, h] of base) {
    if (trains(name)) {
      const v = toVariable(h);
      weights.set(name, v);
      params.set(name, v);
    } else {
      weights.set(name, tf.tensor(h.data, h.shape, 'float32'));
    }
  }
  let lora: LoraState | null = null;
  if (opts.mode === 'lora') {
    if (!opts.lora) throw new Error("llamaTrainable: mode 'lora' needs lora.spec and lora.init");
    const A = new Map<string, tf.Tensor>();
    const B = new Map<string, tf.Tensor>();
    for (const [module, h] of opts.lora.init.A) {
      const hb = opts.lora.init.B.get(module);
      if (!hb) throw new Error(`llamaTrainable: LoRA module ${module} has A but no B`);
      const a = toVariable(h);
      const b = toVariable(hb);
      A.set(module, a);
      B.set(module, b);
      params.set(peftTensorName(module, 'A'), a);
      params.set(peftTensorName(module, 'B'), b);
    }
    lora = { spec: opts.lora.spec, A, B };
  }
  return {
    cfg,
    weights,
    lora,
    params,
    loss(batch: Batch): tf.Scalar {
      return tf.tidy(() => {
        const logits = llamaLogits(cfg, weights, batch.ids, lora ? { lora } : {});
        return crossEntropy(logits, batch.targets, batch.mask) as tf.Scalar;
      });
    },
    hostParams() {
      return new Map(
        [...params].map(([name, v]) => [
          name,
          { shape: [...v.shape], data: Float32Array.from(v.dataSync()) },
        ]),
      );
    },
    dispose() {
      for (const t of weights.values()) t.dispose();
      if (lora) for (const t of [...lora.A.values(), ...lora.B.values()]) t.dispose();
    },
  };
}

/** An unnamed (auto-unique) trainable variable holding a copy of `h`. */
function toVariable(h: HostTensor): tf.Variable {
  const t = tf.tensor(h.data, h.shape, 'float32');
  const v = tf.variable(t, true);
  t.dispose();
  return v;
}
