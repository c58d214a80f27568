/**
 * Merge throughput benchmark: `npx tsx test/bench/merge.ts [megabytes] [threads]`
 *
 * Writes a Llama-shaped F32 model of ~300 MB (base + 2 fine-tuned variants) into a temp dir, then
 * prints, for each merge method, GB/s of merged parameters (output F32 bytes / wall time), against
 * a plain copy of the same bytes measured in the same run: reading the three weight files and
 * writing (and fsyncing) one output file of the model's size, i.e. the I/O the merge cannot avoid.
 * Each method is measured three ways: on the calling thread with the WebAssembly SIMD kernels (the
 * default, and the figure comparable with the single-threaded copy), on the calling thread with
 * the JavaScript kernels (UPIT_MERGE_SIMD=0), and with `threads` worker threads merging tensors
 * with the JavaScript kernels (default `defaultMergeThreads()`; 0 skips it), labelled as such.
 * Also prints an in-memory memcpy of the model's bytes for scale, DARE mask generation speed
 * (uint32 threshold vs a float draw per element), and peak RSS (sampled during each merge, and the
 * process's VmHWM from /proc/self/status).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Rng } from '../../src-main/common/rng.js';
import { SafetensorsWriter } from '../../src-main/io/safetensors.js';
import { mergeModels } from '../../src-main/upit/merge/model.js';
import { defaultMergeThreads } from '../../src-main/upit/merge/parallel.js';
import { MaskStream } from '../../src-main/upit/merge/sparsify.js';

interface Planned {
  name: string;
  shape: number[];
}

function llamaPlan(targetBytes: number): { config: Record<string, unknown>; plan: Planned[] } {
  const hidden = 1024;
  const inter = 2816;
  const vocab = 2048;
  const perLayer = 4 * hidden * hidden + 3 * hidden * inter + 2 * hidden;
  const layers = Math.max(1, Math.round((targetBytes / 4 - 2 * vocab * hidden - hidden) / perLayer));
  const plan: Planned[] = [{ name: 'model.embed_tokens.weight', shape: [vocab, hidden] }];
  for (let i = 0; i < layers; i++) {
    const p = `model.layers.${i}`;
    plan.push({ name: `${p}.input_layernorm.weight`, shape: [hidden] });
    for (const q of ['q', 'k', 'v', 'o'])
      plan.push({ name: `${p}.self_attn.${q}_proj.weight`, shape: [hidden, hidden] });
    plan.push({ name: `${p}.post_attention_layernorm.weight`, shape: [hidden] });
    plan.push({ name: `${p}.mlp.gate_proj.weight`, shape: [inter, hidden] });
    plan.push({ name: `${p}.mlp.up_proj.weight`, shape: [inter, hidden] });
    plan.push({ name: `${p}.mlp.down_proj.weight`, shape: [hidden, inter] });
  }
  plan.push(
    { name: 'model.norm.weight', shape: [hidden] },
    { name: 'lm_head.weight', shape: [vocab, hidden] },
  );
  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: hidden,
    intermediate_size: inter,
    num_hidden_layers: layers,
    num_attention_heads: 16,
    num_key_value_heads: 16,
    vocab_size: vocab,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    max_position_embeddings: 2048,
    tie_word_embeddings: false,
  };
  return { config, plan };
}

/** Fill with uniform values in ±scale from a xorshift32 stream (fast, deterministic). */
function fillUniform(out: Float32Array, seed: number, scale: number, add?: Float32Array): void {
  let x = seed >>> 0 || 1;
  const k = (2 * scale) / 4294967296;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (add ? add[i]! : 0) + ((x >>> 0) * k - scale);
  }
}

function writeModel(dir: string, config: Record<string, unknown>, plan: Planned[], variant: number): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  const w = new SafetensorsWriter(path.join(dir, 'model.safetensors'), plan);
  plan.forEach((t, i) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const base = new Float32Array(n);
    fillUniform(base, 1000 + i, 0.05);
    if (variant === 0) w.write(t.name, base);
    else {
      const out = new Float32Array(n);
      fillUniform(out, variant * 7919 + i, 0.002, base);
      w.write(t.name, out);
    }
  });
  w.finish();
}

