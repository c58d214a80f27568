import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { benchMetricIngest } from '../../../src-main/store/bench.js';
import { tempDir } from './helpers.js';

describe('benchMetricIngest', () => {
  it('measures batched against one-row transactions and cleans up its scratch database', () => {
    const dir = tempDir();
    const r = benchMetricIngest(dir, 20_000, { unbatchedRows: 2_000 });
    console.log(
      `metric ingest: batched ${Math.round(r.batched.rowsPerSec)} rows/s, ` +
        `unbatched ${Math.round(r.unbatched.rowsPerSec)} rows/s (×${r.speedup.toFixed(1)})`,
    );
    expect(r.ok).toBe(true);
    expect(r.batched.rows).toBe(20_000);
    expect(r.unbatched.rows).toBe(2_000);
    expect(r.rowsPerSec).toBe(r.batched.rowsPerSec);
    expect(r.rowsPerSec).toBeGreaterThan(0);
    expect(r.speedup).toBeGreaterThan(1);
    expect(readdirSync(dir)).toEqual([]);
  });
});
