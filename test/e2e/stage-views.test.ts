/**
 * The stage views end to end on a finished smoke-plan workspace (a private copy: this file
 * starts a job in it): Checkpoints (score heatmap, picking checkpoints and expanding them from
 * the GUI), Expansion (distance matrix, lineage, pool), Router (routing heatmap, seed buckets),
 * in Debian Chromium at 1280×800, light and dark. Screenshots land in test-results/screenshots/.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchWebHost, type WebHost } from '../../src-main/host/web/launch.js';
import { buildRenderer, launchChromium, rendererDir, screenshotPath, smokeWorkspace } from './helpers.js';

let dir: string;
let host: WebHost;
let browser: Browser;
let page: Page;
const problems: string[] = [];

async function api<T>(method: string, body: unknown): Promise<T> {
  const res = await fetch(`${host.server.origin}/api/${method}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${host.server.token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as T;
}

interface Run {
  id: number;
  kind: string;
  variant: string | null;
}

async function runsOf(kind: string): Promise<Run[]> {
  return (await api<{ runs: Run[] }>('runs.list', { kinds: [kind] })).runs;
}

/** Shortcuts are ignored while a field has the focus. */
async function blur(): Promise<void> {
  await page.evaluate('document.activeElement && document.activeElement.blur()');
}

async function openView(digit: string, label: string): Promise<void> {
  await blur();
  await page.keyboard.press(digit);
  await expect.poll(() => page.locator('h1').textContent()).toBe(label);
}

const cells = (grid: string) => page.getByRole('grid', { name: new RegExp(grid) }).getByRole('gridcell');

