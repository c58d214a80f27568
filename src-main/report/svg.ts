/**
 * SVG chart strings for the HTML report, drawn in Node: d3 computes the scales, ticks, colors and
 * path data; the markup is built here as text (no DOM). Every chart is self-contained markup for
 * inline use in HTML (no ids, no external references); text and axes use `currentColor` so a
 * page's light or dark color scheme carries over.
 */
import { interpolateViridis, lab, line, scaleLinear, scaleSequential, schemeTableau10 } from 'd3';

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) =>
    c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;',
  );
}

/** Rounds coordinates to 0.01 px (shorter markup). */
const r2 = (x: number): number => Math.round(x * 100) / 100;

/** The i-th categorical color (Tableau 10, repeating). */
export function seriesColor(i: number): string {
  return schemeTableau10[((i % 10) + 10) % 10]!;
}

/** Rough width of a label in px at the given font size (no font metrics in Node). */
function textWidth(s: string, fontSize = 11): number {
  return [...s].length * fontSize * 0.6;
}

function svgOpen(width: number, height: number, title: string, cls: string): string {
  const w = Math.ceil(width);
  const h = Math.ceil(height);
  return (
    `<svg class="${cls}" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" ` +
    `aria-label="${escapeXml(title)}" font-family="system-ui, sans-serif" font-size="11">` +
    `<title>${escapeXml(title)}</title>`
  );
}

function text(x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${r2(x)}" y="${r2(y)}"${attrs ? ` ${attrs}` : ''}>${escapeXml(s)}</text>`;
}

// ---- heatmap ------------------------------------------------------------------------------------

export interface HeatmapOptions {
  rows: readonly string[];
  cols: readonly string[];
  /** [row][col]; null cells are drawn empty. */
  values: readonly (readonly (number | null)[])[];
  /** Accessible title (also the tooltip of the whole chart). */
  title: string;
  /** Color domain (default: the data's extent). */
  min?: number;
  max?: number;
  /** Cell text and legend text (default: 2 decimals). */
  format?: (v: number) => string;
  /** Caption under the legend. */
  legend?: string;
  cellWidth?: number;
  cellHeight?: number;
  /** Reverse the color ramp (high values dark). */
  reverse?: boolean;
}

