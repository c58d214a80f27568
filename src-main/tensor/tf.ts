/**
 * The single import point of TensorFlow.js in the workbench: `import { tf } from '../tensor/tf.js'`.
 *
 * In Node, `@tensorflow/tfjs-core` resolves to its CommonJS bundle (`dist/tf-core.node.js`), which
 * registers no gradients and no chained ops (`x.square()`). Upstream ships them only as ES modules with
 * extension-less relative imports that plain Node cannot resolve; `upstream-esm.ts` loads them anyway
 * (from a rewritten per-user cache, or through a resolve hook). That second copy of tfjs-core's
 * internals shares the engine and the kernel/gradient registries with the bundle through tfjs's own
 * globals (`_tfengine`, `_tfGlobals`), so every gradient lands in the one engine we use.
 * Then our replacement gradients (`gradients.ts`) and CPU kernels (`cpu-kernels.ts`) are registered on top.
 *
 * The CPU backend is always registered, so `tf` works before `useBackend()` is called; faster
 * backends are loaded by `useBackend()` (`backend.ts`), which also registers the wasm fast kernels.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { registerCpuKernels } from './cpu-kernels.js';
import { registerReplacementGradients } from './gradients.js';
import { importTfjsCoreModules } from './upstream-esm.js';

async function registerUpstreamGradients(): Promise<void> {
  const g = globalThis as { __upitTfGradients?: boolean };
  if (g.__upitTfGradients) return;
  await importTfjsCoreModules([
    'register_all_gradients.js',
    'public/chained_ops/register_all_chained_ops.js',
  ]);
  g.__upitTfGradients = true;
}

await registerUpstreamGradients();
registerReplacementGradients(tf);
registerCpuKernels(tf);

// The CPU backend is the default until `useBackend()` picks another; its "install tfjs-node" banner is
// not for our users (`useBackend` already reports what was found).
await tf.setBackend('cpu');
quietCpuBackend();

/** Turns off the CPU backend's one-time "looks like you are running TensorFlow.js in Node.js" banner. */
export function quietCpuBackend(): void {
  const cpu = tf.findBackend('cpu') as { firstUse?: boolean } | null;
  if (cpu !== null) cpu.firstUse = false;
}

export { tf };
