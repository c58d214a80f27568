/**
 * A metric curve as the renderer holds it: columnar arrays in step order. Functions here
 * return new objects (the components keep series in `$state.raw` and replace them whole).
 */
export interface Series {
  readonly steps: readonly number[];
  readonly values: readonly (number | null)[];
  readonly tokens: readonly (number | null)[];
}

export interface SeriesPoint {
  step: number;
  value: number | null;
  tokens: number | null;
}

export const EMPTY_SERIES: Series = { steps: [], values: [], tokens: [] };

/**
 * Adds live points to a series. Points past the last step are appended; a point at a step
 * already present replaces it (a resumed run re-logs steps); out-of-order points are
 * inserted in place. The input is not modified.
 */
export function mergePoints(series: Series, points: readonly SeriesPoint[]): Series {
  if (points.length === 0) return series;
  const steps = series.steps.slice();
  const values = series.values.slice();
  const tokens = series.tokens.slice();
  for (const p of points) {
    const n = steps.length;
    if (n === 0 || p.step > steps[n - 1]!) {
      steps.push(p.step);
      values.push(p.value);
      tokens.push(p.tokens);
      continue;
    }
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (steps[mid]! < p.step) lo = mid + 1;
      else hi = mid;
    }
    if (steps[lo] === p.step) {
      values[lo] = p.value;
      tokens[lo] = p.tokens;
    } else {
      steps.splice(lo, 0, p.step);
      values.splice(lo, 0, p.value);
      tokens.splice(lo, 0, p.tokens);
    }
  }
  return { steps, values, tokens };
}

/** Whether every point has a token count (the x axis can then be "tokens"). */
export function hasTokens(s: Series): boolean {
  return s.tokens.length > 0 && s.tokens.every((t) => t !== null);
}
