import { it } from 'vitest';
import { Rng } from '../../../src-main/common/rng.js';
import { buildSuite } from '../../../src-main/data/index.js';
import { evaluate, llamaScorable, perplexity } from '../../../src-main/eval/index.js';
import { ByteTokenizer } from '../../../src-main/io/tokenizer.js';
import { makeLlamaConfig } from '../../../src-main/model/config.js';
import { weightsFromHost } from '../../../src-main/model/load.js';
import { initLlamaWeights } from '../../../src-main/model/params.js';
import { useBackend } from '../../../src-main/tensor/backend.js';

it('bench', async () => {
  const b = await useBackend((process.env.BK as 'wasm' | 'cpu') ?? 'wasm');
  console.log(b.name, b.detail, b.threads);
  const cfg = makeLlamaConfig({ vocabSize: 256, hiddenSize: 128, intermediateSize: 344, numLayers: 4, numHeads: 4, eosTokenId: 3, padTokenId: 0, maxPositionEmbeddings: 512 });
  const w = weightsFromHost(initLlamaWeights(cfg, new Rng(1)));
  const m = llamaScorable({ cfg, weights: w, tokenizer: new ByteTokenizer() });
  const suite = buildSuite({ seed: 1, trainPerDomain: 64, evalPerDomain: 24 });
  const exact = suite.eval.filter((i) => i.metric === 'exact');
  const mc = suite.eval.filter((i) => i.metric === 'choice');
  for (const bs of [8, 32]) {
    let t = performance.now();
    await evaluate(m, mc, { batchSize: bs });
    const tm = (performance.now() - t) / 1000;
    console.log(`bs ${bs} mc: ${mc.length} items (${mc.length * 4} rows) ${tm.toFixed(2)}s → ${(mc.length / tm).toFixed(1)} items/s`);
    t = performance.now();
    await perplexity(m, suite.train, { batchSize: bs });
    const tp = (performance.now() - t) / 1000;
    console.log(`bs ${bs} ppl: ${suite.train.length} ex ${tp.toFixed(2)}s → ${(suite.train.length / tp).toFixed(1)} ex/s`);
    for (const maxNew of [16, 64]) {
      t = performance.now();
      await evaluate(m, exact, { batchSize: bs, maxNewTokens: maxNew });
      const te = (performance.now() - t) / 1000;
      console.log(`bs ${bs} exact maxNew ${maxNew}: ${exact.length} items ${te.toFixed(2)}s → ${(exact.length / te).toFixed(1)} items/s`);
    }
  }
}, 600_000);
