/**
 * The Experiments, Compare and Reports views end to end: the web host on a workspace holding a
 * finished run of the shipped smoke plan, Debian Chromium at 1280×800 driven by playwright-core.
 * Experiments lists 'smoke' with its five variants and starts the smoke plan again from the GUI
 * (every job is done already, so the plan job finishes at once); Compare shows the upcycle runs
 * with their scores, a config diff of two, their curves and the parallel coordinates; Reports
 * previews HTML and Markdown and downloads the export under the host's file name. Screenshots
 * land in test-results/screenshots/.
 */
import { readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchWebHost, type WebHost } from '../../src-main/host/web/launch.js';
import { buildRenderer, launchChromium, rendererDir, screenshotPath, smokeWorkspace } from './helpers.js';

const VARIANTS = ['dense', 'upit', 'no-router-init', 'vanilla', 'loramoe'];

let host: WebHost;
let dir: string;
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

async function openView(label: string): Promise<void> {
  await page.getByRole('link', { name: new RegExp(`^${label}`) }).click();
  await expect.poll(() => page.locator('h1').textContent()).toBe(label);
}

beforeAll(async () => {
  await buildRenderer();
  // the shared smoke workspace stays as the plan left it: this file adds an experiment, so a copy
  dir = mkdtempSync(path.join(os.tmpdir(), 'upit-e2e-exp-'));
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
});

afterAll(async () => {
  await browser?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  await host?.stop();
});

