import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decodeTensors, encodeTensors } from './codec.js';
import { GanError, type GanErrorCode } from './errors.js';
import {
  PROTOCOL_VERSION,
  decodeIndices,
  encodeIndices,
  encodeMessage,
  parseCoordinatorMessage,
  parseWorkerMessage,
  type CoordinatorToWorker,
  type Gradients,
  type Hello,
  type Round,
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
  token: 's3cret',
  backend: 'tensorflow',
  device: 'cpu x2',
  capabilities: { maxBatch: 256, wireDtypes: ['float16', 'float32'] },
};

const welcome: Welcome = {
  type: 'welcome',
  workerId: 'w-1',
  run: {
    runId: 'run-7',
    preset: 'dcgan28',
    hyper: { lr: 0.0002, beta1: 0.5, optimizer: 'adam', labelSmoothing: true },
    dataset: { name: 'mnist', count: 60000, fingerprint: 'sha256:abc' },
    wireDtype: 'float32',
  },
  params,
  step: 10,
};

const round: Round = {
  type: 'round',
  step: 11,
  phase: 'D',
  batchSize: 64,
  seed: 0xdeadbeef,
  indices: encodeIndices([5, 70000, 0xffffffff]),
  update: params,
};

const halfStats = encodeTensors([{ name: 'bn/mean', shape: [2], values: Float32Array.from([0.1, 0.2]) }], 'float16');
const gradients: Gradients = {
  type: 'gradients',
  step: 11,
  phase: 'G',
  samples: 64,
  loss: 0.6931471805599453,
  grads: params,
  stats: halfStats,
  computeMs: 12.5,
};

const toCoordinator: WorkerToCoordinator[] = [
  hello,
  { type: 'hello', version: PROTOCOL_VERSION, backend: 'cpu', device: 'cpu', capabilities: { wireDtypes: ['float32'] } },
  gradients,
  { ...gradients, phase: 'D', stats: undefined },
  { type: 'fetchGenerator', version: PROTOCOL_VERSION, token: 't' },
  { type: 'fetchGenerator', version: PROTOCOL_VERSION },
  { type: 'bye', reason: 'shutting down' },
  { type: 'error', code: 'BACKEND_UNAVAILABLE', message: 'no tfjs-node' },
];

const toWorker: CoordinatorToWorker[] = [
  welcome,
  { type: 'refuse', code: 'UNAUTHORIZED', reason: 'bad token' },
  round,
  { type: 'round', step: 12, phase: 'G', batchSize: 1, seed: 0 },
  { type: 'generator', step: 500, modelJson: '{"modelTopology":{}}', weights: new Uint8Array([1, 2, 3]) },
  { type: 'bye', reason: 'run finished' },
  { type: 'error', code: 'STALE_REPLY', message: 'step 3 is over' },
];

/** Drops keys whose value is undefined, as the wire does. */
function defined<T extends object>(msg: T): T {
  return JSON.parse(JSON.stringify(msg, (_, v: unknown) => (v instanceof Uint8Array ? [...v] : v))) as T;
}

/** Encodes an arbitrary (malformed) message. */
const raw = (msg: unknown): Uint8Array => pack(msg);

