/**
 * Entry of a merge worker thread (see parallel.ts): merges the tensors it is sent with the same
 * per-tensor code as the main thread and sends the buffers back.
 */
import { parentPort } from 'node:worker_threads';
import { isUserError } from '../../common/errors.js';
import { getMergeMethod } from './methods.js';
import type { MergeJob, MergeReply } from './parallel.js';

const port = parentPort;
if (port === null) throw new Error('merge-worker.ts runs as a worker thread');

port.on('message', (job: MergeJob) => {
  const view = (b: ArrayBuffer) => new Float32Array(b, 0, job.numel);
  const reply: MergeReply = { base: job.base, models: job.models, out: job.out, error: null };
  try {
    getMergeMethod(job.method).mergeTensor(
      view(job.base),
      job.models.map(view),
      job.params,
      { name: job.name, seed: job.seed },
      view(job.out),
    );
  } catch (e) {
    reply.error = { message: e instanceof Error ? e.message : String(e), user: isUserError(e) };
  }
  port.postMessage(reply, [job.base, ...job.models, job.out]);
});
port.postMessage('ready');