/** Read `files` in 16 MiB chunks and write `outBytes` to `out` (fsynced): the merge's unavoidable I/O. */
function copyBaseline(files: string[], out: string, outBytes: number): number {
  const buf = Buffer.allocUnsafe(16 << 20);
  const t0 = performance.now();
  for (const f of files) {
    const fd = fs.openSync(f, 'r');
    let pos = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, pos);
      if (n <= 0) break;
      pos += n;
    }
    fs.closeSync(fd);
  }
  const fd = fs.openSync(out, 'w');
  for (let pos = 0; pos < outBytes; pos += buf.length) {
    fs.writeSync(fd, buf, 0, Math.min(buf.length, outBytes - pos), pos);
  }
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  const s = (performance.now() - t0) / 1000;
  fs.rmSync(out);
  return s;
}

function vmHwmMiB(): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

const MiB = 1 << 20;
/** Runs per figure (the best is kept): this VM's timings vary by ±30% from run to run. */
const RUNS = 3;

/** Best-of-5 ns per element of DARE keep masks: MaskStream (packed bits) vs a float draw per element. */
function maskBench(): { p: number; nsPerElem: number; floatNsPerElem: number }[] {
  const n = 1 << 20;
  const bits = new Uint32Array(n >>> 5);
  const keep = new Uint8Array(n);
  const res = [];
  for (const p of [0.5, 0.3]) {
    let ns = Infinity;
    let floatNs = Infinity;
    for (let rep = 0; rep < 5; rep++) {
      const s = new MaskStream(new Rng(rep), p);
      let t0 = performance.now();
      for (let off = 0; off < n; off += 4096) s.fillBits(bits.subarray(off >>> 5), 4096);
      ns = Math.min(ns, ((performance.now() - t0) * 1e6) / n);
      const rng = new Rng(rep);
      t0 = performance.now();
      for (let i = 0; i < n; i++) keep[i] = rng.next() >= p ? 1 : 0;
      floatNs = Math.min(floatNs, ((performance.now() - t0) * 1e6) / n);
    }
    res.push({ p, nsPerElem: ns, floatNsPerElem: floatNs });
  }
  return res;
}

