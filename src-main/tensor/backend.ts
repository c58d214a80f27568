/**
 * Backend selection: `tensorflow` (tfjs-node-gpu / tfjs-node when installed), `webgpu` (dawn.node),
 * `wasm` (embedded default) and `cpu` (reference). `auto` takes the first that loads and passes a tiny
 * numeric self-check, in that order; software WebGPU adapters (llvmpipe/lavapipe/SwiftShader) are used
 * only when `webgpu` is asked for by name.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import { UserError } from '../common/errors.js';
import { crossEntropy, linear } from './ops.js';
import { tf } from './tf.js';
import { initWasm } from './wasm-loader.js';
import { registerWasmKernels } from './wasm-kernels.js';

export type BackendName = 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';
export type BackendRequest = BackendName | 'auto';
export interface BackendAttempt {
  name: BackendName;
  status: 'ok' | 'unavailable' | 'failed-self-check' | 'skipped';
  detail: string;
}
export interface BackendChoice {
  name: BackendName;
  detail: string;
  attempts: BackendAttempt[];
  threads?: number;
}

export const BACKEND_ORDER: readonly BackendName[] = ['tensorflow', 'webgpu', 'wasm', 'cpu'];

function message(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n')[0]!.slice(0, 300);
}

// ---------------------------------------------------------------------------------------------------
// Loaders: make the backend registered and initialized (not necessarily active). They return the
// outcome; `detail` says what was found.

interface Loaded {
  ok: boolean;
  status: BackendAttempt['status'];
  detail: string;
  threads?: number;
}

const require = createRequire(import.meta.url);

/** Imports an optional package; `undefined` when it is not installed. */
async function importOptional(pkg: string): Promise<unknown> {
  try {
    require.resolve(pkg);
  } catch {
    return undefined;
  }
  return import(pkg);
}

let tensorflowLoaded: Loaded | undefined;
async function loadTensorflow(): Promise<Loaded> {
  if (tensorflowLoaded !== undefined) return tensorflowLoaded;
  const tried: string[] = [];
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      if ((await importOptional(pkg)) === undefined) {
        tried.push(`${pkg} not installed`);
        continue;
      }
    } catch (e) {
      tried.push(`${pkg}: ${message(e)}`);
      continue;
    }
    if (tf.findBackendFactory('tensorflow') == null) {
      tried.push(`${pkg} loaded but registered no 'tensorflow' backend (tfjs version mismatch?)`);
      continue;
    }
    tensorflowLoaded = { ok: true, status: 'ok', detail: pkg };
    return tensorflowLoaded;
  }
  tensorflowLoaded = { ok: false, status: 'unavailable', detail: tried.join('; ') };
  return tensorflowLoaded;
}

interface GpuAdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}
interface GpuAdapterLike {
  info?: GpuAdapterInfoLike;
  isFallbackAdapter?: boolean;
  requestAdapterInfo?: () => Promise<GpuAdapterInfoLike>;
}
interface GpuLike {
  requestAdapter(options?: object): Promise<GpuAdapterLike | null>;
}

const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader|software|softpipe|warp|basic render/i;

let webgpuProbe: { gpu: GpuLike; name: string; software: boolean } | string | undefined;
async function findAdapter(): Promise<{ gpu: GpuLike; name: string; software: boolean } | string> {
  if (webgpuProbe !== undefined) return webgpuProbe;
  const g = globalThis as { navigator?: { gpu?: GpuLike } };
  let gpu = g.navigator?.gpu;
  if (gpu === undefined) {
    let dawn: { create(flags: string[]): GpuLike; globals: object } | undefined;
    try {
      dawn = (await importOptional('webgpu')) as typeof dawn;
    } catch (e) {
      webgpuProbe = `the webgpu package (dawn.node) failed to load: ${message(e)}`;
      return webgpuProbe;
    }
    if (dawn === undefined) {
      webgpuProbe = 'the webgpu package (dawn.node) is not installed';
      return webgpuProbe;
    }
    Object.assign(globalThis, dawn.globals);
    gpu = dawn.create([]);
    if (g.navigator === undefined) {
      Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    } else {
      Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true, writable: true });
    }
  }
  let adapter: GpuAdapterLike | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    webgpuProbe = `requesting a WebGPU adapter failed: ${message(e)}`;
    return webgpuProbe;
  }
  if (adapter === null) {
    webgpuProbe = 'no WebGPU adapter (no GPU, or no Vulkan/Metal/D3D12 driver for it)';
    return webgpuProbe;
  }
  let info: GpuAdapterInfoLike = adapter.info ?? {};
  if (adapter.info === undefined && adapter.requestAdapterInfo !== undefined) {
    info = await adapter.requestAdapterInfo().catch(() => ({}));
  }
  const text = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ');
  const software =
    info.isFallbackAdapter === true || adapter.isFallbackAdapter === true || SOFTWARE_ADAPTER.test(text);
  webgpuProbe = { gpu, name: text || 'unnamed adapter', software };
  return webgpuProbe;
}

