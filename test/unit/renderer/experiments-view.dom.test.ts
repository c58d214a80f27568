import { fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import type {
  ExperimentSummary,
  JobInfo,
  PlanInfo,
  PlanRunRequest,
  RunSummary,
} from '../../../src-main/contract/index.js';
import { ApiError } from '../../../src-main/contract/index.js';
import { ApiClient } from '../../../src-renderer/lib/api.js';
import { API_CONTEXT } from '../../../src-renderer/lib/context.js';
import ExperimentsView from '../../../src-renderer/views/ExperimentsView.svelte';
import { FakeTransport, type Handler } from './fake-transport.js';

const smoke: ExperimentSummary = {
  id: 1,
  name: 'smoke',
  description: 'Every stage, five variants',
  createdAt: 1_700_000_000_000,
  runs: 4,
  byStatus: { queued: 0, running: 1, done: 3, failed: 0, cancelled: 0 },
  variants: ['dense', 'upit'],
};

function run(id: number, kind: string, variant: string | null, seed: number, status: RunSummary['status']) {
  return {
    id,
    experimentId: 1,
    parentRunId: null,
    kind,
    variant,
    seed,
    status,
    backend: 'cpu',
    createdAt: 1_700_000_000_000 + id,
    startedAt: null,
    finishedAt: null,
    wallSeconds: null,
    error: null,
  } satisfies RunSummary;
}

const runs = [
  run(1, 'prepare', 'dense', 1, 'done'),
  run(2, 'expand', null, 1, 'done'),
  run(3, 'upcycle', 'upit', 1, 'done'),
  run(4, 'upcycle', 'upit', 2, 'running'),
];

const plans: PlanInfo[] = [
  {
    name: 'smoke',
    source: 'shipped',
    experiment: 'smoke',
    description: 'a pipeline check',
    variants: ['dense', 'upit', 'no-router-init', 'vanilla', 'loramoe'],
    seeds: [1],
    jobs: 7,
    error: null,
  },
  {
    name: 'broken',
    source: 'workspace',
    experiment: null,
    description: null,
    variants: [],
    seeds: [],
    jobs: 0,
    error: 'broken.yaml:2:1: name: Required',
  },
];

const runningJob: JobInfo = {
  jobId: 'job-7',
  kind: 'upcycle',
  state: 'running',
  runId: 4,
  queuedAt: 1_700_000_000_000,
  progress: { step: 5, total: 20 },
  error: null,
};

function setup(over: Partial<Record<string, Handler>> = {}, experiments = [smoke]) {
  const transport = new FakeTransport({
    'experiments.list': () => ({ experiments }),
    'experiments.get': () => ({ experiment: { ...smoke, plan: { name: 'smoke' } }, runs }),
    'jobs.list': () => ({ jobs: [runningJob] }),
    'jobs.cancel': () => ({ cancelled: true }),
    'plans.list': () => ({ plans }),
    'plans.run': () => ({ jobId: 'job-9', experiment: 'smoke', file: 'smoke.yaml' }),
    ...over,
  });
  const client = new ApiClient(transport, { validate: true });
  const result = render(ExperimentsView, { context: new Map([[API_CONTEXT, client]]) });
  const callsOf = (m: string) => transport.calls.filter((c) => c.method === m);
  return { transport, result, callsOf };
}

describe('ExperimentsView', () => {
  it('lists the experiments with status counts and variants, and the runs by variant and seed', async () => {
    setup();
    const list = await screen.findByRole('listbox', { name: 'Experiments' });
    const option = await within(list).findByRole('option', { name: /smoke/ });
    expect(option.textContent).toContain('3 done');
    expect(option.textContent).toContain('1 running');
    expect(option.getAttribute('aria-selected')).toBe('true');
    const grid = await screen.findByRole('table', { name: 'Runs by variant and seed' });
    expect(within(grid).getByRole('columnheader', { name: 'seed 2' })).toBeTruthy();
    const upit = grid.querySelector('tr[data-variant="upit"]')!;
    expect(upit.textContent).toMatch(/#3 upcycle\s*done/);
    expect(upit.textContent).toMatch(/#4 upcycle\s*running/);
    expect(grid.querySelector('tr[data-variant="shared stages"]')?.textContent).toContain('#2 expand');
    expect(within(grid).getByRole('link', { name: '#1 prepare' }).getAttribute('href')).toBe('#/runs/1');
  });

  it('shows running jobs with progress and cancels one', async () => {
    const { callsOf } = setup();
    const bar = await screen.findByRole('progressbar', { name: /upcycle job job-7/ });
    expect(bar.getAttribute('aria-valuenow')).toBe('25');
    await fireEvent.click(screen.getByRole('button', { name: 'Cancel upcycle job job-7' }));
    await waitFor(() => expect(callsOf('jobs.cancel')).toHaveLength(1));
    expect(callsOf('jobs.cancel')[0]!.request).toEqual({ jobId: 'job-7' });
  });

  it('follows job events: progress in place, a refetch when a job ends', async () => {
    const { transport, callsOf } = setup();
    await screen.findByRole('progressbar', { name: /job-7/ });
    transport.emit({ type: 'job.progress', jobId: 'job-7', at: 2, step: 15, total: 20 });
    await waitFor(() =>
      expect(screen.getByRole('progressbar', { name: /job-7/ }).getAttribute('aria-valuenow')).toBe('75'),
    );
    const before = callsOf('experiments.get').length;
    transport.emit({ type: 'job.finished', jobId: 'job-7', at: 3, runId: 4, result: null });
    await waitFor(() =>
      expect(document.querySelector('[data-job="job-7"]')?.textContent).toContain('finished'),
    );
    await waitFor(() => expect(callsOf('experiments.get').length).toBeGreaterThan(before));
  });

  it('runs a plan from the plan list', async () => {
    const { callsOf } = setup();
    await fireEvent.click(await screen.findByRole('button', { name: 'New experiment' }));
    const run = await screen.findByRole('button', { name: 'Run plan smoke (shipped)' });
    expect(
      (screen.getByRole('button', { name: 'Run plan broken (workspace)' }) as HTMLButtonElement).disabled,
    ).toBe(true);
    expect(screen.getByText('broken.yaml:2:1: name: Required')).toBeTruthy();
    await fireEvent.click(run);
    await waitFor(() => expect(callsOf('plans.run')).toHaveLength(1));
    expect(callsOf('plans.run')[0]!.request).toEqual({ name: 'smoke', source: 'shipped' });
    const status = await screen.findByText(/Started plan/);
    expect(status.textContent).toContain('job-9');
  });

  it('writes plan YAML from the form and runs the text', async () => {
    const { callsOf } = setup();
    await fireEvent.click(await screen.findByRole('button', { name: 'New experiment' }));
    await fireEvent.click(screen.getByRole('tab', { name: 'From a form' }));
    await fireEvent.input(screen.getByLabelText('Name'), { target: { value: 'ffn-trial' } });
    await fireEvent.click(screen.getByLabelText('FFN'));
    await fireEvent.input(screen.getByLabelText('Experts (n)'), { target: { value: '4' } });
    await fireEvent.input(screen.getByLabelText('Seeds'), { target: { value: '1 2' } });
    await fireEvent.click(screen.getByLabelText('vanilla')); // unticks it
    await fireEvent.click(screen.getByLabelText('loramoe'));
    const yaml = screen.getByLabelText(/Plan \(YAML\)/) as HTMLTextAreaElement;
    await waitFor(() => expect(yaml.value).toContain('name: ffn-trial'));
    expect(yaml.value).toContain('mode: ffn');
    expect(yaml.value).toContain('  n: 4');
    expect(yaml.value).toContain('seeds: [1, 2]');
    expect(yaml.value).toMatch(/variants:\n {2}- dense\n {2}- upit\n {2}- loramoe\n$/);

    // a hand edit wins over the form
    const edited = yaml.value.replace('topK: 2', 'topK: 1');
    await fireEvent.input(yaml, { target: { value: edited } });
    await fireEvent.click(screen.getByRole('button', { name: 'Run plan' }));
    await waitFor(() => expect(callsOf('plans.run')).toHaveLength(1));
    const req = callsOf('plans.run')[0]!.request as Extract<PlanRunRequest, { text: string }>;
    expect(req.text).toBe(edited);
    expect(req.text).toContain('topK: 1');
  });

  it('shows the validation error of the host inline', async () => {
    setup({
      'plans.run': () => {
        throw new ApiError(
          'bad_request',
          'plan:4:8: seeds.1: Invalid input: expected number, received string',
        );
      },
    });
    await fireEvent.click(await screen.findByRole('button', { name: 'New experiment' }));
    await fireEvent.click(screen.getByRole('tab', { name: 'From a form' }));
    await fireEvent.input(screen.getByLabelText('Seeds'), { target: { value: '1, x' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Run plan' }));
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('seeds.1: Invalid input');
    expect(screen.getByLabelText(/Plan \(YAML\)/).getAttribute('aria-invalid')).toBe('true');
  });

  it('opens on "new experiment" when there are none, and shows API errors', async () => {
    const first = setup({}, []);
    await screen.findByRole('tab', { name: 'From a plan', selected: true });
    expect(screen.getByText('No experiments yet.')).toBeTruthy();
    first.result.unmount();

    setup({
      'experiments.list': () => {
        throw new ApiError('unavailable', 'this workspace has no database');
      },
    });
    expect((await screen.findByRole('alert')).textContent).toContain('this workspace has no database');
  });
});
