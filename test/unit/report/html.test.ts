import { describe, expect, it } from 'vitest';
import { renderHtml } from '../../../src-main/report/html.js';
import { escapeXml, heatmapSvg, lineChartSvg } from '../../../src-main/report/svg.js';
import { sampleReportData, SPECIAL } from './fixture.js';

interface XmlDoc {
  getElementsByTagName(n: string): { length: number };
  documentElement: { nodeName: string };
}
/** jsdom (a dev dependency without type declarations here) parses XML strictly. */
async function xmlParser(): Promise<(xml: string) => XmlDoc> {
  const specifier = 'jsdom';
  const { JSDOM } = (await import(specifier)) as {
    JSDOM: new () => { window: { DOMParser: new () => { parseFromString(s: string, t: string): XmlDoc } } };
  };
  const parser = new new JSDOM().window.DOMParser();
  return (xml) => parser.parseFromString(xml, 'image/svg+xml');
}

function svgs(html: string): string[] {
  return html.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
}

describe('renderHtml', () => {
  const data = sampleReportData();
  const html = renderHtml(data);

  it('is one self-contained page: no scripts, no external references, light and dark schemes', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).not.toMatch(/http/i);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/\bsrc=|<link|@import|url\(/i);
    expect(html).toContain('@media (prefers-color-scheme: dark)');
    expect(html).toContain('<meta name="color-scheme" content="light dark">');
    expect(html.match(/<style>/g)).toHaveLength(1);
  });

  it('escapes text and shows every variant in the main table, best cells marked', () => {
    expect(html).not.toContain('<exp>');
    expect(html).toContain('<h1>UpIT report: demo &lt;exp&gt;</h1>');
    const main = html.split('<h2 id="main">')[1]!.split('<h2')[0]!;
    for (const v of data.variants) expect(main).toContain(`<td class="text">${escapeXml(v.name)}</td>`);
    expect(main).toContain('<td class="best" title="per seed: 50.0, 54.0">52.0 ± 25.4</td>');
    expect(main).toContain('<td class="best" title="per seed: 70.0, 72.0">71.0 ± 12.5</td>');
    expect(main.match(/class="best"/g)).toHaveLength(3);
    const ablation = html.split('<h2 id="ablation">')[1]!.split('<h2')[0]!;
    expect(ablation).toContain('<td class="neg">-10.0 ± 12.2</td>');
    expect(ablation).toContain('<td class="pos">+10.0 ± 12.0</td>');
    expect(ablation).toContain(escapeXml(SPECIAL));
  });

  it('draws well-formed SVG charts: heatmaps as rect grids, lines as paths', async () => {
    const parse = await xmlParser();
    const charts = svgs(html);
    // averages, profile, distance heatmap, 2 routing heatmaps, 2 loss charts
    expect(charts.length).toBe(7);
    for (const svg of charts) {
      const doc = parse(svg.replace('<svg ', '<svg xmlns="http://www.w3.org/2000/svg" '));
      expect(doc.getElementsByTagName('parsererror').length).toBe(0);
      expect(doc.documentElement.nodeName).toBe('svg');
      expect(svg).toMatch(/viewBox="0 0 \d+ \d+"/);
      expect(svg).not.toMatch(/NaN|undefined/);
    }
    const routing = charts.filter((s) => s.includes('routing, mean over 2 layers'));
    expect(routing).toHaveLength(1);
    expect(routing[0]).toContain('<title>arith · e0: 80.0</title>');
    expect(routing[0]).toContain('<title>mc · e1: 70.0</title>');
    const distance = charts.find((s) => s.includes('cosine distance'))!;
    expect(distance).toContain('ck20 · merge-0: no data');
    const loss = charts.filter((s) => s.includes('Training loss'));
    expect(loss).toHaveLength(2);
    expect(loss[0]).toMatch(/<path d="M[\d.]+,[\d.]+L[\d.]+,[\d.]+L[\d.]+,[\d.]+"/);
  });

  it('renders an empty report without charts or NaN', () => {
    const empty = renderHtml({
      ...data,
      variants: data.variants.map((v) => ({ ...v, runIds: [], seeds: [], domains: {}, average: null })),
      runs: [],
      ablation: null,
      profiles: [],
      lineages: [],
      seedBuckets: [],
      routing: [],
      losses: [],
    });
    expect(empty).toContain('No finished runs yet.');
    expect(empty).not.toContain('<svg');
    expect(empty).not.toMatch(/NaN|undefined|Infinity/);
  });

  it('svg helpers: a heatmap has one rect per cell plus the legend; a line chart one path per series', () => {
    const h = heatmapSvg({
      rows: ['a', 'b'],
      cols: ['x', 'y', 'z'],
      values: [
        [0, 0.5, 1],
        [null, 0.25, 0.75],
      ],
      title: 'grid <1>',
    });
    const cells = h.match(/<rect [^>]*><title>/g) ?? [];
    expect(cells).toHaveLength(6);
    expect(h.match(/<rect /g)!.length).toBe(6 + 12); // + the 12-step legend
    expect(h).toContain('aria-label="grid &lt;1&gt;"');
    expect(h).toContain('fill="none"'); // the empty cell
    const l = lineChartSvg({
      title: 't',
      series: [
        {
          label: 'one',
          points: [
            [0, 1],
            [1, 2],
          ],
        },
        {
          label: 'two',
          points: [
            [0, 2],
            [1, 1],
          ],
          dashed: true,
        },
      ],
    });
    expect(l.match(/<path /g)).toHaveLength(2);
    expect(l).toContain('stroke-dasharray');
  });
});
