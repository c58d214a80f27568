import { describe, expect, it } from 'vitest';
import { escapeLatex, renderLatex } from '../../../src-main/report/latex.js';
import { sampleReportData, SPECIAL } from './fixture.js';

/** The rows (lines ending in \\) between \midrule and \bottomrule of the n-th tabular. */
function tableRows(tex: string, n: number): string[] {
  const body = tex.split('\\begin{tabular}')[n + 1]!.split('\\end{tabular}')[0]!;
  return body.split('\n').filter((l) => l.endsWith('\\\\'));
}

describe('renderLatex', () => {
  const data = sampleReportData();
  const tex = renderLatex(data);

  it('escapes special characters', () => {
    expect(escapeLatex('a_b%c&d#e$f{g}h~i^j\\k')).toBe(
      'a\\_b\\%c\\&d\\#e\\$f\\{g\\}h\\textasciitilde{}i\\textasciicircum{}j\\textbackslash{}k',
    );
    expect(tex).toContain('w/o "router" init, 50\\% \\& \\#2\\_x');
    expect(tex).toContain('\\texttt{demo \\textless{}exp\\textgreater{}}');
    expect(tex).not.toContain(SPECIAL);
    // outside comments, every % and # is escaped; every row has exactly one & per column gap
    for (const line of tex.split('\n').filter((l) => !l.startsWith('%'))) {
      expect(line).not.toMatch(/(?<!\\)[%#]/);
      expect(line).not.toMatch(/(?<!\\)_/);
    }
    for (const row of tableRows(tex, 0)) expect(row.match(/(?<!\\)&/g)).toHaveLength(4);
    for (const row of tableRows(tex, 1)) expect(row.match(/(?<!\\)&/g)).toHaveLength(4);
  });

  it('booktabs main table: every variant, bold best, intervals', () => {
    expect(tex.match(/\\toprule/g)).toHaveLength(2);
    expect(tex.match(/\\bottomrule/g)).toHaveLength(2);
    expect(tex).toContain('\\begin{tabular}{lrrrr}');
    expect(tex).toContain('\\label{tab:demo-exp-main}');
    const rows = tableRows(tex, 0);
    expect(rows[0]).toBe('Variant & arith & mc & Avg. & $n$ \\\\');
    expect(rows.slice(1).map((r) => r.split(' & ')[0])).toEqual(['upit', 'dense', escapeLatex(SPECIAL)]);
    expect(rows[1]).toBe(
      'upit & \\textbf{52.0}\\,{\\scriptsize$\\pm$25.4} & 61.0\\,{\\scriptsize$\\pm$12.7} & ' +
        '\\textbf{56.5}\\,{\\scriptsize$\\pm$19.5} & 2 \\\\',
    );
    expect(rows[3]).toContain('45.0\\,{\\scriptsize(35.5--54.8)} & -- & 45.0 & 1');
  });

  it('ablation table with signed deltas, or a comment when skipped', () => {
    const rows = tableRows(tex, 1);
    expect(rows[1]).toBe('upit (ref.) & 52.0 & 61.0 & 56.5 & 2 \\\\');
    expect(rows[2]).toBe(
      'dense & $-10.0$\\,{\\scriptsize$\\pm$12.2} & $+10.0$\\,{\\scriptsize$\\pm$12.0} & ' +
        '$0.0$\\,{\\scriptsize$\\pm$10.0} & 2 \\\\',
    );
    expect(rows[3]).toBe(`${escapeLatex(SPECIAL)} & $-7.0$ & -- & $-11.5$ & 1 \\\\`);
    const skipped = renderLatex({ ...data, ablation: null });
    expect(skipped.match(/\\begin\{tabular\}/g)).toHaveLength(1);
    expect(skipped).toContain("% ablation table skipped: no finished variant named 'upit'");
  });
});
