/**
 * ReportData → one self-contained HTML page (pure): inline CSS with light and dark schemes
 * (prefers-color-scheme), inline SVG charts from svg.ts, no scripts and no external references.
 */
import {
  deltaText,
  estimateText,
  intervalLegend,
  num,
  own,
  pct,
  runTitle,
  stageTitle,
  utcTime,
  variantKind,
} from './format.js';
import {
  escapeXml as esc,
  heatmapSvg,
  intervalChartSvg,
  lineChartSvg,
  seriesColor,
  type LineSeries,
} from './svg.js';
import type { ReportData, RoutingSection } from './types.js';

/** The report's stylesheet (its hash is allowed by the hosts' CSP so the in-app preview is styled). */
export const REPORT_CSS = `
:root { color-scheme: light dark; --bg: #ffffff; --fg: #1f2328; --muted: #59636e; --border: #d1d9e0;
  --head: #f6f8fa; --best: #dafbe1; --pos: #1a7f37; --neg: #cf222e; --note: #fff8c5; --note-border: #d4a72c; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --border: #3d444d; --head: #151b23;
    --best: #1b4721; --pos: #3fb950; --neg: #f85149; --note: #2e2a1a; --note-border: #9e6a03; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 20px 64px; }
h1 { font-size: 1.7em; margin: 0 0 4px; }
h2 { font-size: 1.3em; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--border); }
h3 { font-size: 1.05em; margin: 22px 0 8px; }
.meta, .caption, figcaption { color: var(--muted); font-size: 0.9em; }
nav { margin: 14px 0; font-size: 0.9em; }
nav a { color: inherit; margin-right: 14px; }
.notes { background: var(--note); border: 1px solid var(--note-border); border-radius: 6px; padding: 8px 14px; }
.notes ul { margin: 4px 0; padding-left: 20px; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; margin: 6px 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--border); padding: 4px 9px; text-align: right; white-space: nowrap; }
th { background: var(--head); font-weight: 600; }
th:first-child, td:first-child, th.text, td.text { text-align: left; }
td.best { background: var(--best); font-weight: 700; }
td.pos { color: var(--pos); }
td.neg { color: var(--neg); }
figure { margin: 12px 0; }
.charts { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
svg.chart { max-width: 100%; height: auto; color: var(--fg); }
footer { margin-top: 48px; color: var(--muted); font-size: 0.85em; }
`;

interface Cell {
  text: string;
  cls?: string;
  title?: string;
}

function htmlTable(header: readonly string[], rows: readonly (readonly (string | Cell)[])[]): string {
  const td = (c: string | Cell): string => {
    if (typeof c === 'string') return `<td>${esc(c)}</td>`;
    const attrs = (c.cls ? ` class="${c.cls}"` : '') + (c.title ? ` title="${esc(c.title)}"` : '');
    return `<td${attrs}>${esc(c.text)}</td>`;
  };
  // a column whose cells are all text is left-aligned, its header too
  const textCol = header.map(
    (_, c) => rows.length > 0 && rows.every((r) => typeof r[c] === 'object' && (r[c] as Cell).cls === 'text'),
  );
  return (
    '<div class="table-wrap"><table><thead><tr>' +
    header.map((h, c) => `<th${textCol[c] ? ' class="text"' : ''}>${esc(h)}</th>`).join('') +
    '</tr></thead><tbody>' +
    rows.map((r) => `<tr>${r.map(td).join('')}</tr>`).join('') +
    '</tbody></table></div>'
  );
}

const pctFmt = (v: number): string => (100 * v).toFixed(1);

function routingHeatmap(
  r: RoutingSection,
  fractions: readonly (readonly (number | null)[])[],
  what: string,
): string {
  return (
    '<figure>' +
    heatmapSvg({
      rows: r.domains,
      cols: Array.from({ length: r.experts }, (_, e) => `e${e}`),
      values: fractions,
      min: 0,
      max: 1,
      format: pctFmt,
      title: `${runTitle(r)}: routing, ${what}`,
      legend: '% of top-k slots',
    }) +
    `<figcaption>${esc(what.charAt(0).toUpperCase() + what.slice(1))}</figcaption></figure>`
  );
}

