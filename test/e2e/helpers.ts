/** Shared E2E plumbing: renderer build, seeded workspace, Chromium launch, screenshots. */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { build } from 'vite';
import { openWorkspace } from '../../src-main/store/index.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const rendererDir = path.join(repoRoot, 'dist', 'renderer');
export const screenshotDir = path.join(repoRoot, 'test-results', 'screenshots');

export const CHROMIUM = process.env.UPIT_CHROMIUM ?? '/usr/bin/chromium';

/** Builds the renderer into dist/renderer (skipped with UPIT_E2E_SKIP_BUILD=1). */
export async function buildRenderer(): Promise<void> {
  if (process.env.UPIT_E2E_SKIP_BUILD === '1') return;
  await build({ configFile: path.join(repoRoot, 'vite.config.ts'), logLevel: 'warn' });
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

export function screenshotPath(name: string): string {
  mkdirSync(screenshotDir, { recursive: true });
  return path.join(screenshotDir, `${name}.png`);
}

export interface SeededWorkspace {
  dir: string;
  trainRunId: number;
  remove(): void;
}

/**
 * A workspace with a finished pretrain run (loss and lr curves with token counts, two
 * checkpoints, evaluations), a failed run and a queued one.
 */
export function seedWorkspace(): SeededWorkspace {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'upit-e2e-'));
  const ws = openWorkspace(dir, { create: true });
  const db = ws.db;
  const train = db.createRun({
    kind: 'pretrain',
    variant: 'tiny-base',
    seed: 1,
    config: { lr: 0.0003, steps: 600 },
  });
  db.startRun(train.id, { backend: 'wasm' });
  const rows = [];
  for (let step = 1; step <= 600; step++) {
    // a deterministic noisy decay (no Math.random: seeded wobble from the step)
    const wobble = Math.sin(step * 12.9898) * 43758.5453;
    const noise = (wobble - Math.floor(wobble) - 0.5) * 0.35;
    rows.push({
      key: 'loss',
      step,
      value: 1.6 + 3.2 * Math.exp(-step / 120) + noise,
      tokens: step * 2048,
      wallTime: step * 0.4,
    });
    if (step % 10 === 0) {
      const lr = step < 20 ? (3e-4 * step) / 20 : 3e-4 * 0.5 * (1 + Math.cos((Math.PI * step) / 600));
      rows.push({ key: 'lr', step, value: lr, tokens: step * 2048, wallTime: step * 0.4 });
    }
  }
  db.insertMetrics(train.id, rows);
  for (const step of [300, 600]) {
    db.addCheckpoint({
      runId: train.id,
      step,
      epoch: step / 600,
      path: `runs/${train.id}/step-${step}.safetensors`,
      sha256: (step === 300 ? 'a' : 'b').repeat(64),
      bytes: 13_200_000,
    });
  }
  db.addEvaluation({
    runId: train.id,
    domain: 'arithmetic',
    metric: 'exact_match',
    score: 0.41,
    n: 500,
    ciLow: 0.37,
    ciHigh: 0.45,
  });
  db.addEvaluation({
    runId: train.id,
    domain: 'program',
    metric: 'exact_match',
    score: 0.28,
    n: 500,
    ciLow: 0.24,
    ciHigh: 0.32,
  });
  db.finishRun(train.id, 'done');

  const failed = db.createRun({ kind: 'prepare', variant: 'lora-r8', seed: 2 });
  db.startRun(failed.id, { backend: 'wasm' });
  db.insertMetrics(
    failed.id,
    [1, 2, 3].map((step) => ({ key: 'loss', step, value: 3 - step * 0.1, tokens: null, wallTime: null })),
  );
  db.finishRun(failed.id, 'failed', 'data/train.jsonl:12: missing field "output"');
  db.createRun({ kind: 'eval', variant: 'dense-sft', seed: 1 });
  ws.close();
  return { dir, trainRunId: train.id, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A workspace holding a finished run of the shipped smoke plan (every stage, five variants) —
 * what the stage views show. Built once with the CLI (`dist/`, made by `npm run build`) into a
 * temporary folder keyed by the plan's and the base model's content, and reused by later E2E
 * files of the same run (they run one after another): a rerun of `upit run` on it is a no-op.
 * Tests that change a workspace work on a copy.
 */
export function smokeWorkspace(): string {
  const plan = path.join(repoRoot, 'resources', 'plans', 'smoke.yaml');
  const model = path.join(repoRoot, 'resources', 'models', 'tiny-base', 'model.safetensors');
  const key = createHash('sha256')
    .update(readFileSync(plan))
    .update(readFileSync(model))
    .digest('hex')
    .slice(0, 12);
  const dir = path.join(os.tmpdir(), `upit-e2e-smoke-${key}`);
  const r = spawnSync(
    process.execPath,
    [path.join(repoRoot, 'bin', 'upit.js'), 'run', plan, '--workspace', dir],
    {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 600_000,
    },
  );
  if (r.status !== 0) throw new Error(`smoke plan failed (${r.status}): ${r.stderr.slice(-2000)}`);
  return dir;
}
