/**
 * `upit report`: a workspace filled through the Store API (no training), then the built CLI writes
 * each format to <workspace>/reports, records it, and prints the path; an unknown experiment and
 * an experiment with nothing finished fail with one line and exit code 1.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCsv } from '../../src-main/report/csv.js';
import { openWorkspace } from '../../src-main/store/index.js';
import { buildExperiment } from '../unit/report/fixture.js';
import { upit } from './cli-helpers.js';

describe('upit report', () => {
  let dir: string;
  let ws: string;
  let experimentId: number;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'upit-cli-report-'));
    ws = join(dir, 'ws');
    const w = openWorkspace(ws, { create: true });
    try {
      experimentId = buildExperiment(w.db).experimentId;
      w.db.createExperiment({ name: 'not-yet' });
    } finally {
      w.close();
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes each format and prints its path', () => {
    const checks: Record<string, (text: string) => void> = {
      md: (t) => expect(t).toMatch(/^# UpIT report: paper-ablation\n/),
      html: (t) => {
        expect(t.startsWith('<!DOCTYPE html>')).toBe(true);
        expect(t).not.toMatch(/http|<script/i);
        expect(t).toContain('<svg');
      },
      csv: (t) => {
        const rows = parseCsv(t);
        expect(rows[0]![0]).toBe('experiment');
        expect(rows.filter((r) => r[6] === 'acc_norm')).toHaveLength(5); // 5 finished terminal runs
      },
      tex: (t) => expect(t).toContain('\\toprule'),
    };
    const r = upit(['report', 'paper-ablation', '--workspace', ws, '--format', 'all']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const files = ['md', 'html', 'csv', 'tex'].map((f) => join(ws, 'reports', `paper-ablation.${f}`));
    expect(r.stdout).toBe(files.map((f) => `${f}\n`).join(''));
    for (const [i, format] of ['md', 'html', 'csv', 'tex'].entries()) {
      const text = readFileSync(files[i]!, 'utf8');
      for (const v of ['upit', 'dense', 'vanilla']) expect(text).toContain(v);
      checks[format]!(text);
    }
    const w = openWorkspace(ws);
    try {
      expect(w.db.listReports({ experimentId }).map((x) => [x.format, x.path])).toEqual([
        ['md', 'reports/paper-ablation.md'],
        ['html', 'reports/paper-ablation.html'],
        ['csv', 'reports/paper-ablation.csv'],
        ['tex', 'reports/paper-ablation.tex'],
      ]);
    } finally {
      w.close();
    }
  });

  it('several formats at once, by id, to --out', () => {
    const out = join(dir, 'paper', 'results.md');
    const r = upit(['report', String(experimentId), '--workspace', ws, '--format', 'md,tex', '--out', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${out}\n${join(dir, 'paper', 'results.tex')}\n`);
    expect(readFileSync(join(dir, 'paper', 'results.tex'), 'utf8')).toContain('\\begin{tabular}');
  });

  it('an unknown experiment, an unfinished one and a bad format fail with one line', () => {
    const unknown = upit(['report', 'no-such-exp', '--workspace', ws, '--format', 'all']);
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toBe("upit: experiment 'no-such-exp' not found (give an experiment id or name)\n");
    const pending = upit(['report', 'not-yet', '--workspace', ws, '--format', 'md']);
    expect(pending.code).toBe(1);
    expect(pending.stderr).toBe('upit: experiment not-yet has no finished runs to report\n');
    expect(existsSync(join(ws, 'reports', 'not-yet.md'))).toBe(false);
    const bad = upit(['report', 'paper-ablation', '--workspace', ws, '--format', 'pdf']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe("upit: --format: unknown format 'pdf' (md, html, csv, tex or all)\n");
  });
});
