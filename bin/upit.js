#!/usr/bin/env node
// The `upit` command: runs the compiled CLI (built by `npm run build`, which `npm install` runs).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/main/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  console.error('upit: dist/main/cli/main.js is missing; run `npm run build` first');
  process.exit(1);
}
await import(entry.href);
