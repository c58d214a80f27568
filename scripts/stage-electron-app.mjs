// Stages the packaged app for electron-builder in out/app: the compiled code, the
// renderer, the shipped resources and a package.json with only the runtime
// dependencies. electron-builder installs those there and rebuilds native modules
// (better-sqlite3) against Electron. Keeping electron out of the app's package.json is
// what lets the development package declare it as an optional dependency.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = join(root, 'out', 'app');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

for (const required of ['dist/main', 'dist/renderer']) {
  if (!existsSync(join(root, required))) {
    console.error(`stage-electron-app: ${required} is missing; run \`npm run build\` first`);
    process.exit(1);
  }
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
cpSync(join(root, 'dist'), join(out, 'dist'), { recursive: true });
cpSync(join(root, 'resources'), join(out, 'resources'), { recursive: true });

const runtimeOptional = Object.fromEntries(
  Object.entries(pkg.optionalDependencies ?? {}).filter(([name]) => name !== 'electron'),
);
writeFileSync(
  join(out, 'package.json'),
  JSON.stringify(
    {
      name: pkg.name,
      productName: pkg.productName,
      version: pkg.version,
      description: pkg.description,
      license: pkg.license,
      author: pkg.author ?? 'UpIT Workbench developers',
      type: 'module',
      main: pkg.main,
      dependencies: pkg.dependencies,
      optionalDependencies: runtimeOptional,
    },
    null,
    2,
  ) + '\n',
);
console.log(`staged ${out}`);
