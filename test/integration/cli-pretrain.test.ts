import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLines, microPretrainArgs, upit } from './cli-helpers.js';

describe('upit pretrain → runs → show → generate, on a micro model', () => {
  let dir: string;
  let ws: string;
  let out: string;
  let first: { steps: number; finalLoss: number; run: number };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'upit-cli-'));
    ws = join(dir, 'ws');
    out = join(dir, 'model');
    const r = upit([
      'pretrain',
      '--workspace',
      ws,
      '--out',
      out,
      ...microPretrainArgs(8),
      '--checkpoint-every',
      '4',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = jsonLines(r.stdout);
    expect(lines.some((l) => l['event'] === 'progress')).toBe(true);
    first = lines.find((l) => l['event'] === 'result') as unknown as typeof first;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('trains, lowers the loss and writes a loadable HF-layout model', () => {
    expect(first.steps).toBe(8);
    expect(first.finalLoss).toBeLessThan(Math.log(256));
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json'])
      expect(existsSync(join(out, f))).toBe(true);
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg['architectures']).toEqual(['LlamaForCausalLM']);
    expect(cfg['hidden_size']).toBe(32);
  });

  it('records the run, its metrics and checksummed checkpoints', () => {
    const runs = upit(['runs', '--workspace', ws, '--json']);
    expect(runs.code).toBe(0);
    const list = JSON.parse(runs.stdout) as { id: number; kind: string; status: string; backend: string }[];
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ kind: 'pretrain', status: 'done', backend: 'wasm' });
    const show = upit(['show', String(list[0]!.id), '--workspace', ws, '--json']);
    const detail = JSON.parse(show.stdout) as {
      metrics: { key: string; count: number }[];
      checkpoints: { step: number; tag: string; sha256: string }[];
    };
    expect(detail.metrics.find((m) => m.key === 'loss')?.count).toBe(8);
    expect(detail.checkpoints.map((c) => [c.step, c.tag])).toEqual([
      [4, 'cadence'],
      [8, 'final'],
      [8, 'model'],
    ]);
    for (const c of detail.checkpoints) expect(c.sha256).toMatch(/^[0-9a-f]{64}$/);
    const text = upit(['show', String(list[0]!.id), '--workspace', ws]);
    expect(text.stdout).toMatch(/checkpoints/);
    expect(text.stdout).toMatch(/loss/);
  });

  it('generates from the trained model, and tokenizes with its byte tokenizer', () => {
    const g = upit([
      'generate',
      '--model',
      out,
      '--prompt',
      'Q: ',
      '--prompt',
      'The',
      '--max-new-tokens',
      '5',
      '--json',
      '--backend',
      'wasm',
    ]);
    expect(g.code).toBe(0);
    const outputs = JSON.parse(g.stdout) as { ids: number[] }[];
    expect(outputs).toHaveLength(2);
    for (const o of outputs) expect(o.ids.length).toBeGreaterThan(0);
    const t = upit(['inspect', 'tokens', '--model', out, '--text', 'hé']);
    expect(t.stdout.trim()).toBe('104,195,169');
  });

  it('runs Stage 1 on it: checkpoints every 0.5 epoch, each scored on every domain', () => {
    const r = upit([
      'prepare',
      '--workspace',
      ws,
      '--base',
      out,
      '--backend',
      'wasm',
      '--json',
      '--train-per-domain',
      '4',
      '--eval-per-domain',
      '2',
      '--epochs',
      '1',
      '--checkpoint-every',
      '0.5',
      '--batch',
      '8',
      '--lr',
      '1e-3',
      '--max-seq-len',
      '160',
      '--eval-batch',
      '16',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const result = jsonLines(r.stdout).find((l) => l['event'] === 'result') as {
      run: number;
      checkpoints: number;
      bestStepByDomain: Record<string, number>;
    };
    expect(result.checkpoints).toBe(2);
    expect(Object.keys(result.bestStepByDomain).sort()).toEqual(['arith', 'code', 'mc', 'qa']);
    const show = JSON.parse(upit(['show', String(result.run), '--workspace', ws, '--json']).stdout) as {
      checkpoints: { id: number }[];
      evaluations: { checkpointId: number | null; domain: string; n: number }[];
      specialisation: {
        perDomain: { domain: string; best: string; vsBase: { n: number } | null }[];
        verdict: string;
      };
    };
    expect(show.checkpoints).toHaveLength(2);
    // per-item outcomes were kept: the best checkpoint per domain is tested against the base, paired
    expect(show.specialisation.perDomain.map((b) => b.domain).sort()).toEqual(['arith', 'code', 'mc', 'qa']);
    for (const b of show.specialisation.perDomain) expect(b.vsBase?.n).toBe(2);
    expect(show.specialisation.verdict).toMatch(/^(yes|no|not shown)/);
    for (const c of show.checkpoints) {
      const domains = show.evaluations.filter((e) => e.checkpointId === c.id).map((e) => e.domain);
      expect(new Set(domains)).toEqual(new Set(['arith', 'code', 'qa', 'mc']));
    }
    expect(show.evaluations.filter((e) => e.checkpointId === null).length).toBeGreaterThan(0); // the base row
    const text = upit(['show', String(result.run), '--workspace', ws]).stdout;
    expect(text).toMatch(/checkpoint × domain/);
    expect(text).toMatch(/does the best checkpoint differ by domain\? /);
    expect(text).toMatch(/base/);
  });

  it('scores a model with upit eval and records the scores; a malformed eval file names its line', () => {
    const r = upit([
      'eval',
      '--workspace',
      ws,
      '--model',
      out,
      '--eval-per-domain',
      '2',
      '--backend',
      'wasm',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const result = jsonLines(r.stdout).find((l) => l['event'] === 'result') as {
      run: number;
      perDomain: { domain: string; metric: string; n: number }[];
    };
    expect(result.perDomain.map((d) => `${d.domain}/${d.metric}`).sort()).toEqual([
      'arith/exact_match',
      'code/exact_match',
      'mc/acc',
      'mc/acc_norm',
      'qa/exact_match',
    ]);
    for (const d of result.perDomain) expect(d.n).toBe(2);
    const show = JSON.parse(upit(['show', String(result.run), '--workspace', ws, '--json']).stdout) as {
      evaluations: unknown[];
    };
    expect(show.evaluations).toHaveLength(5);
    const bad = join(dir, 'bad-eval.jsonl');
    writeFileSync(bad, '{"question": "2+2?", "answer": "4"}\n{"question": "x"}\n');
    const e = upit(['eval', '--workspace', ws, '--model', out, '--eval', bad, '--backend', 'cpu']);
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/bad-eval\.jsonl:2: /);
  });

  it('continues pre-training from --init on a corpus tilted by --mix and --levels', () => {
    const run = (args: string[]) => {
      const r = upit(['pretrain', '--workspace', ws, ...microPretrainArgs(2), ...args]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const lines = jsonLines(r.stdout);
      const firstLoss = lines.find((l) => l['event'] === 'progress')!['loss'] as number;
      return { firstLoss, result: lines.find((l) => l['event'] === 'result') as { model: string } };
    };
    const tilt = ['--mix', 'knowledge=1,instruct=1', '--levels', '1,0,0,0,0'];
    // the model-shape options are ignored: the architecture is the init model's (d 32)
    const cont = run(['--init', out, '--out', join(dir, 'continued'), '--dim', '64', ...tilt]);
    const scratch = run(tilt);
    expect(cont.firstLoss).toBeLessThan(scratch.firstLoss - 0.3);
    const cfg = JSON.parse(readFileSync(join(dir, 'continued', 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(cfg['hidden_size']).toBe(32);

    const bad = (args: string[], message: RegExp) => {
      const r = upit(['pretrain', '--workspace', join(dir, 'ws-bad'), ...microPretrainArgs(1), ...args]);
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
      expect(existsSync(join(dir, 'ws-bad', 'runs', '1'))).toBe(false);
    };
    bad(['--levels', '1,2'], /--levels: expected 5 weights \(levels 1\.\.5\), got 2/);
    bad(['--levels', '0,0,0,0,0'], /corpus\.levels: must have a positive weight/);
    bad(['--mix', 'knowledge=1,facts=2'], /--mix: unknown name 'facts'/);
    bad(['--init', join(dir, 'nowhere')], /--init: .*nowhere does not exist/);
    bad(['--init', join(dir, 'ws')], /ws\/tokenizer\.json/); // not a model directory
  });

  it('learns a BPE from the corpus with --vocab, trains on it, and --init keeps it', () => {
    const bpeOut = join(dir, 'bpe-model');
    const r = upit([
      'pretrain',
      '--workspace',
      ws,
      ...microPretrainArgs(4),
      '--vocab',
      '300',
      '--checkpoint-every',
      '2',
      '--out',
      bpeOut,
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = jsonLines(r.stdout);
    expect(lines.some((l) => l['event'] === 'log' && /BPE of 300 tokens/.test(String(l['message'])))).toBe(
      true,
    );
    const cfg = JSON.parse(readFileSync(join(bpeOut, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect([cfg['vocab_size'], cfg['pad_token_id'], cfg['bos_token_id'], cfg['eos_token_id']]).toEqual([
      300, 256, 257, 258,
    ]);
    const tj = JSON.parse(readFileSync(join(bpeOut, 'tokenizer.json'), 'utf8')) as {
      model: { merges: string[] };
    };
    expect(tj.model.merges).toHaveLength(300 - 259);
    // frequent pieces of the corpus are single tokens now
    const text = 'Q: What does this print?\nA: ';
    const ids = upit(['inspect', 'tokens', '--model', bpeOut, '--text', text]).stdout.trim().split(',');
    expect(ids.length).toBeLessThan(Buffer.byteLength(text));
    expect(ids.every((v) => Number(v) < 300)).toBe(true);
    // every checkpoint carries the tokenizer it was trained with
    const run = (lines.find((l) => l['event'] === 'result') as { run: number }).run;
    const shown = JSON.parse(upit(['show', String(run), '--workspace', ws, '--json']).stdout) as {
      checkpoints: { path: string; tag: string }[];
    };
    for (const c of shown.checkpoints.filter((k) => k.tag === 'cadence'))
      expect(readFileSync(join(ws, dirname(c.path), 'tokenizer.json'), 'utf8')).toBe(
        readFileSync(join(bpeOut, 'tokenizer.json'), 'utf8'),
      );
    // continuing keeps the model's own tokenizer
    const cont = upit(['pretrain', '--workspace', ws, ...microPretrainArgs(1), '--init', bpeOut]);
    expect(cont.stderr).toBe('');
    expect(cont.code).toBe(0);
    const contModel = (jsonLines(cont.stdout).find((l) => l['event'] === 'result') as { model: string })
      .model;
    expect(readFileSync(join(contModel, 'tokenizer.json'), 'utf8')).toBe(
      readFileSync(join(bpeOut, 'tokenizer.json'), 'utf8'),
    );

    for (const [args, message] of [
      [['--vocab', '100'], /vocab: .*259/],
      [['--vocab', '300', '--init', bpeOut], /vocab: cannot be combined with init/],
    ] as const) {
      const b = upit(['pretrain', '--workspace', join(dir, 'ws-bad-bpe'), ...microPretrainArgs(1), ...args]);
      expect(b.code, b.stderr).not.toBe(0);
      expect(b.stderr.trim().split('\n')).toHaveLength(1);
      expect(b.stderr).toMatch(message);
      expect(existsSync(join(dir, 'ws-bad-bpe', 'runs', '1'))).toBe(false);
    }
  });

  it('rejects impossible options naming the field, and leaves nothing behind', () => {
    const r = upit([
      'pretrain',
      '--workspace',
      join(dir, 'ws2'),
      '--dim',
      '30',
      '--heads',
      '4',
      '--steps',
      '1',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/model\.hiddenSize: must be divisible by numHeads/);
    expect(existsSync(join(dir, 'ws2'))).toBe(false);
  });
});
