import { svelte } from '@sveltejs/vite-plugin-svelte';
import { svelteTesting } from '@testing-library/svelte/vite';
import { defineConfig } from 'vitest/config';

/** Renderer component tests: Svelte compiled for the browser, run in jsdom. */
export default defineConfig({
  plugins: [svelte(), svelteTesting()],
  test: {
    name: 'renderer',
    include: ['test/unit/renderer/**/*.dom.test.ts'],
    environment: 'jsdom',
    setupFiles: ['test/unit/renderer/setup.dom.ts'],
    testTimeout: 30_000,
  },
});