export function renderHtml(data: ReportData): string {
  const domains = data.domains;
  const colorOf = new Map(data.variants.map((v, i) => [v.name, seriesColor(i)]));
  const body: string[] = [];
  const push = (...s: string[]) => body.push(...s);

  push(`<h1>${esc(data.title)}</h1>`);
  push(
    `<p class="meta">Experiment <strong>${esc(data.experiment.name)}</strong> (id ${data.experiment.id}) · ` +
      `generated ${esc(utcTime(data.generatedAt))} · ${data.variants.length} variants · seeds ` +
      `${esc(data.seeds.length ? data.seeds.join(', ') : '-')} · domains ` +
      `${domains.map((d) => `${esc(d)} (${esc(own(data.domainMetrics, d) ?? '?')})`).join(', ') || '-'}</p>`,
  );
  if (data.experiment.notes) push(`<p>${esc(data.experiment.notes)}</p>`);
  push(
    '<nav>' +
      [
        ['main', 'Main results'],
        ['ablation', 'Ablation'],
        ['profile', 'Checkpoints'],
        ['lineage', 'Lineage'],
        ['routing', 'Routing'],
        ['loss', 'Loss'],
        ['runs', 'Runs'],
      ]
        .map(([id, t]) => `<a href="#${id}">${t}</a>`)
        .join('') +
      '</nav>',
  );
  if (data.notes.length) {
    push(
      `<div class="notes"><strong>Notes</strong><ul>${data.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul></div>`,
    );
  }

  // 1. main table
  push('<h2 id="main">Main results</h2>');
  if (data.runs.length === 0) {
    push('<p class="caption">No finished runs yet.</p>');
  } else {
    push(
      htmlTable(
        ['Variant', 'Kind', ...domains, 'Avg', 'n'],
        data.variants.map((v) => [
          { text: v.name, cls: 'text' },
          { text: variantKind(v), cls: 'text' },
          ...domains.map((d): Cell => {
            const c = own(v.domains, d);
            if (!c) return { text: '-' };
            const best = (own(data.bestByDomain, d) ?? []).includes(v.name);
            return {
              text: estimateText(c),
              ...(best ? { cls: 'best' } : {}),
              title: `per seed: ${c.values.map(pctFmt).join(', ')}`,
            };
          }),
          v.average
            ? {
                text: estimateText(v.average),
                ...(data.bestAverage.includes(v.name) ? { cls: 'best' } : {}),
                title: `per seed: ${v.average.values.map(pctFmt).join(', ')}`,
              }
            : '-',
          String(v.runIds.length),
        ]),
      ),
      `<p class="caption">Primary metric per domain, in %: ${esc(intervalLegend())}. n = seeds. ` +
        'Highlighted: best per column.</p>',
    );
    const items = data.variants
      .filter((v) => v.average)
      .map((v) => ({
        label: v.name,
        value: 100 * v.average!.mean,
        low: v.average!.ci ? 100 * v.average!.ci.low : null,
        high: v.average!.ci ? 100 * v.average!.ci.high : null,
        color: colorOf.get(v.name)!,
      }));
    if (items.length) {
      push(
        '<figure>' +
          intervalChartSvg({
            items,
            title: 'Average over domains per variant (%), 95% t-interval over seeds',
            xLabel: 'average over domains (%)',
            width: 720,
            xFormat: (v) => v.toFixed(1),
          }) +
          '<figcaption>Average over domains, % (whiskers: 95% t-interval over seeds where n ≥ 2).</figcaption></figure>',
      );
    }
  }

  // 2. ablation
  push('<h2 id="ablation">Ablation</h2>');
  if (!data.ablation) {
    push(`<p class="caption">Skipped: no finished variant named “${esc(data.reference)}”.</p>`);
  } else if (data.ablation.rows.length === 0) {
    push(`<p class="caption">No other variant to compare with “${esc(data.ablation.reference)}”.</p>`);
  } else {
    const a = data.ablation;
    const dcell = (d: { delta: number } | null | undefined, text: string): Cell =>
      !d ? { text: '-' } : { text, ...(d.delta > 0 ? { cls: 'pos' } : d.delta < 0 ? { cls: 'neg' } : {}) };
    push(
      htmlTable(
        ['Variant', ...domains.map((d) => `Δ ${d}`), 'Δ Avg', 'n'],
        a.rows.map((r) => [
          { text: r.variant, cls: 'text' },
          ...domains.map((d) => {
            const x = own(r.domains, d);
            return dcell(x, x ? deltaText(x) : '-');
          }),
          dcell(r.average, r.average ? deltaText(r.average) : '-'),
          String(r.n),
        ]),
      ),
      `<p class="caption">Difference to <strong>${esc(a.reference)}</strong> (n = ${a.referenceN}) in percentage ` +
        'points; ± half-width of Welch’s 95% interval when both sides have at least 2 seeds.</p>',
    );
  }

  // 3. checkpoint profiles
  push('<h2 id="profile">Checkpoint × domain profile</h2>');
  if (data.profiles.length === 0) push('<p class="caption">No prepare run with evaluated checkpoints.</p>');
  for (const p of data.profiles) {
    push(`<h3>${esc(stageTitle('prepare', p))}${p.status === 'done' ? '' : ` (${esc(p.status)})`}</h3>`);
    push(
      htmlTable(
        ['Checkpoint', 'Epoch', ...p.domains, 'Avg'],
        p.rows.map((r, i) => [
          { text: r.label, cls: 'text' },
          r.epoch === null ? '-' : num(r.epoch, 3),
          ...p.domains.map((d): Cell => {
            const v = own(r.scores, d);
            if (v === undefined) return { text: '-' };
            return { text: pct(v), ...((own(p.best, d) ?? []).includes(i) ? { cls: 'best' } : {}) };
          }),
          r.average === null ? '-' : pct(r.average),
        ]),
      ),
    );
    if (p.specialisation)
      push(
        `<p class="caption">Does the best checkpoint differ by domain? ${esc(p.specialisation)} (paired tests on the same items).</p>`,
      );
    const ckRows = p.rows.filter((r) => r.checkpointId !== null && r.step !== null);
    if (ckRows.length >= 2) {
      const series: LineSeries[] = p.domains.map((d, i) => ({
        label: d,
        color: seriesColor(i),
        markers: true,
        points: ckRows
          .filter((r) => own(r.scores, d) !== undefined)
          .map((r) => [r.step!, 100 * own(r.scores, d)!] as const),
      }));
      const highlights = p.domains.flatMap((d, i) =>
        (own(p.best, d) ?? []).flatMap((ri) => {
          const r = p.rows[ri];
          const v = r ? own(r.scores, d) : undefined;
          return r && r.step !== null && v !== undefined
            ? [{ x: r.step, y: 100 * v, color: seriesColor(i), label: `best ${d}: ${r.label}` }]
            : [];
        }),
      );
      push(
        '<figure>' +
          lineChartSvg({
            series,
            highlights,
            title: `Prepare run ${p.runId}: score per domain over checkpoints`,
            xLabel: 'step',
            yLabel: 'score %',
            width: 720,
            height: 220,
          }) +
          '<figcaption>Primary score per domain at each checkpoint; circled: the best checkpoint per domain.</figcaption></figure>',
      );
    }
  }

  // 4. lineage
  push('<h2 id="lineage">Expert lineage</h2>');
  if (data.lineages.length === 0) push('<p class="caption">No expand run.</p>');
  for (const l of data.lineages) {
    push(`<h3>${esc(stageTitle('expand', l))}</h3>`);
    const nameOf = (i: number) => l.experts.find((x) => x.idx === i)?.name ?? `e${i}`;
    const figs: string[] = [];
    if (l.experts.length) {
      push(
        htmlTable(
          ['Expert', 'Name', 'Source', 'Step', 'Parents', 'α', 'p', 'Seed', 'Parent distance'],
          l.experts.map((x) => [
            String(x.idx),
            { text: x.name ?? '-', cls: 'text' },
            { text: x.source, cls: 'text' },
            x.step === null ? '-' : String(x.step),
            {
              text: x.parents.length ? x.parents.map((q) => `${q} ${nameOf(q)}`).join(' × ') : '-',
              cls: 'text',
            },
            num(x.alpha, 3),
            num(x.p, 3),
            x.seed === null ? '-' : String(x.seed),
            num(x.distance, 4),
          ]),
        ),
      );
    }
    if (l.distance) {
      figs.push(
        '<figure>' +
          heatmapSvg({
            rows: l.distance.labels,
            cols: l.distance.labels,
            values: l.distance.values,
            format: (v) => v.toFixed(3),
            title: `Expand run ${l.runId}: pairwise ${l.distance.metric} distance of the task vectors`,
            legend: `${l.distance.metric} distance`,
          }) +
          `<figcaption>Pairwise ${esc(l.distance.metric)} distance between the experts' task vectors.</figcaption></figure>`,
      );
    }
    if (figs.length) push(`<div class="charts">${figs.join('')}</div>`);
  }
  if (data.seedBuckets.length) {
    push('<h3>Router seed data</h3>');
    const experts = Math.max(...data.seedBuckets.flatMap((b) => b.buckets.map((x) => x.expert + 1)));
    push(
      htmlTable(
        ['Route run', ...Array.from({ length: experts }, (_, e) => `e${e}`), 'Total'],
        data.seedBuckets.map((b) => [
          { text: stageTitle('route', b), cls: 'text' },
          ...Array.from({ length: experts }, (_, e): Cell => {
            const x = b.buckets.find((y) => y.expert === e);
            return x ? { text: String(x.size), ...(x.name ? { title: x.name } : {}) } : { text: '-' };
          }),
          String(b.buckets.reduce((t, x) => t + x.size, 0)),
        ]),
      ),
      '<p class="caption">Seed samples given to each expert (the one with the lowest perplexity on the sample).</p>',
    );
  }

  // 5. routing
  push('<h2 id="routing">Routing</h2>');
  if (data.routing.length === 0) push('<p class="caption">No routing statistics recorded.</p>');
  for (const r of data.routing) {
    push(`<h3>${esc(runTitle(r))}</h3>`);
    const figs = [routingHeatmap(r, r.mean, `mean over ${r.layers.length} layers`)];
    const last = r.byLayer[r.byLayer.length - 1];
    if (last && r.byLayer.length > 1) figs.push(routingHeatmap(r, last.fractions, `layer ${last.layer}`));
    push(`<div class="charts">${figs.join('')}</div>`);
  }
  if (data.routing.length) {
    push(
      '<p class="caption">Share of each domain’s top-k routing slots per expert, in % (rows sum to 100).</p>',
    );
  }

  // 6. loss
  push('<h2 id="loss">Training loss</h2>');
  if (data.losses.length === 0) push('<p class="caption">No loss recorded.</p>');
  const seedIndex = new Map(data.seeds.map((s, i) => [s, i]));
  for (const role of ['terminal', 'prepare'] as const) {
    const ls = data.losses.filter((s) => s.role === role && s.points.length > 0);
    if (ls.length === 0) continue;
    const series: LineSeries[] = ls.map((s, i) => ({
      label: runTitle(s),
      points: s.points,
      color:
        role === 'terminal' && s.variant !== null
          ? (colorOf.get(s.variant) ?? seriesColor(i))
          : seriesColor(i),
      dashed: role === 'terminal' && s.seed !== null && (seedIndex.get(s.seed) ?? 0) % 2 === 1,
    }));
    push(
      '<figure>' +
        lineChartSvg({
          series,
          title:
            role === 'terminal' ? 'Training loss of the terminal runs' : 'Training loss of the prepare runs',
          xLabel: 'step',
          yLabel: 'loss',
          width: 720,
        }) +
        `<figcaption>${role === 'terminal' ? 'Terminal runs (color: variant).' : 'Prepare runs (Stage 1) feeding them.'}` +
        `${ls.some((s) => s.downsampled) ? ' Long curves downsampled (min/max per bucket kept).' : ''}</figcaption></figure>`,
    );
  }
  if (data.losses.length) {
    push(
      htmlTable(
        ['Run', 'Kind', 'Role', 'Points', 'First', 'Final', 'Min'],
        data.losses.map((s) => [
          { text: runTitle(s), cls: 'text' },
          { text: s.kind, cls: 'text' },
          { text: s.role, cls: 'text' },
          String(s.total),
          num(s.first),
          num(s.last),
          num(s.min),
        ]),
      ),
    );
  }

  // runs
  push('<h2 id="runs">Runs</h2>');
  if (data.runs.length === 0) push('<p class="caption">None finished.</p>');
  else {
    push(
      htmlTable(
        ['Run', 'Variant', 'Seed', 'Kind', 'Step', ...domains, 'Avg'],
        data.runs.map((r) => [
          String(r.runId),
          { text: r.variant, cls: 'text' },
          r.seed === null ? '-' : String(r.seed),
          { text: r.kind, cls: 'text' },
          r.step === null ? '-' : String(r.step),
          ...domains.map((d): Cell => {
            const s = r.scores.find((x) => x.domain === d && x.primary);
            if (!s) return { text: '-' };
            return {
              text: pct(s.score),
              ...(s.ciLow !== null && s.ciHigh !== null
                ? { title: `${s.metric}, n ${s.n ?? '?'}, 95% CI ${pct(s.ciLow)}–${pct(s.ciHigh)}` }
                : {}),
            };
          }),
          r.average === null ? '-' : pct(r.average),
        ]),
      ),
    );
  }
  push(`<footer>Generated by UpIT Workbench · ${esc(utcTime(data.generatedAt))}</footer>`);

  return (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n' +
    '<meta name="color-scheme" content="light dark">\n' +
    `<title>${esc(data.title)}</title>\n<style>${REPORT_CSS}</style>\n</head>\n<body>\n<main>\n` +
    body.join('\n') +
    '\n</main>\n</body>\n</html>\n'
  );
}
