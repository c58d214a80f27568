/**
 * Paired comparison of two models scored on the same items, and the Stage 1 question it answers:
 * is the best checkpoint really a different one per domain?
 *
 * Two checkpoints evaluated on the same 120 items are not independent samples: most items are
 * right (or wrong) under both, and only the discordant ones carry information. Overlapping Wilson
 * intervals therefore hide real differences; McNemar's test does not:
 *   a = items right under A only, b = items right under B only, m = a + b
 *   Δ = (a − b) / n                               (difference of the two accuracies)
 *   p = min(1, 2 · P[X ≤ min(a, b)]), X ~ Bin(m, ½)  (exact two-sided McNemar)
 *   95% CI of Δ: Wald on the Agresti–Min adjusted table (½ added to every cell: a′ = a + ½,
 *   b′ = b + ½, n′ = n + 2), Δ′ ± 1.96 · √(a′ + b′ − (a′ − b′)²/n′) / n′ — which keeps a useful
 *   coverage when a or b is 0.
 *
 * Specialisation: with best_d the checkpoint with the highest score on domain d (ties: the
 * earliest), domains d and e "cross" when best_d ≠ best_e, best_d beats best_e on d and best_e
 * beats best_d on e, both with p < α. That is the paper's observation (different checkpoints best
 * on different benchmarks) as a test. The p values are not corrected for having picked the best
 * of several checkpoints, so a crossing at p just under α is weaker evidence than it looks.
 */

export interface PairedComparison {
  n: number;
  /** Items right under A only. */
  aOnly: number;
  /** Items right under B only. */
  bOnly: number;
  /** Accuracy of A minus accuracy of B. */
  delta: number;
  ciLow: number;
  ciHigh: number;
  /** Exact two-sided McNemar p value. */
  p: number;
}

/** Compares outcome strings ('1' right, '0' wrong, item by item) of A and B on the same items. */
export function pairedCompare(a: string, b: string): PairedComparison {
  if (a.length !== b.length || a.length === 0)
    throw new RangeError(
      `paired comparison needs outcomes of equal, non-zero length (${a.length}, ${b.length})`,
    );
  let aOnly = 0;
  let bOnly = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a.charCodeAt(i) === 49;
    const y = b.charCodeAt(i) === 49;
    if (x && !y) aOnly++;
    else if (y && !x) bOnly++;
  }
  const n = a.length;
  const a1 = aOnly + 0.5;
  const b1 = bOnly + 0.5;
  const n1 = n + 2;
  const d1 = (a1 - b1) / n1;
  const half = (1.959963984540054 * Math.sqrt(Math.max(0, a1 + b1 - ((a1 - b1) * (a1 - b1)) / n1))) / n1;
  return {
    n,
    aOnly,
    bOnly,
    delta: (aOnly - bOnly) / n,
    ciLow: Math.max(-1, d1 - half),
    ciHigh: Math.min(1, d1 + half),
    p: mcnemarExact(aOnly, bOnly),
  };
}

/** Exact two-sided McNemar p value for discordant counts a and b: 2 · P[Bin(a + b, ½) ≤ min(a, b)], at most 1. */
export function mcnemarExact(a: number, b: number): number {
  const m = a + b;
  if (m === 0) return 1;
  const k = Math.min(a, b);
  // log pmf(i) = log C(m, i) − m·log 2, accumulated term by term (no underflow for large m)
  let logPmf = -m * Math.LN2;
  let tail = 0;
  for (let i = 0; i <= k; i++) {
    tail += Math.exp(logPmf);
    logPmf += Math.log(m - i) - Math.log(i + 1);
  }
  return Math.min(1, 2 * tail);
}

/** One model's row of a checkpoint × domain table, with per-item outcomes per domain. */
export interface OutcomeRow {
  label: string;
  /** Training step (the base model: 0). */
  step: number;
  isBase: boolean;
  byDomain: ReadonlyMap<string, { score: number; outcomes: string; itemsKey: string }>;
}

export interface DomainBest {
  domain: string;
  best: string;
  score: number;
  /** Best checkpoint against the base model (when the base was scored on the same items). */
  vsBase: PairedComparison | null;
  /** Best checkpoint against the last checkpoint (null when the best is the last). */
  vsLast: PairedComparison | null;
  last: string;
}

export interface Crossing {
  domains: [string, string];
  checkpoints: [string, string];
  /** checkpoints[0] − checkpoints[1] on domains[0]. */
  onFirst: PairedComparison;
  /** checkpoints[1] − checkpoints[0] on domains[1]. */
  onSecond: PairedComparison;
  significant: boolean;
}

export interface Specialisation {
  alpha: number;
  perDomain: DomainBest[];
  crossings: Crossing[];
  /** One sentence answering "does the best checkpoint differ by domain?". */
  verdict: string;
}

function comparable(
  a: OutcomeRow,
  b: OutcomeRow,
  domain: string,
): [{ outcomes: string }, { outcomes: string }] | null {
  const x = a.byDomain.get(domain);
  const y = b.byDomain.get(domain);
  return x && y && x.itemsKey === y.itemsKey && x.outcomes.length === y.outcomes.length ? [x, y] : null;
}

