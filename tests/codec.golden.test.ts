/**
 * Pins the wire format: each message below must encode to exactly the bytes in
 * tests/fixtures/, and those bytes must parse back to it. A failure here means the
 * protocol changed: bump PROTOCOL_VERSION, then regenerate with
 *   UPDATE_GOLDEN=1 npx vitest run tests/codec.golden.test.ts
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  type EncodedTensors,
  PROTOCOL_VERSION,
  TENSOR_SETS,
  decodeSums,
  decodeTensors,
  bodyFirstFrame,
  encodeFrame,
  encodeTensors,
  encodeIndices,
  encodeMessage,
  parseCoordinatorMessage,
  parseWorkerMessage,
  type Message,
} from '@ganfleet/shared/wire';

const FIXTURES = new URL('./fixtures/', import.meta.url);
const UPDATE = process.env.UPDATE_GOLDEN === '1';

// Values exactly representable in float16 too, so the fixtures read back without rounding.
const kernel = { name: 'd/dense/kernel', shape: [2, 2], values: Float32Array.from([0.5, -1.25, 3, 0]) };
const bias = { name: 'd/dense/bias', shape: [2], values: Float32Array.from([0.125, -2]) };

const cases: { file: string; message: Message; parse: (frame: Uint8Array) => Message }[] = [
  {
    file: 'hello.bin',
    parse: parseWorkerMessage,
    message: {
      type: 'hello',
      version: PROTOCOL_VERSION,
      role: 'worker',
      backend: 'cpu',
      device: 'test',
      capabilities: { wireDtypes: ['float16', 'float32'] },
    },
  },
  {
    file: 'welcome.bin',
    parse: parseCoordinatorMessage,
    message: {
      type: 'welcome',
      workerId: 'w-0',
      run: {
        runId: 'golden',
        preset: 'mlp',
        realLabel: 0.9,
        dataset: { name: 'mnist', count: 60000, fingerprint: 'sha256:0123abcd' },
        wireDtype: 'float16',
      },
      params: encodeTensors([kernel, bias], 'float16'),
      round: 0,
    },
  },
  {
    file: 'round.bin',
    parse: parseCoordinatorMessage,
    message: {
      type: 'round',
      round: 7,
      phase: 'D',
      batchSize: 3,
      seeds: encodeIndices([0x9e3779b9]),
      indices: encodeIndices([0, 59999, 1234]),
      update: encodeTensors([bias]),
    },
  },
  {
    file: 'gradients.bin',
    parse: parseWorkerMessage,
    message: {
      type: 'gradients',
      round: 7,
      phase: 'D',
      samples: 3,
      loss: 0.6931471805599453,
      grads: encodeTensors([kernel, bias]),
      computeMs: 12.25,
    },
  },
  {
    file: 'sums.bin',
    parse: parseWorkerMessage,
    message: {
      type: 'sums',
      round: 7,
      phase: 'D',
      samples: 6,
      loss: 0.5,
      used: [0, 1],
      sums: encodeTensors(
        [kernel, bias].map((t) => ({ ...t, values: Float64Array.from(t.values, (v) => 6 * v) })),
        'float64',
      ),
      rest: [[1, 0, 2 ** -70]],
      computeMs: 13.5,
    },
  },
];

/** A set as values, whatever its dtype. */
const decodeSet = (set: EncodedTensors) => (set.manifest[0]?.dtype === 'float64' ? decodeSums(set) : decodeTensors(set));

const hex = (bytes: Uint8Array): string =>
  Buffer.from(bytes)
    .toString('hex')
    .replace(/(.{64})/g, '$1\n');

describe.each(cases)('golden $file', ({ file, message, parse }) => {
  const path = new URL(file, FIXTURES);

  it('is reproduced byte for byte by the encoder', () => {
    const bytes = encodeMessage(message);
    if (UPDATE) {
      mkdirSync(FIXTURES, { recursive: true });
      writeFileSync(path, bytes);
    }
    expect(existsSync(path), `${file} missing: run UPDATE_GOLDEN=1 npx vitest run tests/codec.golden.test.ts`).toBe(true);
    expect(hex(bytes)).toBe(hex(readFileSync(path)));
  });

  it('parses back to the message', () => {
    const parsed = parse(readFileSync(path)) as unknown as Record<string, unknown>;
    // Tensor sets come back pointing into the frame's body: compare them decoded.
    const sets: readonly string[] = (TENSOR_SETS as Record<string, readonly string[]>)[message.type] ?? [];
    for (const [key, value] of Object.entries(message)) {
      if (sets.includes(key)) expect(decodeSet(parsed[key] as EncodedTensors), key).toEqual(decodeSet(value as EncodedTensors));
      else expect(parsed[key], key).toEqual(value);
    }
  });
});

