/** ReportData → a GitHub-flavoured Markdown document (pure). */
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
import type { ReportData, RoutingSection } from './types.js';

/** Escapes Markdown inline syntax (and the table separator) in user-provided text. */
export function escapeMarkdown(s: string): string {
  return s.replace(/[\\`*_[\]<>|~]/g, '\\$&').replace(/\r?\n/g, ' ');
}

function mdTable(header: readonly string[], rows: readonly (readonly string[])[], align?: string[]): string {
  const sep = header.map((_, i) => align?.[i] ?? (i === 0 ? ':--' : '--:'));
  return [header, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

const bold = (s: string, on: boolean): string => (on ? `**${s}**` : s);

function routingTable(r: RoutingSection, fractions: readonly (readonly (number | null)[])[]): string {
  const header = ['domain', 'tokens', ...Array.from({ length: r.experts }, (_, e) => `e${e}`)];
  const rows = r.domains.map((d, di) => {
    const row = fractions[di] ?? [];
    const vals = row.filter((v): v is number => v !== null);
    const top = vals.length ? Math.max(...vals) : Number.NaN;
    return [
      escapeMarkdown(d),
      String(own(r.tokens, d) ?? '-'),
      ...Array.from({ length: r.experts }, (_, e) => {
        const v = row[e] ?? null;
        return v === null ? '-' : bold(pct(v), v === top);
      }),
    ];
  });
  return mdTable(header, rows);
}

export function renderMarkdown(data: ReportData): string {
  const out: string[] = [];
  const push = (...lines: string[]) => out.push(...lines);
  const e = escapeMarkdown;
  const domains = data.domains;

  push(`# ${e(data.title)}`, '');
  push(
    `Experiment **${e(data.experiment.name)}** (id ${data.experiment.id}) · generated ${utcTime(data.generatedAt)} · ` +
      `${data.variants.length} variant${data.variants.length === 1 ? '' : 's'} · ` +
      `seeds ${data.seeds.length ? data.seeds.join(', ') : '-'} · ` +
      `domains ${domains.length ? domains.map((d) => `${e(d)} (${e(own(data.domainMetrics, d) ?? '?')})`).join(', ') : '-'}`,
    '',
  );
  if (data.experiment.notes) push(`> ${e(data.experiment.notes)}`, '');
  if (data.notes.length) {
    push('**Notes**', '', ...data.notes.map((n) => `- ${e(n)}`), '');
  }

  // 1. main table
  push('## Main results', '');
  if (data.runs.length === 0) {
    push('_No finished runs yet._', '');
  } else {
    const rows = data.variants.map((v) => [
      e(v.name),
      e(variantKind(v)),
      ...domains.map((d) => {
        const c = own(v.domains, d);
        return c ? bold(estimateText(c), (own(data.bestByDomain, d) ?? []).includes(v.name)) : '-';
      }),
      v.average ? bold(estimateText(v.average), data.bestAverage.includes(v.name)) : '-',
      String(v.runIds.length),
    ]);
    push(
      mdTable(['Variant', 'Kind', ...domains.map(e), 'Avg', 'n'], rows, [
        ':--',
        ':--',
        ...domains.map(() => '--:'),
        '--:',
        '--:',
      ]),
      '',
      `Primary metric per domain, in %: ${intervalLegend()}. n = seeds. **Bold**: best per column.`,
      '',
    );
  }

  // 2. ablation
  push('## Ablation', '');
  if (!data.ablation) {
    push(`_Skipped: no finished variant named \`${data.reference.replace(/`/g, '')}\`._`, '');
  } else if (data.ablation.rows.length === 0) {
    push(`_No other variant to compare with \`${e(data.ablation.reference)}\`._`, '');
  } else {
    const a = data.ablation;
    push(
      mdTable(
        ['Variant', ...domains.map((d) => `Δ ${e(d)}`), 'Δ Avg', 'n'],
        a.rows.map((r) => [
          e(r.variant),
          ...domains.map((d) => {
            const x = own(r.domains, d);
            return x ? deltaText(x) : '-';
          }),
          r.average ? deltaText(r.average) : '-',
          String(r.n),
        ]),
      ),
      '',
      `Difference to **${e(a.reference)}** (n = ${a.referenceN}) in percentage points; ± half-width of ` +
        'Welch’s 95% interval when both sides have at least 2 seeds.',
      '',
    );
  }

  // 3. checkpoint profiles
  push('## Checkpoint × domain profile', '');
  if (data.profiles.length === 0) push('_No prepare run with evaluated checkpoints._', '');
  for (const p of data.profiles) {
    push(`### ${e(stageTitle('prepare', p))}${p.status === 'done' ? '' : ` (${p.status})`}`, '');
    push(
      mdTable(
        ['Checkpoint', 'Epoch', ...p.domains.map(e), 'Avg'],
        p.rows.map((r, i) => [
          e(r.label),
          r.epoch === null ? '-' : num(r.epoch, 3),
          ...p.domains.map((d) => {
            const v = own(r.scores, d);
            return v === undefined ? '-' : bold(pct(v), (own(p.best, d) ?? []).includes(i));
          }),
          r.average === null ? '-' : pct(r.average),
        ]),
      ),
      '',
    );
    const bestSteps = p.domains
      .filter((d) => (own(p.best, d) ?? []).length > 0)
      .map((d) => `${e(d)}: ${(own(p.best, d) ?? []).map((i) => e(p.rows[i]?.label ?? '?')).join(', ')}`);
    if (bestSteps.length) push(`Best checkpoint per domain (**bold**) — ${bestSteps.join('; ')}.`, '');
    if (p.specialisation)
      push(
        `Does the best checkpoint differ by domain? ${e(p.specialisation)} (paired tests on the same items).`,
        '',
      );
  }

  // 4. lineage
  push('## Expert lineage', '');
  if (data.lineages.length === 0) push('_No expand run._', '');
  for (const l of data.lineages) {
    push(`### ${e(stageTitle('expand', l))}`, '');
    const nameOf = (i: number) => l.experts.find((x) => x.idx === i)?.name ?? `e${i}`;
    if (l.experts.length) {
      push(
        mdTable(
          ['Expert', 'Name', 'Source', 'Step', 'Parents', 'α', 'p', 'Seed', 'Parent distance'],
          l.experts.map((x) => [
            String(x.idx),
            e(x.name ?? '-'),
            e(x.source),
            x.step === null ? '-' : String(x.step),
            x.parents.length ? x.parents.map((p) => `${p} ${e(nameOf(p))}`).join(' × ') : '-',
            num(x.alpha, 3),
            num(x.p, 3),
            x.seed === null ? '-' : String(x.seed),
            num(x.distance, 4),
          ]),
          [':--', ':--', ':--', '--:', ':--', '--:', '--:', '--:', '--:'],
        ),
        '',
      );
    }
    if (l.distance) {
      const d = l.distance;
      push(`Distance matrix (${e(d.metric)}):`, '');
      push(
        mdTable(
          ['', ...d.labels.map(e)],
          d.values.map((row, i) => [
            e(d.labels[i] ?? String(i)),
            ...row.map((v) => (v === null ? '-' : v.toFixed(4))),
          ]),
        ),
        '',
      );
    }
  }
  if (data.seedBuckets.length) {
    push('### Router seed data', '');
    for (const b of data.seedBuckets) {
      const total = b.buckets.reduce((s, x) => s + x.size, 0);
      push(
        `${e(stageTitle('route', b))}: ` +
          b.buckets.map((x) => `${e(x.name ?? `e${x.expert}`)} ${x.size}`).join(' · ') +
          ` (${total} samples, each given to its lowest-perplexity expert)`,
        '',
      );
    }
  }

  // 5. routing
  push('## Routing', '');
  if (data.routing.length === 0) push('_No routing statistics recorded._', '');
  for (const r of data.routing) {
    push(`### ${e(runTitle(r))}`, '');
    push(
      `Mean over ${r.layers.length} layer${r.layers.length === 1 ? '' : 's'}:`,
      '',
      routingTable(r, r.mean),
      '',
    );
    const last = r.byLayer[r.byLayer.length - 1];
    if (last && r.byLayer.length > 1) {
      push(`Last layer (${last.layer}):`, '', routingTable(r, last.fractions), '');
    }
  }
  if (data.routing.length)
    push("% of each domain's top-k slots per expert (rows sum to 100); **bold**: top expert.", '');

  // 6. loss
  push('## Training loss', '');
  if (data.losses.length === 0) push('_No loss recorded._', '');
  else {
    push(
      mdTable(
        ['Run', 'Kind', 'Role', 'Points', 'First', 'Final', 'Min'],
        data.losses.map((s) => [
          e(runTitle(s)),
          s.kind,
          s.role,
          String(s.total),
          num(s.first),
          num(s.last),
          num(s.min),
        ]),
        [':--', ':--', ':--', '--:', '--:', '--:', '--:'],
      ),
      '',
    );
  }

  // runs behind the tables
  if (data.runs.length) {
    push('## Runs', '');
    push(
      mdTable(
        ['Run', 'Variant', 'Seed', 'Kind', 'Step', ...domains.map(e), 'Avg'],
        data.runs.map((r) => [
          String(r.runId),
          e(r.variant),
          r.seed === null ? '-' : String(r.seed),
          r.kind,
          r.step === null ? '-' : String(r.step),
          ...domains.map((d) => {
            const s = r.scores.find((x) => x.domain === d && x.primary);
            return s ? pct(s.score) : '-';
          }),
          r.average === null ? '-' : pct(r.average),
        ]),
        [':--', ':--', '--:', ':--', '--:', ...domains.map(() => '--:'), '--:'],
      ),
      '',
    );
  }
  return (
    out
      .join('\n')
      .replace(/\n{3,}/g, '\n\n')
      .trimEnd() + '\n'
  );
}