beforeAll(async () => {
  await buildRenderer();
  // the shared smoke workspace stays as the plan left it: work on a copy
  dir = mkdtempSync(path.join(os.tmpdir(), 'upit-e2e-stage-'));
  cpSync(smokeWorkspace(), dir, { recursive: true });
  host = await launchWebHost({ workspaceDir: dir, staticDir: rendererDir });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' });
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  await page.goto(host.server.url);
  await page.getByText('Live updates on').waitFor();
  await page.locator('body').click({ position: { x: 600, y: 5 } });
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await host?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('stage views in Chromium', () => {
  let prepare: Run;
  let expandRun: number;

  it('Checkpoints: the prepare run’s checkpoint × domain heatmap', async () => {
    [prepare] = (await runsOf('prepare')) as [Run];
    const { checkpoints } = await api<{ checkpoints: unknown[] }>('runs.checkpoints', { runId: prepare.id });
    const { evaluations } = await api<{ evaluations: { domain: string }[] }>('runs.evaluations', {
      runId: prepare.id,
    });
    const domains = new Set(evaluations.map((e) => e.domain));
    expect(checkpoints).toHaveLength(2);
    expect(domains.size).toBe(4);

    await openView('2', 'Checkpoints');
    await expect.poll(() => cells('Checkpoint × domain').count()).toBe(checkpoints.length * domains.size);
    const heads = await page.getByRole('grid').getByRole('columnheader').allTextContents();
    expect(
      heads
        .map((h) => h.trim())
        .slice(1)
        .sort(),
    ).toEqual([...domains].sort());
    // every cell holds a score in % with its n and 95% CI in the tooltip
    for (const text of await cells('Checkpoint × domain').allTextContents()) expect(text).toMatch(/^\d+\.\d/);
    expect(await cells('Checkpoint × domain').first().getAttribute('title')).toMatch(/n = \d+, 95% CI/);
    await page.screenshot({ path: screenshotPath('checkpoints-light') });
  });

  it('Checkpoints: picks checkpoints and expands them from the GUI', async () => {
    const before = (await runsOf('expand')).length;
    const boxes = page.getByRole('grid').getByRole('checkbox');
    expect(await boxes.count()).toBe(2);
    // keyboard: Space on each checkbox
    for (let i = 0; i < 2; i++) {
      await boxes.nth(i).focus();
      await page.keyboard.press('Space');
    }
    await page.getByText('2 of 2 checkpoints ticked').waitFor();
    await page.getByLabel('Experts n').fill('4');
    const expand = page.getByRole('button', { name: 'Expand', exact: true });
    await expect.poll(() => expand.isEnabled()).toBe(true);
    await expand.click();
    const panel = page.getByRole('region', { name: 'Expansion job' });
    await panel.waitFor();
    await expect.poll(() => panel.getAttribute('data-state'), { timeout: 120_000 }).toBe('finished');
    expect(await panel.getByRole('log').textContent()).toMatch(/expand/);
    const runs = await runsOf('expand');
    expect(runs).toHaveLength(before + 1);
    expandRun = runs[0]!.id;
    const config = (await api<{ run: { config: Record<string, unknown> } }>('runs.get', { runId: expandRun }))
      .run.config;
    expect(config).toMatchObject({ prepareRun: prepare.id, checkpoints: [4, 8], n: 4 });
    await page.screenshot({ path: screenshotPath('checkpoints-expanded-light') });

    // the result link opens the new run in the Expansion view
    await panel.getByRole('link', { name: `Open expansion run #${expandRun}` }).click();
    await expect.poll(() => page.locator('h1').textContent()).toBe('Expansion');
    await expect.poll(() => page.getByLabel('Expand run').inputValue()).toBe(String(expandRun));
  });

  it('Expansion: the distance matrix, the lineage and the pool', async () => {
    await expect.poll(() => cells('distance between experts').count()).toBe(16);
    const heads = await page.getByRole('grid').getByRole('columnheader').allTextContents();
    expect(heads.map((h) => h.trim()).slice(1)).toEqual(['step-4', 'step-8', 'expert-02', 'expert-03']);
    expect(await page.locator('svg.lineage path.edge').count()).toBe(4);
    expect(await page.locator('svg.lineage .edge-label').first().textContent()).toMatch(/^α 0\.\d\dp 0\.50$/);
    expect(await page.locator('table.experts tbody tr').count()).toBe(4);
    // the plan's own expand run, picked from the list
    const planRun = (await runsOf('expand')).find((r) => r.id !== expandRun)!;
    await page.getByLabel('Expand run').selectOption(String(planRun.id));
    await expect
      .poll(() => page.getByRole('grid').getAttribute('aria-label'))
      .toBe(`cosine distance between experts of run #${planRun.id}`);
    expect(await cells('distance between experts').count()).toBe(16);
    expect(await page.locator('svg.lineage path.edge').count()).toBe(4);
    await page.screenshot({ path: screenshotPath('expansion-light') });
    await page.getByRole('button', { name: 'Run expansion again' }).scrollIntoViewIfNeeded();
    await page.screenshot({ path: screenshotPath('expansion-form-light') });
  });

  it('Router: routing by domain × expert of an upcycle run, seed buckets of a route run', async () => {
    await openView('4', 'Router');
    const upit = (await runsOf('upcycle')).find((r) => r.variant === 'upit')!;
    await page.getByLabel('Route / upcycle run').selectOption(String(upit.id));
    await expect.poll(() => cells(`Routing of run #${upit.id}`).count()).toBe(16);
    expect(await page.getByRole('grid').getByRole('rowheader').count()).toBe(4);
    await page.getByLabel('Layer', { exact: true }).selectOption('0');
    await expect.poll(() => page.getByRole('grid').getAttribute('aria-label')).toMatch(/layer 0$/);
    // each domain's shares over the experts add up to 100 %
    const values = (await cells('Routing').evaluateAll((els) =>
      els.map((e) => Number(e.dataset['value'])),
    )) as number[];
    for (let d = 0; d < 4; d++)
      expect(values.slice(4 * d, 4 * d + 4).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    await page.getByLabel('Layer', { exact: true }).selectOption('-1');
    await page.screenshot({ path: screenshotPath('router-light') });

    const [route] = await runsOf('route');
    await page.getByLabel('Route / upcycle run').selectOption(String(route!.id));
    await expect.poll(() => page.locator('rect.bar').count()).toBe(4);
    const sizes = await page
      .locator('rect.bar')
      .evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-value'))));
    const { seedBuckets } = await api<{ seedBuckets: { size: number }[] }>('runs.routing', {
      runId: route!.id,
    });
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(seedBuckets.reduce((a, b) => a + b.size, 0));
    await page.screenshot({ path: screenshotPath('router-route-light') });
  });

  it('all three in the dark theme', async () => {
    await blur();
    await page.keyboard.press('t'); // system (light) → light
    await page.keyboard.press('t'); // → dark
    await expect.poll(() => page.locator('html').getAttribute('data-theme')).toBe('dark');
    await expect.poll(() => page.locator('rect.bar').count()).toBe(4);
    await page.screenshot({ path: screenshotPath('router-route-dark') });
    await openView('4', 'Router');
    await page.getByLabel('Route / upcycle run').selectOption(String((await runsOf('upcycle'))[0]!.id));
    await expect.poll(() => cells('Routing').count()).toBe(16);
    await page.screenshot({ path: screenshotPath('router-dark') });
    await openView('3', 'Expansion');
    await expect.poll(() => cells('distance between experts').count()).toBe(16);
    await page.screenshot({ path: screenshotPath('expansion-dark') });
    await openView('2', 'Checkpoints');
    await expect.poll(() => cells('Checkpoint × domain').count()).toBe(8);
    await page.screenshot({ path: screenshotPath('checkpoints-dark') });
  });

  it('logged no console errors or CSP violations', () => {
    expect(problems).toEqual([]);
  });
});