describe('round trip', () => {
  it.each(toCoordinator.map((m) => [m.type, m] as const))('worker → coordinator %s', (_, msg) => {
    const parsed = parseWorkerMessage(encodeMessage(msg));
    expect(parsed).toEqual(msg);
    expect(defined(parsed)).toEqual(defined(msg));
  });

  it.each(toWorker.map((m) => [m.type, m] as const))('coordinator → worker %s', (_, msg) => {
    const parsed = parseCoordinatorMessage(encodeMessage(msg));
    expect(parsed).toEqual(msg);
    expect(defined(parsed)).toEqual(defined(msg));
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

describe('encodeMessage', () => {
  it('writes Uint8Array fields as msgpack bin, not arrays or extensions', () => {
    const indices = encodeIndices([1, 2]);
    const bytes = encodeMessage({ ...round, indices, update: undefined });
    const asBin = [0xc4, indices.byteLength, ...indices];
    const at = Buffer.from(bytes).indexOf(Buffer.from(asBin));
    expect(at).toBeGreaterThan(0);
    // params.data is 36 bytes: bin8 too; a larger tensor set needs bin16 (0xc5).
    const big = encodeTensors([{ name: 'w', shape: [100], values: new Float32Array(100).fill(1) }]);
    const bigBytes = Buffer.from(encodeMessage({ ...gradients, grads: big, stats: undefined }));
    expect(bigBytes.indexOf(Buffer.concat([Buffer.from([0xc5, 0x01, 0x90]), Buffer.from(big.data)]))).toBeGreaterThan(0);
  });

  it('encodes an absent optional field and an undefined one identically', () => {
    const noToken: Hello = { ...hello };
    delete noToken.token;
    expect(encodeMessage({ ...hello, token: undefined })).toEqual(encodeMessage(noToken));
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
    for (const type of ['nope', 'constructor', 'toString', '__proto__', 'welcome', 'round', 'generator']) {
      expectGanError(() => parseWorkerMessage(raw({ type })), 'UNKNOWN_TYPE', /worker-to-coordinator/);
    }
    for (const type of ['hello', 'gradients', 'fetchGenerator', 'hasOwnProperty']) {
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
    ['huge token', { ...hello, token: 't'.repeat(5000) }, /hello\.token: string longer than 4096/],
    ['null optional', { ...hello, token: null }, /hello\.token: expected a string, got null/],
    ['unknown wire dtype', { ...hello, capabilities: { wireDtypes: ['int8'] } }, /wireDtypes\[0\]: expected one of/],
    ['zero maxBatch', { ...hello, capabilities: { maxBatch: 0, wireDtypes: [] } }, /capabilities\.maxBatch/],
    ['extra field', { ...hello, admin: true }, /^hello: unexpected field "admin"$/],
    ['extra nested field', { ...hello, capabilities: { wireDtypes: [], gpu: 1 } }, /hello\.capabilities: unexpected field "gpu"/],
    ['NaN step', { ...gradients, step: NaN }, /^gradients\.step: expected an integer in \[0, \d+\], got NaN$/],
    ['fractional step', { ...gradients, step: 1.5 }, /gradients\.step: .* got 1\.5/],
    ['negative step', { ...gradients, step: -1 }, /gradients\.step/],
    ['string step', { ...gradients, step: '1' }, /gradients\.step: .* got "1"/],
    ['unsafe integer step', { ...gradients, step: 2 ** 60 }, /gradients\.step/],
    ['zero samples', { ...gradients, samples: 0 }, /gradients\.samples/],
    ['bad phase', { ...gradients, phase: 'X' }, /gradients\.phase: expected one of D\/G, got "X"/],
    ['numeric phase', { ...gradients, phase: 0 }, /gradients\.phase/],
    ['string loss', { ...gradients, loss: '0.1' }, /gradients\.loss: expected a number/],
    ['negative computeMs', { ...gradients, computeMs: -1 }, /gradients\.computeMs/],
    ['grads not a map', { ...gradients, grads: [] }, /gradients\.grads: expected a map, got array/],
    ['grads data as array', { ...gradients, grads: { ...params, data: [1, 2] } }, /gradients\.grads\.data: expected binary, got array/],
    ['grads data as string', { ...gradients, grads: { ...params, data: 'abc' } }, /gradients\.grads\.data: expected binary/],
    [
      'bad manifest dtype',
      { ...gradients, grads: { ...params, manifest: [{ name: 'a', shape: [1], dtype: 'int32' }] } },
      /gradients\.grads\.manifest\[0\]\.dtype/,
    ],
    [
      'negative manifest dimension',
      { ...gradients, stats: { manifest: [{ name: 'a', shape: [2, -1], dtype: 'float32' }], data: new Uint8Array(0) } },
      /gradients\.stats\.manifest\[0\]\.shape\[1\]: expected an integer/,
    ],
    [
      'fractional log2Scale',
      { ...gradients, stats: { ...halfStats, manifest: [{ ...halfStats.manifest[0], log2Scale: 0.5 }] } },
      /gradients\.stats\.manifest\[0\]\.log2Scale: expected an integer/,
    ],
    [
      'log2Scale out of range',
      { ...gradients, stats: { ...halfStats, manifest: [{ ...halfStats.manifest[0], log2Scale: 1000 }] } },
      /gradients\.stats\.manifest\[0\]\.log2Scale: expected an integer in \[-113, 163\]/,
    ],
    ['manifest entry extra field', { ...gradients, grads: { ...params, manifest: [{ ...params.manifest[0], x: 1 }] } }, /manifest\[0\]: unexpected field "x"/],
    ['string version in fetchGenerator', { type: 'fetchGenerator', version: '1' }, /fetchGenerator\.version/],
    ['unknown error code', { type: 'error', code: 'OOPS', message: 'x' }, /error\.code: expected an error code, got "OOPS"/],
    ['error without message', { type: 'error', code: 'INTERNAL' }, /error\.message: missing/],
    ['huge bye reason', { type: 'bye', reason: 'r'.repeat(4097) }, /bye\.reason: string longer than 4096/],
  ];

  it.each(badWorker)('worker message with %s → BAD_MESSAGE', (_, msg, message) => {
    expectGanError(() => parseWorkerMessage(raw(msg)), 'BAD_MESSAGE', message);
  });

  const badCoordinator: [string, unknown, RegExp][] = [
    ['negative batch size', { ...round, batchSize: -64 }, /round\.batchSize: expected an integer in \[1,/],
    ['zero batch size', { ...round, batchSize: 0 }, /round\.batchSize/],
    ['NaN batch size', { ...round, batchSize: NaN }, /round\.batchSize: .* got NaN/],
    ['Infinity batch size', { ...round, batchSize: Infinity }, /round\.batchSize: .* got Infinity/],
    ['seed above uint32', { ...round, seed: 2 ** 32 }, /round\.seed: expected an integer in \[0, 4294967295\]/],
    ['indices in the G phase', { ...round, phase: 'G' }, /round\.indices: only allowed in the D phase/],
    ['indices of 5 bytes', { ...round, indices: new Uint8Array(5) }, /round\.indices: length is not a multiple of 4/],
    ['indices as an array', { ...round, indices: [1, 2, 3] }, /round\.indices: expected binary, got array/],
    ['update without data', { ...round, update: { manifest: [] } }, /round\.update\.data: missing/],
    ['welcome without run', { ...welcome, run: undefined }, /welcome\.run: missing/],
    ['bad wire dtype', { ...welcome, run: { ...welcome.run, wireDtype: 'bf16' } }, /welcome\.run\.wireDtype/],
    ['negative dataset count', { ...welcome, run: { ...welcome.run, dataset: { ...welcome.run.dataset, count: -1 } } }, /welcome\.run\.dataset\.count/],
    [
      'object hyper value',
      { ...welcome, run: { ...welcome.run, hyper: { lr: { x: 1 } } } },
      /welcome\.run\.hyper\.lr: expected a finite number, string or boolean/,
    ],
    ['NaN hyper value', { ...welcome, run: { ...welcome.run, hyper: { lr: NaN } } }, /welcome\.run\.hyper\.lr/],
    ['hyper as an array', { ...welcome, run: { ...welcome.run, hyper: [1] } }, /welcome\.run\.hyper: expected a map/],
    [
      'too many hyper keys',
      { ...welcome, run: { ...welcome.run, hyper: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i])) } },
      /more than 256 keys/,
    ],
    ['refuse with unknown code', { type: 'refuse', code: 'NOPE', reason: 'x' }, /refuse\.code/],
    ['generator with JSON weights', { type: 'generator', step: 1, modelJson: '{}', weights: [1] }, /generator\.weights: expected binary/],
    ['generator with object modelJson', { type: 'generator', step: 1, modelJson: {}, weights: new Uint8Array(0) }, /generator\.modelJson: expected a string/],
  ];

  it.each(badCoordinator)('coordinator message with %s → BAD_MESSAGE', (_, msg, message) => {
    expectGanError(() => parseCoordinatorMessage(raw(msg)), 'BAD_MESSAGE', message);
  });

  it('reports a non-finite loss as NON_FINITE', () => {
    expectGanError(() => parseWorkerMessage(raw({ ...gradients, loss: NaN })), 'NON_FINITE', /gradients\.loss is NaN/);
    expectGanError(() => parseWorkerMessage(raw({ ...gradients, loss: -Infinity })), 'NON_FINITE', /-Infinity/);
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

  it('keeps a __proto__ hyper key from touching the prototype', () => {
    const bytes = raw({ ...welcome, run: { ...welcome.run, hyper: JSON.parse('{"__proto__": 1, "lr": 2}') as object } });
    const parsed = parseCoordinatorMessage(bytes) as Welcome;
    expect(Object.getPrototypeOf(parsed.run.hyper)).toBe(Object.prototype);
    expect(parsed.run.hyper.lr).toBe(2);
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
