/**
 * The web host end to end: renderer build, `launchWebHost` on a seeded workspace, Debian
 * Chromium driven by playwright-core. Keyboard-only navigation through every view, the
 * seeded run's curves, a live demo job streaming into its chart, cancel from the GUI,
 * both themes. Screenshots land in test-results/screenshots/.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchWebHost, type WebHost } from '../../src-main/host/web/launch.js';
import {
  buildRenderer,
  launchChromium,
  rendererDir,
  screenshotPath,
  seedWorkspace,
  type SeededWorkspace,
} from './helpers.js';

let seeded: SeededWorkspace;
let host: WebHost;
let browser: Browser;
let page: Page;
const problems: string[] = [];

async function api(method: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${host.server.origin}/api/${method}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${host.server.token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return res.json();
}

async function chartPoints(key: string): Promise<number> {
  const fig = page.locator(`figure.chart:has(.title:text-is("${key}"))`);
  return Number(await fig.getAttribute('data-points'));
}

beforeAll(async () => {
  await buildRenderer();
  seeded = seedWorkspace();
  host = await launchWebHost({ workspaceDir: seeded.dir, staticDir: rendererDir });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' });
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
});

afterAll(async () => {
  await browser?.close();
  await host?.stop();
  seeded?.remove();
});

describe('web host in Chromium', () => {
  it('refuses a visit without the token', async () => {
    const p = await browser.newPage();
    const res = await p.goto(host.server.origin + '/');
    expect(res?.status()).toBe(401);
    await p.close();
  });

  it('opens with the token and lands on the run list', async () => {
    await page.goto(host.server.url);
    expect(new URL(page.url()).search).toBe(''); // the token left the address bar
    await page.getByRole('listbox', { name: 'Runs' }).waitFor();
    await expect.poll(() => page.locator('[role=option]').count()).toBe(3);
    await page.getByText('Live updates on').waitFor();
  });

  it('reaches every view with the keyboard', async () => {
    const views = ['Experiments', 'Checkpoints', 'Expansion', 'Router', 'Runs', 'Compare', 'Reports'];
    await page.locator('body').click({ position: { x: 600, y: 5 } });
    for (const [i, label] of views.entries()) {
      await page.keyboard.press(String(i + 1));
      const link = page.getByRole('link', { name: new RegExp(`^${label}`) });
      await expect.poll(() => link.getAttribute('aria-current')).toBe('page');
      expect(await page.locator('h1').textContent()).toBe(label);
      // each view renders its content or its empty state (this workspace has no stage runs)
      await page.locator('main :is(h2, [role=status])').first().waitFor();
      await page.screenshot({ path: screenshotPath(`view-${i + 1}-${label.toLowerCase()}`) });
    }
    // the sidebar itself: arrows move the focus, Enter opens
    await page.getByRole('link', { name: /^Experiments/ }).focus();
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    expect(await page.locator('h1').textContent()).toBe('Expansion');
  });

  it('shows the seeded run with its curves, checkpoints and evaluations', async () => {
    await page.keyboard.press('5'); // Runs; focus goes to the list
    // the list loads asynchronously: End only means "oldest run" once the runs are there
    await page.locator(`#run-option-${seeded.trainRunId}`).waitFor();
    await page.getByRole('listbox', { name: 'Runs' }).focus();
    await page.keyboard.press('End'); // oldest run = the seeded pretrain run
    await page.getByRole('heading', { name: new RegExp(`#${seeded.trainRunId} pretrain`) }).waitFor();
    expect(page.url()).toMatch(new RegExp(`#/runs/${seeded.trainRunId}$`));
    await expect.poll(() => chartPoints('loss')).toBe(600);
    expect(await chartPoints('lr')).toBe(60);
    const path = await page.locator('figure.chart path.smoothed').first().getAttribute('d');
    expect(path?.length).toBeGreaterThan(1000);
    await page.getByRole('cell', { name: `runs/${seeded.trainRunId}/step-600.safetensors` }).waitFor();
    await page.getByRole('cell', { name: 'arithmetic' }).waitFor();

    // smoothing changes the drawn curve; x by tokens relabels the axis
    await page.keyboard.press('[');
    await expect
      .poll(() => page.locator('figure.chart path.smoothed').first().getAttribute('d'))
      .not.toBe(path);
    await page.getByRole('radio', { name: 'Tokens' }).click();
    await page.locator('figure.chart .axis .label', { hasText: 'tokens' }).first().waitFor();
    await page.screenshot({ path: screenshotPath('runs-detail-light') });
    await page.getByRole('radio', { name: 'Step' }).click();
  });

  it('streams a running demo job into its chart and cancels it from the GUI', async () => {
    const { jobId } = (await api('jobs.start', {
      kind: 'demo',
      config: { steps: 2000, intervalMs: 40 },
    })) as {
      jobId: string;
    };
    expect(jobId).toBeTruthy();
    // the new run appears at the top of the list; Home selects it
    await expect.poll(() => page.locator('[role=option]').count()).toBe(4);
    await page.getByRole('listbox', { name: 'Runs' }).focus();
    await page.keyboard.press('Home');
    await page.getByRole('heading', { name: /demo/ }).waitFor();
    await page.locator('figure.chart .live').first().waitFor();
    await expect.poll(() => chartPoints('loss'), { timeout: 20_000 }).toBeGreaterThan(5);
    const before = await chartPoints('loss');
    await expect.poll(() => chartPoints('loss'), { timeout: 20_000 }).toBeGreaterThan(before + 5);
    await page.getByText(/step \d+ \/ 2000/).waitFor();
    // points logged before the view subscribed are fetched back from the store
    const figure = page.locator('figure.chart').first();
    await expect.poll(() => figure.getAttribute('data-first-x'), { timeout: 10_000 }).toBe('1');
    await page.screenshot({ path: screenshotPath('runs-live-light') });

    await page.getByRole('button', { name: 'Cancel job' }).click();
    await page.locator('.titlebar .badge', { hasText: 'cancelled' }).waitFor();
  });

  it('switches to the dark theme with t', async () => {
    await page.keyboard.press('5');
    await page.keyboard.press('End');
    await page.keyboard.press('t'); // system(light) → light
    await page.keyboard.press('t'); // → dark
    await expect.poll(() => page.locator('html').getAttribute('data-theme')).toBe('dark');
    await expect.poll(() => chartPoints('loss')).toBe(600);
    await page.screenshot({ path: screenshotPath('runs-detail-dark') });
    await page.keyboard.press('1');
    await page.screenshot({ path: screenshotPath('view-1-experiments-dark') });
    await page.keyboard.press('?');
    await page.getByRole('dialog').waitFor();
    await page.screenshot({ path: screenshotPath('shortcuts-dark') });
    await page.keyboard.press('Escape');
  });

  it('logged no console errors or CSP violations', () => {
    expect(problems).toEqual([]);
  });

  it('enforces the CSP: an injected inline script and inline style are refused', async () => {
    const outcome = await page.evaluate(async () => {
      const g = globalThis as unknown as {
        document: {
          createElement(tag: string): { textContent: string; setAttribute(k: string, v: string): void };
          body: { append(n: unknown): void };
          addEventListener(type: string, l: (e: { violatedDirective: string }) => void): void;
        };
        getComputedStyle(e: unknown): { color: string };
        __pwned?: number;
      };
      const violations: string[] = [];
      g.document.addEventListener('securitypolicyviolation', (e) => violations.push(e.violatedDirective));
      const script = g.document.createElement('script');
      script.textContent = 'globalThis.__pwned = 1';
      g.document.body.append(script);
      const div = g.document.createElement('div');
      div.setAttribute('style', 'color: rgb(255, 0, 0)');
      g.document.body.append(div);
      await new Promise((r) => setTimeout(r, 100));
      return { pwned: g.__pwned ?? null, color: g.getComputedStyle(div).color, violations };
    });
    expect(outcome.pwned).toBeNull();
    expect(outcome.color).not.toBe('rgb(255, 0, 0)');
    expect(outcome.violations.some((v) => v.startsWith('script-src'))).toBe(true);
    expect(outcome.violations.some((v) => v.startsWith('style-src'))).toBe(true);
  });
});
