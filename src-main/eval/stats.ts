/**
 * Confidence intervals for accuracy-type scores (a proportion k/n).
 *
 * Wilson score interval (Wilson 1927), the interval obtained by inverting the normal test:
 *
 *   p̂ = k/n,   c = (p̂ + z²/2n) / (1 + z²/n),   h = z/(1 + z²/n) · √(p̂(1−p̂)/n + z²/4n²)
 *   [c − h, c + h]
 *
 * Unlike the Wald interval p̂ ± z√(p̂(1−p̂)/n) it never leaves [0, 1] and is not degenerate at
 * k = 0 or k = n, which matters for the small per-domain n of the embedded suite.
 */

/** Two-sided 95% standard normal quantile, Φ⁻¹(0.975). */
export const Z95 = 1.959963984540054;

/** Wilson score interval of k successes in n trials; n = 0 gives [0, 1]. */
export function wilsonInterval(k: number, n: number, z = Z95): { low: number; high: number } {
  if (!Number.isInteger(n) || n < 0)
    throw new RangeError(`wilsonInterval: n must be a non-negative integer, got ${n}`);
  if (!(k >= 0 && k <= n)) throw new RangeError(`wilsonInterval: k must be in [0, ${n}], got ${k}`);
  if (n === 0) return { low: 0, high: 1 };
  const p = k / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const center = (p + z2 / (2 * n)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // In exact arithmetic k = 0 gives low = 0 and k = n gives high = 1; do not leave float noise there.
  return {
    low: k === 0 ? 0 : Math.max(0, center - half),
    high: k === n ? 1 : Math.min(1, center + half),
  };
}
