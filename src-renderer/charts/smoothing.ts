/**
 * TensorBoard's scalar smoothing: an exponential moving average, debiased like Adam's
 * moments so the first points are not pulled toward zero.
 *
 *   last_i = w · last_{i-1} + (1 − w) · y_i,   last_0 = 0
 *   smoothed_i = last_i / (1 − w^k)            (k = finite points seen so far)
 *
 * Non-finite (or missing) values pass through unsmoothed and do not advance the average;
 * a constant series is returned as is (avoids float noise on a flat line).
 */
export function emaDebiased(values: ArrayLike<number | null>, weight: number): Float64Array {
  if (!(weight >= 0 && weight < 1)) throw new RangeError(`smoothing weight must be in [0, 1), got ${weight}`);
  const n = values.length;
  const out = new Float64Array(n);
  let first: number | null | undefined;
  let constant = true;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (i === 0) first = v;
    else if (v !== first) constant = false;
  }
  let last = 0;
  let k = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    const y = v === null || v === undefined ? NaN : v;
    if (constant || !Number.isFinite(y)) {
      out[i] = y;
      continue;
    }
    last = last * weight + (1 - weight) * y;
    k++;
    out[i] = weight === 0 ? last : last / (1 - Math.pow(weight, k));
  }
  return out;
}
