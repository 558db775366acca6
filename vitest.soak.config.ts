import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/** The long soaks (`npm run test:soak`): kept out of `npm test` for its speed, run by CI after it. */
export default defineConfig({ ...base, test: { ...base.test, include: ['tests/soak/**/*.soak.ts'] } });
