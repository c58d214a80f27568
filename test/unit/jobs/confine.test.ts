/** Paths in API job requests stay inside the workspace or the shipped resources (jobs/confine.ts). */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resourcePath } from '../../../src-main/common/paths.js';
import { pathOutside } from '../../../src-main/jobs/confine.js';

const root = mkdtempSync(join(tmpdir(), 'upit-confine-'));
const ws = join(root, 'ws');
const outside = join(root, 'outside');
mkdirSync(join(ws, 'models', 'm'), { recursive: true });
mkdirSync(outside);
symlinkSync(outside, join(ws, 'models', 'escape'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const roots = [ws, resourcePath()];

describe('path confinement of job requests', () => {
  it('accepts paths in the workspace and the shipped resources, and configs without paths', () => {
    expect(pathOutside({ model: join(ws, 'models', 'm') }, roots)).toBeNull();
    expect(pathOutside({ base: resourcePath('models', 'tiny-base') }, roots)).toBeNull();
    expect(pathOutside({ data: { source: 'files', train: join(ws, 'd', 'new.jsonl') } }, roots)).toBeNull();
    expect(pathOutside({ steps: 3, data: { source: 'embedded' } }, roots)).toBeNull();
  });

  it('names the first field that leaves them: plain, with .., or through a symlink', () => {
    expect(pathOutside({ model: '/etc' }, roots)).toEqual({ field: 'model', value: '/etc' });
    expect(pathOutside({ data: { train: join(ws, '..', 'outside', 'x.jsonl') } }, roots)?.field).toBe(
      'data.train',
    );
    expect(pathOutside({ corpus: { path: join(ws, 'models', 'escape', 'c.txt') } }, roots)?.field).toBe(
      'corpus.path',
    );
    expect(pathOutside({ file: join(ws, 'models', 'escape') }, roots)?.field).toBe('file');
  });
});
