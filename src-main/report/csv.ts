/**
 * ReportData → CSV (RFC 4180: CRLF line ends, a field with a comma, quote, CR or LF is quoted and
 * its quotes doubled). One row per finished terminal run × (domain, metric) at its final
 * checkpoint, every metric (not only the primary one); then one `final_loss` row per run that
 * logged a loss (domain empty, score = the last loss value). Scores are fractions in [0, 1].
 */
import type { ReportData } from './types.js';

export const CSV_COLUMNS = [
  'experiment',
  'variant',
  'seed',
  'run',
  'kind',
  'domain',
  'metric',
  'score',
  'n',
  'ci_low',
  'ci_high',
] as const;

export function csvField(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : v;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvLine(fields: readonly (string | number | null | undefined)[]): string {
  return fields.map(csvField).join(',');
}

export function renderCsv(data: ReportData): string {
  const lines: string[] = [csvLine(CSV_COLUMNS)];
  const exp = data.experiment.name;
  for (const r of data.runs) {
    for (const s of r.scores) {
      lines.push(
        csvLine([
          exp,
          r.variant,
          r.seed,
          r.runId,
          r.kind,
          s.domain,
          s.metric,
          s.score,
          s.n,
          s.ciLow,
          s.ciHigh,
        ]),
      );
    }
  }
  for (const r of data.runs) {
    if (r.finalLoss === null) continue;
    lines.push(
      csvLine([exp, r.variant, r.seed, r.runId, r.kind, '', 'final_loss', r.finalLoss, null, null, null]),
    );
  }
  return lines.join('\r\n') + '\r\n';
}

/** Parses RFC 4180 text back into rows (quoted fields, doubled quotes, CRLF or LF line ends). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else {
        field += c;
      }
      i += 1;
      continue;
    }
    if (c === '"' && field === '') {
      quoted = true;
    } else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' || c === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      if (c === '\r' && text[i + 1] === '\n') i += 1;
    } else {
      field += c;
    }
    i += 1;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}
