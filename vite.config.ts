import { svelte } from '@sveltejs/vite-plugin-svelte';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

/** The renderer: src-renderer → dist/renderer, served by the web host and Electron's app:// protocol. */
export default defineConfig({
  root: here('./src-renderer'),
  base: './',
  plugins: [svelte()],
  build: {
    outDir: here('./dist/renderer'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    // one small app: keep the output to an entry chunk and its CSS
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
    rollupOptions: {
      onwarn(warning, warn) {
        // zod's sources carry /*@__PURE__*/ comments in places Rollup ignores: harmless noise
        if (warning.code === 'INVALID_ANNOTATION' && warning.id?.includes('node_modules')) return;
        warn(warning);
      },
    },
  },
  server: { host: '127.0.0.1', port: 5173, strictPort: true },
});
