/** The `eval` job: scores one model directory on every domain and records the scores. */
import { resolve } from 'node:path';
import { embeddedBaseModelDir } from '../../common/paths.js';
import { evaluate, llamaScorable, type EvalResult } from '../../eval/index.js';
import { loadModel } from '../../model/load.js';
import { useBackend } from '../../tensor/backend.js';
import type { JobContext } from '../job-runner.js';
import type { EvalConfig } from './catalog.js';
import { runDirectory } from './job-io.js';
import { loadEvalItems } from './prepare.js';

export interface EvalJobResult {
  model: string;
  average: number;
  perDomain: EvalResult['perDomain'];
  backend: string;
}

export async function runEval(config: EvalConfig, ctx: JobContext): Promise<EvalJobResult> {
  const choice = await useBackend(config.backend);
  const { store, runId } = runDirectory(ctx);
  store.setRunBackend(runId, choice.name);
  const items = loadEvalItems(config.data);
  const dir = resolve(config.model ?? embeddedBaseModelDir());
  const model = await loadModel(dir);
  try {
    const result = await evaluate(llamaScorable(model, { maxSeqLen: config.maxSeqLen }), items, {
      batchSize: config.batchSize,
      maxNewTokens: config.maxNewTokens,
      signal: ctx.signal,
      onProgress: (p) => ctx.progress({ step: p.done, total: p.total }),
    });
    store.addEvaluations(
      result.perDomain.map((d) => ({
        runId,
        modelRef: dir,
        domain: d.domain,
        metric: d.metric,
        score: d.score,
        n: d.n,
        ciLow: d.ciLow,
        ciHigh: d.ciHigh,
      })),
    );
    return { model: dir, average: result.average, perDomain: result.perDomain, backend: choice.name };
  } finally {
    model.dispose();
  }
}