export async function benchMerge(targetMB = 300, threads = defaultMergeThreads()): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'upit-bench-merge-'));
  try {
    const { config, plan } = llamaPlan(targetMB * 1e6);
    const params = plan.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
    const bytes = params * 4;
    const dirs = ['base', 'ft1', 'ft2'].map((d) => path.join(root, d));
    const tg = performance.now();
    // note: VmHWM below includes the two model-sized buffers of the memcpy reference
    dirs.forEach((d, i) => writeModel(d, config, plan, i));
    console.log(
      `model: ${plan.length} tensors, ${(params / 1e6).toFixed(1)} M params, ${(bytes / 1e6).toFixed(0)} MB F32 ` +
        `(3 models written in ${((performance.now() - tg) / 1000).toFixed(1)} s)`,
    );
    const files = dirs.map((d) => path.join(d, 'model.safetensors'));
    const copy = () => copyBaseline(files, path.join(root, 'copy.bin'), bytes);
    const src = Buffer.alloc(bytes);
    const dst = Buffer.alloc(bytes); // touched, so the copy below does not count page faults
    const t0 = performance.now();
    src.copy(dst);
    const memcpyGBs = bytes / 1e9 / ((performance.now() - t0) / 1000);
    console.log(`in-memory memcpy of the same bytes: ${memcpyGBs.toFixed(2)} GB/s (for scale)`);
    for (const mb of maskBench()) {
      console.log(
        `DARE mask p=${mb.p}: ${mb.nsPerElem.toFixed(2)} ns/element (MaskStream, ${mb.p === 0.5 ? '1 bit of a generator word per draw' : 'uint32 threshold per draw'}) ` +
          `vs ${mb.floatNsPerElem.toFixed(2)} ns/element (Rng.next() float per element)`,
      );
    }
    const workers = `${threads} worker${threads === 1 ? '' : 's'}`;
    console.log(
      `merge of base + 2 models; each figure best of ${RUNS} runs, against the best of ${RUNS} copy baselines run ` +
        'alongside it (read 3 weight files + write one of the model size + fsync, on one thread), so ' +
        'machine load hits both. "SIMD" (the default) and "JavaScript": the arithmetic on the calling ' +
        'thread with the WebAssembly SIMD kernels or the JavaScript loops (reads are issued ' +
        `asynchronously and overlap it); "${workers}": ${workers} merge${threads === 1 ? 's' : ''} ` +
        'tensors with the JavaScript loops while the ' +
        'calling thread reads and writes (more threads than the copy: not a like-for-like ratio). ' +
        'CPU s: all threads of the process. Bit-identical outputs every way.',
    );

    const methods: [string, Record<string, unknown>][] = [
      ['linear', {}],
      ['task_arithmetic', { weights: [0.5, 0.5] }],
      ['dare_linear', { weights: [0.5, 0.5], drop: 0.5 }],
      ['dare_linear (l1)', { weights: [0.5, 0.5], drop: 0.5, rescale: 'l1' }],
      ['ties', { weights: [0.5, 0.5], density: 0.2 }],
      ['dare_ties', { weights: [0.5, 0.5], drop: 0.5 }],
    ];
    const gb = bytes / 1e9;
    const cpuS = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1e6;
    console.log(
      `${'method'.padEnd(17)} ${'run'.padEnd(11)} ${'wall s'.padStart(7)} ${'GB/s'.padStart(6)} ` +
        `${'% of copy'.padStart(9)} ${'CPU s'.padStart(6)}  peak RSS MiB (+ during the run)`,
    );
    const row = (label: string, run: string, s: number, copyS: number, cpu: number, rss = '') =>
      console.log(
        `${label.padEnd(17)} ${run.padEnd(11)} ${s.toFixed(2).padStart(7)} ${(gb / s).toFixed(2).padStart(6)} ` +
          `${`${((100 * copyS) / s).toFixed(0)}%`.padStart(9)} ${cpu.toFixed(2).padStart(6)}  ${rss}`,
      );
    for (const [label, p] of methods) {
      const method = label.split(' ')[0]!;
      /** One merge: wall and CPU seconds (all threads), RSS before and at its peak. */
      const merge = async (t: number, simd: boolean) => {
        if (simd) delete process.env.UPIT_MERGE_SIMD;
        else process.env.UPIT_MERGE_SIMD = '0';
        const before = process.memoryUsage().rss;
        let peak = before;
        const timer = setInterval(() => {
          peak = Math.max(peak, process.memoryUsage().rss);
        }, 5);
        const cpu0 = process.cpuUsage();
        const start = performance.now();
        await mergeModels({
          method,
          baseDir: dirs[0]!,
          modelDirs: [dirs[1]!, dirs[2]!],
          seed: 1,
          outDir: path.join(root, 'out'),
          threads: t,
          ...p,
          onProgress: () => {
            peak = Math.max(peak, process.memoryUsage().rss);
          },
        });
        const s = (performance.now() - start) / 1000;
        const cpu = cpuS(process.cpuUsage(cpu0));
        delete process.env.UPIT_MERGE_SIMD;
        clearInterval(timer);
        fs.rmSync(path.join(root, 'out'), { recursive: true, force: true });
        return { s, cpu, before, peak };
      };
      const best = async (t: number, simd = false) => {
        const runs = [];
        for (let i = 0; i < RUNS; i++) runs.push(await merge(t, simd));
        const r = runs.reduce((x, y) => (y.s < x.s ? y : x));
        const peak = Math.max(...runs.map((x) => x.peak));
        return { ...r, peak, before: Math.min(...runs.map((x) => x.before)) };
      };
      const timedCopy = () => {
        const cpu0 = process.cpuUsage();
        const s = copy();
        return { s, cpu: cpuS(process.cpuUsage(cpu0)) };
      };
      const c = Array.from({ length: RUNS }, timedCopy).reduce((x, y) => (y.s < x.s ? y : x));
      row(label, 'copy', c.s, c.s, c.cpu);
      const rss = (r: { before: number; peak: number }) =>
        `${(r.peak / MiB).toFixed(0)} (+${((r.peak - r.before) / MiB).toFixed(0)})`;
      const simd = await best(0, true);
      row('', 'SIMD', simd.s, c.s, simd.cpu, rss(simd));
      const one = await best(0);
      row('', 'JavaScript', one.s, c.s, one.cpu, rss(one));
      if (threads > 0) {
        const many = await best(threads);
        row('', workers, many.s, c.s, many.cpu, rss(many));
      }
    }
    const hwm = vmHwmMiB();
    if (hwm !== null)
      console.log(
        `process VmHWM ${hwm.toFixed(0)} MiB (includes two ${(bytes / MiB).toFixed(0)} MiB memcpy buffers; largest tensor ${((Math.max(...plan.map((t) => t.shape.reduce((a, b) => a * b, 1))) * 4) / MiB).toFixed(0)} MiB)`,
      );
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const mb = Number(process.argv[2] ?? 300);
  const threads = process.argv[3] === undefined ? defaultMergeThreads() : Number(process.argv[3]);
  benchMerge(mb, threads).catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
