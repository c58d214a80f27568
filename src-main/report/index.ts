/**
 * Experiment reports: `collectReport` reads the store into a `ReportData`; the renderers turn it
 * into Markdown, HTML, CSV or LaTeX (pure functions of the data, shared with the GUI);
 * `writeReports` does both and writes the files atomically, recording each in the database.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../common/errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { Experiment, Store } from '../store/index.js';
import { collectReport, findExperiment, type CollectOptions } from './collect.js';
import { renderCsv } from './csv.js';
import { renderHtml } from './html.js';
import { renderLatex } from './latex.js';
import { renderMarkdown } from './markdown.js';
import { REPORT_FORMATS, isReportFormat, type ReportData, type ReportFormat } from './types.js';

export * from './types.js';
export { collectReport, findExperiment, DEFAULT_REFERENCE, type CollectOptions } from './collect.js';
export { renderMarkdown, escapeMarkdown } from './markdown.js';
export { renderHtml } from './html.js';
export { renderCsv, parseCsv, CSV_COLUMNS } from './csv.js';
export { renderLatex, escapeLatex } from './latex.js';

const RENDERERS: Record<ReportFormat, (d: ReportData) => string> = {
  md: renderMarkdown,
  html: renderHtml,
  csv: renderCsv,
  tex: renderLatex,
};

const ALIASES: Record<string, ReportFormat> = { markdown: 'md', htm: 'html', latex: 'tex' };

export function renderReport(data: ReportData, format: ReportFormat): string {
  return RENDERERS[format](data);
}

/** `md`, `md,html`, `all` (case-insensitive; aliases markdown, latex) → distinct formats in the given order. */
export function parseFormats(spec: string): ReportFormat[] {
  const out: ReportFormat[] = [];
  const parts = spec
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
  if (parts.length === 0) throw new UserError(`--format: expected ${REPORT_FORMATS.join(', ')} or all`);
  for (const p of parts) {
    const list: readonly ReportFormat[] =
      p === 'all' ? REPORT_FORMATS : isReportFormat(p) ? [p] : Object.hasOwn(ALIASES, p) ? [ALIASES[p]!] : [];
    if (list.length === 0) {
      throw new UserError(`--format: unknown format '${p}' (${REPORT_FORMATS.join(', ')} or all)`);
    }
    for (const f of list) if (!out.includes(f)) out.push(f);
  }
  return out;
}

/** A file name stem from an experiment name: letters, digits, '.', '_', '-' kept, the rest '-'. */
export function reportFileStem(exp: Pick<Experiment, 'id' | 'name'>): string {
  const s = exp.name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '') // accents dropped: é → e
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[.-]+|[.-]+$/g, '')
    .slice(0, 100);
  return s === '' ? `experiment-${exp.id}` : s;
}

const KNOWN_EXT = /\.(md|markdown|html?|csv|tex)$/i;

/**
 * Where each format goes. Default `<workspace>/reports/<stem>.<ext>`. `out`: an existing
 * directory (or a path ending in a separator) holds `<stem>.<ext>`; with one format it is the
 * file itself; with several, its report extension (if any) is replaced by each format's.
 */
export function reportTargets(
  workspaceDir: string,
  exp: Pick<Experiment, 'id' | 'name'>,
  formats: readonly ReportFormat[],
  out?: string,
  cwd = process.cwd(),
): Map<ReportFormat, string> {
  const stem = reportFileStem(exp);
  const targets = new Map<ReportFormat, string>();
  if (out === undefined || out === '') {
    for (const f of formats) targets.set(f, path.join(workspaceDir, 'reports', `${stem}.${f}`));
    return targets;
  }
  const abs = path.resolve(cwd, out);
  const isDir = /[\\/]$/.test(out) || (fs.existsSync(abs) && fs.statSync(abs).isDirectory());
  for (const f of formats) {
    if (isDir) targets.set(f, path.join(abs, `${stem}.${f}`));
    else if (formats.length === 1) targets.set(f, abs);
    else targets.set(f, `${abs.replace(KNOWN_EXT, '')}.${f}`);
  }
  return targets;
}

export interface WriteReportsOptions extends CollectOptions {
  formats: readonly ReportFormat[];
  /** See `reportTargets`; relative to `cwd`. */
  out?: string;
  cwd?: string;
}

export interface WrittenReport {
  format: ReportFormat;
  /** Absolute. */
  path: string;
  /** Workspace-relative path recorded in the database; null when the file is outside the workspace. */
  workspacePath: string | null;
  reportId: number | null;
  bytes: number;
}

export interface WriteReportsResult {
  data: ReportData;
  written: WrittenReport[];
}

function insideWorkspace(dir: string, file: string): string | null {
  const rel = path.relative(path.resolve(dir), file);
  if (rel === '' || rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) return null;
  return rel.split(path.sep).join('/');
}

/**
 * Collects the experiment's report and writes one file per format (each atomically), recording
 * every file inside the workspace with `store.addReport`. All formats are rendered before any
 * file is written. An experiment with no finished terminal run is a UserError; nothing is written.
 */
export function writeReports(
  ws: { dir: string; db: Store },
  experiment: Experiment | number | string,
  opts: WriteReportsOptions,
): WriteReportsResult {
  if (opts.formats.length === 0) throw new UserError('--format: no format given');
  const exp = typeof experiment === 'object' ? experiment : findExperiment(ws.db, experiment);
  const data = collectReport(ws.db, exp, opts);
  if (data.runs.length === 0) throw new UserError(`experiment ${exp.name} has no finished runs to report`);
  const targets = reportTargets(ws.dir, exp, opts.formats, opts.out, opts.cwd);
  const rendered = opts.formats.map((f) => ({
    format: f,
    file: targets.get(f)!,
    text: renderReport(data, f),
  }));
  const written: WrittenReport[] = [];
  for (const r of rendered) {
    try {
      fs.mkdirSync(path.dirname(r.file), { recursive: true });
    } catch (e) {
      throw new UserError(`${path.dirname(r.file)}: cannot create the directory: ${(e as Error).message}`);
    }
    writeFileAtomic(r.file, r.text);
    const rel = insideWorkspace(ws.dir, r.file);
    const row =
      rel === null
        ? null
        : ws.db.addReport({ experimentId: exp.id, format: r.format, path: rel, title: data.title });
    written.push({
      format: r.format,
      path: r.file,
      workspacePath: rel,
      reportId: row?.id ?? null,
      bytes: Buffer.byteLength(r.text, 'utf8'),
    });
  }
  return { data, written };
}