/** A rect grid colored with a sequential (viridis) scale, values printed in the cells, with a legend. */
export function heatmapSvg(o: HeatmapOptions): string {
  const fmt = o.format ?? ((v: number) => v.toFixed(2));
  const finite = o.values.flat().filter((v): v is number => v !== null && Number.isFinite(v));
  let lo = o.min ?? (finite.length ? Math.min(...finite) : 0);
  let hi = o.max ?? (finite.length ? Math.max(...finite) : 1);
  if (!(hi > lo)) {
    lo = Math.min(lo, hi);
    hi = lo + 1;
  }
  const color = scaleSequential(interpolateViridis).domain(o.reverse ? [hi, lo] : [lo, hi]);
  const maxCellText = Math.max(20, ...finite.map((v) => textWidth(fmt(v), 10)));
  const cw = o.cellWidth ?? Math.max(30, Math.ceil(maxCellText + 8));
  const ch = o.cellHeight ?? 22;
  const rowLabelW = Math.max(0, ...o.rows.map((r) => textWidth(r))) + 10;
  const colLabelW = Math.max(0, ...o.cols.map((c) => textWidth(c)));
  const rotate = colLabelW > cw - 4;
  const top = rotate ? colLabelW * 0.71 + 14 : 20;
  const gridW = cw * o.cols.length;
  const gridH = ch * o.rows.length;
  const legendTop = top + gridH + 14;
  const legendH = 10;
  const legendW = Math.max(120, Math.min(260, gridW));
  const width =
    Math.max(rowLabelW + gridW, rowLabelW + legendW, rowLabelW + (o.legend ? textWidth(o.legend) : 0)) +
    (rotate ? colLabelW * 0.71 : 0) +
    10;
  const height = legendTop + legendH + 16 + (o.legend ? 14 : 0);
  const parts: string[] = [svgOpen(width, height, o.title, 'chart heatmap')];

  o.cols.forEach((c, j) => {
    const x = rowLabelW + (j + 0.5) * cw;
    parts.push(
      rotate
        ? text(x, top - 6, c, `transform="rotate(-45 ${r2(x)} ${r2(top - 6)})" fill="currentColor"`)
        : text(x, top - 6, c, 'text-anchor="middle" fill="currentColor"'),
    );
  });
  o.rows.forEach((r, i) => {
    parts.push(text(rowLabelW - 6, top + (i + 0.5) * ch + 4, r, 'text-anchor="end" fill="currentColor"'));
    o.cols.forEach((c, j) => {
      const v = o.values[i]?.[j] ?? null;
      const x = rowLabelW + j * cw;
      const y = top + i * ch;
      if (v === null || !Number.isFinite(v)) {
        parts.push(
          `<rect x="${r2(x + 0.5)}" y="${r2(y + 0.5)}" width="${cw - 1}" height="${ch - 1}" fill="none" ` +
            `stroke="currentColor" stroke-opacity="0.2"><title>${escapeXml(`${r} · ${c}: no data`)}</title></rect>`,
        );
        return;
      }
      const fill = color(v);
      const ink = lab(fill).l > 55 ? '#111111' : '#ffffff';
      parts.push(
        `<rect x="${r2(x)}" y="${r2(y)}" width="${cw}" height="${ch}" fill="${fill}">` +
          `<title>${escapeXml(`${r} · ${c}: ${fmt(v)}`)}</title></rect>`,
        text(x + cw / 2, y + ch / 2 + 3.5, fmt(v), `text-anchor="middle" font-size="10" fill="${ink}"`),
      );
    });
  });

  // legend: a stepped ramp from lo to hi
  const steps = 12;
  for (let k = 0; k < steps; k++) {
    const v = lo + ((k + 0.5) / steps) * (hi - lo);
    parts.push(
      `<rect x="${r2(rowLabelW + (k * legendW) / steps)}" y="${r2(legendTop)}" width="${r2(legendW / steps + 0.5)}" ` +
        `height="${legendH}" fill="${color(v)}"/>`,
    );
  }
  parts.push(
    text(rowLabelW, legendTop + legendH + 12, fmt(lo), 'fill="currentColor"'),
    text(rowLabelW + legendW, legendTop + legendH + 12, fmt(hi), 'text-anchor="end" fill="currentColor"'),
  );
  if (o.legend) {
    parts.push(
      text(rowLabelW, legendTop + legendH + 26, o.legend, 'fill="currentColor" fill-opacity="0.75"'),
    );
  }
  parts.push('</svg>');
  return parts.join('');
}

// ---- line chart ---------------------------------------------------------------------------------

export interface LineSeries {
  label: string;
  points: readonly (readonly [number, number])[];
  color?: string;
  dashed?: boolean;
  /** Draw a dot at every point (short series). */
  markers?: boolean;
}

export interface LineChartOptions {
  series: readonly LineSeries[];
  title: string;
  xLabel?: string;
  yLabel?: string;
  width?: number;
  height?: number;
  yFormat?: (v: number) => string;
  /** Force the y range to include these values (e.g. 0 and 1 for scores). */
  yInclude?: readonly number[];
  /** Emphasized points (e.g. each series' best checkpoint). */
  highlights?: readonly { x: number; y: number; color: string; label?: string }[];
}

