import { fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';
import type { ExpertsResponse, RoutingResponse, RunSummary } from '../../../src-main/contract/index.js';
import { ApiError } from '../../../src-main/contract/index.js';
import { ApiClient } from '../../../src-renderer/lib/api.js';
import { API_CONTEXT } from '../../../src-renderer/lib/context.js';
import RouterView from '../../../src-renderer/views/RouterView.svelte';
import { FakeTransport, type Handler } from './fake-transport.js';

const T = 1_700_000_000_000;

function summary(id: number, kind: string, variant: string | null = null): RunSummary {
  return {
    id,
    experimentId: 1,
    parentRunId: null,
    kind,
    variant,
    seed: 1,
    status: 'done',
    backend: 'wasm',
    createdAt: T + id,
    startedAt: T + id,
    finishedAt: T + id + 5,
    wallSeconds: 5,
    error: null,
  };
}

const RUNS = [summary(4, 'upcycle', 'upit'), summary(3, 'route'), summary(2, 'expand')];
const CONFIGS: Record<number, Record<string, unknown>> = {
  2: { prepareRun: 1, n: 4 },
  3: { poolRun: 2, lmWeight: 0.25, epochs: 1, assignment: 'ppl' },
  4: { init: 'pool', poolRun: 3, router: 'pretrained', topK: 1, auxCoef: 0.02, epochs: 0.5 },
};
const NAMES = ['step-4', 'step-8', 'expert-02', 'expert-03'];
const EXPERTS = (runId: number): ExpertsResponse => ({
  runId,
  experts:
    runId === 4
      ? []
      : NAMES.map((name, idx) => ({
          idx,
          name,
          source: idx < 2 ? 'checkpoint' : 'merge',
          checkpointId: null,
          lineage: null,
        })),
  distances: null,
});

// 2 layers × 2 domains × 4 experts; layer 1 sends all of arith to expert 3
function stats(): RoutingResponse['stats'] {
  const out: RoutingResponse['stats'] = [];
  for (const layer of [0, 1])
    for (const domain of ['arith', 'code'])
      for (let expert = 0; expert < 4; expert++) {
        const fraction = layer === 1 && domain === 'arith' ? (expert === 3 ? 1 : 0) : 0.25;
        out.push({ layer, domain, expert, fraction, tokens: 100 });
      }
  return out;
}

function setup(over: Partial<Record<string, Handler>> = {}) {
  const transport = new FakeTransport({
    'runs.list': () => ({ runs: RUNS, total: RUNS.length }),
    'runs.get': (r) => {
      const id = (r as { runId: number }).runId;
      return { run: { ...RUNS.find((x) => x.id === id)!, config: CONFIGS[id] ?? {} } };
    },
    'runs.routing': (r) => {
      const id = (r as { runId: number }).runId;
      return {
        runId: id,
        stats: id === 4 ? stats() : [],
        seedBuckets:
          id === 3
            ? [
                { expert: 1, size: 10 },
                { expert: 0, size: 2 },
                { expert: 2, size: 3 },
                { expert: 3, size: 1 },
              ]
            : [],
      };
    },
    'runs.experts': (r) => EXPERTS((r as { runId: number }).runId),
    'jobs.start': () => ({ jobId: 'job-7' }),
    ...over,
  });
  const client = new ApiClient(transport, { validate: true });
  const result = render(RouterView, { context: new Map([[API_CONTEXT, client]]) });
  return { transport, result };
}

const cells = () => screen.queryAllByRole('gridcell');
const started = (t: FakeTransport) => t.calls.filter((c) => c.method === 'jobs.start').map((c) => c.request);

afterEach(() => {
  window.location.hash = '';
});

describe('RouterView', () => {
  it('shows an upcycle run’s routing by domain × expert, mean over layers or one layer', async () => {
    setup();
    await waitFor(() => expect(cells()).toHaveLength(8)); // 2 domains × 4 experts
    // expert names come from the pool run (route run #3)
    expect(screen.getAllByRole('columnheader').map((h) => h.textContent?.trim())).toEqual([
      'domain \\ expert',
      ...NAMES,
    ]);
    // mean over the 2 layers: arith → (0.25 + 0)/2 for experts 0–2, (0.25 + 1)/2 for expert 3
    expect(cells().map((c) => c.textContent?.trim())).toEqual([
      '12.5',
      '12.5',
      '12.5',
      '62.5',
      '25.0',
      '25.0',
      '25.0',
      '25.0',
    ]);
    expect(screen.getByText(/top-1 · λ 0.02 · 0.5 epochs/)).toBeTruthy();
    await fireEvent.change(screen.getByLabelText('Layer'), { target: { value: '1' } });
    await waitFor(() => expect(cells()[3]!.textContent?.trim()).toBe('100.0'));
    expect(cells()[3]!.title).toBe('arith → expert-03: 100.0% (layer 1, 100 tokens)');
  });

  it('shows a route run’s seed buckets per expert', async () => {
    window.location.hash = '#/router/3';
    const { result } = setup();
    await waitFor(() => expect(result.container.querySelectorAll('rect.bar')).toHaveLength(4));
    const bars = [...result.container.querySelectorAll('rect.bar')].map((b) => b.getAttribute('data-value'));
    expect(bars).toEqual(['2', '10', '3', '1']);
    expect(
      screen.getByRole('img', { name: /step-4 2, step-8 10, expert-02 3, expert-03 1 \(total 16\)/ }),
    ).toBeTruthy();
    expect(screen.queryByRole('grid')).toBeNull();
  });

  it('pre-trains a router on an expand run and upcycles a route run with the chosen knobs', async () => {
    window.location.hash = '#/router/3';
    const { transport, result } = setup();
    await waitFor(() => expect(result.container.querySelectorAll('rect.bar')).toHaveLength(4));
    // defaults from the selected route run
    await waitFor(() =>
      expect((screen.getByLabelText('L_lm weight α') as HTMLInputElement).value).toBe('0.25'),
    );
    await fireEvent.input(screen.getByLabelText('L_lm weight α'), { target: { value: '0.6' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Pre-train router' }));
    await waitFor(() => expect(started(transport)).toHaveLength(1));
    expect(started(transport)[0]).toEqual({
      kind: 'route',
      config: { poolRun: 2, lmWeight: 0.6, epochs: 1 },
    });

    // top-k is bounded by the pool's 4 experts
    await fireEvent.input(screen.getByLabelText('Top-k'), { target: { value: '5' } });
    await waitFor(() =>
      expect((screen.getByRole('button', { name: 'Upcycle' }) as HTMLButtonElement).disabled).toBe(true),
    );
    await fireEvent.input(screen.getByLabelText('Top-k'), { target: { value: '3' } });
    await fireEvent.input(screen.getByLabelText('λ (load balancing)'), { target: { value: '0.05' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Upcycle' }));
    await waitFor(() => expect(started(transport)).toHaveLength(2));
    expect(started(transport)[1]).toEqual({
      kind: 'upcycle',
      config: { poolRun: 3, topK: 3, auxCoef: 0.05, epochs: 2 },
    });
  });

  it('says so when there are no route or upcycle runs', async () => {
    setup({ 'runs.list': () => ({ runs: [summary(2, 'expand')], total: 1 }) });
    expect((await screen.findByRole('status')).textContent).toMatch(/No routing runs yet/);
    // a pool exists: the router can be pre-trained from here
    expect(screen.getByRole('button', { name: 'Pre-train router' })).toBeTruthy();
    expect((screen.getByRole('button', { name: 'Upcycle' }) as HTMLButtonElement).disabled).toBe(true);
  });

  it('shows an API error', async () => {
    setup({
      'runs.routing': () => {
        throw new ApiError('internal', 'database is locked');
      },
    });
    expect((await screen.findByRole('alert')).textContent).toBe('database is locked');
  });
});
