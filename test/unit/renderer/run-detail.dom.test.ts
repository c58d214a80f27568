import { fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import type { MetricSeriesRequest, RunDetail as Run } from '../../../src-main/contract/index.js';
import LineChart from '../../../src-renderer/charts/LineChart.svelte';
import { ApiClient } from '../../../src-renderer/lib/api.js';
import { API_CONTEXT } from '../../../src-renderer/lib/context.js';
import RunDetail from '../../../src-renderer/views/RunDetail.svelte';
import { FakeTransport } from './fake-transport.js';

const run: Run = {
  id: 7,
  experimentId: null,
  parentRunId: null,
  kind: 'pretrain',
  variant: 'tiny',
  seed: 1,
  status: 'running',
  backend: 'wasm',
  createdAt: 1_700_000_000_000,
  startedAt: 1_700_000_000_000,
  finishedAt: null,
  wallSeconds: null,
  error: null,
  config: { lr: 0.001 },
};

function setup() {
  const stored = { steps: [1, 2, 3], values: [3, 2.5, 2.2], tokens: [100, 200, 300] };
  const transport = new FakeTransport({
    'runs.get': () => ({ run }),
    'runs.metricsSummary': () => ({
      runId: 7,
      metrics: [{ key: 'loss', count: 3, firstStep: 1, lastStep: 3, last: 2.2, min: 2.2, max: 3 }],
    }),
    'runs.checkpoints': () => ({ runId: 7, checkpoints: [] }),
    'runs.evaluations': () => ({ runId: 7, evaluations: [] }),
    'jobs.list': () => ({ jobs: [] }),
    'runs.metricSeries': (r) => ({ runId: 7, key: (r as MetricSeriesRequest).key, ...stored, total: 3 }),
  });
  const client = new ApiClient(transport, { validate: true });
  const result = render(RunDetail, { props: { runId: 7 }, context: new Map([[API_CONTEXT, client]]) });
  const figure = () => result.container.querySelector('figure.chart') as unknown as Figure | null;
  const smoothPath = () => result.container.querySelector('path.smoothed')?.getAttribute('d') ?? '';
  return { transport, result, figure, smoothPath };
}

/** The chart's figure element, as far as these tests read it. */
interface Figure {
  dataset: Record<string, string | undefined>;
}

const metric = (runId: number, step: number, value: number) => ({
  type: 'job.metric',
  jobId: 'job-1',
  at: 1,
  runId,
  step,
  key: 'loss',
  value,
  tokens: step * 100,
});

describe('RunDetail curve', () => {
  it('draws the stored series as a raw and a smoothed SVG path', async () => {
    const { figure, smoothPath, result } = setup();
    await waitFor(() => expect(figure()?.dataset.points).toBe('3'));
    expect(figure()?.dataset.render).toBe('svg');
    expect(smoothPath()).toMatch(/^M[\d.,-]+L/);
    expect(result.container.querySelector('path.raw')?.getAttribute('d')).toMatch(/^M/);
    expect(screen.getByRole('img', { name: /loss: 3 points, last 2\.2 at step 3/ })).toBeTruthy();
  });

  it('appends live metric events of this run and ignores other runs', async () => {
    const { transport, figure, smoothPath } = setup();
    await waitFor(() => expect(figure()?.dataset.points).toBe('3'));
    const before = smoothPath();
    transport.emit(metric(99, 4, 1.0)); // another run
    transport.emit(metric(7, 4, 2.0));
    transport.emit(metric(7, 5, 1.9));
    await waitFor(() => expect(figure()?.dataset.points).toBe('5'));
    expect(smoothPath()).not.toBe(before);
    expect(screen.getByRole('img', { name: /5 points, last 1\.9 at step 5/ })).toBeTruthy();
  });

  it('re-draws the smoothed curve when the smoothing slider moves', async () => {
    const { figure, smoothPath } = setup();
    await waitFor(() => expect(figure()?.dataset.points).toBe('3'));
    const before = smoothPath();
    await fireEvent.input(screen.getByRole('slider'), { target: { value: '0' } });
    await waitFor(() => expect(smoothPath()).not.toBe(before));
  });

  it('switches the x axis to tokens', async () => {
    const { figure, result } = setup();
    await waitFor(() => expect(figure()?.dataset.points).toBe('3'));
    expect(figure()?.dataset.firstX).toBe('1');
    await fireEvent.click(screen.getByRole('radio', { name: 'Tokens' }));
    await waitFor(() => expect(figure()?.dataset.firstX).toBe('100'));
    expect(result.container.querySelector('.axis .label')?.textContent).toBe('tokens');
  });

  it('unsubscribes from events when unmounted', async () => {
    const { transport, figure, result } = setup();
    await waitFor(() => expect(figure()?.dataset.points).toBe('3'));
    expect(transport.subscribers).toBeGreaterThan(0);
    result.unmount();
    expect(transport.subscribers).toBe(0);
  });
});

describe('LineChart', () => {
  it('switches to Canvas above the threshold', () => {
    const xs = Array.from({ length: 6000 }, (_, i) => i);
    const { container } = render(LineChart, {
      props: { title: 'loss', xs, ys: xs.map((x) => 1 / (x + 1)), smoothing: 0.5, xLabel: 'step' },
    });
    const fig = container.querySelector('figure.chart') as unknown as Figure;
    expect(fig.dataset.render).toBe('canvas');
    expect(container.querySelector('canvas')).toBeTruthy();
    expect(container.querySelector('path.smoothed')).toBeNull();
  });

  it('says so when there are no points', () => {
    render(LineChart, { props: { title: 'loss', xs: [], ys: [], smoothing: 0.6, xLabel: 'step' } });
    expect(screen.getByText('No points yet.')).toBeTruthy();
  });
});
