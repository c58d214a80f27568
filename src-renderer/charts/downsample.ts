/**
 * Largest-Triangle-Three-Buckets (Steinarsson 2013): picks `threshold` of the finite points
 * of a curve so that its drawn shape — peaks and troughs included — is kept. Returns
 * indices into the input, increasing; the first and last finite points are always kept.
 * Fewer finite points than `threshold`: all their indices.
 */
export function lttb(xs: ArrayLike<number>, ys: ArrayLike<number>, threshold: number): Uint32Array {
  if (!Number.isInteger(threshold) || threshold < 3) throw new RangeError('threshold must be an integer ≥ 3');
  const idx: number[] = [];
  for (let i = 0; i < xs.length; i++) if (Number.isFinite(xs[i]) && Number.isFinite(ys[i])) idx.push(i);
  const n = idx.length;
  if (n <= threshold) return Uint32Array.from(idx);

  const out = new Uint32Array(threshold);
  const every = (n - 2) / (threshold - 2);
  let a = 0; // position (in idx) of the previously selected point
  out[0] = idx[0]!;
  for (let b = 0; b < threshold - 2; b++) {
    // average of the next bucket: the third vertex of the triangle
    const nextStart = Math.floor((b + 1) * every) + 1;
    const nextEnd = Math.min(Math.floor((b + 2) * every) + 1, n);
    let avgX = 0;
    let avgY = 0;
    for (let j = nextStart; j < nextEnd; j++) {
      avgX += xs[idx[j]!]!;
      avgY += ys[idx[j]!]!;
    }
    const count = nextEnd - nextStart;
    avgX /= count;
    avgY /= count;

    const start = Math.floor(b * every) + 1;
    const end = Math.floor((b + 1) * every) + 1;
    const ax = xs[idx[a]!]!;
    const ay = ys[idx[a]!]!;
    let best = start;
    let bestArea = -1;
    for (let j = start; j < end; j++) {
      const area = Math.abs((ax - avgX) * (ys[idx[j]!]! - ay) - (ax - xs[idx[j]!]!) * (avgY - ay));
      if (area > bestArea) {
        bestArea = area;
        best = j;
      }
    }
    out[b + 1] = idx[best]!;
    a = best;
  }
  out[threshold - 1] = idx[n - 1]!;
  return out;
}
