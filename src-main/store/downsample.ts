import type { MetricPoint } from './types.js';

/**
 * Min/max ("M4") downsampling for dense curves: the step range is cut into equal-width buckets
 * and each bucket keeps its first, last, lowest and highest point, in step order. The overall
 * first and last points and every local extreme that decides the curve's shape on screen
 * survive; at most 4 points per bucket. NaN values are kept when they are a bucket's first or
 * last point but never chosen as its min/max.
 *
 * Streaming: `push` points in increasing step order, then `finish()`; memory is the output.
 */
export class MinMaxDownsampler {
  private readonly out: MetricPoint[] = [];
  private readonly buckets: number;
  private readonly span: number;
  private bucket = -1;
  private first: MetricPoint | undefined;
  private last: MetricPoint | undefined;
  private min: MetricPoint | undefined;
  private max: MetricPoint | undefined;

  /** `fromStep`/`toStep`: the first and last step that will be pushed; `maxPoints` ≥ 4. */
  constructor(
    private readonly fromStep: number,
    toStep: number,
    maxPoints: number,
  ) {
    if (!Number.isInteger(maxPoints) || maxPoints < 4)
      throw new RangeError(`maxPoints must be an integer ≥ 4`);
    this.buckets = Math.floor(maxPoints / 4);
    this.span = Math.max(1, toStep - fromStep + 1);
  }

  push(p: MetricPoint): void {
    const b = Math.min(
      this.buckets - 1,
      Math.max(0, Math.floor(((p.step - this.fromStep) * this.buckets) / this.span)),
    );
    if (b !== this.bucket) {
      this.emit();
      this.bucket = b;
      this.first = p;
      this.min = undefined;
      this.max = undefined;
    }
    this.last = p;
    if (!Number.isNaN(p.value)) {
      if (this.min === undefined || p.value < this.min.value) this.min = p;
      if (this.max === undefined || p.value > this.max.value) this.max = p;
    }
  }

  finish(): MetricPoint[] {
    this.emit();
    this.bucket = -1;
    return this.out;
  }

  private emit(): void {
    if (this.first === undefined || this.last === undefined) return;
    const keep = new Set<MetricPoint>([this.first, this.last]);
    if (this.min) keep.add(this.min);
    if (this.max) keep.add(this.max);
    for (const p of [...keep].sort((a, b) => a.step - b.step)) this.out.push(p);
    this.first = this.last = this.min = this.max = undefined;
  }
}

/** Array form of `MinMaxDownsampler`: `points` sorted by step; returned unchanged (copied) when short enough. */
export function downsampleMinMax(points: readonly MetricPoint[], maxPoints: number): MetricPoint[] {
  if (points.length <= maxPoints) return points.slice();
  const first = points[0];
  const last = points[points.length - 1];
  if (first === undefined || last === undefined) return [];
  const ds = new MinMaxDownsampler(first.step, last.step, maxPoints);
  for (const p of points) ds.push(p);
  return ds.finish();
}
