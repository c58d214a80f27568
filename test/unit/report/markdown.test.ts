import { describe, expect, it } from 'vitest';
import { escapeMarkdown, renderMarkdown } from '../../../src-main/report/markdown.js';
import { sampleReportData, SPECIAL } from './fixture.js';

/** The cells of a Markdown table row, split on unescaped pipes. */
function cells(line: string): string[] {
  return line
    .trim()
    .replace(/^\|/, '')
    .replace(/(?<!\\)\|$/, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());
}

/** The table following the heading `## title`. */
function tableAfter(md: string, title: string): string[][] {
  const lines = md.split('\n');
  let i = lines.indexOf(title);
  expect(i).toBeGreaterThanOrEqual(0);
  while (i < lines.length && !lines[i]!.startsWith('|')) i++;
  const rows: string[][] = [];
  while (i < lines.length && lines[i]!.startsWith('|')) rows.push(cells(lines[i++]!));
  return rows;
}

describe('renderMarkdown', () => {
  const data = sampleReportData();
  const md = renderMarkdown(data);

  it('main table: every variant, mean ± t-interval, Wilson for one seed, best in bold', () => {
    const rows = tableAfter(md, '## Main results');
    expect(rows[0]).toEqual(['Variant', 'Kind', 'arith', 'mc', 'Avg', 'n']);
    expect(rows.every((r) => r.length === 6)).toBe(true);
    expect(rows.slice(2).map((r) => r[0])).toEqual(['upit', 'dense', escapeMarkdown(SPECIAL)]);
    expect(rows[2]).toEqual(['upit', 'upit', '**52.0 ± 25.4**', '61.0 ± 12.7', '**56.5 ± 19.5**', '2']);
    expect(rows[3]).toEqual(['dense', 'dense', '42.0 ± 25.5', '**71.0 ± 12.5**', '56.5 ± 20.5', '2']);
    expect(rows[4]!.slice(1)).toEqual(['ablation', '45.0 (35.5–54.8)', '-', '45.0', '1']);
  });

  it('ablation deltas in percentage points', () => {
    const rows = tableAfter(md, '## Ablation');
    expect(rows[0]).toEqual(['Variant', 'Δ arith', 'Δ mc', 'Δ Avg', 'n']);
    expect(rows[2]).toEqual(['dense', '-10.0 ± 12.2', '+10.0 ± 12.0', '0.0 ± 10.0', '2']);
    expect(rows[3]).toEqual([escapeMarkdown(SPECIAL), '-7.0', '-', '-11.5', '1']);
    expect(md).toContain('Difference to **upit** (n = 2)');
    const none = renderMarkdown({ ...data, ablation: null, reference: 'upit' });
    expect(none).toContain('_Skipped: no finished variant named `upit`._');
  });

  it('stage sections: profile with best checkpoints, lineage, distances, routing, loss', () => {
    const profile = tableAfter(md, '### Prepare run 1 · seed 1');
    expect(profile.slice(2).map((r) => r.slice(0, 4))).toEqual([
      ['base', '-', '10.0', '30.0'],
      ['step 10', '0.5', '30.0', '**55.0**'],
      ['step 20', '1', '**40.0**', '50.0'],
    ]);
    expect(md).toContain('arith: step 20; mc: step 10');
    expect(md).toContain(
      'Does the best checkpoint differ by domain? not shown: 2 different checkpoints are best, but no pair',
    );
    const lineage = tableAfter(md, '### Expand run 2 · seed 1');
    expect(lineage[4]).toEqual(['2', 'merge-0', 'merge', '-', '0 ck10 × 1 ck20', '0.3', '0.5', '5', '0.42']);
    expect(md).toContain('| ck20 | 0.4200 | 0.0000 | - |');
    expect(md).toContain('ck10 12 · ck20 20 (32 samples');
    const routing = tableAfter(md, '### upit · seed 1 · run 10');
    expect(routing.slice(2)).toEqual([
      ['arith', '120', '**80.0**', '20.0'],
      ['mc', '80', '30.0', '**70.0**'],
    ]);
    expect(md).toContain('Last layer (1):');
    const loss = tableAfter(md, '## Training loss');
    expect(loss[2]).toEqual(['upit · seed 1 · run 10', 'upcycle', 'terminal', '3', '2', '1.25', '1.25']);
  });

  it('escapes text from the database', () => {
    expect(escapeMarkdown('a|b*c_d<e>[f]`g`')).toBe('a\\|b\\*c\\_d\\<e\\>\\[f\\]\\`g\\`');
    expect(md.split('\n')[0]).toBe('# UpIT report: demo \\<exp\\>');
    expect(md).not.toContain('<exp>');
    expect(md).toContain(`- variant ${escapeMarkdown(SPECIAL)} seed 2: failed`);
  });

  it('an empty report says so', () => {
    const empty = renderMarkdown({ ...data, runs: [], routing: [], losses: [], profiles: [], lineages: [] });
    expect(empty).toContain('_No finished runs yet._');
    expect(empty).toContain('_No expand run._');
  });
});
