#!/usr/bin/env node
// `npm start`: the desktop app when Electron is installed; otherwise the same renderer
// through the web host on 127.0.0.1, with its URL (and per-launch token) printed.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);

let electronBinary = null;
try {
  // The electron package exports the path of its binary; it throws when the download failed.
  electronBinary = require('electron');
} catch {
  electronBinary = null;
}

const child =
  typeof electronBinary === 'string'
    ? spawn(electronBinary, [root, ...args], { stdio: 'inherit' })
    : (console.error('Electron is not installed here; starting the web host instead.'),
      spawn(process.execPath, [fileURLToPath(new URL('./upit.js', import.meta.url)), 'serve', ...args], {
        stdio: 'inherit',
      }));

child.on('exit', (code, signal) => {
  process.exitCode = code ?? (signal ? 1 : 0);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
