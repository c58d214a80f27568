import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | null = null;

/** The workbench's own folder (holding package.json and resources/), from src-main/ or dist/main/. */
export function packageRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'upit-workbench') {
          cached = dir;
          return dir;
        }
      } catch {
        // not ours; keep climbing
      }
    }
    dir = dirname(dir);
  }
  throw new Error('cannot find the upit-workbench package root');
}

/** A path under resources/ (shipped models, plans). */
export function resourcePath(...parts: string[]): string {
  return join(packageRoot(), 'resources', ...parts);
}

/** The shipped tiny base model. */
export function embeddedBaseModelDir(): string {
  return resourcePath('models', 'tiny-base');
}
