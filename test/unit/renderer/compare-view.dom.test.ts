import { fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import type {
  CompareRow,
  MetricSeriesRequest,
  RunListRequest,
  RunsCompareRequest,
} from '../../../src-main/contract/index.js';
import OverlayChart from '../../../src-renderer/charts/OverlayChart.svelte';
import { ApiClient } from '../../../src-renderer/lib/api.js';
import { API_CONTEXT } from '../../../src-renderer/lib/context.js';
import CompareView from '../../../src-renderer/views/CompareView.svelte';
import { FakeTransport } from './fake-transport.js';

function row(
  id: number,
  variant: string,
  seed: number,
  average: number,
  router: string,
  topK = 2,
): CompareRow {
  return {
    id,
    experimentId: 1,
    parentRunId: null,
    kind: 'upcycle',
    variant,
    seed,
    status: 'done',
    backend: 'cpu',
    createdAt: 1_700_000_000_000 + id,
    startedAt: null,
    finishedAt: null,
    wallSeconds: null,
    error: null,
    config: { seed, topK, router, poolRun: 3, lora: { r: 8 } },
    metrics: { loss: 3 - average },
    scores: { arith: average + 0.1, code: average - 0.1 },
    average,
  };
}

const ROWS = [
  row(1, 'upit', 1, 0.5, 'pretrained'),
  row(2, 'upit', 2, 0.6, 'pretrained'),
  row(3, 'upit', 3, 0.7, 'pretrained'),
  row(4, 'vanilla', 1, 0.4, 'random', 4),
  row(5, 'vanilla', 2, 0.45, 'random', 4),
];

function setup(rows: CompareRow[] = ROWS) {
  const byId = new Map(rows.map((r) => [r.id, r]));
  const transport = new FakeTransport({
    'experiments.list': () => ({ experiments: [] }),
    'runs.list': (q) => {
      const limit = (q as RunListRequest).limit ?? 200;
      const runs = rows
        .slice(0, limit)
        .map(({ config: _c, metrics: _m, scores: _s, average: _a, ...summary }) => summary);
      return { runs, total: rows.length };
    },
    'runs.compare': (q) => ({ runs: (q as RunsCompareRequest).runIds.map((id) => byId.get(id)!) }),
    'runs.metricSeries': (q) => {
      const { runId, key } = q as MetricSeriesRequest;
      const steps = Array.from({ length: 50 }, (_, i) => i + 1);
      return {
        runId,
        key,
        steps,
        values: steps.map((s) => 3 / s + runId),
        tokens: steps.map(() => null),
        total: 50,
      };
    },
  });
  const client = new ApiClient(transport, { validate: true });
  const result = render(CompareView, { context: new Map([[API_CONTEXT, client]]) });
  const table = () => screen.getByRole('region', { name: 'Runs table' });
  const bodyRows = () => [...table().querySelectorAll('tbody tr.row')] as HTMLElement[];
  const ids = () =>
    bodyRows().map((r) => r.querySelector('a')?.textContent ?? r.querySelector('th')?.textContent);
  const callsOf = (m: string) => transport.calls.filter((c) => c.method === m);
  return { transport, result, table, bodyRows, ids, callsOf };
}

const header = (name: RegExp | string) => screen.getByRole('button', { name });

describe('CompareView', () => {
  it('shows every run with the hyperparameters that differ and the metric columns', async () => {
    const { ids, table } = setup();
    await waitFor(() => expect(ids()).toEqual(['#1', '#2', '#3', '#4', '#5']));
    const heads = within(table())
      .getAllByRole('columnheader')
      .map((h) => h.textContent?.replace(/[▲▼]/g, '').trim());
    // router and topK differ; seed and poolRun are wiring; lora.r is the same everywhere
    expect(heads).toEqual([
      'Selected',
      'run',
      'kind',
      'variant',
      'seed',
      'status',
      'router',
      'topK',
      'average %',
      'arith %',
      'code %',
      'final loss',
    ]);
    const first = within(table()).getByRole('link', { name: '#1' }).closest('tr')!;
    expect(first.textContent).toContain('pretrained');
    expect(first.textContent).toContain('50.0'); // average 0.5 in %
    expect(first.textContent).toContain('2.5'); // final loss
  });

  it('sorts by a column header and filters by substring', async () => {
    const { ids } = setup();
    await waitFor(() => expect(ids()).toHaveLength(5));
    await fireEvent.click(header(/^average %/));
    await waitFor(() => expect(ids()).toEqual(['#3', '#2', '#1', '#5', '#4']));
    expect(
      header(/^average %/)
        .closest('th')
        ?.getAttribute('aria-sort'),
    ).toBe('descending');
    await fireEvent.click(header(/^average %/));
    await waitFor(() => expect(ids()).toEqual(['#4', '#5', '#1', '#2', '#3']));

    // headers are buttons: focusable, and Enter clicks them (pressed for real in the E2E test)
    const topK = header(/^topK/);
    expect(topK.tagName).toBe('BUTTON');
    topK.focus();
    expect(document.activeElement).toBe(topK);
    await fireEvent.click(topK);
    await waitFor(() => expect(topK.closest('th')?.getAttribute('aria-sort')).toBe('ascending'));

    await fireEvent.input(screen.getByLabelText('Filter runs'), { target: { value: 'router=random' } });
    await waitFor(() => expect(ids()).toEqual(['#4', '#5']));
    await fireEvent.input(screen.getByLabelText('Filter runs'), { target: { value: 'nothing-like-this' } });
    await screen.findByText(/No runs match/);
  });

  it('groups by variant with mean ± 95% CI over seeds', async () => {
    const { ids, table } = setup();
    await waitFor(() => expect(ids()).toHaveLength(5));
    await fireEvent.click(screen.getByLabelText('Group by variant'));
    await waitFor(() => expect(ids()).toEqual(['upit', 'vanilla']));
    const upit = within(table()).getByRole('rowheader', { name: 'upit' }).closest('tr')!;
    const cells = [...upit.querySelectorAll('td')].map((c) => c.textContent?.trim());
    // n, seeds, average: 60.0 ± t(0.975, 2)·0.1/√3 = 24.8
    expect(cells.slice(0, 3)).toEqual(['3', '1, 2, 3', '60.0 ± 24.8']);
    const vanilla = within(table()).getByRole('rowheader', { name: 'vanilla' }).closest('tr')!;
    expect(vanilla.textContent).toContain('42.5 ± 31.8'); // 12.706 · 0.0354 / √2 … in %
  });

  it('diffs the configs of two selected runs and overlays their curves', async () => {
    const { ids, callsOf } = setup();
    await waitFor(() => expect(ids()).toHaveLength(5));
    expect(screen.getByText(/Select two runs/)).toBeTruthy();
    await fireEvent.click(screen.getByLabelText('Select run #1'));
    await fireEvent.click(screen.getByLabelText('Select run #4'));
    const diff = await screen.findByRole('table', { name: 'Config diff of run #1 and run #4' });
    const keys = within(diff)
      .getAllByRole('rowheader')
      .map((h) => h.textContent);
    expect(keys).toEqual(['router', 'topK']);
    expect(within(diff).getByRole('rowheader', { name: 'router' }).closest('tr')!.textContent).toMatch(
      /router\s*pretrained\s*random/,
    );
    await waitFor(() => expect(callsOf('runs.metricSeries')).toHaveLength(2));
    expect(callsOf('runs.metricSeries').map((c) => c.request)).toEqual([
      { runId: 1, key: 'loss', maxPoints: 100_000 },
      { runId: 4, key: 'loss', maxPoints: 100_000 },
    ]);
    const fig = await waitFor(() => {
      const f = document.querySelector('figure.overlay') as HTMLElement | null;
      expect(f?.dataset.curves).toBe('2');
      return f!;
    });
    expect(fig.querySelectorAll('path.curve')).toHaveLength(2);
    expect(fig.querySelector('path.curve')?.getAttribute('d')).toMatch(/^M[\d.,-]+L/);
  });

  it('draws parallel coordinates of the numeric hyperparameters and the average', async () => {
    const { ids } = setup();
    await waitFor(() => expect(ids()).toHaveLength(5));
    const pc = document.querySelector('figure.pc') as HTMLElement;
    expect(pc.dataset.axes).toBe('3'); // topK, average, final loss
    expect(pc.querySelectorAll('path')).toHaveLength(5);
    expect(
      screen.getByRole('img', { name: /Parallel coordinates of 5 runs over topK, average %, final loss/ }),
    ).toBeTruthy();
    await fireEvent.click(screen.getByLabelText('Select run #2'));
    await waitFor(() => expect(pc.querySelectorAll('path.hl')).toHaveLength(1));
  });

  it('renders only the visible rows of a thousand runs', async () => {
    const many = Array.from({ length: 1000 }, (_, i) =>
      row(i + 1, `v${i % 10}`, Math.floor(i / 10), (i % 97) / 97, i % 2 ? 'random' : 'pretrained'),
    );
    const { bodyRows, table, callsOf } = setup(many);
    await waitFor(() => expect(bodyRows().length).toBeGreaterThan(0));
    expect(callsOf('runs.list')[0]!.request).toMatchObject({ limit: 1000 });
    expect((callsOf('runs.compare')[0]!.request as RunsCompareRequest).runIds).toHaveLength(1000);
    expect(bodyRows().length).toBeLessThan(60);
    expect(table().querySelector('table')?.getAttribute('aria-rowcount')).toBe('1001');
    // scrolled to the middle: the rows there, and still only a window of them
    const scroller = table();
    scroller.scrollTop = 15_000;
    await fireEvent.scroll(scroller);
    await waitFor(() => expect(bodyRows()[0]?.getAttribute('aria-rowindex')).not.toBe('2'));
    const first = Number(bodyRows()[0]!.getAttribute('aria-rowindex'));
    expect(first).toBeGreaterThan(450);
    expect(first).toBeLessThan(502);
    expect(bodyRows().length).toBeLessThan(60);
  });

  it('says so when there is nothing to compare', async () => {
    setup([]);
    await screen.findByText('Nothing to compare yet');
  });
});

describe('OverlayChart', () => {
  it('draws a 100,000-point curve as at most four points per pixel column', () => {
    const xs = Array.from({ length: 100_000 }, (_, i) => i + 1);
    const ys = xs.map((x) => 3 / Math.sqrt(x) + Math.sin(x));
    const { container } = render(OverlayChart, {
      props: { title: 'loss', series: [{ id: 1, label: '#1', color: 'red', xs, ys }] },
    });
    const fig = container.querySelector('figure.overlay') as HTMLElement;
    expect(fig.dataset.points).toBe('100000');
    // jsdom has no layout: the default 640 px width, 568 px of plot
    expect(Number(fig.dataset.drawn)).toBeLessThanOrEqual(4 * 568);
    expect(Number(fig.dataset.drawn)).toBeGreaterThan(568);
  });
});
