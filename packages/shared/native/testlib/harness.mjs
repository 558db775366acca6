// Runs a kernel on every ISA path this CPU has and with 1, 2 and 3 threads,
// checking accuracy against a reference and bit-identity across threads.
import assert from 'node:assert/strict';

import * as native from '../index.js';
import { relativeL2 } from './reference.mjs';

export { native };
export const THREADS = [1, 2, 3];
export const TOLERANCE = 1e-5;

/**
 * run(): calls the kernel and returns the output array (a fresh one per
 * call). check(out, isa): asserts accuracy of the single-thread result.
 */
export function acrossPaths(label, run, check) {
  for (const isa of native.supportedIsas()) {
    native.setIsa(isa);
    let first;
    for (const n of THREADS) {
      native.setThreads(n);
      const out = run();
      if (first === undefined) {
        first = out;
        check(out, isa);
      } else {
        const same = Buffer.compare(Buffer.from(out.buffer, out.byteOffset, out.byteLength), Buffer.from(first.buffer, first.byteOffset, first.byteLength));
        assert.equal(same, 0, `${label} [${isa}]: ${n} threads differ from 1 thread`);
      }
    }
  }
  native.setThreads(1);
}

export function assertClose(got, want, label, at) {
  const err = relativeL2(got, want, at);
  assert.ok(err < TOLERANCE, `${label}: relative L2 error ${err.toExponential(2)}`);
}
