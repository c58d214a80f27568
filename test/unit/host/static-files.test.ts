import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveStaticPath } from '../../../src-main/host/web/static-files.js';

const base = mkdtempSync(path.join(os.tmpdir(), 'upit-static-'));
const root = path.join(base, 'root');
mkdirSync(path.join(root, 'assets'), { recursive: true });
writeFileSync(path.join(root, 'index.html'), 'x');
writeFileSync(path.join(root, 'assets', 'a.js'), 'x');
writeFileSync(path.join(base, 'secret.json'), 'x');
symlinkSync(path.join(base, 'secret.json'), path.join(root, 'assets', 'link.json'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('resolveStaticPath', () => {
  it('maps / to index.html and files inside the root', () => {
    expect(resolveStaticPath(root, '/')).toEqual({ ok: true, file: path.join(root, 'index.html') });
    expect(resolveStaticPath(root, '/assets/a.js')).toEqual({
      ok: true,
      file: path.join(root, 'assets', 'a.js'),
    });
    expect(resolveStaticPath(root, '/assets/%61.js')).toMatchObject({ ok: true });
  });

  it('refuses escapes, encoded or not, and links out of the root', () => {
    for (const p of [
      '/../secret.json',
      '/%2e%2e/secret.json',
      '/assets/..%2F..%2Fsecret.json',
      '/a\\..\\b.js',
    ]) {
      expect(resolveStaticPath(root, p)).toMatchObject({ ok: false, status: 400 });
    }
    expect(resolveStaticPath(root, '/assets/link.json')).toMatchObject({ ok: false, status: 404 });
    expect(resolveStaticPath(root, '/assets/')).toMatchObject({ ok: false });
    expect(resolveStaticPath(root, '/assets')).toMatchObject({ ok: false });
    expect(resolveStaticPath(root, '/%E0%A4%A')).toMatchObject({ ok: false, status: 400 });
  });
});
