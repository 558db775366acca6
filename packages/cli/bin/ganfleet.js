#!/usr/bin/env -S node --initial-old-space-size=128
// The flags are NODE_FLAGS (src/nodeFlags.ts): a shebang cannot import them.
import { main } from '../dist/main.js';

main(process.argv).catch((err) => {
  process.stderr.write(`ganfleet: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