/** Lines on linear axes with gridlines, tick labels and a legend underneath. */
export function lineChartSvg(o: LineChartOptions): string {
  const width = o.width ?? 640;
  const plotH = o.height ?? 260;
  const yFmt = o.yFormat ?? ((v: number) => String(Number(v.toPrecision(4))));
  const all = o.series.flatMap((s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  const xs = all.map(([x]) => x);
  const ys = [...all.map(([, y]) => y), ...(o.yInclude ?? [])];
  const xLo = xs.length ? Math.min(...xs) : 0;
  const xHi = xs.length ? Math.max(...xs) : 1;
  const yLo = ys.length ? Math.min(...ys) : 0;
  const yHi = ys.length ? Math.max(...ys) : 1;
  const y = scaleLinear()
    .domain(yHi > yLo ? [yLo, yHi] : [yLo - 0.5, yHi + 0.5])
    .nice(5);
  const yTicks = y.ticks(5);
  const left = Math.max(...yTicks.map((t) => textWidth(yFmt(t)))) + 14 + (o.yLabel ? 14 : 0);
  const right = 16;
  const top = 12;
  const x = scaleLinear()
    .domain(xHi > xLo ? [xLo, xHi] : [xLo - 1, xHi + 1])
    .range([left, width - right]);
  y.range([top + plotH, top]);
  const xTicks = x.ticks(Math.max(2, Math.floor((width - left - right) / 80)));
  const xAxisY = top + plotH;

  // legend layout, wrapping rows
  const legendItems: { x: number; row: number; s: LineSeries; color: string }[] = [];
  let lx = left;
  let row = 0;
  o.series.forEach((s, i) => {
    const w = textWidth(s.label) + 34;
    if (lx + w > width - right && lx > left) {
      lx = left;
      row += 1;
    }
    legendItems.push({ x: lx, row, s, color: s.color ?? seriesColor(i) });
    lx += w;
  });
  const legendTop = xAxisY + 24 + (o.xLabel ? 14 : 0);
  const height = legendTop + (o.series.length ? (row + 1) * 16 : 0) + 4;

  const parts: string[] = [svgOpen(width, height, o.title, 'chart line-chart')];
  parts.push('<g class="grid" stroke="currentColor" stroke-opacity="0.12">');
  for (const t of yTicks)
    parts.push(`<line x1="${r2(left)}" x2="${r2(width - right)}" y1="${r2(y(t))}" y2="${r2(y(t))}"/>`);
  for (const t of xTicks)
    parts.push(`<line x1="${r2(x(t))}" x2="${r2(x(t))}" y1="${top}" y2="${r2(xAxisY)}"/>`);
  parts.push('</g>');
  parts.push(
    `<g class="axis" fill="currentColor"><line x1="${r2(left)}" x2="${r2(width - right)}" y1="${r2(xAxisY)}" ` +
      `y2="${r2(xAxisY)}" stroke="currentColor" stroke-opacity="0.5"/>`,
  );
  for (const t of yTicks) parts.push(text(left - 6, y(t) + 3.5, yFmt(t), 'text-anchor="end"'));
  for (const t of xTicks) parts.push(text(x(t), xAxisY + 14, String(t), 'text-anchor="middle"'));
  if (o.xLabel) parts.push(text((left + width - right) / 2, xAxisY + 30, o.xLabel, 'text-anchor="middle"'));
  if (o.yLabel) {
    const cy = top + plotH / 2;
    parts.push(text(12, cy, o.yLabel, `text-anchor="middle" transform="rotate(-90 12 ${r2(cy)})"`));
  }
  parts.push('</g>');

  const path = line<readonly [number, number]>()
    .defined(([px, py]) => Number.isFinite(px) && Number.isFinite(py))
    .x(([px]) => r2(x(px)))
    .y(([, py]) => r2(y(py)));
  o.series.forEach((s, i) => {
    const c = s.color ?? seriesColor(i);
    const d = path([...s.points].sort((a, b) => a[0] - b[0]));
    if (d) {
      parts.push(
        `<path d="${d}" fill="none" stroke="${c}" stroke-width="1.6"${s.dashed ? ' stroke-dasharray="5 3"' : ''}>` +
          `<title>${escapeXml(s.label)}</title></path>`,
      );
    }
    if (s.markers) {
      for (const [px, py] of s.points) {
        if (!Number.isFinite(px) || !Number.isFinite(py)) continue;
        parts.push(`<circle cx="${r2(x(px))}" cy="${r2(y(py))}" r="2.5" fill="${c}"/>`);
      }
    }
  });
  for (const h of o.highlights ?? []) {
    parts.push(
      `<circle cx="${r2(x(h.x))}" cy="${r2(y(h.y))}" r="5" fill="none" stroke="${h.color}" stroke-width="2">` +
        (h.label ? `<title>${escapeXml(h.label)}</title>` : '') +
        '</circle>',
    );
  }

  parts.push('<g class="legend" fill="currentColor">');
  for (const it of legendItems) {
    const ly = legendTop + it.row * 16;
    parts.push(
      `<line x1="${r2(it.x)}" x2="${r2(it.x + 22)}" y1="${r2(ly)}" y2="${r2(ly)}" stroke="${it.color}" ` +
        `stroke-width="2"${it.s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`,
      text(it.x + 27, ly + 3.5, it.s.label),
    );
  }
  parts.push('</g></svg>');
  return parts.join('');
}

// ---- dot-and-whisker chart ----------------------------------------------------------------------

export interface IntervalItem {
  label: string;
  value: number;
  low: number | null;
  high: number | null;
  color?: string;
}

export interface IntervalChartOptions {
  items: readonly IntervalItem[];
  title: string;
  xLabel?: string;
  width?: number;
  xFormat?: (v: number) => string;
}

/** One row per item: a dot at the value and a whisker over its interval, on a shared x axis. */
export function intervalChartSvg(o: IntervalChartOptions): string {
  const width = o.width ?? 640;
  const fmt = o.xFormat ?? ((v: number) => String(Number(v.toPrecision(4))));
  const rowH = 22;
  const vals = o.items.flatMap((it) =>
    [it.value, it.low, it.high].filter((v): v is number => v !== null && Number.isFinite(v)),
  );
  const lo = vals.length ? Math.min(...vals) : 0;
  const hi = vals.length ? Math.max(...vals) : 1;
  const left = Math.max(0, ...o.items.map((it) => textWidth(it.label))) + 14;
  const right = 20;
  const top = 8;
  const x = scaleLinear()
    .domain(hi > lo ? [lo, hi] : [lo - 0.05, hi + 0.05])
    .nice(6)
    .range([left, width - right]);
  const axisY = top + rowH * o.items.length + 4;
  const height = axisY + 20 + (o.xLabel ? 14 : 0);
  const parts: string[] = [svgOpen(width, height, o.title, 'chart interval-chart')];
  const ticks = x.ticks(6);
  parts.push('<g class="grid" stroke="currentColor" stroke-opacity="0.12">');
  for (const t of ticks)
    parts.push(`<line x1="${r2(x(t))}" x2="${r2(x(t))}" y1="${top}" y2="${r2(axisY)}"/>`);
  parts.push('</g><g class="axis" fill="currentColor">');
  for (const t of ticks) parts.push(text(x(t), axisY + 14, fmt(t), 'text-anchor="middle"'));
  if (o.xLabel) parts.push(text((left + width - right) / 2, axisY + 28, o.xLabel, 'text-anchor="middle"'));
  parts.push('</g>');
  o.items.forEach((it, i) => {
    const cy = top + (i + 0.5) * rowH;
    const c = it.color ?? seriesColor(i);
    parts.push(text(left - 8, cy + 4, it.label, 'text-anchor="end" fill="currentColor"'));
    const tip = escapeXml(
      `${it.label}: ${fmt(it.value)}` +
        (it.low !== null && it.high !== null ? ` (${fmt(it.low)} to ${fmt(it.high)})` : ''),
    );
    parts.push(`<g><title>${tip}</title>`);
    if (it.low !== null && it.high !== null && Number.isFinite(it.low) && Number.isFinite(it.high)) {
      const x1 = r2(x(it.low));
      const x2 = r2(x(it.high));
      parts.push(
        `<line x1="${x1}" x2="${x2}" y1="${r2(cy)}" y2="${r2(cy)}" stroke="${c}" stroke-width="2"/>`,
        `<line x1="${x1}" x2="${x1}" y1="${r2(cy - 5)}" y2="${r2(cy + 5)}" stroke="${c}" stroke-width="2"/>`,
        `<line x1="${x2}" x2="${x2}" y1="${r2(cy - 5)}" y2="${r2(cy + 5)}" stroke="${c}" stroke-width="2"/>`,
      );
    }
    if (Number.isFinite(it.value))
      parts.push(`<circle cx="${r2(x(it.value))}" cy="${r2(cy)}" r="4.5" fill="${c}"/>`);
    parts.push('</g>');
  });
  parts.push('</svg>');
  return parts.join('');
}
