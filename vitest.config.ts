import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { NODE_FLAGS } from './packages/cli/src/nodeFlags.js';

const src = (pkg: string): string => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));
const sharedSrc = fileURLToPath(new URL('./packages/shared/src/', import.meta.url));

export default defineConfig({
  resolve: {
    // Unit tests run the TypeScript sources; integration tests spawn the built CLI.
    alias: [
      { find: /^@ganfleet\/shared\/(\w+)$/, replacement: `${sharedSrc}$1/index.ts` },
      { find: '@ganfleet/worker', replacement: src('worker') },
      { find: /^@ganfleet\/coordinator\/defaults$/, replacement: fileURLToPath(new URL('./packages/coordinator/src/defaults.ts', import.meta.url)) },
      { find: '@ganfleet/coordinator', replacement: src('coordinator') },
      { find: /^ganfleet$/, replacement: src('cli') },
    ],
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'tests/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // vitest would use one fork on 2 cores; most test files wait on child processes.
    maxWorkers: 2,
    // The integration tests run coordinators inside the forks: with the flags ganfleet runs with.
    execArgv: [...NODE_FLAGS],
    // One module cache per fork instead of one per file: the files import TensorFlow.js once per fork,
    // not 52 times. Each test file selects the backend it needs in beforeAll.
    isolate: false,
    // Files in vitest's default order (by size), not longest-first from the last run's timings:
    // on two cores that put the CPU-heavy fault and equivalence files side by side and measured
    // slower (179 s against 152 and 166 s in a clean clone, 2026-11-30).
    cache: false,
  },
});
