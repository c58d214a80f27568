/** writeReports: formats, output paths, atomic files recorded in the workspace, errors. */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UserError } from '../../../src-main/common/errors.js';
import { parseFormats, reportFileStem, reportTargets, writeReports } from '../../../src-main/report/index.js';
import { openWorkspace, type Workspace } from '../../../src-main/store/index.js';
import { buildExperiment, type BuiltExperiment } from './fixture.js';

describe('parseFormats and output paths', () => {
  it('parses one, several, all; rejects unknown formats', () => {
    expect(parseFormats('md')).toEqual(['md']);
    expect(parseFormats('HTML, csv,md,csv')).toEqual(['html', 'csv', 'md']);
    expect(parseFormats('all')).toEqual(['md', 'html', 'csv', 'tex']);
    expect(parseFormats('markdown,latex')).toEqual(['md', 'tex']);
    expect(() => parseFormats('md,pdf')).toThrow(UserError);
    expect(() => parseFormats('md,pdf')).toThrow(
      "--format: unknown format 'pdf' (md, html, csv, tex or all)",
    );
    expect(() => parseFormats(' , ')).toThrow(UserError);
    expect(() => parseFormats('constructor')).toThrow(UserError);
  });

  it('names files after the experiment, safely', () => {
    expect(reportFileStem({ id: 3, name: 'paper ablation/v2' })).toBe('paper-ablation-v2');
    expect(reportFileStem({ id: 3, name: '../..' })).toBe('experiment-3');
    expect(reportFileStem({ id: 4, name: 'ünï' })).toBe('uni');
  });

  it('default, single file, several formats, directory', () => {
    const exp = { id: 1, name: 'exp' };
    const ws = path.resolve('/w');
    expect([...reportTargets(ws, exp, ['md', 'html']).values()]).toEqual([
      path.join(ws, 'reports', 'exp.md'),
      path.join(ws, 'reports', 'exp.html'),
    ]);
    const cwd = path.resolve('/c');
    expect(reportTargets(ws, exp, ['tex'], 'paper/t.txt', cwd).get('tex')).toBe(
      path.join(cwd, 'paper', 't.txt'),
    );
    expect([...reportTargets(ws, exp, ['md', 'csv'], 'out/r.md', cwd).values()]).toEqual([
      path.join(cwd, 'out', 'r.md'),
      path.join(cwd, 'out', 'r.csv'),
    ]);
    expect(reportTargets(ws, exp, ['csv'], 'out/', cwd).get('csv')).toBe(path.join(cwd, 'out', 'exp.csv'));
  });
});

describe('writeReports', () => {
  let dir: string;
  let ws: Workspace;
  let built: BuiltExperiment;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'upit-report-write-'));
    ws = openWorkspace(path.join(dir, 'ws'), { create: true });
    built = buildExperiment(ws.db);
  });
  afterEach(() => {
    ws.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes every format under <workspace>/reports and records each', () => {
    const { written, data } = writeReports(ws, 'paper-ablation', { formats: ['md', 'html', 'csv', 'tex'] });
    expect(written.map((w) => w.workspacePath)).toEqual([
      'reports/paper-ablation.md',
      'reports/paper-ablation.html',
      'reports/paper-ablation.csv',
      'reports/paper-ablation.tex',
    ]);
    expect(readdirSync(path.join(ws.dir, 'reports')).sort()).toEqual([
      'paper-ablation.csv',
      'paper-ablation.html',
      'paper-ablation.md',
      'paper-ablation.tex',
    ]); // no temporary files left
    for (const w of written) {
      const text = readFileSync(w.path, 'utf8');
      expect(Buffer.byteLength(text)).toBe(w.bytes);
      for (const v of ['upit', 'dense', 'vanilla']) expect(text).toContain(v);
    }
    const rows = ws.db.listReports({ experimentId: built.experimentId });
    expect(rows.map((r) => [r.format, r.path, r.title])).toEqual(
      written.map((w) => [w.format, w.workspacePath, data.title]),
    );
    expect(rows.map((r) => r.id)).toEqual(written.map((w) => w.reportId));
  });

  it('a file outside the workspace is written but not recorded', () => {
    const out = path.join(dir, 'elsewhere', 'table.tex');
    const { written } = writeReports(ws, built.experimentId, { formats: ['tex'], out });
    expect(written[0]).toMatchObject({ path: out, workspacePath: null, reportId: null });
    expect(readFileSync(out, 'utf8')).toContain('\\toprule');
    expect(ws.db.listReports()).toEqual([]);
  });

  it('an experiment without finished runs is an error and writes nothing', () => {
    const exp = ws.db.createExperiment({ name: 'pending' });
    ws.db.createRun({ kind: 'upcycle', experimentId: exp.id, variant: 'upit', seed: 1 });
    expect(() => writeReports(ws, 'pending', { formats: ['md'] })).toThrow(
      new UserError('experiment pending has no finished runs to report'),
    );
    expect(() => writeReports(ws, 'nope', { formats: ['md'] })).toThrow(UserError);
    expect(existsSync(path.join(ws.dir, 'reports'))).toBe(false);
    expect(ws.db.listReports()).toEqual([]);
  });

  it('replaces an existing report file', () => {
    mkdirSync(path.join(ws.dir, 'reports'));
    const first = writeReports(ws, 'paper-ablation', { formats: ['csv'], now: 1 });
    const again = writeReports(ws, 'paper-ablation', { formats: ['csv'], now: 2 });
    expect(again.written[0]!.path).toBe(first.written[0]!.path);
    expect(readFileSync(again.written[0]!.path, 'utf8').split('\r\n')[0]).toBe(
      'experiment,variant,seed,run,kind,domain,metric,score,n,ci_low,ci_high',
    );
    expect(ws.db.listReports()).toHaveLength(2);
  });
});
