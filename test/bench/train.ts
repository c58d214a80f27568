/**
 * Training throughput of the reference model (vocab 256, d 128, 4 layers, 4 heads,
 * SwiGLU 344, T 128, B 16, AdamW) on every backend that works here, with that backend's
 * own rank-2 matmul GFLOP/s measured in the same run as the yardstick.
 *
 * FLOPs per trained token = 3 × forward (backward ≈ 2 × forward):
 *   forward = 2·(linear params incl. head) + 2·2·T·d per layer (QKᵀ and PV, full T×T).
 */
import { Rng } from '../../src-main/common/rng.js';
import { makeLlamaConfig, type LlamaConfig } from '../../src-main/model/config.js';
import { initLlamaWeights } from '../../src-main/model/params.js';
import { probeBackends, useBackend, type BackendName } from '../../src-main/tensor/backend.js';
import { tf } from '../../src-main/tensor/tf.js';
import { setWasmKernels } from '../../src-main/tensor/wasm-kernels.js';
import { llamaTrainable } from '../../src-main/train/llama-trainable.js';
import { train } from '../../src-main/train/trainer.js';
import { matmulGflops } from './matmul.js';

const T = 128;
const B = 16;

export function referenceConfig(): LlamaConfig {
  return makeLlamaConfig({
    vocabSize: 256,
    hiddenSize: 128,
    intermediateSize: 344,
    numLayers: 4,
    numHeads: 4,
    numKvHeads: 4,
    maxPositionEmbeddings: 512,
    tieWordEmbeddings: false,
  });
}

export function trainFlopsPerToken(cfg: LlamaConfig, seqLen: number): number {
  const d = cfg.hiddenSize;
  const attnParams = d * cfg.numHeads * cfg.headDim * 2 + d * cfg.numKvHeads * cfg.headDim * 2;
  const mlpParams = 3 * d * cfg.intermediateSize;
  const linearParams = cfg.numLayers * (attnParams + mlpParams) + cfg.vocabSize * d;
  const attnScores = cfg.numLayers * 2 * 2 * seqLen * cfg.numHeads * cfg.headDim;
  return 3 * (2 * linearParams + attnScores);
}

async function measure(backend: BackendName, steps: number): Promise<{ tokPerSec: number; loss: number }> {
  const cfg = referenceConfig();
  const rng = new Rng(1);
  const model = llamaTrainable(cfg, initLlamaWeights(cfg, rng), { mode: 'full' });
  const examples = Array.from({ length: B * (steps + 2) }, () => {
    const ids = Array.from({ length: T + 1 }, () => rng.int(256));
    return { ids, lossMask: ids.map(() => 1) };
  });
  const times: number[] = [];
  let last = performance.now();
  let loss = NaN;
  await train(
    model,
    { examples, padId: 0, maxSeqLen: T, shuffle: false },
    { lr: 1e-3, batchSize: B, maxSteps: steps + 2, seed: 1, schedule: 'constant' },
    {
      onStep: (s) => {
        const now = performance.now();
        times.push(now - last);
        last = now;
        loss = s.loss;
      },
    },
  );
  model.dispose();
  const timed = times.slice(2); // the first steps compile kernels and warm caches
  const mean = timed.reduce((a, b) => a + b, 0) / timed.length / 1000;
  return { tokPerSec: (B * T) / mean, loss };
}

export async function benchTrain(): Promise<void> {
  const cfg = referenceConfig();
  const flopsPerToken = trainFlopsPerToken(cfg, T);
  const available = (await probeBackends()).filter((a) => a.status === 'ok').map((a) => a.name);
  const steps = Number(process.env['UPIT_BENCH_STEPS'] ?? 8);
  console.log(
    `reference model: vocab 256, d 128, 4 layers, 4 heads, ffn 344, T ${T}, B ${B}; ` +
      `${(flopsPerToken / 1e6).toFixed(2)} MFLOP per trained token; ${steps} timed steps`,
  );
  console.log('backend     tok/s    GFLOP/s  matmul GFLOP/s  share of matmul  final loss');
  for (const name of available) {
    if (name === 'cpu' && !process.env['UPIT_BENCH_CPU']) {
      console.log('cpu         (skipped: the reference backend is ~50× slower; UPIT_BENCH_CPU=1 to run)');
      continue;
    }
    const choice = await useBackend(name);
    const mm = await matmulGflops(name);
    const { tokPerSec, loss } = await measure(name, name === 'cpu' ? 2 : steps);
    const gflops = (tokPerSec * flopsPerToken) / 1e9;
    console.log(
      `${name.padEnd(10)} ${tokPerSec.toFixed(0).padStart(6)}  ${gflops.toFixed(2).padStart(8)}  ` +
        `${mm.toFixed(2).padStart(14)}  ${((100 * gflops) / mm).toFixed(0).padStart(14)}%  ${loss.toFixed(3)}` +
        `   (${choice.detail})`,
    );
    tf.disposeVariables();
    if (name === 'wasm') {
      // The same step on tfjs-backend-wasm's stock kernels: the reference our kernels are measured against.
      setWasmKernels(false);
      const stock = await measure('wasm', 2);
      setWasmKernels(true);
      console.log(
        `wasm-stock ${stock.tokPerSec.toFixed(0).padStart(6)}  ${((stock.tokPerSec * flopsPerToken) / 1e9).toFixed(2).padStart(8)}` +
          `                                        our kernels: ×${(tokPerSec / stock.tokPerSec).toFixed(2)} over stock tfjs-backend-wasm`,
      );
      tf.disposeVariables();
    }
  }
}
