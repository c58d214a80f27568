import { describe, expect, it } from 'vitest';
import { CSV_COLUMNS, csvField, parseCsv, renderCsv } from '../../../src-main/report/csv.js';
import { sampleReportData, SPECIAL } from './fixture.js';

describe('renderCsv', () => {
  const data = sampleReportData();
  const csv = renderCsv(data);

  it('one row per run × metric, then final losses; parses back', () => {
    expect(csv.endsWith('\r\n')).toBe(true);
    expect(csv.replace(/\r\n/g, '')).not.toMatch(/\n/); // CRLF only (no field holds a newline here)
    const rows = parseCsv(csv);
    expect(rows[0]).toEqual([...CSV_COLUMNS]);
    const body = rows.slice(1);
    expect(body).toHaveLength(3 + 1 + 1);
    expect(body.every((r) => r.length === CSV_COLUMNS.length)).toBe(true);
    expect(body[0]).toEqual([
      'demo <exp>',
      'upit',
      '1',
      '10',
      'upcycle',
      'arith',
      'exact_match',
      '0.5',
      '100',
      '0.4',
      '0.6',
    ]);
    expect(body.map((r) => r[6])).toEqual(['exact_match', 'acc_norm', 'acc', 'exact_match', 'final_loss']);
    expect(body[3]![1]).toBe(SPECIAL); // quoted on the way out, intact on the way back
    expect(Number(body[3]![7])).toBe(0.45);
    expect(body[4]).toEqual([
      'demo <exp>',
      'upit',
      '1',
      '10',
      'upcycle',
      '',
      'final_loss',
      '1.25',
      '',
      '',
      '',
    ]);
    // every variant with a finished run appears
    for (const r of data.runs) expect(body.some((row) => row[1] === r.variant)).toBe(true);
  });

  it('quotes per RFC 4180', () => {
    expect(csv).toContain(',"w/o ""router"" init, 50% & #2_x",');
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField(null)).toBe('');
    expect(csvField(Number.NaN)).toBe('');
    const tricky = ['a,b', 'say "hi"', 'two\r\nlines', '', 'x'];
    expect(parseCsv(`${tricky.map(csvField).join(',')}\r\n`)).toEqual([tricky]);
  });
});