describe('frames written in place', () => {
  // How the worker's compute thread and a relay write their replies: encodeFrame into a reused buffer.
  it.each(cases.filter((c) => Object.hasOwn(TENSOR_SETS, c.message.type)))(
    '$file: encodeFrame gives the encoder bytes, over an old frame too',
    ({ file, message }) => {
      const setNames: readonly string[] = (TENSOR_SETS as Record<string, readonly string[]>)[message.type] ?? [];
      const entries = Object.entries(message) as [string, unknown][];
      const fields = Object.fromEntries(entries.filter(([k]) => !setNames.includes(k)));
      const encoded = entries.filter(([k, v]) => setNames.includes(k) && v !== undefined) as [string, EncodedTensors][];
      const dtype = encoded[0]?.[1].manifest[0]?.dtype ?? 'float32';
      const sets = Object.fromEntries(encoded.map(([k, set]) => [k, decodeSet(set)]));
      const old = new Uint8Array(readFileSync(new URL(file, FIXTURES)).byteLength + 256).fill(0xa5);
      for (const into of [undefined, old]) {
        const bytes = encodeFrame(fields, sets as Parameters<typeof encodeFrame>[1], dtype, into);
        expect(hex(bytes)).toBe(hex(readFileSync(new URL(file, FIXTURES))));
      }
    },
  );
});

describe('frames whose body is written first (a worker writing its gradients straight into its frame)', () => {
  const gradients = cases.find((c) => c.file === 'gradients.bin')?.message as Extract<Message, { type: 'gradients' }>;
  const { grads, ...fields } = gradients;
  const specs = grads.manifest.map(({ name, shape }) => ({ name, shape }));
  const values = decodeTensors(grads);

  // Stand-ins longer and shorter than the real header: the body lands in another alignment block and moves, both ways.
  it.each([
    ['the same kinds of values', { ...fields, loss: 0.5, computeMs: 0.5 }],
    ['a longer header', { ...fields, padding: 'x'.repeat(100) }],
    ['a shorter header', { type: 'gradients' }],
  ])('with a placeholder of %s, finish() gives the encoder bytes', (_, placeholder) => {
    const old = new Uint8Array(4096).fill(0xa5);
    for (const into of [undefined, old]) {
      const frame = bodyFirstFrame({ grads: specs }, placeholder, into);
      frame.views.grads?.forEach((view, i) => view.set(values[i]?.values ?? []));
      const bytes = frame.finish(fields);
      expect(hex(bytes)).toBe(hex(readFileSync(new URL('gradients.bin', FIXTURES))));
    }
  });

  it('moves the body either way when the real header ends in another 64-byte block, and still gives the encoder bytes', () => {
    // 'padding' with 54 characters adds exactly 64 bytes to a header (8 for the key, 2 + 54 for the value): one block, the most finish() allows.
    const longer = { ...fields, padding: 'x'.repeat(54) };
    for (const [placeholder, real, shift] of [
      [fields, longer, 64],
      [longer, fields, -64],
    ] as const) {
      const frame = bodyFirstFrame({ grads: specs }, placeholder);
      const planned = (frame.views.grads?.[0] as Float32Array).byteOffset;
      frame.views.grads?.forEach((view, i) => view.set(values[i]?.values ?? []));
      const bytes = frame.finish(real);
      const headerBytes = new DataView(bytes.buffer, bytes.byteOffset).getUint32(4, true);
      const bodyAt = bytes.byteOffset + Math.ceil((8 + headerBytes) / 64) * 64 + (grads.manifest[0]?.offset ?? 0);
      expect(bodyAt - planned).toBe(shift);
      expect(hex(bytes)).toBe(hex(encodeFrame(real, { grads: values }, 'float32')));
    }
  });
});

describe('golden tensor payloads', () => {
  it('decode to the original values in both wire dtypes', () => {
    const welcome = parseCoordinatorMessage(readFileSync(new URL('welcome.bin', FIXTURES)));
    const gradients = parseWorkerMessage(readFileSync(new URL('gradients.bin', FIXTURES)));
    if (welcome.type !== 'welcome' || gradients.type !== 'gradients') throw new Error('wrong fixture type');
    for (const set of [welcome.params, gradients.grads]) {
      expect(decodeTensors(set, { expected: [kernel, bias] })).toEqual([kernel, bias]);
    }
  });
});
