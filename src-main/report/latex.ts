/**
 * ReportData → LaTeX: the main table and the ablation table as booktabs `table` floats, ready to
 * paste into a paper (needs `\usepackage{booktabs}`). Text from the database is escaped.
 */
import { halfPp, own, pct, signedPp } from './format.js';
import type { Delta, Estimate, ReportData } from './types.js';

const TEX_ESCAPES: Record<string, string> = {
  '\\': '\\textbackslash{}',
  '&': '\\&',
  '%': '\\%',
  $: '\\$',
  '#': '\\#',
  _: '\\_',
  '{': '\\{',
  '}': '\\}',
  '~': '\\textasciitilde{}',
  '^': '\\textasciicircum{}',
  '<': '\\textless{}',
  '>': '\\textgreater{}',
  '|': '\\textbar{}',
};

/** Escapes text for LaTeX's text mode (one pass, so inserted backslashes are not escaped again). */
export function escapeLatex(s: string): string {
  return s.replace(/[\\&%$#_{}~^<>|]/g, (c) => TEX_ESCAPES[c] ?? c).replace(/\r?\n/g, ' ');
}

/** A label-safe slug: letters, digits, '-'. */
function slug(s: string): string {
  return (
    s
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'experiment'
  );
}

function cell(e: Estimate | undefined, best: boolean): string {
  if (!e) return '--';
  const m = best ? `\\textbf{${pct(e.mean)}}` : pct(e.mean);
  if (!e.ci) return m;
  if (e.ci.method === 'wilson') return `${m}\\,{\\scriptsize(${pct(e.ci.low)}--${pct(e.ci.high)})}`;
  return `${m}\\,{\\scriptsize$\\pm$${halfPp(e.ci)}}`;
}

function deltaCell(d: Delta | undefined | null): string {
  if (!d) return '--';
  const v = `$${signedPp(d.delta)}$`;
  return d.ci ? `${v}\\,{\\scriptsize$\\pm$${halfPp(d.ci)}}` : v;
}

export function renderLatex(data: ReportData): string {
  const esc = escapeLatex;
  const domains = data.domains;
  const label = slug(data.experiment.name);
  const out: string[] = [
    `% ${data.title.replace(/[\r\n]+/g, ' ')}`,
    `% generated ${new Date(data.generatedAt).toISOString()} by UpIT Workbench; needs \\usepackage{booktabs}`,
    '',
  ];
  const cols = `l${'r'.repeat(domains.length + 1)}r`;

  out.push(
    '\\begin{table}[t]',
    '\\centering',
    '\\small',
    `\\caption{Results of \\texttt{${esc(data.experiment.name)}}: primary metric per domain (\\%), ` +
      'mean over seeds $\\pm$ half-width of the 95\\% $t$-interval; with one seed, the 95\\% Wilson interval ' +
      'in parentheses. $n$: seeds. Best per column in bold.}',
    `\\label{tab:${label}-main}`,
    `\\begin{tabular}{${cols}}`,
    '\\toprule',
    `Variant & ${domains.map(esc).join(' & ')}${domains.length ? ' & ' : ''}Avg. & $n$ \\\\`,
    '\\midrule',
  );
  for (const v of data.variants) {
    const cells = domains.map((d) =>
      cell(own(v.domains, d), (own(data.bestByDomain, d) ?? []).includes(v.name)),
    );
    const avg = cell(v.average ?? undefined, data.bestAverage.includes(v.name));
    out.push(`${esc(v.name)} & ${[...cells, avg].join(' & ')} & ${v.runIds.length} \\\\`);
  }
  out.push('\\bottomrule', '\\end{tabular}', '\\end{table}', '');

  if (data.ablation && data.ablation.rows.length > 0) {
    const a = data.ablation;
    out.push(
      '\\begin{table}[t]',
      '\\centering',
      '\\small',
      `\\caption{Ablation on \\texttt{${esc(data.experiment.name)}}: difference to \\texttt{${esc(a.reference)}} ` +
        `($n=${a.referenceN}$) in percentage points; $\\pm$ half-width of Welch's 95\\% interval when both ` +
        'sides have at least 2 seeds.}',
      `\\label{tab:${label}-ablation}`,
      `\\begin{tabular}{${cols}}`,
      '\\toprule',
      `Variant & ${domains.map((d) => `$\\Delta$ ${esc(d)}`).join(' & ')}${domains.length ? ' & ' : ''}$\\Delta$ Avg. & $n$ \\\\`,
      '\\midrule',
      `${esc(a.reference)} (ref.) & ${[
        ...domains.map((d) => {
          const ref = data.variants.find((v) => v.name === a.reference);
          const r = ref ? own(ref.domains, d) : undefined;
          return r ? pct(r.mean) : '--';
        }),
        (() => {
          const r = data.variants.find((v) => v.name === a.reference)?.average;
          return r ? pct(r.mean) : '--';
        })(),
      ].join(' & ')} & ${a.referenceN} \\\\`,
      '\\midrule',
    );
    for (const r of a.rows) {
      out.push(
        `${esc(r.variant)} & ${[...domains.map((d) => deltaCell(own(r.domains, d))), deltaCell(r.average)].join(' & ')} & ${r.n} \\\\`,
      );
    }
    out.push('\\bottomrule', '\\end{tabular}', '\\end{table}', '');
  } else {
    const why = data.ablation
      ? `no other variant to compare with '${data.ablation.reference}'`
      : `no finished variant named '${data.reference}'`;
    out.push(`% ablation table skipped: ${why.replace(/[\r\n]+/g, ' ')}`, '');
  }
  return out.join('\n');
}
