import { fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import type { ExpertsResponse, RunDetail, RunSummary } from '../../../src-main/contract/index.js';
import { ApiError } from '../../../src-main/contract/index.js';
import { ApiClient } from '../../../src-renderer/lib/api.js';
import { API_CONTEXT } from '../../../src-renderer/lib/context.js';
import ExpansionView from '../../../src-renderer/views/ExpansionView.svelte';
import { FakeTransport, type Handler } from './fake-transport.js';

const T = 1_700_000_000_000;

function summary(id: number): RunSummary {
  return {
    id,
    experimentId: 1,
    parentRunId: null,
    kind: 'expand',
    variant: null,
    seed: 1,
    status: 'done',
    backend: null,
    createdAt: T + id,
    startedAt: T + id,
    finishedAt: T + id + 5,
    wallSeconds: 5,
    error: null,
  };
}

const detail: RunDetail = {
  ...summary(2),
  config: {
    seed: 7,
    prepareRun: 1,
    checkpoints: [4, 8],
    subset: 'all',
    n: 4,
    p: 0.5,
    metric: 'cosine',
    selection: 'most-distant',
    loraMergeSpace: 'delta',
  },
};

const POOL: ExpertsResponse = {
  runId: 2,
  experts: [
    { idx: 0, name: 'step-4', source: 'checkpoint', checkpointId: 1, lineage: null },
    { idx: 1, name: 'step-8', source: 'checkpoint', checkpointId: 2, lineage: null },
    {
      idx: 2,
      name: 'expert-02',
      source: 'merge',
      checkpointId: 3,
      lineage: { parents: [0, 1], alpha: 0.4, p: 0.5, seed: 11, distance: 0.011 },
    },
    {
      idx: 3,
      name: 'expert-03',
      source: 'merge',
      checkpointId: 4,
      lineage: { parents: [0, 2], alpha: 0.7, p: 0.5, seed: 12, distance: 0.037 },
    },
  ],
  distances: {
    metric: 'cosine',
    matrix: [
      [0, 0.011, 0.037, 0.039],
      [0.011, 0, 0.033, 0.044],
      [0.037, 0.033, 0, 0.047],
      [0.039, 0.044, 0.047, 0],
    ],
  },
};

function setup(over: Partial<Record<string, Handler>> = {}) {
  const transport = new FakeTransport({
    'runs.list': () => ({ runs: [summary(2)], total: 1 }),
    'runs.get': () => ({ run: detail }),
    'runs.experts': () => POOL,
    'jobs.start': () => ({ jobId: 'job-2' }),
    ...over,
  });
  const client = new ApiClient(transport, { validate: true });
  const result = render(ExpansionView, { context: new Map([[API_CONTEXT, client]]) });
  return { transport, result };
}

const cells = () => screen.queryAllByRole('gridcell');

describe('ExpansionView', () => {
  it('shows the distance matrix, the lineage tree and the pool', async () => {
    const { result } = setup();
    await waitFor(() => expect(cells()).toHaveLength(16));
    expect(cells()[1]!.dataset.value).toBe('0.011');
    expect(cells()[0]!.dataset.value).toBe(''); // the diagonal is left blank
    expect(cells()[0]!.title).toBe('step-4: itself');
    expect(cells()[1]!.title).toBe('step-4 ↔ step-8: 0.0110 — merged as parents');
    // the parent pairs (0,1) and (0,2) are marked, both ways round
    const marked = cells().filter((c) => c.classList.contains('marked'));
    expect(marked.map((c) => `${c.dataset.r}${c.dataset.c}`)).toEqual(['01', '02', '10', '20']);
    expect(screen.getAllByRole('columnheader').map((h) => h.textContent?.trim())).toContain('expert-03');

    // lineage: two children × two parents, weights on the edges
    const edges = result.container.querySelectorAll('svg.lineage path.edge');
    expect(edges).toHaveLength(4);
    const labels = [...result.container.querySelectorAll('svg.lineage .edge-label')].map(
      (t) => t.textContent,
    );
    expect(labels).toEqual(['α 0.40p 0.50', 'β 0.60p 0.50', 'α 0.70p 0.50', 'β 0.30p 0.50']);
    expect(result.container.querySelectorAll('svg.lineage .node.source')).toHaveLength(2);
    expect(
      screen.getByRole('img', { name: /expert-03 merges step-4 \(α 0\.70\) and expert-02/ }),
    ).toBeTruthy();

    // the table
    const rows = result.container.querySelectorAll('table.experts tbody tr');
    expect([...rows].map((r) => r.textContent?.replace(/\s+/g, ' ').trim())).toEqual([
      '0step-4checkpoint————',
      '1step-8checkpoint————',
      '2expert-02mergestep-4 + step-80.4000.50.0110',
      '3expert-03mergestep-4 + expert-020.7000.50.0370',
    ]);
    expect(screen.getByRole('link', { name: 'prepare run #1' }).getAttribute('href')).toBe('#/checkpoints/1');
  });

  it('moves through the matrix with the arrow keys', async () => {
    setup();
    await waitFor(() => expect(cells()).toHaveLength(16));
    const first = cells()[0]!;
    expect(first.tabIndex).toBe(0);
    first.focus();
    await fireEvent.keyDown(first, { key: 'ArrowRight' });
    expect(document.activeElement).toBe(cells()[1]);
    await fireEvent.keyDown(cells()[1]!, { key: 'ArrowDown' });
    expect(document.activeElement).toBe(cells()[5]);
    await fireEvent.keyDown(cells()[5]!, { key: 'End', ctrlKey: true });
    expect(document.activeElement).toBe(cells()[15]);
    await waitFor(() => expect(cells()[15]!.tabIndex).toBe(0));
    expect(cells()[0]!.tabIndex).toBe(-1);
  });

  it('runs the expansion again on the same prepare run with the run’s settings as defaults', async () => {
    const { transport } = setup();
    await waitFor(() => expect(cells()).toHaveLength(16));
    expect((screen.getByLabelText('Experts n') as HTMLInputElement).value).toBe('4');
    expect((screen.getByLabelText('Seed') as HTMLInputElement).value).toBe('7');
    await fireEvent.input(screen.getByLabelText('Experts n'), { target: { value: '6' } });
    await fireEvent.change(screen.getByLabelText('Distance'), { target: { value: 'l2' } });
    await fireEvent.input(screen.getByLabelText('α low'), { target: { value: '0.2' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Run expansion again' }));
    await waitFor(() => expect(transport.calls.some((c) => c.method === 'jobs.start')).toBe(true));
    expect(transport.calls.find((c) => c.method === 'jobs.start')?.request).toEqual({
      kind: 'expand',
      config: {
        prepareRun: 1,
        checkpoints: [4, 8],
        subset: 'all',
        n: 6,
        p: 0.5,
        metric: 'l2',
        selection: 'most-distant',
        seed: 7,
        alphaClamp: [0.2, 1],
      },
    });
    transport.emit({ type: 'job.failed', jobId: 'job-2', at: 1, runId: 5, error: 'out of disk' });
    expect((await screen.findByRole('alert')).textContent).toBe('out of disk');
  });

  it('replays job events that arrive before jobs.start answers', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const { transport } = setup({
      'jobs.start': async () => {
        await gate;
        return { jobId: 'job-3' };
      },
    });
    await waitFor(() => expect(cells()).toHaveLength(16));
    await fireEvent.click(screen.getByRole('button', { name: 'Run expansion again' }));
    await waitFor(() => expect(transport.calls.some((c) => c.method === 'jobs.start')).toBe(true));
    transport.emit({ type: 'job.started', jobId: 'job-3', kind: 'expand', runId: 9, at: 1 });
    transport.emit({ type: 'job.finished', jobId: 'job-3', at: 2, runId: 9, result: null });
    release();
    const link = await screen.findByRole('link', { name: 'Show expansion run #9' });
    expect(link.getAttribute('href')).toBe('#/expansion/9');
  });

  it('says so when the workspace has no expand runs', async () => {
    setup({ 'runs.list': () => ({ runs: [], total: 0 }) });
    expect((await screen.findByRole('status')).textContent).toMatch(/No expansion runs yet/);
  });

  it('shows an API error', async () => {
    setup({
      'runs.experts': () => {
        throw new ApiError('unavailable', 'the workspace is not open');
      },
    });
    expect((await screen.findByRole('alert')).textContent).toBe('the workspace is not open');
  });
});
