import { pack, unpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { TENSOR_ALIGNMENT, type EncodedTensors, decodeSums, decodeTensors, encodeTensors } from './codec.js';
import { GanError, type GanErrorCode } from './errors.js';
import {
  FRAME_MAGIC,
  PROTOCOL_VERSION,
  TENSOR_SETS,
  decodeIndices,
  encodeIndices,
  encodeFrame,
  encodeMessage,
  parseCoordinatorMessage,
  parseWorkerMessage,
  type CoordinatorToWorker,
  type Gradients,
  type Hello,
  type Round,
  type Sums,
  type Welcome,
  type WorkerToCoordinator,
} from './index.js';

function expectGanError(fn: () => unknown, code: GanErrorCode, message?: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(GanError);
  expect({ code: (thrown as GanError).code, message: (thrown as GanError).message }).toMatchObject({ code });
  if (message) expect((thrown as GanError).message).toMatch(message);
}

const params = encodeTensors([
  { name: 'g/w', shape: [2, 3], values: Float32Array.from([1, 2, 3, 4, 5, 6]) },
  { name: 'g/b', shape: [3], values: Float32Array.from([0.5, -0.5, 0]) },
]);

const hello: Hello = {
  type: 'hello',
  version: PROTOCOL_VERSION,
  role: 'worker',
  backend: 'tensorflow',
  device: 'cpu x2',
  capabilities: { wireDtypes: ['float16', 'float32'] },
};

const welcome: Welcome = {
  type: 'welcome',
  workerId: 'w-1',
  run: {
    runId: 'run-7',
    preset: 'dcgan28',
    realLabel: 0.9,
    dataset: { name: 'mnist', count: 60000, fingerprint: 'sha256:abc' },
    wireDtype: 'float32',
  },
  params,
  round: 10,
};

const round: Round = {
  type: 'round',
  round: 11,
  phase: 'D',
  batchSize: 3,
  seeds: encodeIndices([0xdeadbeef]),
  indices: encodeIndices([5, 70000, 0xffffffff]),
  update: params,
};

const halfStats = encodeTensors([{ name: 'bn/mean', shape: [2], values: Float32Array.from([0.1, 0.2]) }], 'float16');
const gradients: Gradients = {
  type: 'gradients',
  round: 11,
  phase: 'G',
  samples: 64,
  loss: 0.6931471805599453,
  grads: params,
  stats: halfStats,
  computeMs: 12.5,
};

const sums: Sums = {
  type: 'sums',
  round: 11,
  phase: 'G',
  samples: 192,
  loss: 0.7,
  used: [0, 2],
  sums: encodeTensors([{ name: 'g/w', shape: [3], values: Float64Array.from([1e-300, -2.5, 1 + 2 ** -52]) }], 'float64'),
  rest: [[0, 2, 2 ** -80, -(2 ** -140)]],
  stats: encodeTensors([{ name: 'bn', shape: [2], values: Float64Array.from([3, 4]) }], 'float64'),
  computeMs: 40,
};

const toCoordinator: WorkerToCoordinator[] = [
  hello,
  { type: 'hello', version: PROTOCOL_VERSION, role: 'worker', backend: 'cpu', device: 'cpu', capabilities: { wireDtypes: ['float32'] } },
  { ...hello, capabilities: { wireDtypes: ['float32'], sharedMemory: true } },
  { type: 'sharedAnswer', nonce: Uint8Array.from({ length: 16 }, (_, i) => 255 - i) },
  { type: 'sharedAnswer', declined: 'cannot open /dev/shm/ganfleet-…' },
  gradients,
  { ...gradients, phase: 'D', stats: undefined },
  sums,
  // Sums rounded to float32 (a run's relaySums), the statistics still exact.
  { ...sums, rest: undefined, sums: encodeTensors([{ name: 'g/w', shape: [3], values: Float32Array.from([1e-30, -2.5, 1]) }], 'float32') },
  { type: 'sums', round: 3, phase: 'D', samples: 0, loss: 0, used: [], computeMs: 0, relay: { roundMs: 12.5, bytesIn: 100, bytesOut: 200 } },
  {
    type: 'leaves',
    count: 5,
    children: [
      { id: 'w1', role: 'worker', backend: 'wasm', slots: 1 },
      { id: 'r2', role: 'relay', backend: 'relay', slots: 4, children: [] },
    ],
  },
  { type: 'fetchGenerator', version: PROTOCOL_VERSION },
  { type: 'bye', reason: 'shutting down' },
  { type: 'error', code: 'BACKEND_UNAVAILABLE', message: 'no tfjs-node' },
];

const toWorker: CoordinatorToWorker[] = [
  welcome,
  { ...welcome, run: { ...welcome.run, relaySums: 'float32' } },
  { ...welcome, shared: { path: '/dev/shm/ganfleet-0123456789abcdef0123456789abcdef', bytes: 4 * 1024 * 1024 } },
  { type: 'refuse', code: 'UNAUTHORIZED', reason: 'bad token' },
  round,
  { type: 'round', round: 12, phase: 'G', batchSize: 1, seeds: encodeIndices([0, 7]), deadlineMs: 8000 },
  { type: 'generator', step: 500, modelJson: '{"modelTopology":{}}', weights: new Uint8Array([1, 2, 3]) },
  { type: 'bye', reason: 'run finished' },
  { type: 'error', code: 'STALE_REPLY', message: 'step 3 is over' },
];

/**
 * A message as plain data: tensor sets as their decoded names, shapes, dtypes and values (a parsed
 * set's offsets point into the whole frame body, a sent one's into its own bytes), undefined
 * fields dropped as the wire drops them.
 */
function comparable(msg: object): unknown {
  const sets: readonly string[] = (TENSOR_SETS as Record<string, readonly string[]>)[(msg as { type: string }).type] ?? [];
  const plain = Object.fromEntries(
    Object.entries(msg).map(([k, v]) => {
      if (!sets.includes(k) || v === undefined) return [k, v];
      const set = v as EncodedTensors;
      const decoded = set.manifest[0]?.dtype === 'float64' ? decodeSums(set) : decodeTensors(set);
      return [k, decoded.map((t, i) => ({ ...t, dtype: set.manifest[i]?.dtype, values: [...t.values] }))];
    }),
  );
  return JSON.parse(JSON.stringify(plain, (_, v: unknown) => (v instanceof Uint8Array ? [...v] : v)));
}

/** Encodes an arbitrary (malformed) control message: a bare msgpack map. */
const raw = (msg: unknown): Uint8Array => pack(msg);

/** An arbitrary (malformed) tensor frame: this header, then the body at the first aligned offset. */
function rawFrame(header: unknown, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  const packed = pack(header);
  const start = Math.ceil((8 + packed.byteLength) / TENSOR_ALIGNMENT) * TENSOR_ALIGNMENT;
  const frame = new Uint8Array(start + body.byteLength);
  frame.set(FRAME_MAGIC);
  new DataView(frame.buffer).setUint32(4, packed.byteLength, true);
  frame.set(packed, 8);
  frame.set(body, start);
  return frame;
}

/** A tensor message's header as encodeMessage writes it, with `edit` applied, and its body. */
function editedFrame(msg: object, edit: (header: Record<string, unknown>) => unknown): Uint8Array {
  const bytes = encodeMessage(msg as Gradients);
  const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(4, true);
  const header = unpackHeader(bytes.subarray(8, 8 + length));
  const start = Math.ceil((8 + length) / TENSOR_ALIGNMENT) * TENSOR_ALIGNMENT;
  return rawFrame(edit(header), bytes.subarray(start));
}

const unpackHeader = (bytes: Uint8Array): Record<string, unknown> => unpack(Buffer.from(bytes)) as Record<string, unknown>;

describe('round trip', () => {
  it.each(toCoordinator.map((m) => [m.type, m] as const))('worker → coordinator %s', (_, msg) => {
    expect(comparable(parseWorkerMessage(encodeMessage(msg)))).toEqual(comparable(msg));
  });

  it.each(toWorker.map((m) => [m.type, m] as const))('coordinator → worker %s', (_, msg) => {
    expect(comparable(parseCoordinatorMessage(encodeMessage(msg)))).toEqual(comparable(msg));
  });

  it('sends tensor messages as tensor frames and the others as bare msgpack maps', () => {
    for (const msg of [...toCoordinator, ...toWorker]) {
      const isFrame = FRAME_MAGIC.every((b, i) => encodeMessage(msg)[i] === b);
      expect(isFrame, msg.type).toBe(Object.hasOwn(TENSOR_SETS, msg.type));
    }
  });

  it('puts every tensor at an aligned offset of the frame, so float32 values are views of it', () => {
    const frame = encodeMessage(gradients);
    const parsed = parseWorkerMessage(frame) as Gradients;
    for (const set of [parsed.grads, parsed.stats as EncodedTensors]) {
      for (const spec of set.manifest) expect((set.data.byteOffset + spec.offset) % TENSOR_ALIGNMENT).toBe(0);
    }
    const [w] = decodeTensors(parsed.grads);
    expect(w?.values.buffer).toBe(frame.buffer);
  });

  it('yields tensor data that decodeTensors accepts at whatever offset it lands', () => {
    const parsed = parseCoordinatorMessage(Buffer.from(encodeMessage(welcome))) as Welcome;
    const tensors = decodeTensors(parsed.params, { expected: decodeTensors(params) });
    expect(tensors.map((t) => [...t.values])).toEqual([
      [1, 2, 3, 4, 5, 6],
      [0.5, -0.5, 0],
    ]);
  });

  it('returns binary fields as plain Uint8Array views of the frame', () => {
    const frame = Buffer.from(encodeMessage(round));
    const parsed = parseCoordinatorMessage(frame) as Round;
    expect(parsed.indices?.constructor).toBe(Uint8Array);
    expect(parsed.indices?.buffer).toBe(frame.buffer);
    expect([...decodeIndices(parsed.indices!)]).toEqual([5, 70000, 0xffffffff]);
  });

  it('accepts ArrayBuffer and fragmented Buffer[] frames', () => {
    const bytes = encodeMessage(hello);
    const copy = bytes.slice();
    expect(parseWorkerMessage(copy.buffer)).toEqual(hello);
    const chunks = [Buffer.from(bytes.subarray(0, 7)), Buffer.from(bytes.subarray(7, 20)), Buffer.from(bytes.subarray(20))];
    expect(parseWorkerMessage(chunks)).toEqual(hello);
  });
});

describe('encodeFrame', () => {
  it('writes each set in its own dtype where given one per set (a relay’s rounded sums beside its exact statistics)', () => {
    const grads = [{ name: 'g/w', shape: [3], values: Float32Array.from([0.5, -2, 3]) }];
    const stats = [{ name: 'bn', shape: [2], values: Float64Array.from([1 + 2 ** -40, 4]) }];
    const fields = { type: 'sums', round: 11, phase: 'G', samples: 192, loss: 0.7, used: [0, 2], computeMs: 40 };
    const frame = encodeFrame(fields, { sums: grads, stats }, { sums: 'float32', stats: 'float64' });
    const parsed = parseWorkerMessage(frame) as Sums;
    expect(parsed.sums?.manifest.map((m) => m.dtype)).toEqual(['float32']);
    expect(decodeSums(parsed.sums as EncodedTensors, { float32: true })).toEqual(grads);
    expect(decodeSums(parsed.stats as EncodedTensors)).toEqual(stats);
    expect(() => encodeFrame(fields, { sums: grads, stats }, { sums: 'float32' })).toThrow(/no dtype for the set stats/);
  });
});

describe('encodeMessage', () => {
  it('writes Uint8Array fields as msgpack bin, not arrays or extensions, and tensor values raw in the body', () => {
    const indices = encodeIndices([1, 2]);
    const bytes = encodeMessage({ ...round, indices, update: undefined });
    const asBin = [0xc4, indices.byteLength, ...indices];
    const at = Buffer.from(bytes).indexOf(Buffer.from(asBin));
    expect(at).toBeGreaterThan(0);
    const big = encodeTensors([{ name: 'w', shape: [100], values: new Float32Array(100).fill(1) }]);
    const bigBytes = Buffer.from(encodeMessage({ ...gradients, grads: big, stats: undefined }));
    const found = bigBytes.indexOf(Buffer.from(big.data));
    expect(found % TENSOR_ALIGNMENT).toBe(0);
    expect(found + big.data.byteLength).toBe(bigBytes.byteLength);
  });

  it('encodes an absent optional field and an undefined one identically', () => {
    const noUpdate: Round = { ...round };
    delete noUpdate.update;
    expect(encodeMessage({ ...round, update: undefined })).toEqual(encodeMessage(noUpdate));
  });

  it('keeps earlier results intact across later calls', () => {
    const first = encodeMessage(hello);
    expect(first.constructor).toBe(Uint8Array);
    const copy = first.slice();
    expect(copy.buffer).not.toBe(first.buffer);
    for (let i = 0; i < 100; i++) encodeMessage(welcome);
    expect(first).toEqual(copy);
  });

  it('uses string type tags', () => {
    expect(Buffer.from(encodeMessage(round)).includes(Buffer.from([0xa4, ...Buffer.from('type'), 0xa5, ...Buffer.from('round')]))).toBe(true);
  });
});

describe('malformed frames', () => {
  it.each<[string, unknown]>([
    ['an empty frame', new Uint8Array(0)],
    ['a truncated map', new Uint8Array([0x85, 0xa4])],
    ['trailing bytes', new Uint8Array([...raw({ type: 'bye', reason: 'x' }), 0x00])],
    ['a truncated bin', new Uint8Array([0x81, 0xa1, 0x78, 0xc6, 0xff, 0xff, 0xff, 0xff, 1])],
    ['a string', 'hello'],
    ['a number', 42],
    ['null', null],
    ['an array of non-buffers', [1, 2]],
  ])('rejects %s with BAD_FRAME', (_, frame) => {
    expectGanError(() => parseWorkerMessage(frame), 'BAD_FRAME');
    expectGanError(() => parseCoordinatorMessage(frame), 'BAD_FRAME');
  });

  it('rejects a tensor message as a bare map, a control message as a tensor frame, and a frame too short for its header', () => {
    expectGanError(() => parseWorkerMessage(raw({ type: 'gradients' })), 'BAD_FRAME', /gradients must come as a tensor frame/);
    expectGanError(() => parseWorkerMessage(rawFrame(hello)), 'BAD_FRAME', /hello must come as a bare msgpack map/);
    const frame = rawFrame({ type: 'bye', reason: 'x' });
    new DataView(frame.buffer).setUint32(4, 10_000, true);
    expectGanError(() => parseWorkerMessage(frame), 'BAD_FRAME', /header does not fit/);
  });

  it('rejects text frames', () => {
    expectGanError(() => parseWorkerMessage(Buffer.from(encodeMessage(hello)), false), 'BAD_FRAME', /text frame/);
  });

  it.each<[string, unknown, RegExp]>([
    ['an array', [1, 2], /message: expected a map/],
    ['a number', 3, /message: expected a map/],
    ['binary', new Uint8Array(3), /message: expected a map/],
    ['a map without type', { reason: 'x' }, /message.type: expected a string/],
    ['a numeric type tag', { type: 1 }, /message.type: expected a string/],
  ])('rejects %s with BAD_MESSAGE', (_, value, message) => {
    expectGanError(() => parseWorkerMessage(raw(value)), 'BAD_MESSAGE', message);
  });

  it('rejects unknown and wrong-direction types with UNKNOWN_TYPE', () => {
    // sharedFrame: protocol 5's notice, now a doorbell in the region.
    for (const type of ['nope', 'constructor', 'toString', '__proto__', 'welcome', 'round', 'generator', 'sharedFrame']) {
      expectGanError(() => parseWorkerMessage(raw({ type })), 'UNKNOWN_TYPE', /worker-to-coordinator/);
    }
    for (const type of ['hello', 'gradients', 'fetchGenerator', 'hasOwnProperty', 'sharedFrame']) {
      expectGanError(() => parseCoordinatorMessage(raw({ type })), 'UNKNOWN_TYPE', /coordinator-to-worker/);
    }
  });
});

describe('malformed fields', () => {
  const badWorker: [string, unknown, RegExp][] = [
    ['missing field', { ...hello, backend: undefined }, /^hello\.backend: missing$/],
    ['missing nested field', { ...hello, capabilities: {} }, /^hello\.capabilities\.wireDtypes: missing$/],
    ['wrong type', { ...hello, device: 7 }, /^hello\.device: expected a string, got 7$/],
    ['empty string', { ...hello, backend: '' }, /hello\.backend: empty string/],
    ['huge string', { ...hello, device: 'x'.repeat(300) }, /hello\.device: string longer than 256/],
    ['a token (version 3 sends it in the upgrade request)', { ...hello, token: 't' }, /^hello: unexpected field "token"$/],
    ['null optional', { type: 'error', code: 'INTERNAL', message: 'x', extra: null }, /error: unexpected field "extra"/],
    ['unknown wire dtype', { ...hello, capabilities: { wireDtypes: ['int8'] } }, /wireDtypes\[0\]: expected one of/],
    ['a capability this version dropped', { ...hello, capabilities: { maxBatch: 8, wireDtypes: [] } }, /capabilities: unexpected field "maxBatch"/],
    ['extra field', { ...hello, admin: true }, /^hello: unexpected field "admin"$/],
    ['extra nested field', { ...hello, capabilities: { wireDtypes: [], gpu: 1 } }, /hello\.capabilities: unexpected field "gpu"/],
    ['string version in fetchGenerator', { type: 'fetchGenerator', version: '1' }, /fetchGenerator\.version/],
    ['unknown error code', { type: 'error', code: 'OOPS', message: 'x' }, /error\.code: expected an error code, got "OOPS"/],
    ['error without message', { type: 'error', code: 'INTERNAL' }, /error\.message: missing/],
    ['huge bye reason', { type: 'bye', reason: 'r'.repeat(4097) }, /bye\.reason: string longer than 4096/],
    [
      'a sharedMemory capability that is not a boolean',
      { ...hello, capabilities: { wireDtypes: [], sharedMemory: 1 } },
      /capabilities\.sharedMemory: expected a boolean/,
    ],
    ['a sharedAnswer with neither nonce nor reason', { type: 'sharedAnswer' }, /sharedAnswer: expected either nonce or declined/],
    ['a sharedAnswer with both', { type: 'sharedAnswer', nonce: new Uint8Array(16), declined: 'x' }, /sharedAnswer: expected either nonce or declined/],
    ['a short nonce', { type: 'sharedAnswer', nonce: new Uint8Array(15) }, /sharedAnswer\.nonce: expected 16 bytes, got 15/],
  ];

  it.each(badWorker)('worker message with %s → BAD_MESSAGE', (_, msg, message) => {
    expectGanError(() => parseWorkerMessage(raw(msg)), 'BAD_MESSAGE', message);
  });

  const deep = (depth: number): Record<string, unknown> => ({
    id: 'r',
    role: 'relay',
    backend: 'relay',
    slots: 1,
    children: depth > 1 ? [deep(depth - 1)] : [],
  });
  const badRelay: [string, (h: Record<string, unknown>) => unknown, RegExp][] = [
    ['samples without sums', (h) => ({ ...h, sums: undefined, stats: undefined }), /sums\.sums: present exactly when samples > 0/],
    ['a rest entry with NaN', (h) => ({ ...h, rest: [[0, 1, NaN]] }), /sums\.rest\[0\]: components must be finite numbers/],
    ['a rest entry without components', (h) => ({ ...h, rest: [[0, 1]] }), /sums\.rest\[0\]: expected \[tensor, coordinate, components...\]/],
    ['a negative coordinate', (h) => ({ ...h, rest: [[0, -1, 1]] }), /sums\.rest\[0\]: bad tensor or coordinate index/],
    ['fractional used slots', (h) => ({ ...h, used: [0.5] }), /sums\.used\[0\]: expected a slot index/],
    ['a relay timing with negative bytes', (h) => ({ ...h, relay: { roundMs: 1, bytesIn: -1, bytesOut: 0 } }), /sums\.relay\.bytesIn/],
  ];

  it.each(badRelay)('relay sums with %s → BAD_MESSAGE', (_, edit, message) => {
    expectGanError(() => parseWorkerMessage(editedFrame(sums, edit)), 'BAD_MESSAGE', message);
  });

  it('a relay tree deeper than 8 or leaves beyond the slot limit → BAD_MESSAGE', () => {
    expectGanError(() => parseWorkerMessage(raw({ type: 'leaves', count: 1, children: [deep(8)] })), 'BAD_MESSAGE', /a tree deeper than 8/);
    expect(parseWorkerMessage(raw({ type: 'leaves', count: 1, children: [deep(7)] })).type).toBe('leaves');
    expectGanError(() => parseWorkerMessage(raw({ type: 'leaves', count: 2 ** 17, children: [] })), 'BAD_MESSAGE', /leaves\.count/);
  });

  const manifest0 = (h: Record<string, unknown>, key: string) => (h[key] as Record<string, unknown>[])[0] as Record<string, unknown>;
  const badGradients: [string, (h: Record<string, unknown>) => unknown, RegExp][] = [
    ['NaN round', (h) => ({ ...h, round: NaN }), /^gradients\.round: expected an integer in \[0, \d+\], got NaN$/],
    ['fractional round', (h) => ({ ...h, round: 1.5 }), /gradients\.round: .* got 1\.5/],
    ['negative round', (h) => ({ ...h, round: -1 }), /gradients\.round/],
    ['string round', (h) => ({ ...h, round: '1' }), /gradients\.round: .* got "1"/],
    ['unsafe integer round', (h) => ({ ...h, round: 2 ** 60 }), /gradients\.round/],
    ['zero samples', (h) => ({ ...h, samples: 0 }), /gradients\.samples/],
    ['bad phase', (h) => ({ ...h, phase: 'X' }), /gradients\.phase: expected one of D\/G, got "X"/],
    ['numeric phase', (h) => ({ ...h, phase: 0 }), /gradients\.phase/],
    ['string loss', (h) => ({ ...h, loss: '0.1' }), /gradients\.loss: expected a number/],
    ['negative computeMs', (h) => ({ ...h, computeMs: -1 }), /gradients\.computeMs/],
    ['grads as a map', (h) => ({ ...h, grads: {} }), /gradients\.grads: expected an array, got object/],
    ['bad manifest dtype', (h) => ({ ...h, grads: [{ ...manifest0(h, 'grads'), dtype: 'int32' }] }), /gradients\.grads\[0\]\.dtype/],
    [
      'negative manifest dimension',
      (h) => ({ ...h, stats: [{ ...manifest0(h, 'stats'), shape: [2, -1] }] }),
      /gradients\.stats\[0\]\.shape\[1\]: expected an integer/,
    ],
    ['string offset', (h) => ({ ...h, grads: [{ ...manifest0(h, 'grads'), offset: '0' }] }), /gradients\.grads\[0\]\.offset: expected an integer/],
    ['fractional log2Scale', (h) => ({ ...h, stats: [{ ...manifest0(h, 'stats'), log2Scale: 0.5 }] }), /gradients\.stats\[0\]\.log2Scale: expected an integer/],
    [
      'log2Scale out of range',
      (h) => ({ ...h, stats: [{ ...manifest0(h, 'stats'), log2Scale: 1000 }] }),
      /gradients\.stats\[0\]\.log2Scale: expected an integer in \[-113, 163\]/,
    ],
    ['manifest entry extra field', (h) => ({ ...h, grads: [{ ...manifest0(h, 'grads'), x: 1 }] }), /grads\[0\]: unexpected field "x"/],
  ];

  it.each(badGradients)('gradients with %s → BAD_MESSAGE', (_, edit, message) => {
    expectGanError(() => parseWorkerMessage(editedFrame(gradients, edit)), 'BAD_MESSAGE', message);
  });

  const badCoordinator: [string, unknown, RegExp][] = [
    ['negative batch size', { ...round, batchSize: -64 }, /round\.batchSize: expected an integer in \[1,/],
    ['zero batch size', { ...round, batchSize: 0 }, /round\.batchSize/],
    ['NaN batch size', { ...round, batchSize: NaN }, /round\.batchSize: .* got NaN/],
    ['Infinity batch size', { ...round, batchSize: Infinity }, /round\.batchSize: .* got Infinity/],
    ['no seeds', { ...round, seeds: new Uint8Array(0) }, /round\.seeds: expected one or more uint32/],
    ['seeds of 6 bytes', { ...round, seeds: new Uint8Array(6) }, /round\.seeds: expected one or more uint32/],
    ['indices in the G phase', { ...round, phase: 'G' }, /round\.indices: only allowed in the D phase/],
    ['indices of 5 bytes', { ...round, indices: new Uint8Array(5) }, /round\.indices: expected batchSize \(3\) indices per seed/],
    ['indices as an array', { ...round, indices: [1, 2, 3] }, /round\.indices: expected binary, got array/],
    ['an update that is not a manifest', { ...round, update: { manifest: [] } }, /round\.update: expected an array, got object/],
    ['welcome without run', { ...welcome, run: undefined }, /welcome\.run: missing/],
    ['bad wire dtype', { ...welcome, run: { ...welcome.run, wireDtype: 'bf16' } }, /welcome\.run\.wireDtype/],
    ['relay sums as float16', { ...welcome, run: { ...welcome.run, relaySums: 'float16' } }, /welcome\.run\.relaySums/],
    ['negative dataset count', { ...welcome, run: { ...welcome.run, dataset: { ...welcome.run.dataset, count: -1 } } }, /welcome\.run\.dataset\.count/],
    ['a real label above 1', { ...welcome, run: { ...welcome.run, realLabel: 1.5 } }, /welcome\.run\.realLabel: expected at most 1/],
    ['a real label below 0.5', { ...welcome, run: { ...welcome.run, realLabel: 0.2 } }, /welcome\.run\.realLabel: expected a finite number >= 0.5/],
    ['a NaN real label', { ...welcome, run: { ...welcome.run, realLabel: NaN } }, /welcome\.run\.realLabel/],
    ['the hyper map of version 2', { ...welcome, run: { ...welcome.run, hyper: {} } }, /welcome\.run: unexpected field "hyper"/],
    ['a shared offer without bytes', { ...welcome, shared: { path: '/dev/shm/ganfleet-x' } }, /welcome\.shared\.bytes: missing/],
    ['a shared offer beyond any region', { ...welcome, shared: { path: '/dev/shm/ganfleet-x', bytes: 2 ** 35 } }, /welcome\.shared\.bytes/],
    ['a shared offer with a long path', { ...welcome, shared: { path: 'p'.repeat(257), bytes: 64 } }, /welcome\.shared\.path: string longer than 256/],
    ['refuse with unknown code', { type: 'refuse', code: 'NOPE', reason: 'x' }, /refuse\.code/],
    ['generator with JSON weights', { type: 'generator', step: 1, modelJson: '{}', weights: [1] }, /generator\.weights: expected binary/],
    ['generator with object modelJson', { type: 'generator', step: 1, modelJson: {}, weights: new Uint8Array(0) }, /generator\.modelJson: expected a string/],
  ];

  it.each(badCoordinator)('coordinator message with %s → BAD_MESSAGE', (_, msg, message) => {
    const type = (msg as { type: string }).type;
    const bytes = Object.hasOwn(TENSOR_SETS, type) ? editedFrame(msg as object, (h) => ({ ...h, ...(msg as object) })) : raw(msg);
    expectGanError(() => parseCoordinatorMessage(bytes), 'BAD_MESSAGE', message);
  });

  it('reports a non-finite loss as NON_FINITE', () => {
    expectGanError(() => parseWorkerMessage(editedFrame(gradients, (h) => ({ ...h, loss: NaN }))), 'NON_FINITE', /gradients\.loss is NaN/);
    expectGanError(() => parseWorkerMessage(editedFrame(gradients, (h) => ({ ...h, loss: -Infinity }))), 'NON_FINITE', /-Infinity/);
  });

  it('reports another protocol version as VERSION_MISMATCH before looking at other fields', () => {
    const future = { type: 'hello', version: PROTOCOL_VERSION + 1, somethingNew: [1] };
    expectGanError(
      () => parseWorkerMessage(raw(future)),
      'VERSION_MISMATCH',
      new RegExp(`peer speaks protocol ${PROTOCOL_VERSION + 1}, this build speaks ${PROTOCOL_VERSION}`),
    );
    expectGanError(() => parseWorkerMessage(raw({ type: 'fetchGenerator', version: 0 })), 'VERSION_MISMATCH');
    expectGanError(() => parseWorkerMessage(raw({ ...hello, version: -1 })), 'BAD_MESSAGE', /hello\.version/);
  });

  it('refuses a __proto__ field as unexpected (msgpackr renames it), without it touching any prototype', () => {
    const bytes = editedFrame(welcome, (h) => ({ ...h, run: { ...(h.run as object), ...(JSON.parse('{"__proto__": {"polluted": 1}}') as object) } }));
    expectGanError(() => parseCoordinatorMessage(bytes), 'BAD_MESSAGE', /welcome\.run: unexpected field "__proto_/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('indices helpers', () => {
  it('round-trip at odd offsets and reject ragged lengths', () => {
    const bytes = encodeIndices([0, 1, 0x12345678]);
    expect([...bytes.subarray(8)]).toEqual([0x78, 0x56, 0x34, 0x12]);
    const odd = new Uint8Array(13);
    odd.set(bytes, 1);
    expect([...decodeIndices(odd.subarray(1))]).toEqual([0, 1, 0x12345678]);
    expectGanError(() => decodeIndices(new Uint8Array(3)), 'BAD_MESSAGE');
  });
});
