/**
 * `npm run bench -- <name> [<name> …]`: prints figures and ratios against a reference
 * measured in the same run. No name: every benchmark.
 */
type Bench = () => Promise<void>;

const BENCHES: Record<string, { what: string; load: () => Promise<Bench> }> = {
  train: {
    what: 'training tokens/s and GFLOP/s of the reference Llama per backend vs its own matmul GFLOP/s',
    load: async () => (await import('./train.js')).benchTrain,
  },
  merge: {
    what: 'merge throughput (GB/s of parameters) of a ~300 MB model vs a plain copy of the same bytes, and peak RSS',
    load: async () => (await import('./merge.js')).benchMerge,
  },
  moe: {
    what: 'training step of top-2-of-8 LoRA-MoE and top-2-of-4 FFN-MoE against the dense step of the same base',
    load: async () => (await import('./moe.js')).benchMoe,
  },
  compare: {
    what: 'Compare view: group/sort/filter 1,000 runs and draw a 100,000-point curve at 1,000 px vs the naive way',
    load: async () => (await import('./compare.js')).benchCompare,
  },
  ingest: {
    what: 'metric ingest rows/s into SQLite: batched writer vs one row per transaction',
    load: async () => (await import('./ingest.js')).benchIngest,
  },
};

async function main(): Promise<void> {
  const args = process.argv.slice(2).filter((a) => a !== '--');
  if (args.includes('--help') || args.includes('-h')) {
    console.log('usage: npm run bench -- [name …]\n');
    for (const [name, b] of Object.entries(BENCHES)) console.log(`  ${name.padEnd(8)} ${b.what}`);
    return;
  }
  const names = args.length > 0 ? args : Object.keys(BENCHES);
  for (const name of names) {
    const bench = BENCHES[name];
    if (!bench) {
      console.error(`bench: unknown benchmark '${name}' (known: ${Object.keys(BENCHES).join(', ')})`);
      process.exitCode = 2;
      return;
    }
    console.log(`\n== ${name}: ${bench.what}`);
    await (
      await bench.load()
    )();
  }
}

await main();