async function loadWebgpu(byName: boolean): Promise<Loaded> {
  const found = await findAdapter();
  if (typeof found === 'string') return { ok: false, status: 'unavailable', detail: found };
  if (found.software && !byName) {
    return {
      ok: false,
      status: 'skipped',
      detail: `software adapter (${found.name}); ask for --backend webgpu to use it anyway`,
    };
  }
  try {
    await import('@tensorflow/tfjs-backend-webgpu');
  } catch (e) {
    return { ok: false, status: 'unavailable', detail: `@tensorflow/tfjs-backend-webgpu: ${message(e)}` };
  }
  if (tf.findBackendFactory('webgpu') == null) {
    return {
      ok: false,
      status: 'unavailable',
      detail: 'tfjs-backend-webgpu did not register (no navigator.gpu)',
    };
  }
  return { ok: true, status: 'ok', detail: found.software ? `${found.name} (software)` : found.name };
}

/**
 * Threads for the wasm backend. `UPIT_WASM_THREADS` when set (0 or 1 = single-threaded); otherwise one
 * per logical core (up to 4) unless the machine is already busy when the backend starts (1-minute load
 * above cores − 0.5): XNNPACK's pool threads spin-wait, which pays off on free cores (reference Llama
 * training on 2 cores: ~3,300 tok/s with 2 threads vs ~2,400 with 1) and backfires on oversubscribed
 * ones (~1,200 vs ~1,800 at load 4). Thread count does not change results.
 */
export function wasmThreadsWanted(): { threads: number; why: string } {
  const env = process.env['UPIT_WASM_THREADS'];
  if (env !== undefined && env.trim() !== '') {
    const n = Number(env);
    if (Number.isInteger(n) && n >= 0) return { threads: Math.min(n, 8), why: 'UPIT_WASM_THREADS' };
  }
  const cores = os.cpus().length;
  if (cores < 2) return { threads: 1, why: 'one core' };
  const load = os.loadavg()[0] ?? 0;
  if (load > cores - 0.5) {
    return {
      threads: 1,
      why: `machine busy: load ${load.toFixed(1)} on ${cores} cores; UPIT_WASM_THREADS=${cores} forces threads`,
    };
  }
  return { threads: Math.min(cores, 4), why: '' };
}

let wasmThreadNote = '';

async function loadWasm(): Promise<Loaded> {
  let init;
  const want = wasmThreadsWanted();
  try {
    init = await initWasm(want.threads);
  } catch (e) {
    return { ok: false, status: 'unavailable', detail: `wasm: ${message(e)}` };
  }
  if (!init.ok) return { ok: false, status: 'unavailable', detail: init.detail };
  registerWasmKernels();
  if (init.fresh === true) wasmThreadNote = init.threads === 1 && want.why !== '' ? ` (${want.why})` : '';
  return { ok: true, status: 'ok', detail: init.detail + wasmThreadNote, threads: init.threads };
}

async function load(name: BackendName, byName: boolean): Promise<Loaded> {
  switch (name) {
    case 'tensorflow':
      return loadTensorflow();
    case 'webgpu':
      return loadWebgpu(byName);
    case 'wasm':
      return loadWasm();
    case 'cpu':
      return { ok: true, status: 'ok', detail: 'reference JavaScript backend' };
  }
}

// ---------------------------------------------------------------------------------------------------
// Self-check: a linear layer and a cross-entropy with their gradients, against values computed here
// in float64.

function selfCheckExpected(): { loss: number; dw: number[] } {
  const x = [
    [0.5, -1, 2],
    [1.5, 0.25, -0.75],
  ];
  const w = [
    [0.1, 0.2, -0.3],
    [-0.5, 0.4, 0.6],
    [0.7, -0.8, 0.05],
    [0.3, 0.3, 0.3],
  ];
  const targets = [2, 0];
  const dLogits: number[][] = [];
  let loss = 0;
  for (let n = 0; n < 2; n++) {
    const logits = w.map((row) => row.reduce((s, v, k) => s + v * x[n]![k]!, 0));
    const m = Math.max(...logits);
    const z = logits.map((l) => Math.exp(l - m));
    const s = z.reduce((a, b) => a + b, 0);
    loss += (Math.log(s) + m - logits[targets[n]!]!) / 2;
    dLogits.push(z.map((e, j) => (e / s - (j === targets[n] ? 1 : 0)) / 2));
  }
  const dw = w.flatMap((row, o) =>
    row.map((_, i) => dLogits[0]![o]! * x[0]![i]! + dLogits[1]![o]! * x[1]![i]!),
  );
  return { loss, dw };
}

