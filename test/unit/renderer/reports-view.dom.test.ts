import { fireEvent, render, screen } from '@testing-library/svelte';
import { beforeEach, describe, expect, it } from 'vitest';
import type { ReportRenderRequest } from '../../../src-main/contract/index.js';
import { ApiError } from '../../../src-main/contract/index.js';
import { ApiClient } from '../../../src-renderer/lib/api.js';
import { API_CONTEXT } from '../../../src-renderer/lib/context.js';
import ReportsView from '../../../src-renderer/views/ReportsView.svelte';
import { FakeTransport, type Handler } from './fake-transport.js';

const experiments = [
  {
    id: 3,
    name: 'smoke',
    description: null,
    createdAt: 1,
    runs: 7,
    byStatus: { queued: 0, running: 0, done: 7, failed: 0, cancelled: 0 },
    variants: ['upit'],
  },
  {
    id: 5,
    name: 'paper-lora-8e',
    description: null,
    createdAt: 2,
    runs: 0,
    byStatus: { queued: 0, running: 0, done: 0, failed: 0, cancelled: 0 },
    variants: [],
  },
];

const CONTENT: Record<string, string> = {
  html: '<!DOCTYPE html><html><body><h1>smoke</h1><script>alert(1)</script></body></html>',
  md: '# smoke\n\n| variant | avg |\n|---|---|\n| upit | 52.2 |\n',
  csv: 'variant,avg\nupit,0.522\n',
  tex: '\\begin{tabular}{lr}\n',
};

const blobs: Blob[] = [];
/** jsdom has no object URLs: these record the Blob behind each. */
const objectUrls = URL as unknown as {
  createObjectURL?: (b: Blob) => string;
  revokeObjectURL?: (url: string) => void;
};
// (left in place after the tests: components unmount after afterEach hooks run)
beforeEach(() => {
  blobs.length = 0;
  objectUrls.createObjectURL = (b) => {
    blobs.push(b);
    return `blob:test/${blobs.length}`;
  };
  objectUrls.revokeObjectURL = () => {};
});

function readText(blob: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error);
    reader.readAsText(blob);
  });
}

function setup(over: Partial<Record<string, Handler>> = {}, name: 'http' | 'electron' = 'http') {
  const transport = new FakeTransport({
    'experiments.list': () => ({ experiments }),
    'reports.render': (q) => {
      const { experimentId, format } = q as ReportRenderRequest;
      const exp = experiments.find((e) => e.id === experimentId)!;
      return { experimentId, format, filename: `${exp.name}.${format}`, content: CONTENT[format]! };
    },
    ...over,
  });
  if (name === 'electron') Object.defineProperty(transport, 'name', { value: 'electron' });
  const client = new ApiClient(transport, { validate: true });
  const result = render(ReportsView, { context: new Map([[API_CONTEXT, client]]) });
  const callsOf = (m: string) => transport.calls.filter((c) => c.method === m);
  return { transport, result, callsOf };
}

describe('ReportsView', () => {
  it('previews the HTML report in a sandboxed iframe and exports it under its file name', async () => {
    const { callsOf } = setup();
    const frame = (await screen.findByTitle('Preview of smoke.html')) as HTMLIFrameElement;
    expect(frame.tagName).toBe('IFRAME');
    expect(frame.getAttribute('sandbox')).toBe('');
    expect(frame.getAttribute('srcdoc')).toBe(CONTENT.html);
    expect(callsOf('reports.render')[0]!.request).toEqual({ experimentId: 3, format: 'html' });

    const link = screen.getByRole('link', { name: /Export smoke\.html/ });
    expect(link.getAttribute('download')).toBe('smoke.html');
    expect(link.getAttribute('href')).toMatch(/^blob:test\//);
    const blob = blobs.at(-1)!;
    expect(blob.type).toBe('text/html;charset=utf-8');
    expect(await readText(blob)).toBe(CONTENT.html);
  });

  it('switches formats: Markdown, CSV and LaTeX as text', async () => {
    setup();
    await screen.findByTitle('Preview of smoke.html');
    await fireEvent.click(screen.getByRole('tab', { name: 'Markdown' }));
    const pre = await screen.findByLabelText('Preview of smoke.md');
    expect(pre.tagName).toBe('PRE');
    expect(pre.textContent).toBe(CONTENT.md);
    expect(screen.getByRole('link', { name: /Export smoke\.md/ }).getAttribute('download')).toBe('smoke.md');
    expect(screen.getByRole('tab', { name: 'Markdown' }).getAttribute('aria-selected')).toBe('true');

    // arrow keys move along the tabs
    await fireEvent.keyDown(screen.getByRole('tab', { name: 'Markdown' }), { key: 'ArrowRight' });
    expect((await screen.findByLabelText('Preview of smoke.csv')).textContent).toBe(CONTENT.csv);
    await fireEvent.keyDown(screen.getByRole('tab', { name: 'CSV' }), { key: 'ArrowRight' });
    expect((await screen.findByLabelText('Preview of smoke.tex')).textContent).toBe(CONTENT.tex);
  });

  it('renders the report of another experiment', async () => {
    const { callsOf } = setup();
    await screen.findByTitle('Preview of smoke.html');
    await fireEvent.change(screen.getByLabelText('Experiment'), { target: { value: '5' } });
    await screen.findByTitle('Preview of paper-lora-8e.html');
    expect(callsOf('reports.render').at(-1)!.request).toEqual({ experimentId: 5, format: 'html' });
  });

  it('shows PDF export disabled under the web host only', async () => {
    setup();
    const pdf = (await screen.findByRole('button', { name: 'Export PDF' })) as HTMLButtonElement;
    expect(pdf.disabled).toBe(true);
    expect(pdf.title).toMatch(/not available in the web host/);
  });

  it('has no PDF button under Electron', async () => {
    setup({}, 'electron');
    await screen.findByTitle('Preview of smoke.html');
    expect(screen.queryByRole('button', { name: 'Export PDF' })).toBeNull();
  });

  it('shows an API error and an empty state', async () => {
    const { result } = setup({
      'reports.render': () => {
        throw new ApiError('not_found', 'experiment 3 does not exist');
      },
    });
    expect((await screen.findByRole('alert')).textContent).toBe('experiment 3 does not exist');
    result.unmount();
    setup({ 'experiments.list': () => ({ experiments: [] }) });
    await screen.findByText('No reports yet');
  });
});
