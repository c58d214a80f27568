import { fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';
import type { Checkpoint, Evaluation, RunSummary } from '../../../src-main/contract/index.js';
import { ApiError } from '../../../src-main/contract/index.js';
import { ApiClient } from '../../../src-renderer/lib/api.js';
import { API_CONTEXT } from '../../../src-renderer/lib/context.js';
import CheckpointsView from '../../../src-renderer/views/CheckpointsView.svelte';
import { FakeTransport, type Handler } from './fake-transport.js';

const T = 1_700_000_000_000;

function summary(id: number, over: Partial<RunSummary> = {}): RunSummary {
  return {
    id,
    experimentId: null,
    parentRunId: null,
    kind: 'prepare',
    variant: 'dense',
    seed: 1,
    status: 'done',
    backend: 'wasm',
    createdAt: T + id,
    startedAt: T + id,
    finishedAt: T + id + 10,
    wallSeconds: 10,
    error: null,
    ...over,
  };
}

function checkpoint(id: number, step: number): Checkpoint {
  return {
    id,
    runId: 3,
    step,
    epoch: step / 8,
    path: `runs/3/checkpoints/step-${step}/params.safetensors`,
    sha256: 'a'.repeat(64),
    bytes: 1000,
    tag: 'cadence',
    createdAt: T,
  };
}

let evalId = 0;
function evaluation(checkpointId: number | null, domain: string, metric: string, score: number): Evaluation {
  return {
    id: ++evalId,
    runId: 3,
    checkpointId,
    modelRef: checkpointId === null ? 'base' : `ckpt-${checkpointId}`,
    domain,
    metric,
    score,
    n: 200,
    ciLow: score - 0.05,
    ciHigh: score + 0.05,
    createdAt: T,
  };
}

// base + steps 4 and 8 on two domains; mc has acc (higher) and acc_norm (the primary)
const EVALS = [
  evaluation(null, 'arith', 'exact_match', 0.1),
  evaluation(null, 'mc', 'acc', 0.5),
  evaluation(null, 'mc', 'acc_norm', 0.3),
  evaluation(1, 'arith', 'exact_match', 0.42),
  evaluation(1, 'mc', 'acc', 0.9),
  evaluation(1, 'mc', 'acc_norm', 0.25),
  evaluation(2, 'arith', 'exact_match', 0.2),
  evaluation(2, 'mc', 'acc', 0.1),
  evaluation(2, 'mc', 'acc_norm', 0.35),
];

function setup(over: Partial<Record<string, Handler>> = {}) {
  const transport = new FakeTransport({
    'runs.list': () => ({ runs: [summary(3), summary(1)], total: 2 }),
    'runs.checkpoints': (r) => ({
      runId: (r as { runId: number }).runId,
      checkpoints: [checkpoint(2, 8), checkpoint(1, 4)],
    }),
    'runs.evaluations': (r) => ({ runId: (r as { runId: number }).runId, evaluations: EVALS }),
    'jobs.start': () => ({ jobId: 'job-9' }),
    ...over,
  });
  const client = new ApiClient(transport, { validate: true });
  const result = render(CheckpointsView, { context: new Map([[API_CONTEXT, client]]) });
  return { transport, result };
}

const cells = () => screen.queryAllByRole('gridcell');
const started = (t: FakeTransport) => t.calls.filter((c) => c.method === 'jobs.start').map((c) => c.request);

afterEach(() => {
  window.location.hash = '';
});

describe('CheckpointsView', () => {
  it('says whether the best checkpoint differs by domain when the run has paired outcomes', async () => {
    setup({
      'runs.evaluations': (r) => ({
        runId: (r as { runId: number }).runId,
        evaluations: EVALS,
        specialisation:
          'yes: step 4 beats step 8 on arith (+17.0, p 0.004) and loses to it on mc (−10.0, p 0.021)',
      }),
    });
    const line = await screen.findByTestId('specialisation');
    expect(line.textContent).toMatch(
      /Does the best checkpoint differ by domain\? yes: step 4 beats step 8 on arith/,
    );
  });

  it('says nothing about specialisation for a run without per-item outcomes', async () => {
    setup();
    await waitFor(() => expect(cells()).toHaveLength(6));
    expect(screen.queryByTestId('specialisation')).toBeNull();
  });

  it('shows the newest prepare run as a checkpoint × domain heatmap of primary scores', async () => {
    const { transport } = setup();
    await waitFor(() => expect(cells()).toHaveLength(6)); // base + 2 checkpoints × 2 domains
    expect(transport.calls.find((c) => c.method === 'runs.list')?.request).toMatchObject({
      kinds: ['prepare'],
    });
    expect(transport.calls.find((c) => c.method === 'runs.evaluations')?.request).toEqual({ runId: 3 });
    const grid = screen.getByRole('grid', { name: /run #3/ });
    const headers = within(grid)
      .getAllByRole('rowheader')
      .map((h) => h.textContent?.replace(/\s+/g, ' ').trim());
    expect(headers).toEqual(['base model', 'step 4 ep 0.5', 'step 8 ep 1']);
    // values in %, by row: acc_norm for mc (not acc), exact_match for arith
    expect(cells().map((c) => c.dataset.value)).toEqual(['0.1', '0.3', '0.42', '0.25', '0.2', '0.35']);
    expect(cells().map((c) => c.textContent?.trim())).toEqual([
      '10.0',
      '30.0',
      '42.0★',
      '25.0',
      '20.0',
      '35.0★',
    ]);
    // tooltip with n and the 95% CI
    expect(cells()[2]!.title).toBe('step 4, arith: exact_match 42.0% (n = 200, 95% CI 37.0–47.0%)');
    expect(cells()[2]!.getAttribute('aria-label')).toMatch(/\(best\)$/);
    // coloured by the scale: distinct values, distinct colours
    expect(cells()[2]!.style.backgroundColor).not.toBe(cells()[0]!.style.backgroundColor);
  });

  it('starts an expand job with the ticked checkpoint steps and the knobs, then links to the run', async () => {
    const { transport } = setup();
    await waitFor(() => expect(cells()).toHaveLength(6));
    const expand = screen.getByRole('button', { name: 'Expand' }) as HTMLButtonElement;
    expect(expand.disabled).toBe(true); // fewer than 2 ticked
    await fireEvent.click(screen.getByRole('checkbox', { name: /step 8/ }));
    // Space on a grid cell ticks its row
    await fireEvent.keyDown(cells()[2]!, { key: ' ' });
    await waitFor(() => expect(expand.disabled).toBe(false));
    expect(screen.getByText(/2 of 2 checkpoints ticked: steps 4, 8/)).toBeTruthy();
    await fireEvent.input(screen.getByLabelText('Experts n'), { target: { value: '6' } });
    await fireEvent.input(screen.getByLabelText('DARE drop p'), { target: { value: '0.3' } });
    await fireEvent.input(screen.getByLabelText('α high'), { target: { value: '0.8' } });
    await fireEvent.change(screen.getByLabelText('Parents'), { target: { value: 'random' } });
    await fireEvent.click(expand);
    await waitFor(() => expect(started(transport)).toHaveLength(1));
    expect(started(transport)[0]).toEqual({
      kind: 'expand',
      config: {
        prepareRun: 3,
        checkpoints: [4, 8],
        n: 6,
        p: 0.3,
        alphaClamp: [0, 0.8],
        metric: 'cosine',
        selection: 'random',
        seed: 1,
      },
    });

    const at = 1;
    transport.emit({ type: 'job.started', jobId: 'job-9', kind: 'expand', runId: 12, at });
    transport.emit({ type: 'job.progress', jobId: 'job-9', at, step: 1, total: 4, phase: 'merge' });
    transport.emit({ type: 'job.log', jobId: 'job-other', at, level: 'info', message: 'not mine' });
    transport.emit({
      type: 'job.log',
      jobId: 'job-9',
      at,
      level: 'info',
      message: 'merging step-4 + step-8',
    });
    await screen.findByText('merge · 1 / 4 (25%)');
    expect(screen.getByRole('log').textContent).toBe('merging step-4 + step-8');
    expect((screen.getByRole('button', { name: 'Expand' }) as HTMLButtonElement).disabled).toBe(true);
    transport.emit({ type: 'job.finished', jobId: 'job-9', at, runId: 12, result: null });
    const link = await screen.findByRole('link', { name: 'Open expansion run #12' });
    expect(link.getAttribute('href')).toBe('#/expansion/12');
  });

  it('does not offer n below the number of ticked checkpoints', async () => {
    const { transport } = setup();
    await waitFor(() => expect(cells()).toHaveLength(6));
    await fireEvent.click(screen.getByRole('button', { name: 'Tick all' }));
    await fireEvent.input(screen.getByLabelText('Experts n'), { target: { value: '1' } });
    expect((screen.getByRole('button', { name: 'Expand' }) as HTMLButtonElement).disabled).toBe(true);
    expect(screen.getByText('a whole number from 2 to 4096')).toBeTruthy();
    expect(started(transport)).toHaveLength(0);
  });

  it('shows a rejected jobs.start', async () => {
    setup({
      'jobs.start': () => {
        throw new ApiError('bad_request', 'invalid expand config: config.n: too big');
      },
    });
    await waitFor(() => expect(cells()).toHaveLength(6));
    await fireEvent.click(screen.getByRole('button', { name: 'Tick the best per domain' }));
    await fireEvent.click(screen.getByRole('button', { name: 'Expand' }));
    expect((await screen.findByRole('alert')).textContent).toMatch(/invalid expand config/);
  });

  it('opens the run named in the hash', async () => {
    window.location.hash = '#/checkpoints/1';
    const { transport } = setup();
    await waitFor(() => expect(cells()).toHaveLength(6));
    expect(transport.calls.find((c) => c.method === 'runs.evaluations')?.request).toEqual({ runId: 1 });
    expect((screen.getByLabelText('Prepare run') as HTMLSelectElement).value).toBe('1');
  });

  it('says so when the workspace has no prepare runs', async () => {
    setup({ 'runs.list': () => ({ runs: [], total: 0 }) });
    expect((await screen.findByRole('status')).textContent).toMatch(/No prepare runs yet/);
    expect(screen.queryByRole('grid')).toBeNull();
  });

  it('shows an API error', async () => {
    setup({
      'runs.evaluations': () => {
        throw new ApiError('not_found', 'run 3 not found');
      },
    });
    expect((await screen.findByRole('alert')).textContent).toBe('run 3 not found');
  });
});