async function selfCheck(): Promise<string | undefined> {
  const exp = selfCheckExpected();
  const [loss, dw] = tf.tidy(() => {
    const x = tf.tensor2d([0.5, -1, 2, 1.5, 0.25, -0.75], [2, 3]);
    const w = tf.tensor2d([0.1, 0.2, -0.3, -0.5, 0.4, 0.6, 0.7, -0.8, 0.05, 0.3, 0.3, 0.3], [4, 3]);
    const t = tf.tensor1d([2, 0], 'int32');
    const { value, grads } = tf.valueAndGrads((wv: tf.Tensor) => crossEntropy(linear(x, wv), t))([w]);
    return [value, grads[0]!];
  });
  try {
    const l = (await loss.data())[0]!;
    const g = Array.from(await dw.data());
    if (!(Math.abs(l - exp.loss) < 1e-4)) return `loss ${l} != ${exp.loss.toFixed(6)}`;
    const bad = g.findIndex((v, i) => !(Math.abs(v - exp.dw[i]!) < 1e-4));
    if (bad >= 0 || g.length !== exp.dw.length) return `gradient[${bad}] ${g[bad]} != ${exp.dw[bad]}`;
    return undefined;
  } finally {
    loss.dispose();
    dw.dispose();
  }
}

/** Loads, activates and self-checks one backend. */
async function attempt(name: BackendName, byName: boolean): Promise<BackendAttempt & { threads?: number }> {
  const loaded = await load(name, byName);
  if (!loaded.ok) return { name, status: loaded.status, detail: loaded.detail };
  try {
    if (!(await tf.setBackend(name)))
      return { name, status: 'unavailable', detail: `${name} failed to initialize` };
  } catch (e) {
    return { name, status: 'unavailable', detail: message(e) };
  }
  let problem: string | undefined;
  try {
    problem = await selfCheck();
  } catch (e) {
    problem = message(e);
  }
  if (problem !== undefined)
    return { name, status: 'failed-self-check', detail: `${loaded.detail}: ${problem}` };
  const out: BackendAttempt & { threads?: number } = { name, status: 'ok', detail: loaded.detail };
  if (loaded.threads !== undefined) out.threads = loaded.threads;
  return out;
}

function isBackendName(s: string): s is BackendName {
  return (BACKEND_ORDER as readonly string[]).includes(s);
}

/**
 * Activates a backend. `auto` tries tensorflow, webgpu (hardware adapters only), wasm, cpu in turn and
 * reports why each earlier one was passed over. A backend asked for by name that cannot be used throws
 * a `UserError` saying why.
 */
export async function useBackend(request: BackendRequest): Promise<BackendChoice> {
  if (request !== 'auto' && !isBackendName(request)) {
    throw new UserError(
      `--backend: unknown backend '${String(request)}' (expected auto, ${BACKEND_ORDER.join(', ')})`,
    );
  }
  const candidates = request === 'auto' ? BACKEND_ORDER : [request];
  const attempts: BackendAttempt[] = [];
  for (const name of candidates) {
    const a = await attempt(name, request !== 'auto');
    attempts.push({ name: a.name, status: a.status, detail: a.detail });
    if (a.status === 'ok') {
      const choice: BackendChoice = { name, detail: a.detail, attempts };
      if (a.threads !== undefined) choice.threads = a.threads;
      return choice;
    }
  }
  if (request !== 'auto') {
    const a = attempts[0]!;
    throw new UserError(
      `--backend ${request}: ${a.status === 'failed-self-check' ? 'failed its self-check' : 'unavailable'}: ${a.detail}`,
    );
  }
  // cpu always loads; only a failed self-check on every backend ends here.
  throw new Error(
    `no backend passed its self-check: ${attempts.map((a) => `${a.name}: ${a.detail}`).join('; ')}`,
  );
}

/** The status of every backend (for `upit backends`); leaves the active backend as it was. */
export async function probeBackends(): Promise<BackendAttempt[]> {
  const before = tf.getBackend();
  const out: BackendAttempt[] = [];
  for (const name of BACKEND_ORDER) {
    const a = await attempt(name, true);
    const found = name === 'webgpu' && a.status === 'ok' ? await findAdapter() : undefined;
    if (found !== undefined && typeof found !== 'string' && found.software) {
      out.push({
        name,
        status: 'skipped',
        detail: `${a.detail} passes the self-check; used only with --backend webgpu`,
      });
    } else {
      out.push({ name: a.name, status: a.status, detail: a.detail });
    }
  }
  if (before !== undefined && before !== tf.getBackend()) await tf.setBackend(before);
  return out;
}

/** The active backend. */
export function currentBackend(): BackendName {
  const name = tf.getBackend();
  if (!isBackendName(name)) throw new Error(`unexpected tfjs backend '${name}'`);
  return name;
}
