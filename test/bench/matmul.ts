/**
 * Matmul micro-benchmark: `npx tsx test/bench/matmul.ts [backend ...] [--stock]`
 *
 * Prints GFLOP/s of rank-2, transposed and batched `tf.matMul`, and of `linear`/`bmm` forward and
 * forward+backward, plus ms of `embed`/`crossEntropy`, for every backend that loads here (or the ones
 * named). `--stock` also measures wasm with tfjs's own kernels (before our replacements).
 * `UPIT_WASM_THREADS=1` runs wasm single-threaded.
 *
 * `matmulGflops(backend)` is the rank-2 figure, reused by the training benchmark.
 */
import { pathToFileURL } from 'node:url';
import {
  currentBackend,
  probeBackends,
  useBackend,
  type BackendName,
} from '../../src-main/tensor/backend.js';
import { bmm, crossEntropy, embed, linear } from '../../src-main/tensor/ops.js';
import { tf } from '../../src-main/tensor/tf.js';
import { setWasmKernels } from '../../src-main/tensor/wasm-kernels.js';

/**
 * Seconds per call of `fn` (which returns the tensors to wait for), after warm-up: the fastest run, the
 * figure least disturbed by other processes on a shared machine.
 */
async function timeIt(fn: () => tf.Tensor | tf.Tensor[], minSeconds = 0.4, maxIters = 200): Promise<number> {
  const once = async () => {
    const out = tf.tidy(fn);
    const list = Array.isArray(out) ? out : [out];
    for (const t of list) await t.data();
    tf.dispose(list);
  };
  await once();
  await once();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < maxIters && (times.length < 3 || performance.now() - start < minSeconds * 1000)) {
    const t0 = performance.now();
    await once();
    times.push((performance.now() - t0) / 1000);
  }
  return Math.min(...times);
}

function randn(shape: number[]): tf.Tensor {
  return tf.randomNormal(shape, 0, 0.5, 'float32', 7);
}

async function useIfNeeded(backend: BackendName): Promise<void> {
  let cur: BackendName | undefined;
  try {
    cur = currentBackend();
  } catch {
    cur = undefined;
  }
  if (cur !== backend) await useBackend(backend);
}

/** GFLOP/s of a rank-2 `matMul` `[M, K]·[K, N]` on `backend` (default shape: a 2048-token batch, 256·512). */
export async function matmulGflops(backend: BackendName, m = 2048, k = 256, n = 512): Promise<number> {
  await useIfNeeded(backend);
  const a = randn([m, k]);
  const b = randn([k, n]);
  try {
    const s = await timeIt(() => tf.matMul(a, b));
    return (2 * m * k * n) / s / 1e9;
  } finally {
    tf.dispose([a, b]);
  }
}

interface Row {
  name: string;
  gflops?: number;
  ms: number;
  error?: string;
}

async function benchBackend(): Promise<Row[]> {
  const rows: Row[] = [];
  const add = async (name: string, flops: number, fn: () => tf.Tensor | tf.Tensor[]) => {
    let s: number;
    try {
      s = await timeIt(fn);
    } catch (e) {
      rows.push({ name, ms: NaN, error: (e as Error).message.split('\n')[0]!.slice(0, 80) });
      return;
    }
    rows.push(flops > 0 ? { name, gflops: flops / s / 1e9, ms: s * 1e3 } : { name, ms: s * 1e3 });
  };
  // Reference model shapes: B 16 × T 128 = 2048 tokens, d 128, SwiGLU 344, 4 heads of 32, vocab 256.
  const N = 2048;
  const D = 128;
  const F = 344;
  const x = randn([16, 128, D]);
  const x2 = tf.reshape(x, [N, D]);
  const w = randn([F, D]);
  const wt = tf.transpose(w);
  const q = randn([64, 128, 32]);
  const kT = randn([64, 32, 128]);
  const k = tf.transpose(kT, [0, 2, 1]);
  const v = randn([64, 128, 32]);
  const p = tf.softmax(randn([64, 128, 128]));
  const ids = tf.randomUniform([16, 128], 0, 256, 'int32', 3);
  const table = randn([256, D]);
  const logits = randn([16, 128, 256]);
  const mask = tf.cast(tf.greater(tf.randomUniform([16, 128], 0, 1, 'float32', 5), 0.3), 'float32');
  const lin = 2 * N * D * F;
  const att = 2 * 64 * 128 * 128 * 32;
  try {
    await add(`matMul [${N},${D}]·[${D},${F}]`, lin, () => tf.matMul(x2, wt));
    await add(`matMul [${N},${F}]·[${F},${D}]`, lin, () => tf.matMul(tf.ones([N, F]), w));
    await add(`matMul a·bᵀ (transposeB)`, lin, () => tf.matMul(x2, w, false, true));
    await add(`matMul aᵀ·b (transposeA) [${D},${N}]ᵀ`, lin, () =>
      tf.matMul(x2, tf.ones([N, F]), true, false),
    );
    await add(`batched [64,128,32]·[64,32,128]`, att, () => tf.matMul(q, kT));
    await add(`batched q·kᵀ (transposeB)`, att, () => tf.matMul(q, k, false, true));
    await add(`linear fwd [16,128,${D}]→${F}`, lin, () => linear(x, w));
    await add(`linear fwd+bwd`, 3 * lin, () =>
      tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(linear(a, b)))([x, w]),
    );
    await add(`bmm q·kᵀ fwd+bwd`, 3 * att, () =>
      tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(bmm(a as tf.Tensor3D, b as tf.Tensor3D, false, true)))([
        q,
        k,
      ]),
    );
    await add(`bmm p·v fwd+bwd`, 3 * att, () =>
      tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(bmm(a as tf.Tensor3D, b as tf.Tensor3D)))([p, v]),
    );
    await add(`embed fwd+bwd [16,128]→${D}`, 0, () =>
      tf.grad((t: tf.Tensor) => tf.sum(embed(ids, t)))(table),
    );
    await add(`crossEntropy fwd+bwd [2048,256]`, 0, () =>
      tf.grad((l: tf.Tensor) => crossEntropy(l, ids, mask))(logits),
    );
  } finally {
    tf.dispose([x, x2, w, wt, q, kT, k, v, p, ids, table, logits, mask]);
  }
  return rows;
}

function print(title: string, rows: Row[]): void {
  console.log(`\n${title}`);
  for (const r of rows) {
    const g = r.gflops === undefined ? '' : `${r.gflops.toFixed(2).padStart(8)} GFLOP/s`;
    const t = r.error === undefined ? `${r.ms.toFixed(2).padStart(9)} ms` : `error: ${r.error}`;
    console.log(`  ${r.name.padEnd(42)} ${g.padEnd(18)} ${t}`);
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const stockToo = args.includes('--stock');
  let names = args.filter((a) => !a.startsWith('--')) as BackendName[];
  if (names.length === 0) {
    const probe = await probeBackends();
    names = probe.filter((p) => p.status === 'ok').map((p) => p.name);
    for (const p of probe) if (p.status !== 'ok') console.log(`(${p.name}: ${p.status}: ${p.detail})`);
  }
  for (const name of names) {
    const choice = await useBackend(name);
    print(
      `${name} (${choice.detail}): rank-2 matMul ${(await matmulGflops(name)).toFixed(2)} GFLOP/s`,
      await benchBackend(),
    );
    if (name === 'wasm' && stockToo) {
      setWasmKernels(false);
      try {
        print(`wasm with tfjs's stock kernels`, await benchBackend());
      } finally {
        setWasmKernels(true);
      }
    }
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
