/**
 * Loading `@tensorflow/tfjs-backend-wasm` in Node: binaries located from node_modules, and (optionally)
 * the multi-threaded SIMD build, which tfjs disables in Node (`WASM_HAS_MULTITHREAD_SUPPORT` is false
 * there, tensorflow/tfjs#3830). Four things stand in its way, each bridged here only while the backend
 * initializes:
 *
 * 1. the flag itself: set to true;
 * 2. emscripten starts its pthread pool (8 `worker_threads`) from a `blob:` URL and hands the workers the
 *    main script as a `Blob`; Node workers can load neither. A `Worker` subclass swaps in the worker
 *    script that ships in `wasm-out/` (evaluated from source) and the path of the matching main script;
 * 3. emscripten refs the worker of every running pthread, and XNNPACK's pool threads run forever, which
 *    would keep the process from exiting: the workers ignore `ref()`;
 * 4. the C++ side sizes XNNPACK's thread pool as `min(requested, logical cores / 2)` (it assumes
 *    hyper-threading), i.e. one thread on a 2-core machine; `os.cpus()` is widened for the moment of
 *    initialization so the requested count is honoured.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import wt from 'node:worker_threads';
import { tf } from './tf.js';

const require = createRequire(import.meta.url);

interface WasmBackendModule {
  setWasmPaths(prefixOrFileMap: string | Record<string, string>, usePlatformFetch?: boolean): void;
  setThreadsCount(n: number): void;
  getThreadsCount(): number;
}

export interface WasmInit {
  ok: boolean;
  /** Threads XNNPACK actually uses (1 = single-threaded build or pool of one). */
  threads: number;
  detail: string;
  /** True for the call that initialized the backend (later calls return the same outcome). */
  fresh?: boolean;
}

function wasmDistDir(): string {
  return path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + path.sep;
}

/** Installs the Worker shim; returns the function that removes it. */
function shimWorkers(threads: number): () => void {
  const wasmOut = path.join(wasmDistDir(), '..', 'wasm-out');
  const mainJs = path.join(wasmOut, 'tfjs-backend-wasm-threaded-simd.js');
  const workerJs = path.join(wasmOut, 'tfjs-backend-wasm-threaded-simd.worker.js');
  const contents = (require(workerJs) as { wasmWorkerContents: string }).wasmWorkerContents;
  // Same escaping tfjs applies before turning the contents into a Blob.
  const workerSource = `const __filename = ${JSON.stringify(workerJs)};\n${contents.replace(/\n/g, '\\n')}`;

  const RealWorker = wt.Worker;
  class PthreadWorker extends RealWorker {
    constructor(url: string | URL, options?: wt.WorkerOptions) {
      const fromBlob = typeof url === 'string' && url.startsWith('blob:');
      super(fromBlob ? workerSource : url, fromBlob ? { ...options, eval: true } : options);
    }
    override postMessage(message: unknown, transferList?: readonly wt.TransferListItem[]): void {
      const m = message as { cmd?: string; urlOrBlob?: unknown } | null;
      if (m !== null && typeof m === 'object' && m.cmd === 'load' && typeof m.urlOrBlob !== 'string') {
        message = { ...m, urlOrBlob: mainJs };
      }
      super.postMessage(message, transferList);
    }
    /**
     * emscripten refs a worker while a pthread runs on it; XNNPACK's pool threads never end, so the
     * process could never exit. The pool is idle whenever JS runs, so the workers stay unref'd.
     */
    override ref(): void {}
  }
  const realCpus = os.cpus;
  const wtMutable = wt as { Worker: typeof wt.Worker };
  const osMutable = os as { cpus: typeof os.cpus };
  wtMutable.Worker = PthreadWorker;
  osMutable.cpus = () => {
    const cpus = realCpus();
    const want = Math.max(2 * threads, cpus.length);
    const first = cpus[0];
    return first === undefined ? cpus : Array.from({ length: want }, (_, i) => cpus[i] ?? first);
  };
  return () => {
    wtMutable.Worker = RealWorker;
    osMutable.cpus = realCpus;
  };
}

let loaded: WasmInit | undefined;

/**
 * Registers and initializes the wasm backend once per process (tfjs cannot re-initialize it).
 * `threads` > 1 selects the threaded build; on any failure of that path it falls back to the
 * single-threaded SIMD build.
 */
export async function initWasm(threads: number): Promise<WasmInit> {
  if (loaded !== undefined) return { ...loaded, fresh: false };
  const mod = (await import('@tensorflow/tfjs-backend-wasm')) as unknown as WasmBackendModule;
  // emscripten's Node glue installs process-wide 'uncaughtException'/'unhandledRejection' handlers that
  // rethrow (printing its whole minified source line); they are removed again once it is initialized.
  const before = {
    uncaughtException: new Set(process.listeners('uncaughtException')),
    unhandledRejection: new Set(process.listeners('unhandledRejection')),
  };
  try {
    loaded = await initModule(mod, threads);
    return { ...loaded, fresh: true };
  } finally {
    for (const l of process.listeners('uncaughtException')) {
      if (!before.uncaughtException.has(l)) process.removeListener('uncaughtException', l);
    }
    for (const l of process.listeners('unhandledRejection')) {
      if (!before.unhandledRejection.has(l)) process.removeListener('unhandledRejection', l);
    }
  }
}

async function initModule(mod: WasmBackendModule, threads: number): Promise<WasmInit> {
  mod.setWasmPaths(wasmDistDir());
  let threadError = '';
  let threadedOk = false;
  if (threads > 1 && typeof SharedArrayBuffer === 'function') {
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
    mod.setThreadsCount(threads);
    const restore = shimWorkers(threads);
    try {
      if (!(await tf.setBackend('wasm'))) threadError = 'threaded build failed to initialize';
    } catch (e) {
      threadError = `threaded build failed: ${(e as Error).message}`;
    } finally {
      restore();
    }
    threadedOk = threadError === '';
    if (!threadedOk) tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  } else {
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  }
  if (!threadedOk) {
    let ok = false;
    let why = '';
    try {
      ok = await tf.setBackend('wasm');
    } catch (e) {
      why = `: ${(e as Error).message}`;
    }
    if (!ok) {
      return { ok: false, threads: 0, detail: `wasm failed to initialize${why}` };
    }
  }
  const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
  const n = mod.getThreadsCount();
  return {
    ok: true,
    threads: n,
    detail:
      `${simd ? 'SIMD' : 'no SIMD'}, ${n > 1 ? `${n} threads` : '1 thread'}` +
      (threadError === '' ? '' : ` (${threadError})`),
  };
}
