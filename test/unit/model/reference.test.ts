/**
 * The dense forward against an independent float64 PyTorch re-implementation of HF's
 * LlamaForCausalLM (test/fixtures/make_llama_reference.py): every fixture, cpu and wasm.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { llamaLogits } from '../../../src-main/model/llama.js';
import { loadModel, type LoadedModel } from '../../../src-main/model/load.js';
import { tf } from '../../../src-main/tensor/tf.js';
import { FIXTURES, fixtureDir, maxAbsDiff, numTensors, readExpected, setBackend } from './helpers.js';

const TOL = 1e-4;
const measured: string[] = [];

describe.each(['cpu', 'wasm'] as const)('logits match the PyTorch reference on %s', (backend) => {
  describe.each(FIXTURES)('llama-%s', (name) => {
    let model: LoadedModel;
    const expected = readExpected(name);

    it('loads', async () => {
      await setBackend(backend);
      model = await loadModel(fixtureDir(name));
    });

    it(`each sequence within ${TOL}`, () => {
      let worst = 0;
      for (const [s, ids] of expected.inputs.entries()) {
        const before = numTensors();
        const input = tf.tensor2d([ids], [1, ids.length], 'int32');
        const logits = llamaLogits(model.cfg, model.weights, input);
        expect(logits.shape).toEqual([1, ids.length, model.cfg.vocabSize]);
        expect(logits.dtype).toBe('float32');
        const got = logits.dataSync();
        const d = maxAbsDiff(got, expected.logits[s]!.flat());
        worst = Math.max(worst, d);
        logits.dispose();
        input.dispose();
        expect(numTensors()).toBe(before);
      }
      measured.push(`${backend} llama-${name}: max|dlogit| = ${worst.toExponential(2)}`);
      expect(worst).toBeLessThanOrEqual(TOL);
    });

    it('a left-padded batch with an attention mask reproduces each sequence', () => {
      const L = Math.max(...expected.inputs.map((x) => x.length));
      const ids = expected.inputs.map((x) => [...new Array<number>(L - x.length).fill(0), ...x]);
      const mask = expected.inputs.map((x) => [
        ...new Array<number>(L - x.length).fill(0),
        ...new Array<number>(x.length).fill(1),
      ]);
      const before = numTensors();
      const idsT = tf.tensor2d(ids, undefined, 'int32');
      const maskT = tf.tensor2d(mask, undefined, 'int32');
      const logits = llamaLogits(model.cfg, model.weights, idsT, { attentionMask: maskT });
      const V = model.cfg.vocabSize;
      const all = logits.dataSync();
      let worst = 0;
      for (const [b, x] of expected.inputs.entries()) {
        const row = all.subarray((b * L + (L - x.length)) * V, (b + 1) * L * V);
        worst = Math.max(worst, maxAbsDiff(row, expected.logits[b]!.flat()));
      }
      tf.dispose([idsT, maskT, logits]);
      expect(numTensors()).toBe(before);
      expect(worst).toBeLessThanOrEqual(TOL);
    });

    it('disposes', () => {
      model.dispose();
    });
  });
});

afterAll(() => {
  console.log(measured.join('\n'));
});
