/**
 * The desktop app end to end, where the Electron binary exists (it cannot be downloaded on
 * our build machines: there this suite reports itself skipped). Needs `npm run build` (main
 * process, preload, worker) and better-sqlite3 rebuilt for Electron's ABI
 * (`npx electron-builder install-app-deps`).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { _electron, type ElectronApplication, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRenderer, repoRoot, screenshotPath, seedWorkspace, type SeededWorkspace } from './helpers.js';

function electronBinary(): string | null {
  const require = createRequire(import.meta.url);
  try {
    require.resolve('electron');
    const bin = require('electron') as unknown;
    return typeof bin === 'string' && existsSync(bin) ? bin : null;
  } catch {
    return null;
  }
}

const binary = electronBinary();
if (!binary) console.warn('electron e2e: skipped (the electron package or its binary is not installed here)');

describe.skipIf(!binary)('Electron app', () => {
  let seeded: SeededWorkspace;
  let app: ElectronApplication;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    const main = path.join(repoRoot, 'dist', 'main', 'host', 'electron', 'main.js');
    if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first`);
    await buildRenderer();
    seeded = seedWorkspace();
    app = await _electron.launch({
      executablePath: binary!,
      args: [repoRoot, '--workspace', seeded.dir],
      env: { ...process.env, ELECTRON_DISABLE_SECURITY_WARNINGS: 'false' },
    });
    page = await app.firstWindow();
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  afterAll(async () => {
    await app?.close();
    seeded?.remove();
  });

  it('loads the renderer from app:// with no Node in the page and one bridge method per operation', async () => {
    expect(page.url()).toMatch(/^app:\/\/workbench\//);
    await page.getByRole('listbox', { name: 'Runs' }).waitFor();
    const shape = await page.evaluate(() => {
      const w = globalThis as unknown as Record<string, unknown> & {
        upit: Record<string, Record<string, unknown>>;
      };
      return {
        require: typeof w['require'],
        process: typeof w['process'],
        domains: Object.keys(w.upit).sort(),
        runs: Object.keys(w.upit['runs'] ?? {}).sort(),
      };
    });
    expect(shape.require).toBe('undefined');
    expect(shape.process).toBe('undefined');
    expect(shape.domains).toEqual(['backends', 'jobs', 'onEvent', 'runs', 'workspace']);
    expect(shape.runs).toEqual([
      'checkpoints',
      'evaluations',
      'get',
      'list',
      'metricSeries',
      'metricsSummary',
    ]);
  });

  it('shows the seeded run and streams a demo job from the utility-process worker', async () => {
    await expect.poll(() => page.locator('[role=option]').count()).toBe(3);
    await page.evaluate(() =>
      (globalThis as unknown as { upit: { jobs: { start(r: unknown): Promise<unknown> } } }).upit.jobs.start({
        kind: 'demo',
        config: { steps: 200, intervalMs: 30 },
      }),
    );
    await expect.poll(() => page.locator('[role=option]').count()).toBe(4);
    await page.getByRole('listbox', { name: 'Runs' }).focus();
    await page.keyboard.press('Home');
    const fig = page.locator('figure.chart').first();
    await expect
      .poll(async () => Number(await fig.getAttribute('data-points')), { timeout: 20_000 })
      .toBeGreaterThan(10);
    await page.screenshot({ path: screenshotPath('electron-runs-live') });
  });

  it('refuses navigation away from the app', async () => {
    await page.evaluate(() => {
      (globalThis as unknown as { location: { href: string } }).location.href = 'https://example.com/';
    });
    await page.waitForTimeout(300);
    expect(page.url()).toMatch(/^app:\/\/workbench\//);
  });

  it('logged no renderer errors', () => {
    expect(problems).toEqual([]);
  });
});