describe('Experiments, Compare and Reports in Chromium', () => {
  it('lists the smoke experiment with its five variants and its runs by variant', async () => {
    await openView('Experiments');
    const option = page.getByRole('listbox', { name: 'Experiments' }).getByRole('option', { name: /smoke/ });
    await option.waitFor();
    expect(await option.getAttribute('aria-selected')).toBe('true');
    expect(await option.locator('.tag').allTextContents()).toEqual(VARIANTS);
    await expect.poll(() => option.locator('.st.done').textContent()).toBe('7 done');

    const grid = page.getByRole('table', { name: 'Runs by variant and seed' });
    await grid.waitFor();
    for (const v of VARIANTS)
      await grid.locator(`tr[data-variant="${v}"] .badge`, { hasText: 'done' }).waitFor();
    expect(await grid.locator('tr[data-variant="upit"]').textContent()).toMatch(/#\d+ upcycle/);
    expect(await grid.locator('tr[data-variant="shared stages"]').textContent()).toMatch(/expand.*route/s);
    await page.screenshot({ path: screenshotPath('experiments-light') });
  });

  it('runs the shipped smoke plan again from the GUI: the plan job finishes at once', async () => {
    await page.getByRole('button', { name: 'New experiment' }).click();
    await page.getByRole('tab', { name: 'From a plan', selected: true }).waitFor();
    const row = page.locator('tr[data-plan="smoke"]');
    expect(await row.textContent()).toContain('dense, upit, no-router-init, vanilla, loramoe');
    await page.getByRole('button', { name: 'Run plan smoke (shipped)' }).click();

    const started = page.getByRole('status').filter({ hasText: 'Started plan' });
    await started.waitFor();
    const jobId = (await started.locator('code').textContent())!;
    expect(jobId).toBeTruthy();
    const job = page.locator(`.jobs [data-job="${jobId}"]`);
    await expect.poll(() => job.getAttribute('data-state'), { timeout: 60_000 }).toBe('finished');
    expect(await job.locator('.state').textContent()).toBe('finished');
    const { jobs } = await api<{ jobs: { jobId: string; kind: string; state: string }[] }>('jobs.list', {});
    expect(jobs.find((j) => j.jobId === jobId)).toMatchObject({ kind: 'plan', state: 'finished' });
    await page.screenshot({ path: screenshotPath('experiments-run-plan-light') });
  });

  it('writes a plan with the form and shows the host’s validation error inline', async () => {
    await page.getByRole('tab', { name: 'From a form' }).click();
    await page.getByLabel('Name', { exact: true }).fill('e2e-form');
    await page.getByLabel('Seeds').fill('1, x');
    const yaml = page.getByLabel(/Plan \(YAML\)/);
    await expect.poll(() => yaml.inputValue()).toContain('name: e2e-form');
    expect(await yaml.inputValue()).toContain('seeds: [1, "x"]');
    const before = problems.length;
    await page.getByRole('button', { name: 'Run plan' }).click();
    const alert = page.locator('#plan-error');
    await alert.waitFor();
    // Chromium logs the refused request (HTTP 400): expected here
    const logged = problems.splice(before);
    expect(logged.every((p) => p.includes('status of 400'))).toBe(true);
    expect(await alert.getAttribute('role')).toBe('alert');
    expect(await alert.textContent()).toMatch(/seeds\.1/);
    await page.screenshot({ path: screenshotPath('experiments-form-light') });
  });

  it('compares the upcycle runs: scores, sorting, a config diff, curves, parallel coordinates', async () => {
    await openView('Compare');
    const table = page.getByRole('region', { name: 'Runs table' });
    await expect.poll(() => table.locator('tbody tr.row').count()).toBe(7);
    await page.getByLabel('Filter runs').fill('upcycle');
    await expect.poll(() => table.locator('tbody tr.row').count()).toBe(4);
    const rows = table.locator('tbody tr.row');
    for (const v of ['upit', 'no-router-init', 'vanilla', 'loramoe'])
      await rows.filter({ hasText: v }).first().waitFor();
    // the hyperparameters that differ among them, and their scores (in %)
    const heads = (await table.locator('thead th').allTextContents()).map((h) =>
      h.replace(/[▲▼]/g, '').trim(),
    );
    expect(heads).toEqual(
      expect.arrayContaining(['init', 'router', 'average %', 'arith %', 'code %', 'final loss']),
    );
    const upit = rows.filter({ hasText: 'upit' }).first();
    expect(await upit.textContent()).toMatch(/pretrained/);
    expect(await upit.textContent()).toMatch(/\d+\.\d/);

    // sort by the final loss with the keyboard
    const lossHeader = table.getByRole('button', { name: /^final loss/ });
    await lossHeader.focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => lossHeader.locator('xpath=..').getAttribute('aria-sort')).toBe('ascending');
    const losses = await table.locator('tbody tr.row td:last-child').allTextContents();
    const nums = losses.map(Number);
    expect([...nums].sort((a, b) => a - b)).toEqual(nums);

    // select upit and vanilla: their config diff and their loss curves
    await upit.getByRole('checkbox').check();
    await rows.filter({ hasText: 'vanilla' }).first().getByRole('checkbox').check();
    const diff = page.getByRole('table', { name: /^Config diff of run #\d+ and run #\d+$/ });
    await diff.waitFor();
    const router = diff.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'router' }) });
    expect(await router.textContent()).toMatch(/router\s*pretrained\s*random/);
    expect(await diff.getByRole('rowheader').allTextContents()).toEqual(
      expect.arrayContaining(['init', 'router']),
    );
    const overlay = page.locator('figure.overlay');
    await expect.poll(() => overlay.getAttribute('data-curves')).toBe('2');
    // short curves (a few logged steps each) are drawn whole
    const points = Number(await overlay.getAttribute('data-points'));
    expect(points).toBeGreaterThan(2);
    expect(Number(await overlay.getAttribute('data-drawn'))).toBe(points);
    expect(await overlay.locator('path.curve').first().getAttribute('d')).toMatch(/^M[\d.,-]+L/);

    // parallel coordinates: a line per shown run, the selected ones highlighted
    const pc = page.locator('figure.pc');
    expect(Number(await pc.getAttribute('data-axes'))).toBeGreaterThanOrEqual(2);
    await expect.poll(() => pc.locator('path').count()).toBe(4);
    expect(await pc.locator('path.hl').count()).toBe(2);
    await page.screenshot({ path: screenshotPath('compare-light'), fullPage: false });

    // grouped by variant: n per group
    await page.getByLabel('Group by variant').check();
    await table.getByRole('rowheader', { name: 'upit' }).waitFor();
    await page.getByLabel('Group by variant').uncheck();

    // dark theme (t cycles system → light → dark; not while typing in the filter)
    await page.locator('h2#compare-heading').click();
    await page.keyboard.press('t');
    await page.keyboard.press('t');
    await expect.poll(() => page.locator('html').getAttribute('data-theme')).toBe('dark');
    await page.screenshot({ path: screenshotPath('compare-dark') });
    await page.keyboard.press('t'); // → system (light)
    await expect.poll(() => page.locator('html').getAttribute('data-theme')).toBe('light');
  });

  it('previews the report as HTML and Markdown and exports it under its file name', async () => {
    await openView('Reports');
    const select = page.getByLabel('Experiment');
    await expect.poll(() => select.locator('option:checked').textContent()).toBe('smoke');
    const frame = page.locator('iframe[title="Preview of smoke.html"]');
    await frame.waitFor();
    expect(await frame.getAttribute('sandbox')).toBe('');
    await page.frameLocator('iframe[title="Preview of smoke.html"]').locator('h1').waitFor();
    expect(
      await page.frameLocator('iframe[title="Preview of smoke.html"]').locator('table').count(),
    ).toBeGreaterThan(0);
    const pdf = page.getByRole('button', { name: 'Export PDF' });
    expect(await pdf.isDisabled()).toBe(true);
    expect(await pdf.getAttribute('title')).toMatch(/not available in the web host/);
    await page.screenshot({ path: screenshotPath('reports-html-light') });

    await page.getByRole('tab', { name: 'Markdown' }).click();
    const pre = page.getByLabel('Preview of smoke.md');
    await pre.waitFor();
    const { experiments } = await api<{ experiments: { id: number; name: string }[] }>(
      'experiments.list',
      {},
    );
    const smoke = experiments.find((e) => e.name === 'smoke')!;
    const rendered = await api<{ filename: string; content: string }>('reports.render', {
      experimentId: smoke.id,
      format: 'md',
    });
    expect(rendered.filename).toBe('smoke.md');
    // the preview shows what the host rendered (its "generated at" line aside)
    const strip = (s: string) => s.replace(/.*Generated.*\n?/gi, '');
    expect(strip((await pre.textContent()) ?? '')).toBe(strip(rendered.content));

    const link = page.getByRole('link', { name: /^Export smoke\.md/ });
    expect(await link.getAttribute('download')).toBe('smoke.md');
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    expect(download.suggestedFilename()).toBe('smoke.md');
    const saved = readFileSync((await download.path())!, 'utf8');
    expect(strip(saved)).toBe(strip(rendered.content));
    await page.screenshot({ path: screenshotPath('reports-md-light') });
  });

  // A srcdoc iframe inherits the page's CSP: the hosts allow the report's one stylesheet by its
  // hash (src-main/host/csp.ts), and nothing else inline.
  const REPORT_CSS_REFUSED = /Applying inline style violates the following Content Security Policy/;

  it('applies the HTML report’s own CSS in the preview', async () => {
    await page.getByRole('tab', { name: 'HTML' }).click();
    const body = page.frameLocator('iframe[title="Preview of smoke.html"]').locator('body');
    await body.waitFor();
    const font = await body.evaluate(
      (el) =>
        (globalThis as unknown as { getComputedStyle(e: unknown): { fontFamily: string } }).getComputedStyle(
          el,
        ).fontFamily,
    );
    expect(font).toContain('system-ui');
    expect(problems.filter((p) => REPORT_CSS_REFUSED.test(p))).toEqual([]);
  });

  it('creates a new experiment from edited plan text and runs it to the end', async () => {
    // last, as it adds an experiment the tests above do not expect
    await openView('Experiments');
    await page.getByRole('button', { name: 'New experiment' }).click();
    await page.getByRole('tab', { name: 'From a form' }).click();
    // replace the generated YAML by hand with a one-variant micro plan
    const yaml = page.getByLabel(/Plan \(YAML\)/);
    await yaml.fill(
      [
        'name: e2e-new',
        'data: { source: embedded, trainPerDomain: 2, evalPerDomain: 1 }',
        'prepare: { epochs: 0.5, batchSize: 4, maxSeqLen: 128, evalBase: false, evalMaxNewTokens: 8 }',
        'variants: [dense]',
        '',
      ].join('\n'),
    );
    await page.getByRole('button', { name: 'Run plan' }).click();
    const started = page.getByRole('status').filter({ hasText: 'Started plan' });
    await started.waitFor();
    const jobId = (await started.locator('code').textContent())!;
    const job = page.locator(`.jobs [data-job="${jobId}"]`);
    await expect.poll(() => job.getAttribute('data-state'), { timeout: 120_000 }).toBe('finished');
    // the new experiment is listed with its finished run
    const option = page
      .getByRole('listbox', { name: 'Experiments' })
      .getByRole('option', { name: /e2e-new/ });
    await option.waitFor();
    await expect.poll(() => option.locator('.st.done').textContent(), { timeout: 30_000 }).toBe('1 done');
    const { experiments } = await api<{ experiments: { name: string; variants: string[] }[] }>(
      'experiments.list',
      {},
    );
    expect(experiments.find((e) => e.name === 'e2e-new')?.variants).toEqual(['dense']);
  });

  it('logged no console errors or CSP violations', () => {
    expect(problems).toEqual([]);
  });
});