function compareOn(a: OutcomeRow, b: OutcomeRow, domain: string): PairedComparison | null {
  const pair = comparable(a, b, domain);
  return pair ? pairedCompare(pair[0].outcomes, pair[1].outcomes) : null;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}`;
/** Points with a sign; rounds first, so a value that prints as 0.0 is "+0.0", never "−0.0". */
const signed = (x: number) => {
  const points = Math.abs(100 * x).toFixed(1);
  return `${x < 0 && points !== '0.0' ? '−' : '+'}${points}`;
};

/** Formats a p value compactly: "p 0.012", "p < 0.001". */
export function formatP(p: number): string {
  return p < 0.001 ? 'p < 0.001' : `p ${p.toFixed(3)}`;
}

/** Δ in points with its CI and p: "+8.3 [+2.1, +14.2] p 0.012". */
export function formatComparison(c: PairedComparison): string {
  return `${signed(c.delta)} [${signed(c.ciLow)}, ${signed(c.ciHigh)}] ${formatP(c.p)}`;
}

/**
 * The best checkpoint per domain, tested against the base, the last checkpoint and the other
 * domains' best checkpoints (see the module comment). Null when fewer than two checkpoints
 * carry per-item outcomes.
 */
export function checkpointSpecialisation(rows: readonly OutcomeRow[], alpha = 0.05): Specialisation | null {
  const checkpoints = [...rows].filter((r) => !r.isBase).sort((a, b) => a.step - b.step);
  const base = rows.find((r) => r.isBase) ?? null;
  if (checkpoints.length < 2) return null;
  const last = checkpoints[checkpoints.length - 1]!;
  const domains = [...new Set(checkpoints.flatMap((r) => [...r.byDomain.keys()]))];
  const bestOf = new Map<string, OutcomeRow>();
  const perDomain: DomainBest[] = [];
  for (const d of domains) {
    let best: OutcomeRow | null = null;
    for (const r of checkpoints) {
      const s = r.byDomain.get(d);
      if (s && (best === null || s.score > best.byDomain.get(d)!.score)) best = r;
    }
    if (!best) continue;
    bestOf.set(d, best);
    perDomain.push({
      domain: d,
      best: best.label,
      score: best.byDomain.get(d)!.score,
      vsBase: base ? compareOn(best, base, d) : null,
      vsLast: best === last ? null : compareOn(best, last, d),
      last: last.label,
    });
  }
  const crossings: Crossing[] = [];
  for (let i = 0; i < domains.length; i++) {
    for (let j = i + 1; j < domains.length; j++) {
      const [d, e] = [domains[i]!, domains[j]!];
      const [bd, be] = [bestOf.get(d), bestOf.get(e)];
      if (!bd || !be || bd === be) continue;
      const onFirst = compareOn(bd, be, d);
      const onSecond = compareOn(be, bd, e);
      if (!onFirst || !onSecond) continue;
      const significant = onFirst.delta > 0 && onSecond.delta > 0 && onFirst.p < alpha && onSecond.p < alpha;
      crossings.push({ domains: [d, e], checkpoints: [bd.label, be.label], onFirst, onSecond, significant });
    }
  }
  return { alpha, perDomain, crossings, verdict: verdictOf(perDomain, crossings, alpha) };
}

function verdictOf(perDomain: readonly DomainBest[], crossings: readonly Crossing[], alpha: number): string {
  const distinct = new Set(perDomain.map((b) => b.best)).size;
  const shown = crossings.filter((c) => c.significant);
  if (shown.length > 0) {
    const c = shown.reduce((a, b) =>
      Math.max(a.onFirst.p, a.onSecond.p) <= Math.max(b.onFirst.p, b.onSecond.p) ? a : b,
    );
    return (
      `yes: ${c.checkpoints[0]} beats ${c.checkpoints[1]} on ${c.domains[0]} (${signed(c.onFirst.delta)}, ${formatP(c.onFirst.p)}) ` +
      `and loses to it on ${c.domains[1]} (${signed(-c.onSecond.delta)}, ${formatP(c.onSecond.p)})` +
      (shown.length > 1 ? `; ${shown.length} such pairs of domains at p < ${alpha}` : '')
    );
  }
  if (distinct <= 1) return 'no: one checkpoint is best, or tied for best, on every domain';
  return (
    `not shown: ${distinct} different checkpoints are best, but no pair of them is each better on its own ` +
    `domain at p < ${alpha} (paired)`
  );
}

/** The specialisation as text lines for `upit show`. */
export function specialisationLines(s: Specialisation): string[] {
  const lines = [
    `does the best checkpoint differ by domain? ${s.verdict}`,
    '  (paired on the same items: Δ in points [95% CI], exact McNemar p; not corrected for picking the best)',
  ];
  for (const b of s.perDomain) {
    const parts = [`  ${b.domain}: best ${b.best} ${pct(b.score)}`];
    if (b.vsBase) parts.push(`vs base ${formatComparison(b.vsBase)}`);
    parts.push(b.vsLast ? `vs ${b.last} ${formatComparison(b.vsLast)}` : '(the last checkpoint)');
    lines.push(parts.join(' · '));
  }
  for (const c of s.crossings) {
    lines.push(
      `  ${c.checkpoints[0]} vs ${c.checkpoints[1]}: ${c.domains[0]} ${formatComparison(c.onFirst)} · ` +
        `${c.domains[1]} ${formatComparison({ ...c.onSecond, delta: -c.onSecond.delta, ciLow: -c.onSecond.ciHigh, ciHigh: -c.onSecond.ciLow })}` +
        (c.significant ? '  ← crossing' : ''),
    );
  }
  return lines;
}
